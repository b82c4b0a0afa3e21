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

namespace {
struct RoleRow {
    Role role;
    std::string_view name, doc;
};
constexpr RoleRow kRoleRows[] = {
#define FUSESCOPE_X(e, name, doc) {Role::e, name, doc},
    FUSESCOPE_ROLE_TABLE(FUSESCOPE_X)
#undef FUSESCOPE_X
};
} // namespace

std::string_view to_string(Role r) { return kRoleRows[static_cast<size_t>(r)].name; }
std::string_view role_doc(Role r) { return kRoleRows[static_cast<size_t>(r)].doc; }
std::optional<Role> role_from_string(std::string_view s) {
    for (const RoleRow &row : kRoleRows)
        if (row.name == s)
            return row.role;
    return std::nullopt;
}

const RolePlan *HookPlan::find(Role role) const {
    for (const RolePlan &p : roles)
        if (p.role == role)
            return &p;
    return nullptr;
}

bool HookPlan::has(Role role) const {
    const RolePlan *p = find(role);
    return p && p->available;
}

bool HookPlan::lock_roles_ok() const { return has(Role::WriteLock) && has(Role::LockWait); }

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
    void role(Role r, bool ok, std::string hooks, std::string note = "") {
        plan.roles.push_back({r, ok, std::move(hooks), std::move(note)});
    }

    void common_roles() {
        bool contention = tp("lock/contention_begin") && tp("lock/contention_end");
        // the trampoline object reads the inode with bpf_probe_read_kernel
        bool reads_ok = k.probe_read_allowed || plan.backend == BackendKind::Tracepoint;
        if (contention && reads_ok) {
            prog("fs_contention_begin");
            prog("fs_contention_end");
            role(Role::LockWait, true, "tp_btf lock:contention_begin/end");
        } else {
            role(Role::LockWait, false, "",
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
        role(Role::WriteLock, true, write_hooks,
             "lock mode from i_rwsem under fuse_direct_io; async writes: bytes queued");
        role(Role::WriteCached, true, "fentry/fexit fuse_file_write_iter");
        role(Role::WriteWriteback, true, "fentry/fexit fuse_file_write_iter (the writer's call)");
        if (k.has_iomodes)
            role(Role::WritePassthrough, true, "fentry/fexit fuse_file_write_iter");
        else
            role(Role::WritePassthrough, false, "", "n/a (kernel has no passthrough, 6.9+)");
        role(Role::ServiceTime, true, "fexit fuse_file_write_iter (write time minus i_rwsem wait)",
             "synchronous writes only: an async write completes after its call returns");
        common_roles();
        if (k.has_iomodes && fn("fuse_file_io_open")) {
            prog("fs_io_open_enter"); // also brackets drain waits where cached_io_open is inlined
            prog("fs_io_open_exit");
            role(Role::Open, true, "fexit fuse_file_io_open");
        } else {
            role(Role::Open, false, "", "n/a (kernel has no IO modes)");
        }
        if (k.has_iomodes && fn("fuse_file_cached_io_open")) {
            prog("fs_cached_io_open_enter");
            prog("fs_cached_io_open_exit");
            role(Role::DrainWait, true, "fentry/fexit fuse_file_cached_io_open");
        } else {
            role(Role::DrainWait, false, "", "n/a (kernel has no IO modes)");
        }
        if (fn("fuse_file_mmap")) {
            prog("fs_mmap_enter");
            prog("fs_mmap_exit");
            role(Role::Mmap, true, "fentry/fexit fuse_file_mmap",
                 k.has_iomodes ? "" : "no IO modes: mmap never changes the lock mode");
        } else {
            role(Role::Mmap, false, "", "fuse_file_mmap not in BTF");
        }
        if (k.has_iomodes && fn("fuse_file_io_release")) {
            prog("fs_io_release_enter");
            prog("fs_io_release_exit");
            role(Role::Release, true, "fentry/fexit fuse_file_io_release");
        } else {
            role(Role::Release, false, "", "n/a (kernel has no IO modes)");
        }
        role(Role::Census, true, "iter/task_file, iter/task_vma at start and on mode changes");
    }

    void tracepoint() {
        plan.backend = BackendKind::Tracepoint;
        prog("fs_request_send");
        std::string lock_note =
            "an async write sent by another task than its writer (after waiting in a full "
            "background queue) is unclassified; a fallback whose cause persists is reported "
            "as that cause; a write longer than one request that starts inside EOF and ends "
            "past it shows as fallback";
        plan.uring_background_unseen = k.btf_funcs.count("fuse_uring_queue_bq_req") &&
                                       !k.btf_funcs.count("fuse_request_assign_unique");
        if (plan.uring_background_unseen)
            lock_note += "; over FUSE io_uring this kernel (6.14-6.17) sends background "
                         "requests without fuse_request_send: async writes on such mounts "
                         "are not seen";
        role(Role::WriteLock, true, "tp_btf fuse:fuse_request_send + i_rwsem state", lock_note);
        role(Role::WriteCached, true, "tp_btf fuse:fuse_request_send",
             "write-through requests of one write call are told apart by the writer's "
             "task_io_accounting");
        role(Role::WriteWriteback, false, "",
             "the writer only dirties pages; FUSE_WRITEs come later from writeback and are "
             "counted per inode as writeback requests");
        if (k.has_iomodes)
            role(Role::WritePassthrough, false, "",
                 "no FUSE request is sent for them (their i_rwsem waits are seen)");
        else
            role(Role::WritePassthrough, false, "", "n/a (kernel has no passthrough, 6.9+)");
        if (o.service_time) {
            prog("fs_request_end");
            role(Role::ServiceTime, true, "tp_btf fuse:fuse_request_end (each FUSE_WRITE request)",
                 "one more program on every FUSE request");
        } else {
            role(Role::ServiceTime, false, "",
                 "off: it would run a second program on every FUSE request; --service-time "
                 "turns it on");
        }
        common_roles();
        bool sys = tp("syscalls/sys_exit_openat") && tp("syscalls/sys_enter_mmap") &&
                   tp("syscalls/sys_exit_mmap");
        bool iomodes_note = !k.has_iomodes;
        const bool sys_possible = sys && k.probe_read_allowed;  // the open/mmap exits load
        const bool sys_hooks = sys_possible && o.syscall_hooks; // off: by choice
        if (sys_hooks) {
            for (const char *p : {"fs_sys_exit_openat", "fs_sys_enter_mmap", "fs_sys_exit_mmap"})
                prog(p);
            // openat2 (5.6+); open and creat where the architecture has them
            for (const char *t : {"openat2", "open", "creat"})
                if (tp((std::string("syscalls/sys_exit_") + t).c_str()))
                    prog(std::string("fs_sys_exit_") + t);
            role(Role::Open, !iomodes_note,
                 "tracepoint syscalls:sys_exit_{openat,openat2,open,creat} + fd table",
                 iomodes_note ? "n/a (kernel has no IO modes)"
                              : "opens by syscall only (io_uring opens: census)");
            role(Role::Mmap, true, "tracepoint syscalls:sys_exit_mmap + fd table");
        } else {
            // The opener's FUSE_OPEN names the process, and a census of it (iterators read
            // BTF pointers, no probe_read) shows the file: open_hints.h.
            const std::string why =
                sys_possible
                    ? "syscall hooks off (--syscall-hooks on: every syscall on the machine "
                      "pays for them)"
                : sys ? "bpf_probe_read_kernel refused (confidentiality lockdown)"
                      : "no syscall tracepoints (CONFIG_FTRACE_SYSCALLS)";
            role(Role::Open, !iomodes_note,
                 iomodes_note ? ""
                              : "tp_btf fuse:fuse_request_send FUSE_OPEN/FUSE_CREATE, then a "
                                "census of the opener",
                 iomodes_note ? "n/a (kernel has no IO modes)"
                              : why + "; a holder is known once the census of its opener ran, "
                                      "its hold starts at the FUSE_OPEN");
            role(Role::Mmap, false, "",
                 why + "; the census finds shared mappings when an inode's mode changes, "
                       "periodically and after their process's FUSE_OPEN");
        }
        // timed from the opener's own hooks: a program on sched_switch would run on every
        // context switch of the machine (bpf/iomode_tracepoint.bpf.c)
        if (k.has_iomodes && sys_hooks && k.preempt_rt) {
            role(Role::DrainWait, false, "",
                 "PREEMPT_RT: spinlocks sleep there, so an opener's extra sleeps do not tell a "
                 "drain wait from lock waits");
        } else if (k.has_iomodes && sys_hooks) {
            role(Role::DrainWait, true,
                 "tp_btf fuse:fuse_request_send FUSE_OPEN/FUSE_CREATE or syscalls:sys_enter_mmap, "
                 "to the open's or mmap's exit",
                 "an upper bound: includes the server's answer to the open, for mmap the wait for "
                 "mmap_lock");
        } else {
            role(Role::DrainWait, false, "",
                 !k.has_iomodes ? "n/a (kernel has no IO modes)"
                 : sys_possible ? "needs the open/mmap syscall hooks (--syscall-hooks on)"
                                : "needs the open/mmap syscall hooks");
        }
        role(Role::Release, k.has_iomodes,
             k.has_iomodes ? "tp_btf fuse:fuse_request_send FUSE_RELEASE" : "",
             k.has_iomodes ? "" : "n/a (kernel has no IO modes)");
        role(Role::Census, true,
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
    b.plan.cache_io_mode_bit = k.cache_io_mode_bit;
    b.plan.preempt_rt = k.preempt_rt;
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
