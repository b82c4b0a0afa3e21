// What the running kernel offers fusescope, found by looking (BTF, tracefs,
// lockdown) and by trying (does a minimal fentry program load?).
#pragma once

#include "fusescope/backend/hook_plan.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace fusescope {

struct KernelFacts {
    std::string release;          // uname -r
    bool vmlinux_btf = false;     // /sys/kernel/btf/vmlinux
    bool fuse_module_btf = false; // /sys/kernel/btf/fuse (FUSE built as a module)
    bool fuse_registered = false; // "fuse" in /proc/filesystems
    std::string lockdown;         // "none", "integrity", "confidentiality", or "unknown"
    std::string tracefs;          // mount point used, "" if none
    bool tracefs_mounted_by_us = false;
    KernelOffer offer;
};

// Mounts tracefs when it is missing (we are root). Never throws; fields
// that could not be learnt stay at their "unknown" values.
KernelFacts probe_kernel();

// The BTF functions and tracepoints ("group/name") probe_kernel looks for, and
// the enumerator whose value it reads (fuse_inode::state's cache io mode bit).
std::span<const char *const> probed_btf_funcs();
std::span<const char *const> probed_btf_tracepoints();
inline constexpr std::string_view kCacheIoModeEnumerator = "FUSE_I_CACHE_IO_MODE";

// probe_kernel's BTF part on raw BTF blobs: vmlinux, and the fuse module's
// split BTF on top of it or "". Adds to *offer the kFuncs present as FUNC, the
// tracepoints whose btf_trace_* TYPEDEF is present and has_iomodes; sets
// *probe_id to vmlinux's first FUNC fuse_file_write_iter, else vfs_write,
// else 0 (the fentry probe's target). Pure, for tests. False, with *offer
// untouched, when a blob cannot be read this way (libbpf is the fallback).
bool offer_from_raw_btf(std::string_view vmlinux, std::string_view module, KernelOffer *offer,
                        int *probe_id);

} // namespace fusescope
