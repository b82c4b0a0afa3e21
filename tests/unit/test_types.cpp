#include <gtest/gtest.h>

#include "fusescope/model/snapshot.h"
#include "fusescope/model/types.h"

using namespace fusescope;

TEST(Types, ToStringNamesAreStable) {
    EXPECT_EQ(to_string(LockMode::Shared), "shared");
    EXPECT_EQ(to_string(LockMode::Exclusive), "exclusive");
    EXPECT_EQ(to_string(WriteReason::NoParallelFlag), "no_parallel_flag");
    EXPECT_EQ(to_string(WriteReason::CacheIoMode), "cache_io_mode");
    EXPECT_EQ(to_string(WriteReason::PastEof), "past_eof");
    EXPECT_EQ(to_string(WriteReason::Fallback), "fallback");
    EXPECT_EQ(to_string(FileIoMode::NotAvailable), "n/a");
    EXPECT_EQ(to_string(FileIoMode::Uncached), "uncached");
    EXPECT_EQ(to_string(EventType::DrainWait), "drain_wait");
    EXPECT_EQ(to_string(EventType::ModeSeen), "mode_seen");
    EXPECT_EQ(to_string(TransitionCause::WriteSeen), "write-seen");
    EXPECT_EQ(to_string(HolderHow::Mmap), "mmap");
}

TEST(IoModeDerivation, FollowsKernelInvariants) {
    EXPECT_EQ(derive_io_mode(0, false, false, true).kind, ModeKind::None);
    auto c = derive_io_mode(2, true, false, true);
    EXPECT_EQ(c.kind, ModeKind::Cached);
    EXPECT_EQ(c.count, 2u);
    EXPECT_EQ(to_string(c), "cached(2)");
    auto p = derive_io_mode(-3, false, false, true);
    EXPECT_EQ(p.kind, ModeKind::Parallel);
    EXPECT_EQ(p.count, 3u);
    EXPECT_EQ(to_string(p), "parallel(3)");
    EXPECT_EQ(derive_io_mode(-1, false, true, true).kind, ModeKind::Passthrough);
    // Bit set while writers still hold negative refs: caching opener draining them.
    auto d = derive_io_mode(-2, true, false, true);
    EXPECT_EQ(d.kind, ModeKind::Cached);
    EXPECT_TRUE(d.draining());
    EXPECT_EQ(derive_io_mode(5, true, false, false).kind, ModeKind::NotAvailable);
}
