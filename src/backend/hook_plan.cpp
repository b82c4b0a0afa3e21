// Hook selection: the rules of docs kernel-fuse-iomode.md §1.5 and §6.1 as code.
#include "fusescope/backend/hook_plan.h"

#include <algorithm>

namespace fusescope {

std::string_view to_string(BackendKind k) {
    return k == BackendKind::Trampoline ? "trampoline" : "tracepoint";
}

std::optional<BackendKind> backend_from_string(std::string_view s) {
    if (s == "trampoline")
        return BackendKind::Trampoline;
    if (s == "tracepoint")
        return BackendKind::Tracepoint;
    return std::nullopt;
}

bool HookPlan::has(std::string_view role) const {
    return std::any_of(roles.begin(), roles.end(),
                       [&](const RolePlan &p) { return p.role == role && p.available; });
}

bool HookPlan::lock_roles_ok() const { return has("write-lock") && has("lock-wait"); }

bool HookPlan::loads(std::string_view program) const {
    return std::any_of(programs.begin(), programs.end(),
                       [&](const ProgramChoice &p) { return p.program == program; });
}

namespace {

// The kernel's lock decision helper, out of line on some kernels (patched or
// built differently); newest names first.
constexpr const char *kDecisionFuncs[] = {"fuse_dio_wr_exclusive_lock",
                                          "fuse_dio_wr_needs_exclusive_lock"};

struct Builder {
    const KernelOffer &k;
    const PlanOptions &o;
    HookPlan plan;

    bool fn(const char *name) const { return k.btf_funcs.count(name) > 0; }
    bool tp(const char *name) const { return k.tracepoints.count(name) > 0; }
    void prog(std::string p, std::string target = "") {
        plan.programs.push_back({std::move(p), std::move(target)});
    }
    void role(std::string r, bool ok, std::string hooks, std::string note = "") {
        plan.roles.push_back({std::move(r), ok, std::move(hooks), std::move(note)});
    }

    void common_roles() {
        bool contention = tp("lock/contention_begin") && tp("lock/contention_end");
        // the trampoline object reads the inode with bpf_probe_read_kernel
        bool reads_ok = k.probe_read_allowed || plan.backend == BackendKind::Tracepoint;
        if (contention && reads_ok) {
            prog("fs_contention_begin");
            prog("fs_contention_end");
            role("lock-wait", true, "tp_btf lock:contention_begin/end");
        } else {
            role("lock-wait", false, "",
                 contention ? "bpf_probe_read_kernel refused (confidentiality lockdown)"
                            : "kernel has no lock:contention_* tracepoints (needs 5.19+)");
        }
        prog("fs_census_files");
        prog("fs_census_vmas");
    }

    void trampoline() {
        plan.backend = BackendKind::Trampoline;
        prog("fs_write_enter");
        prog("fs_write_exit");
        prog("fs_direct_io_enter");
        std::string write_hooks = "fentry/fexit fuse_file_write_iter, fentry fuse_direct_io";
        if (fn("fuse_inode_uncached_io_start")) {
            prog("fs_uncached_io_start_exit");
            write_hooks += ", fexit fuse_inode_uncached_io_start";
        }
        for (const char *d : kDecisionFuncs) {
            if (fn(d)) {
                prog("fs_dio_decision", d);
                write_hooks += std::string(", fexit ") + d;
                break;
            }
        }
        role("write-lock", true, write_hooks, "lock mode from i_rwsem under fuse_direct_io");
        role("service-time", true, "fexit fuse_file_write_iter (write time minus i_rwsem wait)");
        common_roles();
        if (k.has_iomodes && fn("fuse_file_io_open")) {
            prog("fs_io_open_enter"); // also brackets drain waits where cached_io_open is inlined
            prog("fs_io_open_exit");
            role("open", true, "fexit fuse_file_io_open");
        } else {
            role("open", false, "", "n/a (kernel has no IO modes)");
        }
        if (k.has_iomodes && fn("fuse_file_cached_io_open")) {
            prog("fs_cached_io_open_enter");
            prog("fs_cached_io_open_exit");
            role("drain-wait", true, "fentry/fexit fuse_file_cached_io_open");
        } else {
            role("drain-wait", false, "", "n/a (kernel has no IO modes)");
        }
        if (fn("fuse_file_mmap")) {
            prog("fs_mmap_enter");
            prog("fs_mmap_exit");
            role("mmap", true, "fentry/fexit fuse_file_mmap",
                 k.has_iomodes ? "" : "no IO modes: mmap never changes the lock mode");
        } else {
            role("mmap", false, "", "fuse_file_mmap not in BTF");
        }
        if (k.has_iomodes && fn("fuse_file_io_release")) {
            prog("fs_io_release_enter");
            prog("fs_io_release_exit");
            role("release", true, "fentry/fexit fuse_file_io_release");
        } else {
            role("release", false, "", "n/a (kernel has no IO modes)");
        }
        role("census", true, "iter/task_file, iter/task_vma at start and on mode changes");
    }

