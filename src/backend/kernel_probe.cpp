// Probing the running kernel. Everything here is read-only except mounting
// tracefs when it is absent, which the syscall tracepoints need.
#include "fusescope/backend/kernel_probe.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/btf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <unordered_set>
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
    "fuse_passthrough_write_iter",
    "fuse_request_assign_unique", // 6.18+: fuse_request_send fires on every transport
    "fuse_uring_queue_bq_req",    // FUSE over io_uring (6.14+)
};

constexpr const char *kBtfTracepoints[] = {
    "fuse/fuse_request_send",
    "fuse/fuse_request_end",
    "lock/contention_begin",
    "lock/contention_end",
};
constexpr const char *kTracefsEvents[] = {
    "syscalls/sys_enter_openat", "syscalls/sys_exit_openat", "syscalls/sys_enter_openat2",
    "syscalls/sys_exit_openat2", "syscalls/sys_enter_mmap",  "syscalls/sys_exit_mmap",
    "syscalls/sys_exit_open",    "syscalls/sys_exit_creat",
};

// One pass over a raw BTF blob (vmlinux, or a module's split BTF on top of
// it) instead of ~25 btf__find_by_name_kind calls, each a linear scan of the
// ~130k vmlinux types, and without libbpf's parse, which reads the 5 MB file
// and copies it once more (page faults are dear in a VM). The result is the
// same: a name counts when any type of the asked kind has it.
struct RawBtf {
    const char *types = nullptr; // type section
    uint32_t types_len = 0;
    const char *strs = nullptr; // string section
    uint32_t strs_len = 0;
};

bool raw_btf_sections(std::string_view blob, RawBtf *out) {
    struct btf_header h {};
    if (blob.size() < sizeof(h))
        return false;
    std::memcpy(&h, blob.data(), sizeof(h));
    // Kernel BTF is in host byte order; anything else goes the libbpf way.
    if (h.magic != BTF_MAGIC || h.hdr_len < sizeof(h) || h.hdr_len > blob.size())
        return false;
    uint64_t body = blob.size() - h.hdr_len;
    if (uint64_t(h.type_off) + h.type_len > body || uint64_t(h.str_off) + h.str_len > body ||
        h.type_off % 4 != 0)
        return false;
    out->types = blob.data() + h.hdr_len + h.type_off;
    out->types_len = h.type_len;
    out->strs = blob.data() + h.hdr_len + h.str_off;
    out->strs_len = h.str_len;
    return true;
}

// Bytes that follow struct btf_type for its kind (libbpf's btf_type_size());
// -1 for a kind this build does not know, so that the caller falls back.
long btf_extra_size(uint32_t info) {
    uint32_t vlen = BTF_INFO_VLEN(info);
    switch (BTF_INFO_KIND(info)) {
    case BTF_KIND_FWD:
    case BTF_KIND_CONST:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_PTR:
    case BTF_KIND_TYPEDEF:
    case BTF_KIND_FUNC:
    case BTF_KIND_FLOAT:
    case BTF_KIND_TYPE_TAG:
        return 0;
    case BTF_KIND_INT:
    case BTF_KIND_VAR:
    case BTF_KIND_DECL_TAG:
        return 4;
    case BTF_KIND_ARRAY:
        return sizeof(struct btf_array);
    case BTF_KIND_ENUM:
        return long(vlen) * long(sizeof(struct btf_enum));
    case BTF_KIND_ENUM64:
        return long(vlen) * 12; // struct btf_enum64
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
        return long(vlen) * long(sizeof(struct btf_member));
    case BTF_KIND_FUNC_PROTO:
        return long(vlen) * long(sizeof(struct btf_param));
    case BTF_KIND_DATASEC:
        return long(vlen) * long(sizeof(struct btf_var_secinfo));
    default:
        return -1;
    }
}

// What a scan of one BTF blob found.
struct BtfNames {
    std::set<std::string> funcs;    // kFuncs present as BTF_KIND_FUNC
    std::set<std::string> typedefs; // btf_trace_* of kBtfTracepoints present as TYPEDEF
    int write_iter_id = 0;          // first FUNC fuse_file_write_iter, 0 if none
    int vfs_write_id = 0;           // first FUNC vfs_write, 0 if none
    int cache_io_mode_bit = -1;     // kCacheIoModeEnumerator's value, -1 if absent
    uint32_t type_cnt = 0;          // types in this blob (ids after the base's)
};

