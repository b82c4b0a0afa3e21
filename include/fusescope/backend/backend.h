// A loaded and attached set of fusescope BPF programs, behind one interface
// for both backends. The session drives it; nothing past the session (no
// view) touches it. Every method is called from the session thread.
#pragma once

#include "fusescope/backend/hook_plan.h"
#include "fusescope/model/types.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fusescope {

// Tracepoint backend with service timing: slots for in-flight FUSE_WRITE starts, direct-mapped
// by the request's address. Two requests in flight on one slot lose the first one's sample
// (counted as req_map_full), so a server with many requests in flight (a large max_background
// and deep io_uring or libaio queues) wants more: --service-time-slots, a power of two.
inline constexpr uint32_t kRequestSlotsDefault = 4096; // 160 KiB of map (40-byte slots)
inline constexpr uint32_t kRequestSlotsMax = 1u << 20;
// A slot count the backend takes: a power of two (the slot is a masked hash), 1..kRequestSlotsMax.
constexpr bool request_slots_valid(uint64_t n) {
    return n != 0 && (n & (n - 1)) == 0 && n <= kRequestSlotsMax;
}

struct BackendOptions {
    uint32_t filter_tgid = 0; // 0: all processes
    uint32_t filter_dev = 0;  // 0: all FUSE mounts (kernel s_dev encoding)
    bool emit_writes = false; // per-write events: only `trace` pays for them
    bool emit_all_opens = false;
    bool verbose = false; // libbpf's own messages on stderr
    // Tracepoint backend: writes to the inode a CPU wrote last count in that
    // CPU's slot (abi.h fs_write_cache). Off on PREEMPT_RT kernels regardless.
    bool write_cache = true;
    uint32_t request_slots = kRequestSlotsDefault; // a power of two, 1..kRequestSlotsMax
    // Turn the kernel's BPF run-time accounting on for as long as the backend lives
    // (BPF_ENABLE_STATS: the kernel turns it off when the descriptor closes, also when
    // the process is killed; kernel.bpf_stats_enabled is left as it is).
    bool bpf_stats = false;
};

struct AttachedProgram {
    std::string program;
    std::string target;
};

class Backend {
  public:
    virtual ~Backend() = default;

    // Opens, configures, loads and attaches per @plan. nullptr + *error on failure
    // (nothing stays loaded then).
    static std::unique_ptr<Backend> create(const HookPlan &plan, const BackendOptions &opts,
                                           std::string *error);

    virtual BackendKind kind() const = 0;
    virtual const std::vector<AttachedProgram> &attached() const = 0;
    // Per-CPU write cache slots in use (BackendOptions::write_cache); 0: off.
    virtual size_t write_cache_slots() const = 0;
    // Request slots timing FUSE writes in flight (BackendOptions::request_slots); 0: untimed
    // this way (the trampoline backend times a write within its own call).
    virtual size_t request_slots() const = 0;
    // Waits up to timeout_ms for ring-buffer events; returns how many were handled, <0 on error.
    virtual int poll(int timeout_ms, const std::function<void(const Event &)> &on_event) = 0;
    // The per-inode counters that changed since the previous call, and the
    // entries that are gone (the first call lists every entry as changed).
    // Valid until the next call (the backend reuses the buffers). @now_ns: the
    // caller's CLOCK_MONOTONIC (the backend walks the whole map now and then).
    virtual const CountersDelta &read_counters(uint64_t now_ns) = 0;
    // Counters, and per loaded program its run time and runs as the kernel accounts them.
    virtual Health read_health() = 0;
    // Every open FUSE file and shared mapping of the machine (@pid 0), or of one process.
    virtual std::vector<CensusRecord> census(std::string *error, uint32_t pid = 0) = 0;
    // The names the kernel captured (bpf/names.bpf.h) of a FUSE file, by its inode, and
    // of an executable, by its file's (dev, ino); nullopt while none is (or it was evicted).
    virtual std::optional<KernelName> file_name(const InodeKey &key) = 0;
    virtual std::optional<KernelName> exe_name(const InodeKey &exe) = 0;
};

} // namespace fusescope
