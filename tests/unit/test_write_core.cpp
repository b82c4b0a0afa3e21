// The write classifier and accounting of bpf/write_core.h, the source both
// BPF objects run, compiled for the host: what each observation of a write
// is classified as, in the kernel's order (fs/fuse/file.c), and that the
// lock mode each reason implies agrees with the model's table.
#include <gtest/gtest.h>

#include "write_core_host.h"

#include "fusescope/model/types.h"

using namespace fusescope;

namespace {

constexpr __u32 kPdw = FS_FOPEN_DIRECT_IO | FS_FOPEN_PARALLEL_DIRECT_WRITES;

// A direct-IO write of 4 KiB at 0 inside a 1 MiB file, by a writer whose lock was
// seen held shared, no cache mode: change what a row needs.
fs_write_obs seen_shared() {
    fs_write_obs o{};
    o.path = FS_PATH_DIRECT;
    o.lock_seen = 1;
    o.open_flags = kPdw;
    o.pos = 0;
    o.count = 4096;
    o.isize = 1 << 20;
    return o;
}

struct Row {
    const char *what;
    fs_write_obs obs;
    WriteReason want;
};

std::vector<Row> rows() {
    std::vector<Row> r;
    auto add = [&](const char *what, WriteReason want, auto change) {
        fs_write_obs o = seen_shared();
        change(o);
        r.push_back({what, o, want});
    };
    add("shared lock seen", WriteReason::Shared, [](fs_write_obs &) {});
    add("passthrough file", WriteReason::Passthrough, [](fs_write_obs &o) {
        o.path = FS_PATH_PASSTHROUGH;
        o.lock_seen = 0;
    });
    add("buffered write", WriteReason::Buffered, [](fs_write_obs &o) {
        o.path = FS_PATH_BUFFERED;
        o.open_flags = 0;
    });
    add("O_DIRECT on a caching open, from another task", WriteReason::NoDirectIoOpen,
        [](fs_write_obs &o) {
            o.path = FS_PATH_CACHED_DIRECT;
            o.open_flags = 0;
            o.lock_seen = 0;
        });
    add("open without the parallel flag, from another task", WriteReason::NoParallelFlag,
        [](fs_write_obs &o) {
            o.open_flags = FS_FOPEN_DIRECT_IO;
            o.lock_seen = 0;
        });
    add("append, even in cache mode", WriteReason::Append, [](fs_write_obs &o) {
        o.ki_flags = FS_IOCB_APPEND;
        o.exclusive = 1;
        o.cache_mode = 1;
    });
    add("no parallel flag wins over append", WriteReason::NoParallelFlag, [](fs_write_obs &o) {
        o.open_flags = FS_FOPEN_DIRECT_IO;
        o.ki_flags = FS_IOCB_APPEND;
        o.exclusive = 1;
    });
    add("async write another task sent", WriteReason::Unclassified,
        [](fs_write_obs &o) { o.lock_seen = 0; });
    add("extending async write another task sent", WriteReason::UnclassifiedExclusive,
        [](fs_write_obs &o) {
            o.lock_seen = 0;
            o.extending = 1;
        });
    add("exclusive in cache mode", WriteReason::CacheIoMode, [](fs_write_obs &o) {
        o.exclusive = 1;
        o.cache_mode = 1;
    });
    add("exclusive, ends past i_size", WriteReason::PastEof, [](fs_write_obs &o) {
        o.exclusive = 1;
        o.pos = (1 << 20) - 100;
    });
    add("exclusive, ends exactly at i_size", WriteReason::Fallback, [](fs_write_obs &o) {
        o.exclusive = 1;
        o.pos = (1 << 20) - 4096;
    });
    add("tried shared first (uncached_io_start failed)", WriteReason::Fallback,
        [](fs_write_obs &o) {
            o.exclusive = 1;
            o.tried_shared = 1;
            o.cache_mode = 1;
        });
    add("kernel's own decision said shared", WriteReason::Fallback, [](fs_write_obs &o) {
        o.exclusive = 1;
        o.decision_seen = 1;
        o.decision_excl = 0;
        o.pos = 1 << 20;
    });
    add("kernel's own decision said exclusive, past EOF", WriteReason::PastEof,
        [](fs_write_obs &o) {
            o.exclusive = 1;
            o.decision_seen = 1;
            o.decision_excl = 1;
            o.pos = 1 << 20;
        });
    return r;
}

} // namespace