// Scans @split's types (ids from @base's type_cnt + 1, as libbpf numbers
// them), resolving names in @base's strings first, as split BTF does. False
// when the blob is malformed or has a kind unknown here.
bool scan_btf(const RawBtf &blob, const RawBtf *base, uint32_t base_type_cnt, BtfNames *out) {
    std::unordered_set<std::string_view> funcs(std::begin(kFuncs), std::end(kFuncs));
    std::vector<std::string> tp_names;
    for (const char *tp : kBtfTracepoints)
        tp_names.push_back(std::string("btf_trace_") + (std::strchr(tp, '/') + 1));
    std::unordered_set<std::string_view> typedefs(tp_names.begin(), tp_names.end());
    uint32_t base_strs = base ? base->strs_len : 0;
    auto name_of = [&](uint32_t off) -> std::string_view {
        const char *s = nullptr;
        size_t avail = 0;
        if (base && off < base_strs) {
            s = base->strs + off;
            avail = base_strs - off;
        } else if (off - base_strs < blob.strs_len) {
            s = blob.strs + (off - base_strs);
            avail = blob.strs_len - (off - base_strs);
        } else {
            return {};
        }
        return std::string_view(s, strnlen(s, avail));
    };
    uint32_t id = base_type_cnt; // id 0 is void in the base
    size_t pos = 0;
    while (pos < blob.types_len) {
        struct btf_type t {};
        if (blob.types_len - pos < sizeof(t))
            return false;
        std::memcpy(&t, blob.types + pos, sizeof(t));
        long extra = btf_extra_size(t.info);
        if (extra < 0 || uint64_t(extra) > blob.types_len - pos - sizeof(t))
            return false;
        pos += sizeof(t) + size_t(extra);
        ++id;
        uint32_t kind = BTF_INFO_KIND(t.info);
        if (kind == BTF_KIND_FUNC) {
            std::string_view n = name_of(t.name_off);
            if (funcs.count(n))
                out->funcs.emplace(n);
            if (n == "fuse_file_write_iter" && !out->write_iter_id)
                out->write_iter_id = int(id);
            else if (n == "vfs_write" && !out->vfs_write_id)
                out->vfs_write_id = int(id);
        } else if (kind == BTF_KIND_TYPEDEF) {
            std::string_view n = name_of(t.name_off);
            if (typedefs.count(n))
                out->typedefs.emplace(n);
        } else if (kind == BTF_KIND_ENUM && out->cache_io_mode_bit < 0) {
            const char *e = blob.types + pos - size_t(extra);
            for (uint32_t i = 0; i < BTF_INFO_VLEN(t.info); ++i) {
                struct btf_enum en {};
                std::memcpy(&en, e + i * sizeof(en), sizeof(en));
                if (name_of(en.name_off) == kCacheIoModeEnumerator)
                    out->cache_io_mode_bit = en.val;
            }
        }
    }
    out->type_cnt = id - base_type_cnt;
    return true;
}

void offer_from(const BtfNames &names, KernelOffer &offer) {
    for (const std::string &f : names.funcs)
        offer.btf_funcs.insert(f);
    for (const char *tp : kBtfTracepoints)
        if (names.typedefs.count(std::string("btf_trace_") + (std::strchr(tp, '/') + 1)))
            offer.tracepoints.insert(tp);
    if (names.funcs.count("fuse_file_io_open"))
        offer.has_iomodes = true;
    if (names.cache_io_mode_bit >= 0)
        offer.cache_io_mode_bit = names.cache_io_mode_bit;
}

