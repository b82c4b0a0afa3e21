// What views read: a copyable, self-contained picture of the state model.
// Views (top, export, diagnose, trace) depend on this header only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fusescope/model/histogram.h"
#include "fusescope/model/mounts.h"
#include "fusescope/model/types.h"
#include "fusescope/model/workload.h"

namespace fusescope {

// The inode's IO mode (kernel fs/fuse/iomode.c), derived from the newest
// (iocachectr, FUSE_I_CACHE_IO_MODE bit) observation.
enum class ModeKind : uint8_t {
    None,     // iocachectr == 0, bit clear: no cached user, no shared writer
    Cached,   // bit set or iocachectr > 0: every DIO write takes the exclusive lock
    Parallel, // iocachectr < 0, no passthrough file known: -iocachectr DIO writers hold it shared
    Passthrough,  // iocachectr < 0 and a passthrough (uncached) open is known
    NotAvailable, // kernel has no io modes (< 6.9); model option io_modes_available=false
};
inline constexpr size_t kModeKinds = 5;

struct IoMode {
    ModeKind kind = ModeKind::None;
    uint32_t count = 0;     // Cached: iocachectr (caching files); Parallel/Passthrough: -iocachectr
    int32_t iocachectr = 0; // raw last value
    bool cache_bit = false; // raw FUSE_I_CACHE_IO_MODE
    // Cached with iocachectr <= 0: a caching open/mmap is waiting for parallel
    // writers to drain (or the mode is just being entered).
    bool draining() const { return kind == ModeKind::Cached && iocachectr <= 0; }
    bool operator==(const IoMode &) const = default;
};

// Pure derivation used by the model; exposed for tests and views.
IoMode derive_io_mode(int32_t iocachectr, bool cache_bit, bool passthrough_known,
                      bool io_modes_available);

enum class HolderHow : uint8_t { Open, Mmap };

// An open file that keeps the inode in cached mode.
struct Holder {
    uint64_t file_id = 0; // struct fuse_file address (identity of the open file)
    uint64_t fh = 0;
    uint32_t pid = 0;
    std::string comm;
    HolderHow how = HolderHow::Open;
    uint64_t since_ns = 0;
    // true: first seen by a census, so the real start is <= since_ns.
    bool since_is_lower_bound = false;
    uint64_t release_id = 0; // what its release event carries on every backend (0: unknown)
    InodeKey exe;            // its process's executable (ino 0: unknown)
    uint64_t cgroup_id = 0;
    // filled by the model's views from what the session resolved (empty: not yet)
    std::string exe_path;
    Workload where;
};

// Processes grouped as users know them: by program (comm plus executable).
struct ProgramRef {
    std::string comm;
    std::string exe;            // the executable's path; "" unknown
    Workload where;             // of the first of its processes seen
    uint32_t processes = 0;     // distinct pids seen
    std::vector<uint32_t> pids; // the first few of them, for examples
    bool operator==(const ProgramRef &) const = default;
    std::string name() const; // "rg (/usr/bin/rg)", "rg"
};

// One program's holds of an inode's cache IO mode since fusescope started.
struct HolderProgram {
    ProgramRef program;
    std::string how;            // "open", "mmap" or "open+mmap"
    uint64_t holds = 0;         // caching opens/shared mmaps that held the inode
    uint64_t entered_cache = 0; // ... of which put it in cache mode (the first holder then)
    uint32_t holding_now = 0;   // of its holders, still holding
    uint64_t total_held_ns = 0; // sum of its holds, each from its start to its own release
    uint64_t longest_held_ns = 0;
    bool since_at_least = false; // a hold began before fusescope started: times are minimums
    uint64_t cost_ns = 0;        // its share of the inode's cache-mode lock wait (by hold time)
};

// A program that opened an inode for writing since fusescope started.
struct WriterProgram {
    ProgramRef program;
    uint64_t opens = 0;
};

// Where a path came from, and so how current it is.
enum class PathSource : uint8_t {
    None,
    OpenFd,   // readlink of an open descriptor (census): current when read
    Kernel,   // the kernel's dentries when the inode was first opened: a later rename is not seen
    Walk,     // diagnose's walk of the mount at report time
    Argument, // the user named the file (diagnose --path)
};
std::string_view to_string(PathSource s); // "", "fd", "kernel", "walk", "argument"
constexpr bool path_may_be_stale(PathSource s) { return s == PathSource::Kernel; }

// Split @cost_ns over programs by their hold time (HolderProgram::cost_ns).
void split_cost_by_hold(std::vector<HolderProgram> &programs, uint64_t cost_ns);

enum class TransitionCause : uint8_t {
    Open,
    Mmap,
    Release,
    Census,
    WriteSeen,
    DrainWait,
    Counters
};

struct Transition {
    uint64_t ts_ns = 0;
    IoMode from, to;
    TransitionCause cause = TransitionCause::Counters;
    uint32_t pid = 0;
    std::string comm;
};

struct DrainWaiter {
    uint64_t ts_ns = 0; // when the wait ended (event time)
    uint32_t pid = 0;
    std::string comm;
    uint64_t wait_ns = 0;
};

// Kernel counters, either totals since fusescope started or one interval's delta.
struct WriteStats {
    std::array<uint64_t, kWriteReasons> writes{};       // by WriteReason (index 0 = shared)
    std::array<uint64_t, kWriteLockModes> bytes{};      // by LockMode
    std::array<uint64_t, kWriteLockModes> wait_ns{};    // queued i_rwsem wait of writers
    std::array<uint64_t, kWriteLockModes> service_ns{}; // rest of a synchronous write's time
    // FUSE_WRITEs from page writeback (tracepoint backend): the writers' buffered writes
    // behind them were not seen, so the inode's write counts leave them out
    uint64_t writeback_requests = 0, writeback_bytes = 0;
    std::array<uint64_t, kLockModes> contentions{};
    std::array<uint64_t, kLockModes> contention_ns{};
    std::array<Histogram, kLockModes> contention_hist{}; // lock:contention_* waits
    uint64_t drain_waits = 0, drain_wait_ns = 0;
    uint64_t mode_changes = 0;

