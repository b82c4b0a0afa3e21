// The model's compact per-inode storage, its change-only counter input and the
// per-device summary the exporter reads.
#include <gtest/gtest.h>

#include <malloc.h>

#include <random>

#include "fusescope/model/compact_stats.h"
#include "fusescope/model/state_model.h"
#include "model_test_util.h"

using namespace fusescope;
using namespace fusescope::test;

TEST(CompactHist, StoresOnlyTheRangeWithSamples) {
    CompactHist c;
    EXPECT_TRUE(c.empty());
    EXPECT_EQ(c.heap_bytes(), 0u);
    c.add(Histogram{}); // nothing to add: stays unallocated
    EXPECT_TRUE(c.empty());

    Histogram h;
    h.slots[10] = 3;
    c.add(h);
    EXPECT_EQ(c.lo(), 10);
    EXPECT_EQ(c.width(), 1);
    EXPECT_EQ(c.at(10), 3u);
    EXPECT_EQ(c.at(9), 0u);

    Histogram g;
    g.slots[4] = 1;
    g.slots[12] = 2;
    g.slots[kHistSlots - 1] = 7;
    c.add(g); // widens both ways, keeps what it had
    EXPECT_EQ(c.lo(), 4);
    EXPECT_EQ(c.width(), kHistSlots - 4);
    EXPECT_EQ(c.at(4), 1u);
    EXPECT_EQ(c.at(10), 3u);
    EXPECT_EQ(c.at(12), 2u);
    EXPECT_EQ(c.at(kHistSlots - 1), 7u);

    Histogram sum = h;
    sum.merge(g);
    EXPECT_EQ(c.expand(), sum);

    CompactHist copy = c;
    EXPECT_EQ(copy, c);
    EXPECT_EQ(copy.expand(), sum);
}

TEST(CompactHist, MatchesHistogramOnRandomAdds) {
    std::mt19937_64 rng(7);
    CompactHist c;
    Histogram ref;
    for (int round = 0; round < 200; ++round) {
        Histogram h;
        const int n = static_cast<int>(rng() % 3);
        for (int i = 0; i < n; ++i)
            h.slots[rng() % kHistSlots] += rng() % 100;
        c.add(h);
        ref.merge(h);
        ASSERT_EQ(c.expand(), ref);
    }
}

TEST(CompactStats, AddAndExpandRoundTrip) {
    WriteStats d;
    d.writes = {1, 2, 3, 4, 5, 6};
    d.bytes = {7, 8};
    d.wait_ns = {9, 10};
    d.service_ns = {11, 12};
    d.contentions = {13, 14};
    d.contention_ns = {15, 16};
    d.contention_hist[1].slots[20] = 17;
    d.drain_waits = 18;
    d.drain_wait_ns = 19;
    d.mode_changes = 20;
    CompactStats c;
    c += d;
    c += d;
    WriteStats twice = d;
    twice += d;
    const WriteStats e = c.expand();
    EXPECT_EQ(e.writes, twice.writes);
    EXPECT_EQ(e.bytes, twice.bytes);
    EXPECT_EQ(e.wait_ns, twice.wait_ns);
    EXPECT_EQ(e.service_ns, twice.service_ns);
    EXPECT_EQ(e.contentions, twice.contentions);
    EXPECT_EQ(e.contention_ns, twice.contention_ns);
    EXPECT_EQ(e.contention_hist, twice.contention_hist);
    EXPECT_EQ(e.drain_waits, 36u);
    EXPECT_EQ(e.drain_wait_ns, 38u);
    EXPECT_EQ(e.mode_changes, 40u);
    EXPECT_TRUE(c.contention_hist[0].empty());
}

namespace {

InodeCounters grown(InodeKey k, uint64_t first_seen, uint64_t step) {
    InodeCounters c = counters(k, first_seen, first_seen + step);
    c.writes[0] = 10 * step;
    c.writes[2] = step;
    c.write_wait_ns[1] = 1000 * step;
    c.contention_hist[1][12] = static_cast<uint32_t>(step);
    return c;
}

} // namespace

