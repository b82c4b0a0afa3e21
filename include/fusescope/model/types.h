// Plain C++ records that flow from a backend into the state model.
// Backends decode the BPF ABI (include/fusescope/abi.h) into these; the state
// model and everything after it never see the ABI structs or BPF maps.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fusescope {

inline constexpr int kHistSlots = 36; // log2 ns buckets, == FS_HIST_SLOTS

enum class LockMode : uint8_t { Shared = 0, Exclusive = 1 };
inline constexpr int kLockModes = 2;

// Index 0 = the shared lock; the rest are the kernel's reasons for exclusive.
enum class WriteReason : uint8_t {
    Shared = 0,
    NoParallelFlag = 1,
    Append = 2,
    CacheIoMode = 3,
    PastEof = 4,
    Fallback = 5,
};
inline constexpr int kWriteReasons = 6;

enum class FileIoMode : uint8_t { None = 0, Cached = 1, Uncached = 2, NotAvailable = 255 };

enum class EventType : uint8_t {
    Write = 1,
    Open = 2,
    Mmap = 3,
    Release = 4,
    DrainWait = 5,
    ModeSeen = 6,
};

// Flags, same bits as enum fs_event_flags.
namespace evflag {
inline constexpr uint32_t SharedMap = 1u << 0;
inline constexpr uint32_t WritableMap = 1u << 1;
inline constexpr uint32_t EnteredCache = 1u << 2;
inline constexpr uint32_t LeftCache = 1u << 3;
inline constexpr uint32_t Holder = 1u << 4;
inline constexpr uint32_t WasHolder = 1u << 5;
inline constexpr uint32_t Passthrough = 1u << 6;
inline constexpr uint32_t CensusHint = 1u << 7;
inline constexpr uint32_t Async = 1u << 8;
} // namespace evflag

// (device, inode number). dev uses the kernel's s_dev encoding
// (major << 20 | minor), as BPF reads it; see Mounts for the mapping.
struct InodeKey {
    uint32_t dev = 0;
    uint64_t ino = 0;
    auto operator<=>(const InodeKey &) const = default;
};

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
    std::array<uint64_t, kLockModes> write_bytes{};
    std::array<uint64_t, kLockModes> write_wait_ns{};
    std::array<uint64_t, kLockModes> write_service_ns{};
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

// fusescope's own health, cumulative.
struct Health {
    uint64_t events_lost = 0;
    uint64_t inode_map_full = 0;
    uint64_t task_map_full = 0;
    uint64_t req_map_full = 0;
    uint64_t writes_unresolved = 0;
    uint64_t events_received = 0;
    uint64_t census_runs = 0;
    // Runs of fusescope's programs the kernel skipped because the same program
    // was already running on that CPU (bpf_prog_info.recursion_misses). On
    // preemptible kernels a task preempted inside an fentry program makes the
    // next one on that CPU miss: such a write is not counted, and this says so.
    uint64_t prog_misses = 0;
    // Run-time accounting: whether the kernel does it now (the sysctl, or fusescope's own
    // BPF_ENABLE_STATS descriptor), and every loaded program's numbers.
    bool bpf_stats_enabled = false;
    std::vector<ProgramStats> programs;
};

std::string_view to_string(LockMode m);
std::string_view to_string(WriteReason r); // "shared", "no_parallel_flag", "append", ...
std::string_view to_string(FileIoMode m);  // "none", "cached", "uncached", "n/a"
std::string_view to_string(EventType t);   // "write", "open", "mmap", ...

} // namespace fusescope