    uint64_t total_writes() const;
    uint64_t writes_by_lock(LockMode m) const; // writes whose reason implies @m
    uint64_t shared_writes() const { return writes_by_lock(LockMode::Shared); }
    uint64_t exclusive_writes() const { return writes_by_lock(LockMode::Exclusive); }
    uint64_t unclassified_writes() const; // reasons is_unclassified()
    uint64_t total_wait_ns() const;
    // The writers' lock wait that @n exclusive writes caused: all of it split over the
    // exclusive writes by count (shared writers only queue behind an exclusive holder).
    uint64_t wait_share_ns(uint64_t n) const;
    Histogram wait_hist() const; // both lock modes merged
    bool is_zero() const;
    WriteStats &operator+=(const WriteStats &o);
};

// to += from over the counters of WriteStats and of its compact form (CompactStats):
// one field list for both. add_hist(to_hist, from_hist) adds one lock mode's histogram,
// which the two store differently.
template <typename To, typename From, typename AddHist>
void add_write_stats(To &to, const From &from, AddHist add_hist) {
    for (size_t i = 0; i < to.writes.size(); ++i)
        to.writes[i] += from.writes[i];
    for (size_t m = 0; m < static_cast<size_t>(kWriteLockModes); ++m) {
        to.bytes[m] += from.bytes[m];
        to.wait_ns[m] += from.wait_ns[m];
        to.service_ns[m] += from.service_ns[m];
    }
    to.writeback_requests += from.writeback_requests;
    to.writeback_bytes += from.writeback_bytes;
    for (size_t m = 0; m < static_cast<size_t>(kLockModes); ++m) {
        to.contentions[m] += from.contentions[m];
        to.contention_ns[m] += from.contention_ns[m];
        add_hist(to.contention_hist[m], from.contention_hist[m]);
    }
    to.drain_waits += from.drain_waits;
    to.drain_wait_ns += from.drain_wait_ns;
    to.mode_changes += from.mode_changes;
}

struct InodeView {
    InodeKey key;
    uint64_t nodeid = 0;
    std::string mount_point; // "" if the mount is unknown
    std::string path;        // "" until resolved (set_path / resolve_paths_from_census)
    PathSource path_source = PathSource::None;
    uint64_t path_captured_ns = 0; // PathSource::Kernel: when the kernel spelled it
    IoMode mode;
    uint64_t mode_observed_ns = 0; // when the mode's inputs were observed
    std::vector<Holder> holders;
    // Every program that held it in cache mode since fusescope started, most hold time first
    // (cost_ns split from the inode's cache_io_mode writes' lock wait); bounded.
    std::vector<HolderProgram> holder_programs;
    std::vector<WriterProgram> writers; // programs that opened it for writing; bounded
    bool holders_unknown = false;       // cached, but fewer holders known than the kernel counts
    bool holders_stale = false;         // a release could not be matched: census pending
    uint32_t passthrough_files = 0;
    // Some writes to it are invisible to this backend (buffered writes under the writeback
    // cache: only their writeback requests show; passthrough writes): its write counts are
    // lower bounds, never "no writes".
    bool writes_unseen = false;