// A change-only read must leave the model exactly where the full dump does.
TEST(StateModelChanges, SameResultAsFullDumps) {
    StateModel full, delta;
    const InodeKey a = key(1), b = key(2), c = key(3);
    // read 1: a, b new
    full.on_counters({grown(a, 10, 1), grown(b, 20, 1)}, 1 * kSec);
    delta.on_counter_changes({{grown(a, 10, 1), grown(b, 20, 1)}, {}}, 1 * kSec);
    // read 2: a grew, b unchanged, c new
    full.on_counters({grown(a, 10, 2), grown(b, 20, 1), grown(c, 30, 1)}, 2 * kSec);
    delta.on_counter_changes({{grown(a, 10, 2), grown(c, 30, 1)}, {}}, 2 * kSec);
    for (const auto &m : {&full, &delta}) {
        auto s = m->snapshot();
        EXPECT_EQ(s.find(a)->interval.writes[0], 10u);
        EXPECT_EQ(s.find(a)->total.writes[0], 20u);
        EXPECT_TRUE(s.find(b)->interval.is_zero());
        EXPECT_EQ(s.find(b)->total.writes[0], 10u);
        EXPECT_EQ(s.find(c)->interval.writes[2], 1u);
    }
    // read 3: b gone from the kernel map; read 4: back with the same stamp: fresh entry
    full.on_counters({grown(a, 10, 2), grown(c, 30, 1)}, 3 * kSec);
    delta.on_counter_changes({{}, {b}}, 3 * kSec);
    full.on_counters({grown(a, 10, 2), grown(b, 20, 3), grown(c, 30, 1)}, 4 * kSec);
    delta.on_counter_changes({{grown(b, 20, 3)}, {}}, 4 * kSec);
    // read 5: a re-created by the kernel LRU (new stamp, smaller values)
    full.on_counters({grown(a, 99, 1), grown(b, 20, 3), grown(c, 30, 1)}, 5 * kSec);
    delta.on_counter_changes({{grown(a, 99, 1)}, {}}, 5 * kSec);

    auto sf = full.snapshot(), sd = delta.snapshot();
    ASSERT_EQ(sf.inodes.size(), sd.inodes.size());
    for (size_t i = 0; i < sf.inodes.size(); ++i) {
        const InodeView &x = sf.inodes[i], &y = sd.inodes[i];
        EXPECT_EQ(x.key, y.key);
        EXPECT_EQ(x.total.writes, y.total.writes);
        EXPECT_EQ(x.total.wait_ns, y.total.wait_ns);
        EXPECT_EQ(x.total.contention_hist, y.total.contention_hist);
        EXPECT_EQ(x.interval.writes, y.interval.writes);
        EXPECT_EQ(x.counter_resets, y.counter_resets);
    }
    EXPECT_EQ(sd.find(b)->total.writes[0], 10u + 30u);
    EXPECT_EQ(sd.find(a)->total.writes[0], 20u + 10u);
    EXPECT_EQ(sd.find(a)->total.contention_hist[1].slots[12], 3u);
    EXPECT_EQ(sd.find(a)->counter_resets, 1u);
    EXPECT_EQ(sf.stats.counter_resets, sd.stats.counter_resets);
}

