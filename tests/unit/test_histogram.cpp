#include <gtest/gtest.h>

#include "fusescope/model/histogram.h"

using namespace fusescope;

TEST(Histogram, SlotBoundaries) {
    EXPECT_EQ(Histogram::slot_for(0), 0);
    EXPECT_EQ(Histogram::slot_for(1), 0);
    EXPECT_EQ(Histogram::slot_for(2), 1);
    EXPECT_EQ(Histogram::slot_for(3), 1);
    EXPECT_EQ(Histogram::slot_for(4), 2);
    EXPECT_EQ(Histogram::slot_for(1023), 9);
    EXPECT_EQ(Histogram::slot_for(1024), 10);
    EXPECT_EQ(Histogram::slot_for(~0ull), kHistSlots - 1);
    EXPECT_EQ(Histogram::slot_low(0), 0u);
    EXPECT_EQ(Histogram::slot_high(0), 2u);
    EXPECT_EQ(Histogram::slot_low(10), 1024u);
    EXPECT_EQ(Histogram::slot_high(10), 2048u);
}

TEST(Histogram, AddMergeCount) {
    Histogram a, b;
    a.add(1000);
    a.add(1000, 4);
    b.add(5);
    a.merge(b);
    EXPECT_EQ(a.count(), 6u);
    EXPECT_EQ(a.slots[9], 5u);
    EXPECT_EQ(a.slots[2], 1u);
    EXPECT_TRUE(Histogram{}.empty());
}

TEST(Histogram, PercentileInterpolatesInsideBucket) {
    Histogram h;
    EXPECT_EQ(h.percentile(50), 0.0);
    h.slots[10] = 100; // all in [1024, 2048)
    EXPECT_DOUBLE_EQ(h.percentile(50), 1024 + 512);
    EXPECT_DOUBLE_EQ(h.percentile(100), 2048);
    EXPECT_DOUBLE_EQ(h.percentile(0), 1024);
    Histogram g;
    g.slots[10] = 99; // ~1.5us
    g.slots[20] = 1;  // ~1ms outlier
    EXPECT_LT(g.percentile(50), 2048);
    EXPECT_GE(g.percentile(50), 1024);
    EXPECT_LE(g.percentile(99), 2048); // rank 99 is the last sample of slot 10
    EXPECT_GE(g.percentile(99.5), 1 << 20);
    EXPECT_LE(g.percentile(99.5), 1 << 21);
}

TEST(Histogram, DeltaAndReset) {
    Histogram before, after;
    before.slots[3] = 5;
    after.slots[3] = 8;
    after.slots[4] = 2;
    auto d = Histogram::delta(after, before);
    EXPECT_EQ(d.slots[3], 3u);
    EXPECT_EQ(d.slots[4], 2u);
    Histogram reset;
    reset.slots[4] = 1; // slot 3 went 5 -> 0: source restarted
    EXPECT_EQ(Histogram::delta(reset, before), reset);
}