    WriteStats total;    // since fusescope started (counter resets accounted for)
    WriteStats interval; // last counters interval only (zero if absent from the last read)
    uint64_t interval_ns = 0;
    uint64_t counter_resets = 0; // kernel entry re-created (LRU) and re-based

    uint64_t mmaps_shared = 0, mmaps_private = 0, mmaps_writable = 0; // from Mmap events
    uint64_t drain_events = 0, drain_events_ns = 0; // from DrainWait events (may miss lost events)
    std::vector<DrainWaiter> last_drain_waiters;    // oldest first, bounded
    std::vector<Transition> transitions;            // oldest first, bounded
    uint64_t first_seen_ns = 0, last_seen_ns = 0, last_write_ns = 0;

    // exclusive / writes whose lock mode is known; 0 without such writes.
    double exclusive_fraction(bool in_interval = false) const;
    // The exclusive reason with most writes; nullopt without exclusive writes.
    std::optional<WriteReason> top_exclusive_reason(bool in_interval = false) const;
    // Writers' lock wait per wall second over the last interval (>1 = several waiting).
    double wait_seconds_per_second() const;
    double writes_per_second() const;
    // Percentiles of lock contention waits (both modes), in ns; see Histogram::percentile.
    double wait_p50_ns(bool in_interval = false) const;
    double wait_p99_ns(bool in_interval = false) const;
};

struct ModelStats {
    uint64_t inodes = 0;
    uint64_t max_inodes = 0;
    uint64_t evictions = 0;        // inodes dropped to stay within max_inodes
    uint64_t forced_evictions = 0; // ... of which were in cached mode (nothing else to evict)
    uint64_t counter_resets = 0;
    uint64_t events = 0;
    uint64_t events_filtered = 0; // dropped by the mount filter
    uint64_t census_runs = 0;
    bool census_wanted = false;
};

struct Snapshot {
    uint64_t now_ns = 0;      // newest timestamp the model has seen (CLOCK_MONOTONIC)
    uint64_t interval_ns = 0; // length of the last counters interval
    bool io_modes_available = true;
    std::vector<InodeView> inodes; // sorted by key
    Health health;
    std::vector<Mount> mounts;
    ModelStats stats;
    // Devices whose transport a census saw on an open file: true = FUSE over io_uring
    std::map<uint32_t, bool> uring_by_dev;
    uint64_t generation = 0; // StateModel::generation() when taken

    const InodeView *find(const InodeKey &k) const;
};

// Per-device aggregates for views that need totals, not every inode (the
// exporter at scrape time): no copy of the inodes.
struct DeviceSummary {
    uint32_t dev = 0;
    std::string mount_point; // from the mount table; for an unmounted device its last one
    // Every counter delta the model took in for this device, including inodes it
    // has evicted since: never goes down.
    WriteStats total;
    uint64_t inodes = 0;                               // tracked by the model now
    std::array<uint64_t, kModeKinds> inodes_by_mode{}; // index: ModeKind
    uint64_t draining = 0, holders_open = 0, holders_mmap = 0;
    // (cause, new mode) -> transitions counted as the model recorded them (exact,
    // unlike InodeView::transitions, a bounded history).
    std::map<std::pair<TransitionCause, ModeKind>, uint64_t> transitions;
};

struct Summary {
    uint64_t now_ns = 0;
    uint64_t interval_ns = 0;
    bool io_modes_available = true;
    Health health;
    std::vector<Mount> mounts;
    ModelStats stats;
    std::map<uint32_t, bool> uring_by_dev; // as Snapshot::uring_by_dev
    std::vector<DeviceSummary> devices;    // by dev: mounted devices with data, or with inodes
    // The top-K inodes by writers' lock wait in the last interval, then since start,
    // then key; only inodes that wrote or waited. Best first.
    std::vector<InodeView> top;
};

std::string_view to_string(ModeKind k);  // "none", "cached", "parallel", "passthrough", "n/a"
std::string to_string(const IoMode &m);  // "cached(2)", "parallel(4)", "cached(draining)", ...
std::string_view to_string(HolderHow h); // "open", "mmap"
std::string_view
to_string(TransitionCause c); // "open", "mmap", "release", "census", "write-seen", ...

} // namespace fusescope
