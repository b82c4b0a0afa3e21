// probe_kernel's BTF scan against libbpf's lookups, on BTF built with libbpf
// (including a module's split BTF, which this host's kernel has not) and on
// the running kernel's vmlinux BTF when it is readable.
#include "fusescope/backend/kernel_probe.h"

#include <bpf/btf.h>
#include <gtest/gtest.h>
#include <linux/btf.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

namespace fusescope {
namespace {

using BtfPtr = std::unique_ptr<struct btf, decltype(&btf__free)>;

std::string raw(const struct btf *b) {
    __u32 size = 0;
    const void *data = btf__raw_data(b, &size);
    return std::string(static_cast<const char *>(data), size);
}

// What the libbpf lookups probe_kernel used before give for @b.
KernelOffer libbpf_offer(const struct btf *b) {
    KernelOffer o;
    for (const char *f : probed_btf_funcs())
        if (btf__find_by_name_kind(b, f, BTF_KIND_FUNC) > 0)
            o.btf_funcs.insert(f);
    for (const char *tp : probed_btf_tracepoints()) {
        std::string name = std::string("btf_trace_") + (std::strchr(tp, '/') + 1);
        if (btf__find_by_name_kind(b, name.c_str(), BTF_KIND_TYPEDEF) > 0)
            o.tracepoints.insert(tp);
    }
    o.has_iomodes = btf__find_by_name_kind(b, "fuse_file_io_open", BTF_KIND_FUNC) > 0;
    for (__u32 id = 1; id < btf__type_cnt(b); ++id) {
        const struct btf_type *t = btf__type_by_id(b, id);
        if (!btf_is_enum(t))
            continue;
        for (__u16 i = 0; i < btf_vlen(t); ++i)
            if (const char *n = btf__name_by_offset(b, btf_enum(t)[i].name_off);
                o.cache_io_mode_bit < 0 && n && n == kCacheIoModeEnumerator)
                o.cache_io_mode_bit = btf_enum(t)[i].val;
    }
    return o;
}

int libbpf_probe_id(const struct btf *vmlinux) {
    int id = btf__find_by_name_kind(vmlinux, "fuse_file_write_iter", BTF_KIND_FUNC);
    if (id <= 0)
        id = btf__find_by_name_kind(vmlinux, "vfs_write", BTF_KIND_FUNC);
    return id > 0 ? id : 0;
}

void add_func(struct btf *b, const char *name, int proto) {
    ASSERT_GT(btf__add_func(b, name, BTF_FUNC_GLOBAL, proto), 0) << name;
}

TEST(KernelProbeBtf, ScanMatchesLibbpfOnVmlinuxAndSplitModuleBtf) {
    BtfPtr base(btf__new_empty(), btf__free);
    ASSERT_TRUE(base);
    struct btf *b = base.get();
    // one type of every kind the scan has to step over
    int i32 = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
    int ptr = btf__add_ptr(b, i32);
    int arr = btf__add_array(b, i32, i32, 4);
    int st = btf__add_struct(b, "fuse_inode", 16);
    btf__add_field(b, "iocachectr", i32, 0, 0);
    btf__add_field(b, "p", ptr, 64, 0);
    btf__add_union(b, "u", 4);
    btf__add_field(b, "a", i32, 0, 0);
    btf__add_enum(b, "e", 4);
    btf__add_enum_value(b, "E0", 0);
    btf__add_fwd(b, "fwd", BTF_FWD_STRUCT);
    btf__add_const(b, arr);
    btf__add_volatile(b, st);
    btf__add_restrict(b, ptr);
    btf__add_float(b, "double", 8);
    int var = btf__add_var(b, "v", BTF_VAR_GLOBAL_ALLOCATED, i32);
    btf__add_datasec(b, ".data", 4);
    btf__add_datasec_var_info(b, var, 0, 4);
    btf__add_decl_tag(b, "tag", st, -1);
    btf__add_type_tag(b, "ttag", i32);
    int proto = btf__add_func_proto(b, i32);
    btf__add_func_param(b, "x", ptr);
    // a typedef named like a function and a function named like a typedef do not count
    btf__add_typedef(b, "fuse_direct_io", i32);
    add_func(b, "btf_trace_contention_end", proto);
    add_func(b, "vfs_write", proto);
    add_func(b, "fuse_file_write_iter", proto);
    add_func(b, "fuse_file_write_iter", proto); // the first id is the one probed
    btf__add_typedef(b, "btf_trace_contention_begin", i32);
    add_func(b, "fuse_file_io_open", proto);

    KernelOffer got;
    int probe_id = -1;
    std::string vraw = raw(b);
    ASSERT_TRUE(offer_from_raw_btf(vraw, "", &got, &probe_id));
    KernelOffer want = libbpf_offer(b);
    EXPECT_EQ(got.btf_funcs, want.btf_funcs);
    EXPECT_EQ(got.tracepoints, want.tracepoints);
    EXPECT_EQ(got.has_iomodes, want.has_iomodes);
    EXPECT_EQ(probe_id, libbpf_probe_id(b));
    EXPECT_TRUE(got.has_iomodes);
    EXPECT_EQ(got.tracepoints, std::set<std::string>{"lock/contention_begin"});

    // The fuse module's split BTF: ids continue the base's, names in either string table.
    BtfPtr mod(btf__new_empty_split(b), btf__free);
    ASSERT_TRUE(mod);
    struct btf *m = mod.get();
    int mproto = btf__add_func_proto(m, i32);
    btf__add_func_param(m, "f", ptr);
    add_func(m, "fuse_direct_io", mproto);       // a new string
    add_func(m, "fuse_file_write_iter", mproto); // a base string: not the probed id
    btf__add_typedef(m, "btf_trace_fuse_request_send", ptr);
    btf__add_struct(m, "fuse_conn", 8);
    btf__add_field(m, "x", i32, 0, 0);
    std::string mraw = raw(m);

    KernelOffer got2;
    ASSERT_TRUE(offer_from_raw_btf(vraw, mraw, &got2, &probe_id));
    KernelOffer want2 = libbpf_offer(b);
    KernelOffer wantm = libbpf_offer(m); // libbpf searches the base too
    want2.btf_funcs.insert(wantm.btf_funcs.begin(), wantm.btf_funcs.end());
    want2.tracepoints.insert(wantm.tracepoints.begin(), wantm.tracepoints.end());
    want2.has_iomodes = want2.has_iomodes || wantm.has_iomodes;
    EXPECT_EQ(got2.btf_funcs, want2.btf_funcs);
    EXPECT_EQ(got2.tracepoints, want2.tracepoints);
    EXPECT_EQ(got2.has_iomodes, want2.has_iomodes);
    EXPECT_TRUE(got2.btf_funcs.count("fuse_direct_io"));
    EXPECT_TRUE(got2.tracepoints.count("fuse/fuse_request_send"));
    EXPECT_EQ(probe_id, libbpf_probe_id(b));
}

TEST(KernelProbeBtf, RejectsWhatItCannotRead) {
    KernelOffer o;
    int id = 0;
    EXPECT_FALSE(offer_from_raw_btf("", "", &o, &id));
    EXPECT_FALSE(offer_from_raw_btf(std::string(64, '\xff'), "", &o, &id));
    BtfPtr base(btf__new_empty(), btf__free);
    btf__add_int(base.get(), "int", 4, 0);
    std::string r = raw(base.get());
    EXPECT_FALSE(offer_from_raw_btf(r.substr(0, r.size() - 3), "", &o, &id)); // cut short
    std::string bad = r;
    bad[sizeof(struct btf_header) + 4 + 3] = 0x7f; // kind 31 in the first type's info
    EXPECT_FALSE(offer_from_raw_btf(bad, "", &o, &id));
    EXPECT_TRUE(o.btf_funcs.empty());
}

TEST(KernelProbeBtf, ScanMatchesLibbpfOnThisKernel) {
    std::ifstream f("/sys/kernel/btf/vmlinux", std::ios::binary);
    std::string vraw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (vraw.empty())
        GTEST_SKIP() << "no readable /sys/kernel/btf/vmlinux";
    BtfPtr v(btf__new(vraw.data(), static_cast<__u32>(vraw.size())), btf__free);
    ASSERT_TRUE(v);
    KernelOffer got;
    int probe_id = -1;
    ASSERT_TRUE(offer_from_raw_btf(vraw, "", &got, &probe_id));
    KernelOffer want = libbpf_offer(v.get());
    EXPECT_EQ(got.btf_funcs, want.btf_funcs);
    EXPECT_EQ(got.tracepoints, want.tracepoints);
    EXPECT_EQ(got.has_iomodes, want.has_iomodes);
    EXPECT_EQ(got.cache_io_mode_bit, want.cache_io_mode_bit);
    if (got.has_iomodes) { // 6.9 .. 7.3 all have it as bit 5 (kernel-fuse-iomode.md)
        EXPECT_EQ(got.cache_io_mode_bit, 5);
    }
    EXPECT_EQ(probe_id, libbpf_probe_id(v.get()));
}

} // namespace
} // namespace fusescope