TEST(WriteCore, ClassifiesEachObservationInTheKernelsOrder) {
    for (const Row &r : rows())
        EXPECT_EQ(static_cast<WriteReason>(fs_classify_write(&r.obs)), r.want)
            << r.what << ": got " << to_string(static_cast<WriteReason>(fs_classify_write(&r.obs)))
            << ", want " << to_string(r.want);
}

TEST(WriteCore, EachReasonsLockModeIsTheModelsTable) {
    for (const WriteReasonInfo &i : kWriteReasonInfo)
        EXPECT_EQ(static_cast<LockMode>(fs_reason_lock_mode(static_cast<__u8>(i.reason))), i.lock)
            << i.name;
    EXPECT_EQ(fs_reason_lock_mode(FS_REASON_COUNT), FS_LOCK_UNKNOWN); // out of range
    // the write cache holds the direct-IO reasons only, all of a known lock mode
    for (int r = 0; r < FS_DIO_REASONS; ++r)
        EXPECT_LT(fs_reason_lock_mode(static_cast<__u8>(r)), FS_LOCK_MODES);
}

TEST(WriteCore, AccountingPutsBytesWaitAndServiceUnderTheReasonsLockMode) {
    host_core::Kernel k;
    host_core::g_kernel = &k;
    const fs_inode_key key{7, 42, 0};
    fs_inode_stats *st = fs_core_stats_get(&key, 7);
    fs_account_write(st, FS_REASON_SHARED, true, 4096, 10, 100);
    fs_account_write(st, FS_REASON_SHARED, false, 4096, 0, 0); // a later request
    fs_account_write(st, FS_REASON_UNCLASSIFIED, true, 512, 0, 0);
    fs_account_write(st, FS_REASON_CACHE_IO_MODE, true, 1, 5, 50);
    fs_account_write(st, FS_REASON_COUNT, true, 1, 1, 1); // refused: out of range
    EXPECT_EQ(st->writes[FS_REASON_SHARED], 1u);
    EXPECT_EQ(st->writes[FS_REASON_UNCLASSIFIED], 1u);
    EXPECT_EQ(st->writes[FS_REASON_CACHE_IO_MODE], 1u);
    EXPECT_EQ(st->write_bytes[FS_LOCK_SHARED], 8192u);
    EXPECT_EQ(st->write_bytes[FS_LOCK_UNKNOWN], 512u);
    EXPECT_EQ(st->write_bytes[FS_LOCK_EXCLUSIVE], 1u);
    EXPECT_EQ(st->write_wait_ns[FS_LOCK_SHARED], 10u);
    EXPECT_EQ(st->write_service_ns[FS_LOCK_EXCLUSIVE], 50u);
    host_core::g_kernel = nullptr;
}

TEST(WriteCore, ModeObservationStampsAndReportsOnlyFlips) {
    host_core::Kernel k;
    host_core::g_kernel = &k;
    const fs_inode_key key{7, 42, 0};
    fs_inode_stats *st = fs_core_stats_get(&key, 7);
    fs_observe_mode(st, &key, -3, 0); // parallel writers: a class change, not a flip
    const uint64_t stamped = st->mode_seen_ns;
    EXPECT_NE(stamped, 0u);
    fs_observe_mode(st, &key, -1, 0); // same class: nothing written
    EXPECT_EQ(st->mode_seen_ns, stamped);
    EXPECT_TRUE(k.flips.empty());
    fs_observe_mode(st, &key, 1, 1); // cache mode entered
    fs_observe_mode(st, &key, 0, 0); // and left
    EXPECT_EQ(k.flips.size(), 2u);
    EXPECT_EQ(st->mode_changes, 2u);
    host_core::g_kernel = nullptr;
}
