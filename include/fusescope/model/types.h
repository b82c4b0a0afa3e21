// Plain C++ records that flow from a backend into the state model.
// Backends decode the BPF ABI (include/fusescope/abi.h) into these; the state
// model and everything after it never see the ABI structs or BPF maps.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fusescope/abi_tables.h"

namespace fusescope {

inline constexpr int kHistSlots = 36; // log2 ns buckets, == FS_HIST_SLOTS

// The lock mode of a write (abi_tables.h). Lock waits are only ever Shared or
// Exclusive (a waiter's mode): the first kLockModes of them.
enum class LockMode : uint8_t {
#define FS_X(c, cpp, name) cpp,
    FS_LOCK_MODE_TABLE(FS_X)
#undef FS_X
};
inline constexpr int kWriteLockModes = 0
#define FS_X(c, cpp, name) +1
    FS_LOCK_MODE_TABLE(FS_X)
#undef FS_X
    ;
inline constexpr int kLockModes = 2; // Shared, Exclusive: the modes a lock waiter waits in

// Why a write took the lock it took (abi_tables.h); index 0 = the shared lock.
enum class WriteReason : uint8_t {
#define FS_X(c, cpp, name, short_name, mode, doc) cpp,
    FS_WRITE_REASON_TABLE(FS_X)
#undef FS_X
};
inline constexpr int kWriteReasons = 0
#define FS_X(c, cpp, name, short_name, mode, doc) +1
    FS_WRITE_REASON_TABLE(FS_X)
#undef FS_X
    ;

// A reason's row of the table: its name, the lock mode it implies, what it means.
struct WriteReasonInfo {
    WriteReason reason;
    std::string_view name;
    std::string_view short_name; // for narrow columns
    LockMode lock;
    std::string_view meaning;
};
namespace lock_token { // the table's lock mode column, as written there
enum : uint8_t {
#define FS_X(c, cpp, name) c,
    FS_LOCK_MODE_TABLE(FS_X)
#undef FS_X
};
} // namespace lock_token
inline constexpr WriteReasonInfo kWriteReasonInfo[] = {
#define FS_X(c, cpp, name, short_name, mode, doc)                                                  \
    {WriteReason::cpp, name, short_name, static_cast<LockMode>(lock_token::mode), doc},
    FS_WRITE_REASON_TABLE(FS_X)
#undef FS_X
};
constexpr const WriteReasonInfo &info(WriteReason r) {
    return kWriteReasonInfo[static_cast<size_t>(r)];
}
constexpr LockMode lock_mode_of(WriteReason r) { return info(r).lock; }
// Counted but not classified: the lock mode or the reason was not visible.
constexpr bool is_unclassified(WriteReason r) {
    return r == WriteReason::Unclassified || r == WriteReason::UnclassifiedExclusive;
}

enum class FileIoMode : uint8_t { None = 0, Cached = 1, Uncached = 2, NotAvailable = 255 };

enum class EventType : uint8_t {
#define FS_X(c, cpp, value, name) cpp = value,
    FS_EVENT_TYPE_TABLE(FS_X)
#undef FS_X
};

// Flags, the bits of enum fs_event_flags.
namespace evflag {
#define FS_X(c, cpp, bit, doc) inline constexpr uint32_t cpp = 1u << bit;
FS_EVENT_FLAG_TABLE(FS_X)
#undef FS_X
} // namespace evflag

// (device, inode number). dev uses the kernel's s_dev encoding
// (major << 20 | minor), as BPF reads it; see Mounts for the mapping.
struct InodeKey {
    uint32_t dev = 0;
    uint64_t ino = 0;
    auto operator<=>(const InodeKey &) const = default;
};

// "maj:min" of a kernel s_dev, as /proc/self/mountinfo writes it: every view's spelling.
std::string dev_string(uint32_t kdev);

struct InodeKeyHash {
    size_t operator()(const InodeKey &k) const noexcept {
        return std::hash<uint64_t>{}(k.ino * 0x9E3779B97F4A7C15ull ^ k.dev);
    }
};

struct Event {
    uint64_t ts_ns = 0; // CLOCK_MONOTONIC
    EventType type = EventType::Write;
    uint32_t flags = 0;
    uint32_t pid = 0;
    uint32_t tid = 0;
    std::string comm;
    InodeKey key;
    uint64_t nodeid = 0;
    uint64_t file_id = 0; // identity of the open file (struct fuse_file address)
    uint64_t fh = 0;      // server's file handle
    int32_t iocachectr = 0;
    uint32_t open_flags = 0;
    int32_t ret = 0;
    FileIoMode iomode = FileIoMode::None;
    LockMode lock_mode = LockMode::Shared;
    WriteReason reason = WriteReason::Shared;
    uint64_t offset = 0;
    uint64_t bytes = 0;
    uint64_t wait_ns = 0;
    uint64_t dur_ns = 0;
    uint64_t cgroup_id = 0;  // the task's cgroup v2 id (0: none)
    InodeKey exe;            // the task's executable (holders and writers only; ino 0: unknown)
    uint64_t release_id = 0; // shared by an open file's open and release events (0: unknown)
};

enum class CensusKind : uint8_t { File = 1, Vma = 2 };

struct CensusRecord {
    CensusKind kind = CensusKind::File;
    uint32_t pid = 0;
    std::string comm;
    InodeKey key;
    uint64_t nodeid = 0;
    uint64_t file_id = 0;
    uint64_t fh = 0;
    uint64_t inode_state = 0;
    uint64_t vm_start = 0, vm_end = 0;
    int32_t iocachectr = 0;
    uint32_t open_flags = 0;
    uint32_t fd = 0;
    bool shared_map = false;
    bool writable_map = false;
    FileIoMode iomode = FileIoMode::None;
    bool cache_io_mode = false;
    bool uring = false;    // the connection serves requests over FUSE io_uring (6.14+)
    bool writable = false; // File: opened for writing
    uint64_t cgroup_id = 0;
    InodeKey exe;
    uint64_t release_id = 0;
};

// A name as the kernel's dentries spelled it when fusescope first saw the file
// or executable (bpf/names.bpf.h), relative to its filesystem's root.
struct KernelName {
    std::vector<std::string> components; // leaf first, as walked
    bool complete = false;               // the walk reached the filesystem's root
    uint64_t captured_ns = 0;
    // "/a/b/c" from the filesystem's root; ".../b/c" when the walk stopped short.
    std::string relative() const;
};

// Cumulative per-inode counters as the kernel holds them. A backend reads
// them periodically; the model turns them into deltas (a value that went
// down means the kernel's LRU evicted and re-created the entry).
struct InodeCounters {
    InodeKey key;
    uint64_t nodeid = 0;
    uint64_t first_seen_ns = 0;
    // iocachectr/cache_io_mode below were seen at mode_seen_ns and have kept
    // their meaning since (0: the kernel entry never saw them)
    uint64_t mode_seen_ns = 0;
    std::array<uint64_t, kWriteReasons> writes{};
    std::array<uint64_t, kWriteLockModes> write_bytes{};
    std::array<uint64_t, kWriteLockModes> write_wait_ns{};
    std::array<uint64_t, kWriteLockModes> write_service_ns{};
    uint64_t writeback_requests = 0, writeback_bytes = 0; // no writer seen: page writeback
    std::array<uint64_t, kLockModes> contentions{};
    std::array<uint64_t, kLockModes> contention_ns{};
    std::array<std::array<uint32_t, kHistSlots>, kLockModes> contention_hist{};
    uint64_t drain_waits = 0, drain_wait_ns = 0;
    int32_t iocachectr = 0;
    bool cache_io_mode = false;
    uint64_t mode_changes = 0;
};

// One read of the kernel's per-inode counters as changes: a backend that can
// tell which entries changed since its previous read lists only those, so an
// idle system costs the model nothing. Entries in neither list are unchanged.
struct CountersDelta {
    std::vector<InodeCounters> changed; // new, or changed since the previous read
    std::vector<InodeKey> gone;         // listed by an earlier read, no longer in the map
};

// One of fusescope's BPF programs as the kernel accounts it (bpf_prog_info run_time_ns,
// run_cnt): both grow only while the kernel accounts BPF run time, i.e. while
// kernel.bpf_stats_enabled is 1 or some process holds a BPF_ENABLE_STATS descriptor.
struct ProgramStats {
    std::string name;
    uint64_t run_ns = 0;
    uint64_t runs = 0;
};

// fusescope's own counters kept in userspace, beside the BPF side's FS_COUNTER_TABLE
// (abi_tables.h): X(field, doc). Health, the status stream's health line and its field table
// (fusescope/core/status.h) are made from this one list.
//   opens_unexplained: without the syscall hooks, a FUSE_OPEN whose opener closed the file
//     within a second is not named as a holder or writer (open_hints.h).
//   prog_misses: bpf_prog_info.recursion_misses. On preemptible kernels a task preempted
//     inside an fentry program makes the next one on that CPU miss: such a write is not
//     counted, and this says so.
#define FS_FRONTEND_COUNTER_TABLE(X)                                                               \
    X(events_received, "ring-buffer events read")                                                  \
    X(census_runs, "censuses of open files and shared mappings taken")                             \
    X(opens_unexplained,                                                                           \
      "FUSE_OPENs whose file no census of the opener found (closed within a second; without "      \
      "the syscall hooks): not named as holders or writers")                                       \
    X(prog_misses, "runs of fusescope's BPF programs the kernel skipped (recursion on a CPU): "    \
                   "writes not counted")

// fusescope's own health, cumulative.
struct Health {
#define FS_X(c, field, doc) uint64_t field = 0;
    FS_COUNTER_TABLE(FS_X)
#undef FS_X
#define FS_X(field, doc) uint64_t field = 0;
    FS_FRONTEND_COUNTER_TABLE(FS_X)
#undef FS_X
    // Run-time accounting: whether the kernel does it now (the sysctl, or fusescope's own
    // BPF_ENABLE_STATS descriptor), and every loaded program's numbers.
    bool bpf_stats_enabled = false;
    std::vector<ProgramStats> programs;
};

std::string_view to_string(LockMode m);
std::string_view to_string(WriteReason r); // "shared", "no_parallel_flag", "append", ...
std::optional<WriteReason> write_reason_from_string(std::string_view s);
std::string_view to_string(FileIoMode m); // "none", "cached", "uncached", "n/a"
std::string_view to_string(EventType t);  // "write", "open", "mmap", ...

} // namespace fusescope
