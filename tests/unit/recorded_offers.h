// What kernels offer fusescope (BTF functions, tracepoints, trampolines), recorded from
// the Debian kernels of the VM matrix and the locked-down 6.18 host, for the tests that
// plan hooks without booting them (test_hook_plan.cpp, test_bpf_programs.cpp).
#pragma once

#include "fusescope/backend/hook_plan.h"

namespace fusescope::recorded {

inline KernelOffer common_tps(KernelOffer k) {
    k.tracepoints.insert({"lock/contention_begin", "lock/contention_end",
                          "syscalls/sys_enter_openat", "syscalls/sys_exit_openat",
                          "syscalls/sys_enter_mmap", "syscalls/sys_exit_mmap"});
    return k;
}

// Debian 12's 6.1: FUSE module, no io modes, no fuse tracepoints, trampolines allowed.
inline KernelOffer debian_61() {
    KernelOffer k;
    k.btf_funcs = {"fuse_file_write_iter", "fuse_direct_io", "fuse_file_mmap",
                   "fuse_simple_request"};
    k.trampolines_allowed = true;
    return common_tps(k);
}

// 6.12 / 7.2 as Debian builds them.
inline KernelOffer debian_612() {
    KernelOffer k;
    k.btf_funcs = {
        "fuse_file_write_iter",       "fuse_direct_io",    "fuse_inode_uncached_io_start",
        "fuse_inode_uncached_io_end", "fuse_file_io_open", "fuse_file_cached_io_open",
        "fuse_file_io_release",       "fuse_file_mmap",    "__fuse_simple_request"};
    k.tracepoints = {"fuse/fuse_request_send", "fuse/fuse_request_end"};
    k.trampolines_allowed = true;
    k.has_iomodes = true;
    return common_tps(k);
}

// The project host: 6.18 refusing fentry with EPERM.
inline KernelOffer host_618() {
    KernelOffer k = debian_612();
    k.trampolines_allowed = false;
    k.trampoline_probe_done = true;
    k.trampoline_error = "EPERM";
    return k;
}

} // namespace fusescope::recorded