    void tracepoint() {
        plan.backend = BackendKind::Tracepoint;
        prog("fs_request_send");
        role("write-lock", true, "tp_btf fuse:fuse_request_send + i_rwsem state",
             "synchronous requests only; a fallback whose cause persists is reported as "
             "that cause");
        if (o.service_time) {
            prog("fs_request_end");
            role("service-time", true, "tp_btf fuse:fuse_request_end (each FUSE_WRITE request)",
                 "one more program on every FUSE request");
        } else {
            role("service-time", false, "",
                 "off: it would run a second program on every FUSE request; --service-time "
                 "turns it on");
        }
        common_roles();
        bool sys = tp("syscalls/sys_exit_openat") && tp("syscalls/sys_enter_mmap") &&
                   tp("syscalls/sys_exit_mmap");
        bool iomodes_note = !k.has_iomodes;
        const bool sys_hooks = sys && k.probe_read_allowed; // the open/mmap exits load
        if (sys_hooks) {
            for (const char *p : {"fs_sys_exit_openat", "fs_sys_enter_mmap", "fs_sys_exit_mmap"})
                prog(p);
            if (tp("syscalls/sys_exit_openat2"))
                prog("fs_sys_exit_openat2");
            role("open", !iomodes_note, "tracepoint syscalls:sys_exit_openat{,2} + fd table",
                 iomodes_note ? "n/a (kernel has no IO modes)"
                              : "opens by syscall only (io_uring opens: census)");
            role("mmap", true, "tracepoint syscalls:sys_exit_mmap + fd table");
        } else {
            std::string why = sys ? "bpf_probe_read_kernel refused (confidentiality lockdown)"
                                  : "no syscall tracepoints (CONFIG_FTRACE_SYSCALLS)";
            role("open", false, "", why + "; census finds holders instead");
            role("mmap", false, "", why + "; census finds holders instead");
        }
        // timed from the opener's own hooks: a program on sched_switch would run on every
        // context switch of the machine (bpf/iomode_tracepoint.bpf.c)
        if (k.has_iomodes && sys_hooks) {
            role("drain-wait", true,
                 "tp_btf fuse:fuse_request_send FUSE_OPEN/FUSE_CREATE or syscalls:sys_enter_mmap, "
                 "to the open's or mmap's exit",
                 "an upper bound: includes the server's answer to the open, for mmap the wait for "
                 "mmap_lock");
        } else {
            role("drain-wait", false, "",
                 k.has_iomodes ? "needs the open/mmap syscall hooks"
                               : "n/a (kernel has no IO modes)");
        }
        role("release", k.has_iomodes,
             k.has_iomodes ? "tp_btf fuse:fuse_request_send FUSE_RELEASE" : "",
             k.has_iomodes ? "" : "n/a (kernel has no IO modes)");
        role("census", true,
             "iter/task_file, iter/task_vma at start, periodically and on mode changes");
    }
};

} // namespace

std::optional<HookPlan> plan_hooks(const KernelOffer &k, std::optional<BackendKind> forced,
                                   std::string *error, const PlanOptions &opts) {
    bool tramp_funcs =
        k.btf_funcs.count("fuse_file_write_iter") && k.btf_funcs.count("fuse_direct_io");
    bool can_tramp = k.trampolines_allowed && tramp_funcs;
    bool can_tp = k.tracepoints.count("fuse/fuse_request_send") &&
                  k.tracepoints.count("fuse/fuse_request_end");
    std::string tramp_why =
        !tramp_funcs ? "fuse_file_write_iter/fuse_direct_io not in BTF"
        : k.trampolines_allowed
            ? "fentry/fexit load here"
            : "this kernel refuses fentry/fexit programs (" +
                  (k.trampoline_error.empty() ? std::string("not probed") : k.trampoline_error) +
                  ")";
    std::string tp_why = can_tp ? "fuse:fuse_request_send/end tracepoints exist"
                                : "kernel has no fuse:fuse_request_send/end tracepoints (6.12+)";

    Builder b{k, opts, {}};
    if (forced == BackendKind::Trampoline || (!forced && can_tramp)) {
        if (!can_tramp) {
            *error = "trampoline backend unavailable: " + tramp_why;
            return std::nullopt;
        }
        b.trampoline();
        b.plan.why = forced ? "forced by --backend" : "best available: " + tramp_why;
        return b.plan;
    }
    if (!can_tp) {
        *error = forced
                     ? "tracepoint backend unavailable: " + tp_why
                     : "no usable backend: trampolines: " + tramp_why + "; tracepoints: " + tp_why;
        return std::nullopt;
    }
    b.tracepoint();
    b.plan.why =
        forced ? "forced by --backend" : "trampolines unavailable (" + tramp_why + "); " + tp_why;
    return b.plan;
}

} // namespace fusescope
