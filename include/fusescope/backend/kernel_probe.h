// What the running kernel offers fusescope, found by looking (BTF, tracefs,
// kallsyms, lockdown) and by trying (does a minimal fentry program load?).
#pragma once

#include "fusescope/backend/hook_plan.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace fusescope {

struct KernelFacts {
    std::string release;          // uname -r
    bool vmlinux_btf = false;     // /sys/kernel/btf/vmlinux
    bool fuse_module_btf = false; // /sys/kernel/btf/fuse (FUSE built as a module)
    bool fuse_registered = false; // "fuse" in /proc/filesystems
    std::string lockdown;         // "none", "integrity", "confidentiality", or "unknown"
    std::string tracefs;          // mount point used, "" if none
    bool tracefs_mounted_by_us = false;
    uint64_t cached_io_open_start = 0, cached_io_open_end = 0;
    // fuse_file_io_open: where the compiler inlined the drain wait into it (7.2)
    uint64_t io_open_start = 0, io_open_end = 0;
    KernelOffer offer;
};

struct ProbeOptions {
    // Read /proc/kallsyms (the slowest part) only when the tracepoint backend,
    // the one reader of fuse_file_cached_io_open's range, is what plan_hooks()
    // will choose with @forced; otherwise the range stays unknown.
    bool kallsyms_only_for_tracepoint = false;
    std::optional<BackendKind> forced; // --backend, as the caller will pass it to plan_hooks()
};

// Mounts tracefs when it is missing (we are root). Never throws; fields
// that could not be learnt stay at their "unknown" values.
KernelFacts probe_kernel(const ProbeOptions &opts = {});

// probe_kernel's BTF part on raw BTF blobs: vmlinux, and the fuse module's
// split BTF on top of it or "". Adds to *offer the kFuncs present as FUNC, the
// tracepoints whose btf_trace_* TYPEDEF is present and has_iomodes; sets
// *probe_id to vmlinux's first FUNC fuse_file_write_iter, else vfs_write,
// else 0 (the fentry probe's target). Pure, for tests. False, with *offer
// untouched, when a blob cannot be read this way (libbpf is the fallback).
bool offer_from_raw_btf(std::string_view vmlinux, std::string_view module, KernelOffer *offer,
                        int *probe_id);

// /proc/kallsyms text: the [start, end) range of @name, end = next symbol.
// Pure, for tests. Returns false when absent or addresses are hidden (0).
bool kallsyms_range(std::string_view kallsyms, std::string_view name, uint64_t *start,
                    uint64_t *end);

struct SymbolRange {
    bool ok = false;
    uint64_t start = 0, end = 0;
};
// The ranges of two symbols in one pass over /proc/kallsyms text.
std::pair<SymbolRange, SymbolRange> kallsyms_ranges(std::string_view kallsyms, std::string_view a,
                                                    std::string_view b);

} // namespace fusescope
