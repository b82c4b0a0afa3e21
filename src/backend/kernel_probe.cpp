// Probing the running kernel. Everything here is read-only except mounting
// tracefs when it is absent, which the syscall tracepoints need.
#include "fusescope/backend/kernel_probe.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <vector>

namespace fusescope {
namespace {

bool exists(const std::string &p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

std::string slurp(const std::string &p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The functions and tracepoints hook selection asks about.
constexpr const char *kFuncs[] = {
    "fuse_file_write_iter",
    "fuse_direct_io",
    "fuse_inode_uncached_io_start",
    "fuse_inode_uncached_io_end",
    "fuse_file_io_open",
    "fuse_file_cached_io_open",
    "fuse_file_io_release",
    "fuse_file_mmap",
    "fuse_dio_wr_exclusive_lock",
    "fuse_dio_wr_needs_exclusive_lock",
    "fuse_dio_lock",
    "fuse_dio_unlock",
    "fuse_direct_write_iter",
    "fuse_simple_request",
    "__fuse_simple_request",
};
constexpr const char *kBtfTracepoints[] = {
    "fuse/fuse_request_send", "fuse/fuse_request_end", "lock/contention_begin",
    "lock/contention_end",    "sched/sched_switch",
};
constexpr const char *kTracefsEvents[] = {
    "syscalls/sys_enter_openat", "syscalls/sys_exit_openat", "syscalls/sys_enter_openat2",
    "syscalls/sys_exit_openat2", "syscalls/sys_enter_mmap",  "syscalls/sys_exit_mmap",
};

void collect_btf(const struct btf *btf, KernelOffer &offer) {
    for (const char *f : kFuncs)
        if (btf__find_by_name_kind(btf, f, BTF_KIND_FUNC) > 0)
            offer.btf_funcs.insert(f);
    for (const char *tp : kBtfTracepoints) {
        std::string name = std::string("btf_trace_") + (std::strchr(tp, '/') + 1);
        if (btf__find_by_name_kind(btf, name.c_str(), BTF_KIND_TYPEDEF) > 0)
            offer.tracepoints.insert(tp);
    }
    if (btf__find_by_name_kind(btf, "fuse_file_io_open", BTF_KIND_FUNC) > 0)
        offer.has_iomodes = true;
}

std::string mount_tracefs(KernelFacts &k) {
    for (const char *p : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"})
        if (exists(std::string(p) + "/events"))
            return p;
    if (::mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) == 0) {
        k.tracefs_mounted_by_us = true;
        return "/sys/kernel/tracing";
    }
    return "";
}

// Does a minimal fentry program load? The host kernel refuses trampolines
// with EPERM before the verifier runs; only trying tells.
void probe_trampolines(const struct btf *vmlinux, KernelOffer &offer) {
    int id = btf__find_by_name_kind(vmlinux, "fuse_file_write_iter", BTF_KIND_FUNC);
    if (id <= 0)
        id = btf__find_by_name_kind(vmlinux, "vfs_write", BTF_KIND_FUNC);
    if (id <= 0) {
        offer.trampoline_error = "no function to probe in vmlinux BTF";
        return;
    }
    const struct bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0}, // r0 = 0
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
                .attach_btf_id = static_cast<__u32>(id));
    int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "fs_probe", "GPL", insns, 2, &opts);
    offer.trampoline_probe_done = true;
    if (fd >= 0) {
        offer.trampolines_allowed = true;
        ::close(fd);
    } else {
        int e = errno;
        offer.trampoline_error = std::string(e == EPERM ? "EPERM" : strerrorname_np(e));
    }
}

} // namespace

bool kallsyms_range(std::string_view text, std::string_view name, uint64_t *start, uint64_t *end) {
    std::vector<uint64_t> addrs;
    uint64_t found = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        // "ffffffff81234560 t name\t[module]"
        size_t sp1 = line.find(' ');
        if (sp1 == std::string_view::npos || sp1 + 3 > line.size())
            continue;
        char type = line[sp1 + 1];
        if (type != 't' && type != 'T')
            continue;
        std::string_view sym = line.substr(sp1 + 3);
        sym = sym.substr(0, sym.find_first_of("\t "));
        uint64_t a = std::strtoull(std::string(line.substr(0, sp1)).c_str(), nullptr, 16);
        if (a == 0)
            continue;
        addrs.push_back(a);
        if (sym == name)
            found = a;
    }
    if (!found)
        return false;
    uint64_t next = UINT64_MAX;
    for (uint64_t a : addrs)
        if (a > found && a < next)
            next = a;
    if (next == UINT64_MAX)
        return false;
    *start = found;
    *end = next;
    return true;
}

KernelFacts probe_kernel() {
    KernelFacts k;
    struct utsname u {};
    if (::uname(&u) == 0)
        k.release = u.release;
    k.vmlinux_btf = exists("/sys/kernel/btf/vmlinux");
    k.fuse_module_btf = exists("/sys/kernel/btf/fuse");
    k.fuse_registered = slurp("/proc/filesystems").find("\tfuse\n") != std::string::npos;

    std::string ld = slurp("/sys/kernel/security/lockdown");
    if (ld.empty()) {
        k.lockdown = "unknown";
    } else {
        auto a = ld.find('['), b = ld.find(']');
        k.lockdown = (a != std::string::npos && b > a) ? ld.substr(a + 1, b - a - 1) : "unknown";
    }
    k.offer.probe_read_allowed = k.lockdown != "confidentiality";

    k.tracefs = mount_tracefs(k);
    if (!k.tracefs.empty())
        for (const char *ev : kTracefsEvents)
            if (exists(k.tracefs + "/events/" + ev))
                k.offer.tracepoints.insert(ev);

    libbpf_set_print(nullptr);
    struct btf *vmlinux = btf__load_vmlinux_btf();
    if (vmlinux) {
        collect_btf(vmlinux, k.offer);
        if (k.fuse_module_btf) {
            struct btf *mod = btf__load_module_btf("fuse", vmlinux);
            if (mod) {
                collect_btf(mod, k.offer);
                btf__free(mod);
            }
        }
        probe_trampolines(vmlinux, k.offer);
        btf__free(vmlinux);
    }
    std::string syms = slurp("/proc/kallsyms");
    k.offer.have_cached_io_open_range = kallsyms_range(
        syms, "fuse_file_cached_io_open", &k.cached_io_open_start, &k.cached_io_open_end);
    return k;
}

} // namespace fusescope