// A read-only view of a whole file: mmap where the kernel allows it
// (/sys/kernel/btf/* since 6.16), else one read into memory.
class FileView {
  public:
    explicit FileView(const char *path) {
        int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return;
        struct stat st {};
        if (::fstat(fd, &st) == 0 && st.st_size > 0) {
            size_t n = size_t(st.st_size);
            void *p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p != MAP_FAILED) {
                map_ = p;
                size_ = n;
            } else {
                buf_.resize(n);
                size_t got = 0;
                while (got < n) {
                    ssize_t r = ::read(fd, buf_.data() + got, n - got);
                    if (r < 0 && errno == EINTR)
                        continue;
                    if (r <= 0)
                        break;
                    got += size_t(r);
                }
                buf_.resize(got);
            }
        }
        ::close(fd);
    }
    ~FileView() {
        if (map_)
            ::munmap(map_, size_);
    }
    FileView(const FileView &) = delete;
    FileView &operator=(const FileView &) = delete;
    std::string_view data() const {
        return map_ ? std::string_view(static_cast<const char *>(map_), size_)
                    : std::string_view(buf_.data(), buf_.size());
    }

  private:
    void *map_ = nullptr;
    size_t size_ = 0;
    std::vector<char> buf_;
};

// The libbpf way, kept for BTF this scanner cannot read (another byte order,
// a kind newer than this build).
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
    for (__u32 id = 1; id < btf__type_cnt(btf) && offer.cache_io_mode_bit < 0; ++id) {
        const struct btf_type *t = btf__type_by_id(btf, id);
        if (!btf_is_enum(t))
            continue;
        const struct btf_enum *e = btf_enum(t);
        for (__u16 i = 0; i < btf_vlen(t); ++i)
            if (const char *n = btf__name_by_offset(btf, e[i].name_off);
                n && n == kCacheIoModeEnumerator)
                offer.cache_io_mode_bit = e[i].val;
    }
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
// @id: vmlinux BTF id of fuse_file_write_iter, else of vfs_write, else <= 0.
void probe_trampolines(int id, KernelOffer &offer) {
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

// probe_kernel's BTF part by scan_btf; false (nothing recorded) when the
// vmlinux BTF cannot be read that way, so that libbpf has its go.
bool scan_kernel_btf(KernelFacts &k) {
    FileView vfile("/sys/kernel/btf/vmlinux");
    std::optional<FileView> mfile;
    if (k.fuse_module_btf)
        mfile.emplace("/sys/kernel/btf/fuse");
    int probe_id = 0;
    if (!offer_from_raw_btf(vfile.data(), mfile ? mfile->data() : std::string_view(), &k.offer,
                            &probe_id))
        return false;
    probe_trampolines(probe_id, k.offer);
    return true;
}

} // namespace

std::span<const char *const> probed_btf_funcs() { return kFuncs; }
std::span<const char *const> probed_btf_tracepoints() { return kBtfTracepoints; }

bool offer_from_raw_btf(std::string_view vmlinux, std::string_view module, KernelOffer *offer,
                        int *probe_id) {
    RawBtf vraw;
    BtfNames vnames;
    if (!raw_btf_sections(vmlinux, &vraw) || !scan_btf(vraw, nullptr, 0, &vnames))
        return false;
    BtfNames mnames;
    if (!module.empty()) {
        RawBtf mraw;
        if (!raw_btf_sections(module, &mraw) || !scan_btf(mraw, &vraw, vnames.type_cnt, &mnames))
            return false;
    }
    offer_from(vnames, *offer);
    offer_from(mnames, *offer);
    *probe_id = vnames.write_iter_id ? vnames.write_iter_id : vnames.vfs_write_id;
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
    // /sys/kernel/realtime where the kernel has it; else the version string ("... PREEMPT_RT ...")
    k.offer.preempt_rt = slurp("/sys/kernel/realtime").starts_with("1") ||
                         std::string_view(u.version).find("PREEMPT_RT") != std::string_view::npos;

    k.tracefs = mount_tracefs(k);
    if (!k.tracefs.empty())
        for (const char *ev : kTracefsEvents)
            if (exists(k.tracefs + "/events/" + ev))
                k.offer.tracepoints.insert(ev);

    libbpf_set_print(nullptr);
    if (!scan_kernel_btf(k)) {
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
            int id = btf__find_by_name_kind(vmlinux, "fuse_file_write_iter", BTF_KIND_FUNC);
            if (id <= 0)
                id = btf__find_by_name_kind(vmlinux, "vfs_write", BTF_KIND_FUNC);
            probe_trampolines(id, k.offer);
            btf__free(vmlinux);
        }
    }
    return k;
}

} // namespace fusescope