TEST(StateModelSummary, DeviceTotalsSurviveEviction) {
    ModelOptions o;
    o.max_inodes = 2;
    StateModel model(o);
    const uint32_t other = (0u << 20) | 46u;
    model.on_counters({grown(key(1), 1, 1), grown(key(2), 2, 1)}, 1 * kSec);
    model.on_counters(
        {grown(key(1), 1, 1), grown(key(2), 2, 1), grown(key(3), 3, 1), grown(key(4, other), 4, 2)},
        2 * kSec);
    Summary s = model.summary(10);
    EXPECT_EQ(s.stats.inodes, 2u);
    ASSERT_EQ(s.devices.size(), 2u);
    EXPECT_EQ(s.devices[0].dev, kDev);
    EXPECT_EQ(s.devices[0].total.writes[0], 30u); // key 1 and 2 were evicted: still counted
    EXPECT_EQ(s.devices[0].total.contention_hist[1].slots[12], 3u);
    EXPECT_EQ(s.devices[1].dev, other);
    EXPECT_EQ(s.devices[1].total.writes[0], 20u);
    EXPECT_EQ(s.devices[0].inodes + s.devices[1].inodes, 2u);
}

TEST(StateModelSummary, ModesHoldersTransitionsAndTopK) {
    StateModel model;
    // key 1: cached with one holder; keys 2..5 write, key 4 waits most.
    model.on_event(event(EventType::Open, key(1), 10, evflag::Holder | evflag::EnteredCache, 1, 5,
                         "db", 0xa1));
    std::vector<InodeCounters> cs;
    for (uint64_t i = 2; i <= 5; ++i) {
        InodeCounters c = counters(key(i), 1, 20);
        c.writes[0] = i;
        c.write_wait_ns[0] = i == 4 ? 5000 : i;
        cs.push_back(c);
    }
    model.on_counters(cs, 1 * kSec);
    Summary s = model.summary(2);
    ASSERT_EQ(s.devices.size(), 1u);
    const DeviceSummary &d = s.devices[0];
    EXPECT_EQ(d.inodes, 5u);
    EXPECT_EQ(d.inodes_by_mode[static_cast<size_t>(ModeKind::Cached)], 1u);
    EXPECT_EQ(d.inodes_by_mode[static_cast<size_t>(ModeKind::None)], 4u);
    EXPECT_EQ(d.holders_open, 1u);
    EXPECT_EQ((d.transitions.at({TransitionCause::Open, ModeKind::Cached})), 1u);
    ASSERT_EQ(s.top.size(), 2u);
    EXPECT_EQ(s.top[0].key, key(4));
    EXPECT_EQ(s.top[1].key, key(5));
    EXPECT_TRUE(model.summary(0).top.empty());

    // Transitions are counted as they happen, beyond the bounded history.
    for (uint64_t t = 0; t < 40; ++t) {
        model.on_event(event(EventType::Release, key(1), 100 + 2 * t,
                             evflag::WasHolder | evflag::LeftCache, 0, 5, "db", 0xa1));
        model.on_event(event(EventType::Open, key(1), 101 + 2 * t,
                             evflag::Holder | evflag::EnteredCache, 1, 5, "db", 0xa1));
    }
    s = model.summary(0);
    EXPECT_EQ((s.devices[0].transitions.at({TransitionCause::Open, ModeKind::Cached})), 41u);
    EXPECT_EQ((s.devices[0].transitions.at({TransitionCause::Release, ModeKind::None})), 40u);
}

TEST(StateModelSummary, UnmountedDeviceWithoutInodesIsForgotten) {
    const uint32_t dev = kernel_dev(0, 45);
    Mounts with = Mounts::parse("40 1 0:45 / /mnt/a rw - fuse.testfs testfs rw\n"),
           without = Mounts::parse("41 1 0:46 / /mnt/b rw - fuse.testfs testfs rw\n");
    ModelOptions o;
    o.max_inodes = 1;
    StateModel model(o);
    model.set_mounts(with);
    model.on_counters({grown(key(1, dev), 1, 1)}, 1 * kSec);
    Summary s = model.summary(0);
    ASSERT_EQ(s.devices.size(), 1u);
    EXPECT_EQ(s.devices[0].mount_point, "/mnt/a");
    model.set_mounts(without);
    s = model.summary(0);
    ASSERT_EQ(s.devices.size(), 1u); // its inode is still tracked: kept, last label
    EXPECT_EQ(s.devices[0].mount_point, "/mnt/a");
    model.on_counters({grown(key(2, kernel_dev(0, 46)), 1, 1)}, 2 * kSec); // evicts key 1
    model.set_mounts(without);
    s = model.summary(0);
    ASSERT_EQ(s.devices.size(), 1u);
    EXPECT_EQ(s.devices[0].mount_point, "/mnt/b");
}

