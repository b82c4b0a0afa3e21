// Opens without the syscall hooks (--syscall-hooks off, the default of top and export).
//
// While a syscalls:* tracepoint is attached the kernel sends every syscall of every task on
// the machine through its slow path, so the long-running views do without them. What they
// still see of an open is its FUSE_OPEN or FUSE_CREATE request, sent by the opening thread
// (EventType::OpenSent): that names the process, not the file it will get nor the io mode.
// A census of that one process, taken once the server answered, shows the new open file;
// OpenHints turns it into the Open (or Mmap) event the syscall exit would have reported, so
// the state model has one way in for opens on every backend.
//
// What differs from the syscall hook: the event comes a census later (2 ms or more); a
// caching open's hold starts at its FUSE_OPEN (exact), a shared mapping's at the census that
// found it (the mmap came between the two); a file closed before its census is not reported
// (its release still is, and the inode's mode says cached while it was). Drain waits are not
// timed without the syscall hooks (hook_plan.cpp).
#pragma once

#include "fusescope/model/types.h"

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

namespace fusescope {

class OpenHints {
  public:
    // Delays after the FUSE_OPEN at which its opener's census is taken; after the last
    // the hint is dropped (the open failed, or closed before it was seen).
    static constexpr uint64_t kRetryDelaysNs[] = {2'000'000, 20'000'000, 200'000'000,
                                                  1'000'000'000};
    // Two censuses of one process are at least this far apart: a process that opens many
    // files (a database at start, tar, a compiler) is censused at most 100 times a second,
    // each census walking all its open files, instead of once per hint that falls due.
    // Shorter than the step between the first two delays: a lone hint keeps its schedule.
    static constexpr uint64_t kCensusGapNs = 10'000'000;

    // An OpenSent event: remember to take a census of its process.
    void on_sent(const Event &sent);
    // A census of every process taken at @now_ns: its open files are accounted for, except
    // those a pending hint may still be about (then the hint's event brings their start).
    // A hint read after it may still claim a file it found first, once.
    void on_full_census(const std::vector<CensusRecord> &records, uint64_t now_ns);

    bool pending() const { return !hints_.empty(); }
    uint64_t next_due_ns() const; // UINT64_MAX: none
    // Processes whose hints are due at @now_ns, each once (and none censused less than
    // kCensusGapNs ago).
    std::vector<uint32_t> due(uint64_t now_ns) const;
    // The census of process @pid taken at @now_ns (@scheduled: because its hints were due):
    // the events of the opens its due hints were about (in hint order); unresolved hints are
    // retried later or dropped.
    std::vector<Event> resolve(uint32_t pid, const std::vector<CensusRecord> &records,
                               uint64_t now_ns, bool scheduled = true);
    // A census of every process at @now_ns shows the openers too: the events of the hints it
    // explains, due or not, before the census rebuilds the holders (which then knows them:
    // a hint's hold is not taken for one that began before the census). Unexplained hints
    // keep their schedule.
    std::vector<Event> resolve_from_full_census(const std::vector<CensusRecord> &records,
                                                uint64_t now_ns);

    uint64_t resolved() const { return resolved_; } // hints that became an event
    uint64_t dropped() const { return dropped_; }   // hints whose file no census found

  private:
    struct Hint {
        Event sent;
        uint64_t due_ns = 0;
        size_t tries = 0;
        bool seen = false; // its file was found, but changed nothing (yet)
    };
    // A file already reported or censused. A struct fuse_file's address is reused once it
    // is freed: the same address in another process, or with other release arguments, is
    // another open.
    struct Known {
        uint32_t pid = 0;
        uint64_t release_id = 0;
        uint64_t first_seen_ns = 0; // the census that found it first
        bool claimed = false;       // reported as a hint's open
    };
    using KnownFiles = std::unordered_map<uint64_t, Known>; // by file_id
    struct CensusIndex;                                     // open_hints.cpp
    std::vector<Event> resolve(uint32_t pid, const std::vector<CensusRecord> &records,
                               const CensusIndex &index, uint64_t now_ns, bool scheduled);
    uint64_t due_ns(const Hint &h) const; // its due time, after its process's census gap
    bool may_be_about(const Hint &h, const CensusRecord &r) const;
    const Known *known(const CensusRecord &r) const;
    bool may_be_its_open(const Hint &h, const CensusRecord &r) const;

    std::deque<Hint> hints_;
    KnownFiles known_files_;
    std::unordered_map<uint32_t, uint64_t> last_census_ns_; // scheduled censuses, by pid
    uint64_t resolved_ = 0;
    uint64_t dropped_ = 0;
};

} // namespace fusescope
