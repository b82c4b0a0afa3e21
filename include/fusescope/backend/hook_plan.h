// Which BPF program fills which role on this kernel, decided from what the
// kernel offers (BTF functions, tracepoints, whether trampolines load).
// Pure logic: doctor prints it, the backends obey it, and unit tests feed it
// recorded symbol tables of kernels we cannot boot (e.g. one whose
// fuse_dio_* lock helpers are out of line).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace fusescope {

enum class BackendKind { Trampoline, Tracepoint };
std::string_view to_string(BackendKind k);
std::optional<BackendKind> backend_from_string(std::string_view s);

// The jobs fusescope's programs do, defined once: doctor, diagnose and the
// exporter print them, the backends and views ask for them by enum.
// X(enum name, user name, what it observes)
#define FUSESCOPE_ROLE_TABLE(X)                                                                    \
    X(WriteLock, "write-lock",                                                                     \
      "direct-IO writes on FOPEN_DIRECT_IO files (sync and async): lock mode and reason")          \
    X(WriteCached, "write-cached",                                                                 \
      "O_DIRECT and write-through writes on caching opens (always exclusive)")                     \
    X(WriteWriteback, "write-writeback",                                                           \
      "buffered writes under the writeback cache (always exclusive)")                              \
    X(WritePassthrough, "write-passthrough", "writes to passthrough files (always exclusive)")     \
    X(ServiceTime, "service-time", "how long the server took for a synchronous write")             \
    X(Open, "open", "opens that put a file in cache IO mode, and who made them")                   \
    X(Mmap, "mmap", "shared mmaps that put a file in cache IO mode, and who made them")            \
    X(DrainWait, "drain-wait", "caching opens/mmaps blocked until parallel writers drained")       \
    X(Release, "release", "the release that ends a file's hold on cache IO mode")                  \
    X(LockWait, "lock-wait", "time writers waited for i_rwsem (lock:contention_begin/end)")        \
    X(Census, "census", "files already open or mapped when fusescope started")

enum class Role : uint8_t {
#define FUSESCOPE_X(e, name, doc) e,
    FUSESCOPE_ROLE_TABLE(FUSESCOPE_X)
#undef FUSESCOPE_X
};
inline constexpr size_t kRoles = 0
#define FUSESCOPE_X(e, name, doc) +1
    FUSESCOPE_ROLE_TABLE(FUSESCOPE_X)
#undef FUSESCOPE_X
    ;
std::string_view to_string(Role r); // "write-lock", ...
std::string_view role_doc(Role r);  // what it observes
std::optional<Role> role_from_string(std::string_view s);

struct KernelOffer {
    std::set<std::string> btf_funcs;   // FUNC names in vmlinux BTF and the fuse module's BTF
    std::set<std::string> tracepoints; // "group/name", e.g. "fuse/fuse_request_send"
    bool trampolines_allowed = false;  // a minimal fentry program loaded
    bool trampoline_probe_done = false;
    std::string trampoline_error;   // why it did not, e.g. "EPERM"
    bool probe_read_allowed = true; // lockdown is not "confidentiality"
    bool has_iomodes = false;       // struct fuse_inode has iocachectr (6.9+)
    // FUSE_I_CACHE_IO_MODE's value in the kernel's (anonymous) enum; -1: not in BTF
    int cache_io_mode_bit = -1;
    bool preempt_rt = false; // PREEMPT_RT kernel: sleeping spinlocks, preemptible BPF programs
};

// One BPF program and the kernel function or tracepoint it attaches to.
struct ProgramChoice {
    std::string program; // name in the BPF object
    std::string target;  // attach target ("" = as compiled)
};

struct RolePlan {
    Role role = Role::WriteLock;
    bool available = false;
    std::string hooks; // human readable: what fills it
    std::string note;  // why not, or what is weaker
};

struct HookPlan {
    BackendKind backend = BackendKind::Tracepoint;
    std::string why;                     // why this backend
    std::vector<ProgramChoice> programs; // programs to load and attach
    std::vector<RolePlan> roles;
    int cache_io_mode_bit = -1; // KernelOffer::cache_io_mode_bit
    bool preempt_rt = false;    // KernelOffer::preempt_rt
    // tracepoint backend on 6.14-6.17: over FUSE io_uring background requests skip
    // fuse:fuse_request_send, so async writes on such mounts are not seen
    bool uring_background_unseen = false;
    bool has(Role role) const;             // the role is available
    const RolePlan *find(Role role) const; // nullptr if the plan does not list it
    bool lock_roles_ok() const;            // write-lock and lock-wait both available
    bool loads(std::string_view program) const;
};

struct PlanOptions {
    // Per-request service time in the tracepoint backend: a second program on
    // every FUSE request's completion, so it is opt-in there (--service-time).
    // The trampoline backend has it for free (fexit of the write).
    bool service_time = false;
    // Tracepoint backend: syscalls:sys_exit_open*/sys_{enter,exit}_mmap. While any syscall
    // tracepoint is attached the kernel sends every syscall of every task on the machine
    // through its slow path (~25 ns per syscall here, bench "syscall tax"), so the long-running
    // views leave them off and find holders by the census on hints instead.
    bool syscall_hooks = true;
};

// Fills *error and returns nullopt when no backend can run (or the forced one cannot).
std::optional<HookPlan> plan_hooks(const KernelOffer &offer, std::optional<BackendKind> forced,
                                   std::string *error, const PlanOptions &opts = {});

} // namespace fusescope