// What issue 8's RSS budget rests on: 16384 inodes that each wrote once, went
// through two mode transitions and have a kernel entry fit in a few MB.
TEST(StateModelMemory, SixteenThousandIdleInodesStaySmall) {
    const size_t before = mallinfo2().uordblks;
    {
        ModelOptions o;
        o.max_inodes = 16384;
        StateModel model(o);
        std::vector<InodeCounters> cs;
        for (uint64_t i = 0; i < 16384; ++i) {
            InodeCounters c = counters(key(i), 1 + i, 2 + i);
            c.writes[0] = 1;
            c.write_bytes[0] = 4096;
            c.write_service_ns[0] = 20000;
            c.iocachectr = -1; // the writer itself, as the write path saw it
            cs.push_back(c);
        }
        model.on_counters(cs, 1 * kSec);
        cs.clear();
        cs.shrink_to_fit();
        model.on_census({}, 2 * kSec);          // nobody has them open: parallel -> none
        model.on_counter_changes({}, 3 * kSec); // idle since
        const size_t used = mallinfo2().uordblks - before;
        EXPECT_EQ(model.snapshot().stats.inodes, 16384u);
        // ~500 bytes each (was ~2.3 KB with full histograms and a copy of the kernel values).
        EXPECT_LT(used / 16384, 600u) << used << " bytes for 16384 inodes";
    }
}

// Transitions are stored packed; what views get must be what was recorded.
TEST(StateModelCompact, TransitionsRoundTrip) {
    StateModel model;
    const std::string comm16 = "sixteen-chars-xy"; // TASK_COMM_LEN without the NUL
    ASSERT_EQ(comm16.size(), 16u);
    // parallel(2) -> cached while draining (bit set, ctr still < 0) -> cached(1) -> none
    model.on_event(event(EventType::ModeSeen, key(1), 10, 0, -2, 7, "w"));
    model.on_event(event(EventType::Open, key(1), 20, evflag::EnteredCache, -1, 8, comm16, 0x1));
    model.on_event(
        event(EventType::Open, key(1), 30, evflag::Holder | evflag::EnteredCache, 1, 9, "db", 0x2));
    model.on_event(event(EventType::Release, key(1), 40, evflag::WasHolder | evflag::LeftCache, 0,
                         9, "db", 0x2));
    const Snapshot snap = model.snapshot();
    const auto &tr = snap.find(key(1))->transitions;
    ASSERT_EQ(tr.size(), 3u);
    EXPECT_EQ(tr[0].from.kind, ModeKind::None);
    EXPECT_EQ(tr[0].to, derive_io_mode(-2, false, false, true));
    EXPECT_EQ(tr[0].to.count, 2u);
    EXPECT_EQ(tr[0].comm, "w");
    EXPECT_EQ(tr[1].from, derive_io_mode(-2, false, false, true));
    EXPECT_EQ(tr[1].to, derive_io_mode(-1, true, false, true));
    EXPECT_TRUE(tr[1].to.draining());
    EXPECT_EQ(tr[1].comm, comm16);
    EXPECT_EQ(tr[1].pid, 8u);
    EXPECT_EQ(tr[1].ts_ns, 20u);
    EXPECT_EQ(tr[1].cause, TransitionCause::Open);
    EXPECT_EQ(tr[2].from, derive_io_mode(1, true, false, true));
    EXPECT_EQ(tr[2].to, derive_io_mode(0, false, false, true));
    EXPECT_EQ(tr[2].cause, TransitionCause::Release);
}
