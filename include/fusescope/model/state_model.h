// The per-inode state model: the one place where backend input (counters,
// events, census, health) becomes per-inode state that every view reads.
//
// Threading: updated from one thread (the session loop), read from others
// (exporter, tty UI). Every public method takes the internal mutex;
// snapshot() and summary() copy under it.
//
// Memory: per inode a compact record (counters without a copy of the kernel's
// values, histograms only over the slots that have samples, holders/path/...
// only when the inode has any); per device a running sum.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fusescope/model/mounts.h"
#include "fusescope/model/snapshot.h"
#include "fusescope/model/types.h"

namespace fusescope {

struct ModelOptions {
    // Hard bound; least recently active non-cached inodes go first. Keep it
    // above the kernel map size (FS_MAX_INODES): an inode evicted here while
    // its kernel entry lives would be counted again in full when seen next.
    size_t max_inodes = 65536;
    bool io_modes_available = true; // false on kernels < 6.9: every mode is NotAvailable
    // Can the backend see these writers (roles write-writeback, write-passthrough)? Where not,
    // an inode with such writes gets InodeView::writes_unseen.
    bool writeback_writes_seen = true;
    bool passthrough_writes_seen = true;
    std::vector<uint32_t> devs; // mount filter (kernel s_dev); empty = all
    // pid filter: snapshot() only lists inodes this pid touched (holder, writer,
    // mmapper, drain waiter, census opener). The model still tracks every pid
    // so holder bookkeeping stays right; counters are per inode, not per pid,
    // so a listed inode's counters include every process's writes.
    std::optional<uint32_t> pid;
    size_t transitions_kept = 16;
    size_t drain_waiters_kept = 8;
};

// readlink(/proc/pid/fd/fd); nullopt on error. Injectable for tests.
using ReadlinkFn = std::function<std::optional<std::string>(uint32_t pid, uint32_t fd)>;
std::optional<std::string> proc_fd_readlink(uint32_t pid, uint32_t fd);
// The file a mapping of another process starting at @vm_start maps (/proc/PID/maps): the
// path of a shared mapping whose fd is closed (vmtouch closes it once mapped).
using MapPathFn = std::function<std::optional<std::string>(uint32_t pid, uint64_t vm_start)>;
std::optional<std::string> proc_map_path(uint32_t pid, uint64_t vm_start);

// How much of an inode a view copies out of the model.
enum class ViewDetail : uint8_t {
    Full,
    // Key, mount, path, mode, counters and times: what sorts, filters and totals rows.
    // No holders, holder or writer programs, mmap and drain figures, or transitions, and
    // no histograms in `total` (`interval` keeps them: the p99 sort reads them).
    Brief,
};

class StateModel {
  public:
    explicit StateModel(ModelOptions opts = {});
    ~StateModel();
    StateModel(const StateModel &) = delete;
    StateModel &operator=(const StateModel &) = delete;

    // Cumulative kernel counters: a dump of ALL entries of the kernel map (an
    // inode missing from the dump is taken as evicted from it). The first sighting of
    // an inode counts in full (the kernel entries are created by fusescope's own
    // programs); a counter going down, or a changed first_seen_ns, means the
    // kernel LRU re-created the entry: the new values are the delta.
    void on_counters(const std::vector<InodeCounters> &counters, uint64_t now_ns);
    // The same from a read that lists only what changed (see CountersDelta):
    // unlisted inodes keep their totals and have a zero interval.
    void on_counter_changes(const CountersDelta &delta, uint64_t now_ns);
    // One ring-buffer event: holders, mode transitions, drain waits, mmaps.
    void on_event(const Event &ev);
    // A full census of open FUSE files and shared mappings: rebuilds holders.
    void on_census(const std::vector<CensusRecord> &records, uint64_t now_ns);
    void on_health(const Health &h);
    Health health() const; // the last on_health's
    void set_mounts(const Mounts &m);
    void set_path(const InodeKey &key, std::string path, PathSource source = PathSource::Walk);
    // The path the kernel spelled when the inode was first opened (bpf/names.bpf.h):
    // taken unless a census's readlink gave a current one.
    void set_kernel_path(const InodeKey &key, std::string path, uint64_t captured_ns);
    // Fill unknown paths (and the kernel's, maybe stale) from census File records via
    // readlink (done outside the lock).
    void resolve_paths_from_census(const std::vector<CensusRecord> &records,
                                   const ReadlinkFn &readlink = proc_fd_readlink,
                                   const MapPathFn &map_path = proc_map_path);

    // Who and where: the ids events and censuses carried that only the session can name
    // (executables, cgroups), and inodes new since the last call that have no path; each
    // listed once. The session answers with set_exe_path, set_cgroup_path, set_kernel_path.
    struct NamesWanted {
        std::vector<std::pair<InodeKey, uint32_t>> exes; // executable, a pid that ran it
        std::vector<uint64_t> cgroups;
        std::vector<InodeKey> paths;
    };
    NamesWanted names_wanted();
    void set_exe_path(const InodeKey &exe, std::string path);
    void set_cgroup_path(uint64_t id, std::string path);

    // True when some inode's holders became unknown/stale since the last census
    // (or an event carried CensusHint): the caller should run a census.
    bool needs_census() const;

    // Every inode (with the pid filter: those the pid touched), copied: for views
    // that show or reason about each inode.
    Snapshot snapshot() const;
    // The same views, one at a time, each made under the lock and handed to
    // @take, which keeps what it wants (a view that shows a few rows of many
    // inodes copies no others). Returns the snapshot's other fields, no inodes.
    Snapshot snapshot_each(const std::function<void(InodeView &&)> &take,
                           ViewDetail detail = ViewDetail::Full) const;
    // For views that show a few rows of many inodes: each inode's brief view to @take
    // (what ranks, filters and totals rows), then, still under the lock, the views @kept
    // returns (the rows @take kept) made full. A refresh of top over 16k inodes built
    // every holder list and transition of each: 1.5 % of a core while idle.
    Snapshot snapshot_ranked(const std::function<void(InodeView &&)> &take,
                             const std::function<std::vector<InodeView *>()> &kept) const;
    // Full views of @keys (those still tracked, in that order), and the other fields.
    Snapshot snapshot_of(const std::vector<InodeKey> &keys) const;
    // Changes with every change a brief view may show (Snapshot::generation is the one a
    // snapshot was taken at): a view that ranks inodes keeps its ranking while it stands.
    // Full views change without it too: current holds are counted up to the model's now.
    uint64_t generation() const;
    // Per-device aggregates and the top_k inodes by lock wait, without copying
    // the other inodes: for the exporter's scrapes.
    Summary summary(size_t top_k) const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace fusescope
