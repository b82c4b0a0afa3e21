#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "fusescope/model/state_model.h"
#include "model_test_util.h"

using namespace fusescope;
using namespace fusescope::test;

TEST(StateModelCounters, LruRecreationRebasesInsteadOfGoingNegative) {
    StateModel model;
    InodeCounters c = counters(key(1), 10, 20);
    c.writes[0] = 500;
    model.on_counters({c}, 1 * kSec);
    c.writes[0] = 700;
    model.on_counters({c}, 2 * kSec);
    EXPECT_EQ(model.snapshot().find(key(1))->interval.writes[0], 200u);

    // Kernel entry evicted and re-created: value went down.
    c.writes[0] = 30;
    model.on_counters({c}, 3 * kSec);
    auto s = model.snapshot();
    EXPECT_EQ(s.find(key(1))->interval.writes[0], 30u);
    EXPECT_EQ(s.find(key(1))->total.writes[0], 730u);
    EXPECT_EQ(s.find(key(1))->counter_resets, 1u);

    // Re-created and already grown past the old value: first_seen_ns tells.
    c.first_seen_ns = 5000;
    c.writes[0] = 900;
    model.on_counters({c}, 4 * kSec);
    s = model.snapshot();
    EXPECT_EQ(s.find(key(1))->interval.writes[0], 900u);
    EXPECT_EQ(s.find(key(1))->total.writes[0], 1630u);
    EXPECT_EQ(s.stats.counter_resets, 2u);

    // Missing from a dump = kernel entry evicted; when it comes back (even with
    // the same first_seen and a larger value) it is a fresh entry.
    model.on_counters({}, 5 * kSec);
    c.writes[0] = 950;
    model.on_counters({c}, 6 * kSec);
    s = model.snapshot();
    EXPECT_EQ(s.find(key(1))->interval.writes[0], 950u);
    EXPECT_EQ(s.find(key(1))->total.writes[0], 2580u);
}

TEST(StateModelCounters, HistogramsTotalAndInterval) {
    StateModel model;
    InodeCounters c = counters(key(1), 10, 20);
    c.contention_hist[0][10] = 4;
    model.on_counters({c}, 1 * kSec);
    c.contention_hist[0][10] = 6;
    c.contention_hist[1][12] = 1;
    model.on_counters({c}, 2 * kSec);
    auto v = *model.snapshot().find(key(1));
    EXPECT_EQ(v.total.contention_hist[0].slots[10], 6u);
    EXPECT_EQ(v.interval.contention_hist[0].slots[10], 2u);
    EXPECT_EQ(v.interval.contention_hist[1].slots[12], 1u);
    EXPECT_EQ(v.interval.wait_hist().count(), 3u);
}

TEST(StateModelCounters, AbsentFromLastReadMeansZeroInterval) {
    StateModel model;
    InodeCounters a = counters(key(1), 10, 20), b = counters(key(2), 10, 20);
    a.writes[0] = b.writes[0] = 5;
    model.on_counters({a, b}, 1 * kSec);
    model.on_counters({b}, 2 * kSec);
    auto s = model.snapshot();
    EXPECT_TRUE(s.find(key(1))->interval.is_zero());
    EXPECT_EQ(s.find(key(1))->total.writes[0], 5u);
}

TEST(StateModelEvents, OpenAndMmapHoldersAndRelease) {
    StateModel model;
    const InodeKey k = key(3);
    model.on_event(event(EventType::Open, k, 100, evflag::Holder | evflag::EnteredCache, 1, 10,
                         "cat", 0xf1, 1));
    model.on_event(event(EventType::Mmap, k, 200,
                         evflag::Holder | evflag::SharedMap | evflag::WritableMap, 2, 11, "idx",
                         0xf2, 2));
    model.on_event(
        event(EventType::Mmap, k, 250, 0, 2, 12, "ro", 0xf3, 3)); // private map: no holder
    auto v = *model.snapshot().find(k);
    EXPECT_EQ(v.mode.kind, ModeKind::Cached);
    EXPECT_EQ(v.mode.count, 2u);
    ASSERT_EQ(v.holders.size(), 2u);
    EXPECT_EQ(v.holders[0].how, HolderHow::Open);
    EXPECT_EQ(v.holders[0].comm, "cat");
    EXPECT_EQ(v.holders[0].since_ns, 100u);
    EXPECT_FALSE(v.holders[0].since_is_lower_bound);
    EXPECT_EQ(v.holders[1].how, HolderHow::Mmap);
    EXPECT_EQ(v.mmaps_shared, 1u);
    EXPECT_EQ(v.mmaps_private, 1u);
    EXPECT_EQ(v.mmaps_writable, 1u);
    EXPECT_FALSE(v.holders_unknown);
    EXPECT_FALSE(model.needs_census());

    // Release matched by fh when file_id is missing.
    model.on_event(event(EventType::Release, k, 300, evflag::WasHolder, 1, 10, "cat", 0, 1));
    v = *model.snapshot().find(k);
    ASSERT_EQ(v.holders.size(), 1u);
    EXPECT_EQ(v.holders[0].comm, "idx");
    EXPECT_EQ(v.mode.count, 1u);
}

TEST(StateModelEvents, AmbiguousReleaseMarksStale) {
    StateModel model;
    const InodeKey k = key(4);
    model.on_event(event(EventType::Open, k, 100, evflag::Holder, 1, 10, "a", 0xf1, 7));
    model.on_event(event(EventType::Open, k, 110, evflag::Holder, 2, 11, "b", 0xf2, 7)); // same fh
    model.on_event(event(EventType::Release, k, 120, evflag::WasHolder, 1, 0, "", 0, 7));
    auto v = *model.snapshot().find(k);
    EXPECT_EQ(v.holders.size(), 2u); // removed none
    EXPECT_TRUE(v.holders_stale);
    EXPECT_TRUE(model.needs_census());

    // The census settles it, keeping the survivor's original since.
    model.on_census({file_rec(k, 11, "b", 0xf2, FileIoMode::Cached, 1, true)}, 200);
    v = *model.snapshot().find(k);
    ASSERT_EQ(v.holders.size(), 1u);
    EXPECT_EQ(v.holders[0].comm, "b");
    EXPECT_EQ(v.holders[0].since_ns, 110u);
    EXPECT_FALSE(v.holders[0].since_is_lower_bound);
    EXPECT_FALSE(v.holders_stale);
    EXPECT_FALSE(model.needs_census());
}

TEST(StateModelEvents, DrainWaitsAndCensusHint) {
    StateModel model;
    const InodeKey k = key(5);
    for (int i = 0; i < 20; ++i)
        model.on_event(event(EventType::DrainWait, k, 100 + static_cast<uint64_t>(i), 0, -2,
                             static_cast<uint32_t>(i), "opener", 0, 0));
    Event e = event(EventType::DrainWait, k, 500, evflag::CensusHint, -1, 99, "last");
    e.wait_ns = 2 * kMs;
    model.on_event(e);
    auto v = *model.snapshot().find(k);
    EXPECT_EQ(v.drain_events, 21u);
    EXPECT_EQ(v.drain_events_ns, 2 * kMs);
    ASSERT_EQ(v.last_drain_waiters.size(), 8u);
    EXPECT_EQ(v.last_drain_waiters.back().comm, "last");
    EXPECT_TRUE(model.needs_census());
}

TEST(StateModelEvents, WriteEventKeepsLastWriteAndTransitionsAreBounded) {
    StateModel model;
    const InodeKey k = key(6);
    for (int i = 0; i < 40; ++i) {
        const uint64_t t = 1000 * static_cast<uint64_t>(i + 1);
        Event w = event(EventType::Write, k, t, 0, i % 2 ? 1 : -1);
        w.reason = i % 2 ? WriteReason::CacheIoMode : WriteReason::Shared;
        model.on_event(w);
    }
    auto v = *model.snapshot().find(k);
    EXPECT_EQ(v.last_write_ns, 40000u);
    EXPECT_EQ(v.transitions.size(), 16u);
    EXPECT_EQ(v.transitions.back().cause, TransitionCause::WriteSeen);
    EXPECT_TRUE(v.total.is_zero()); // events never feed counters
}

TEST(StateModelEvents, OlderObservationDoesNotOverrideNewer) {
    StateModel model;
    const InodeKey k = key(8);
    model.on_event(
        event(EventType::Open, k, 500, evflag::Holder | evflag::EnteredCache, 1, 1, "a", 0xf1));
    InodeCounters c = counters(k, 10, 400); // last write before the open
    c.iocachectr = -3;
    model.on_counters({c}, 600);
    EXPECT_EQ(model.snapshot().find(k)->mode.kind, ModeKind::Cached);
}

TEST(StateModelCensus, RebuildsHoldersAndClearsAbsentInodes) {
    StateModel model;
    const InodeKey a = key(10), b = key(11);
    model.on_event(event(EventType::Open, b, 50, evflag::Holder, 1, 1, "gone", 0xb1));
    std::vector<CensusRecord> recs = {
        file_rec(a, 300, "reader", 0xa1, FileIoMode::Cached, 2, true),
        file_rec(a, 301, "writer", 0xa2, FileIoMode::None, 2, true),
        file_rec(a, 302, "mapper", 0xa3, FileIoMode::Cached, 2, true),
        vma_rec(a, 303, "child", 0xa3, 2, true), // mmapping process differs from the opener
    };
    model.on_census(recs, 1000);
    auto s = model.snapshot();
    const InodeView *va = s.find(a);
    ASSERT_NE(va, nullptr);
    EXPECT_EQ(va->mode.kind, ModeKind::Cached);
    ASSERT_EQ(va->holders.size(), 2u);
    EXPECT_EQ(va->holders[0].comm, "reader");
    EXPECT_EQ(va->holders[0].how, HolderHow::Open);
    EXPECT_EQ(va->holders[1].pid, 303u);
    EXPECT_EQ(va->holders[1].how, HolderHow::Mmap);
    EXPECT_TRUE(va->holders[1].since_is_lower_bound);
    EXPECT_EQ(va->transitions.back().cause, TransitionCause::Census);
    // b has no open file any more: its holder is gone and it is no longer cached.
    const InodeView *vb = s.find(b);
    ASSERT_NE(vb, nullptr);
    EXPECT_TRUE(vb->holders.empty());
    EXPECT_EQ(vb->mode.kind, ModeKind::None);
    EXPECT_EQ(s.stats.census_runs, 1u);
}

TEST(StateModelCensus, PassthroughFromCensus) {
    StateModel model;
    const InodeKey k = key(12);
    model.on_census({file_rec(k, 1, "pt", 0xc1, FileIoMode::Uncached, -1, false)}, 100);
    auto v = *model.snapshot().find(k);
    EXPECT_EQ(v.mode.kind, ModeKind::Passthrough);
    EXPECT_EQ(v.passthrough_files, 1u);
}

TEST(StateModelOptions, NoIoModes) {
    ModelOptions o;
    o.io_modes_available = false;
    StateModel model(o);
    model.on_event(event(EventType::Open, key(1), 10, evflag::Holder, 1, 1, "x", 1));
    auto v = *model.snapshot().find(key(1));
    EXPECT_EQ(v.mode.kind, ModeKind::NotAvailable);
    EXPECT_TRUE(v.holders.empty());
    EXPECT_FALSE(model.needs_census());
}

TEST(StateModelOptions, DevFilter) {
    ModelOptions o;
    o.devs = {kDev};
    StateModel model(o);
    InodeCounters in = counters(key(1), 1, 2), out = counters(key(2, kernel_dev(0, 99)), 1, 2);
    model.on_counters({in, out}, 10);
    model.on_event(event(EventType::Open, key(3, kernel_dev(0, 99)), 10, evflag::Holder, 1));
    model.on_census({file_rec(key(4, kernel_dev(0, 99)), 1, "x", 1, FileIoMode::Cached, 1, true)},
                    20);
    auto s = model.snapshot();
    ASSERT_EQ(s.inodes.size(), 1u);
    EXPECT_EQ(s.inodes[0].key, key(1));
    EXPECT_EQ(s.stats.events_filtered, 1u);
}

TEST(StateModelOptions, PidFilterListsInodesThePidTouched) {
    ModelOptions o;
    o.pid = 4242;
    StateModel model(o);
    InodeCounters c1 = counters(key(1), 1, 2), c2 = counters(key(2), 1, 2);
    c1.writes[0] = c2.writes[0] = 10;
    model.on_counters({c1, c2}, 10);
    model.on_event(event(EventType::Mmap, key(2), 20, evflag::Holder | evflag::SharedMap, 1, 4242,
                         "indexer", 9));
    model.on_event(event(EventType::Open, key(1), 30, evflag::Holder, 1, 77, "other", 8));
    auto s = model.snapshot();
    ASSERT_EQ(s.inodes.size(), 1u);
    EXPECT_EQ(s.inodes[0].key, key(2));
    EXPECT_EQ(s.inodes[0].total.writes[0], 10u); // counters are per inode, all pids
    EXPECT_EQ(s.stats.inodes, 2u);               // still tracked
}

TEST(StateModelBounds, StaysBoundedUnderMillionInodeChurn) {
    StateModel model; // default 65536
    const InodeKey cached = key(1);
    model.on_event(event(EventType::Open, cached, 1, evflag::Holder | evflag::EnteredCache, 1, 5,
                         "holder", 0xaa));
    std::vector<InodeCounters> batch;
    uint64_t ino = 100;
    for (int round = 0; round < 1000; ++round) {
        batch.clear();
        for (int i = 0; i < 1000; ++i) {
            InodeCounters c = counters(key(ino++), 1, 2);
            c.writes[1] = 1;
            batch.push_back(c);
        }
        model.on_counters(batch, static_cast<uint64_t>(round + 1) * kSec);
    }
    auto s = model.snapshot();
    EXPECT_EQ(s.stats.inodes, 65536u);
    EXPECT_EQ(s.inodes.size(), 65536u);
    EXPECT_EQ(s.stats.evictions, 1'000'001u - 65536u);
    EXPECT_EQ(s.stats.forced_evictions, 0u);
    ASSERT_NE(s.find(cached), nullptr); // the cached-mode inode survived
    EXPECT_EQ(s.find(cached)->holders.size(), 1u);
    EXPECT_NE(s.find(key(ino - 1)), nullptr); // newest kept
    EXPECT_EQ(s.find(key(100)), nullptr);     // oldest gone
}

TEST(StateModelBounds, ForcedEvictionWhenEverythingIsCached) {
    ModelOptions o;
    o.max_inodes = 4;
    StateModel model(o);
    for (uint64_t i = 0; i < 10; ++i)
        model.on_event(event(EventType::Open, key(i), i + 1, evflag::Holder, 1, 1, "h", 0x100 + i));
    auto s = model.snapshot();
    EXPECT_EQ(s.stats.inodes, 4u);
    EXPECT_EQ(s.stats.forced_evictions, 6u);
}

TEST(StateModelThreads, SnapshotWhileUpdating) {
    StateModel model;
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        while (!stop.load()) {
            auto s = model.snapshot();
            for (const auto &v : s.inodes)
                ASSERT_LE(v.holders.size(), 2u);
        }
    });
    for (uint64_t i = 0; i < 20000; ++i) {
        const InodeKey k = key(i % 50);
        model.on_event(event(EventType::Open, k, i * 10 + 1, evflag::Holder, 1, 1, "h", 0x10));
        model.on_event(event(EventType::Release, k, i * 10 + 2,
                             evflag::WasHolder | evflag::LeftCache, 0, 1, "h", 0x10));
        if (i % 100 == 0) {
            InodeCounters c = counters(k, 1, i * 10 + 3);
            c.writes[0] = i;
            model.on_counters({c}, i * 10 + 4);
        }
    }
    stop = true;
    reader.join();
    EXPECT_EQ(model.snapshot().stats.inodes, 50u);
}

TEST(StateModelPaths, SetPathAndResolveOnlyUnknown) {
    StateModel model;
    model.on_census({file_rec(key(1), 10, "a", 1, FileIoMode::None, 0, false, 4),
                     file_rec(key(2), 11, "b", 2, FileIoMode::None, 0, false, 5)},
                    100);
    model.set_path(key(1), "/known");
    int calls = 0;
    model.resolve_paths_from_census(
        {file_rec(key(1), 10, "a", 1, FileIoMode::None, 0, false, 4),
         file_rec(key(2), 11, "b", 2, FileIoMode::None, 0, false, 5),
         file_rec(key(2), 12, "c", 3, FileIoMode::None, 0, false, 6),
         file_rec(key(99), 13, "unknown-inode", 4, FileIoMode::None, 0, false, 7)},
        [&](uint32_t pid, uint32_t fd) -> std::optional<std::string> {
            ++calls;
            return "/p/" + std::to_string(pid) + "/" + std::to_string(fd);
        });
    auto s = model.snapshot();
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(s.find(key(1))->path, "/known");
    EXPECT_EQ(s.find(key(2))->path, "/p/11/5");
}

namespace fusescope::test {
namespace {

// One program run again and again (one process per run) holding one file: a single
// program with every process counted and each hold ended by its own release. The
// releases carry no file (the tracepoint backend's FUSE_RELEASE) and the server gives
// every open the same fh: only the release identity tells them apart.
TEST(StateModelPrograms, RepeatedProcessesAreOneProgramHeldToTheirOwnRelease) {
    StateModel m;
    const InodeKey k = key(7);
    const InodeKey exe{2049, 555};
    uint64_t t = 10 * kSec;
    for (uint32_t i = 0; i < 35; ++i) {
        Event mm =
            event(EventType::Mmap, k, t, evflag::Holder | evflag::SharedMap | evflag::EnteredCache,
                  1, 1000 + i, "rg", 0xa000 + i, 16);
        mm.exe = exe;
        mm.release_id = 0xb000 + i;
        mm.cgroup_id = 77;
        m.on_event(mm);
        Event rel = event(EventType::Release, k, t + 10 * kMs,
                          evflag::WasHolder | evflag::LeftCache, 0, 0, "kworker/0:1", 0, 16);
        rel.release_id = 0xb000 + i;
        m.on_event(rel);
        t += 100 * kMs;
    }
    m.set_exe_path(exe, "/usr/bin/rg");
    m.set_cgroup_path(77, "/system.slice/indexer.service");
    const Snapshot s = m.snapshot();
    const InodeView *iv = s.find(k);
    ASSERT_NE(iv, nullptr);
    EXPECT_TRUE(iv->holders.empty());
    ASSERT_EQ(iv->holder_programs.size(), 1u);
    const HolderProgram &p = iv->holder_programs[0];
    EXPECT_EQ(p.program.comm, "rg");
    EXPECT_EQ(p.program.exe, "/usr/bin/rg");
    EXPECT_EQ(p.program.where.unit, "indexer.service");
    EXPECT_EQ(p.program.processes, 35u);
    EXPECT_EQ(p.program.pids, (std::vector<uint32_t>{1000, 1001, 1002, 1003, 1004}));
    EXPECT_EQ(p.how, "mmap");
    EXPECT_EQ(p.holds, 35u);
    EXPECT_EQ(p.entered_cache, 35u);
    EXPECT_EQ(p.holding_now, 0u);
    EXPECT_EQ(p.total_held_ns, 35 * 10 * kMs); // not overlapping, not to the window's end
    EXPECT_EQ(p.longest_held_ns, 10 * kMs);
    EXPECT_FALSE(p.since_at_least);
}

// The trampoline backend's releases carry the open file itself.
TEST(StateModelPrograms, ReleaseByFileEndsOnlyItsHolder) {
    StateModel m;
    const InodeKey k = key(8);
    m.on_event(event(EventType::Open, k, 1 * kSec, evflag::Holder | evflag::EnteredCache, 1, 10,
                     "cat", 0x1, 5));
    m.on_event(event(EventType::Open, k, 2 * kSec, evflag::Holder, 2, 11, "cat", 0x2, 5));
    m.on_event(event(EventType::Release, k, 4 * kSec, evflag::WasHolder, 1, 10, "cat", 0x1, 5));
    m.on_event(event(EventType::Write, k, 9 * kSec, 0, 1)); // now: 9 s
    const Snapshot s = m.snapshot();
    const InodeView *iv = s.find(k);
    ASSERT_NE(iv, nullptr);
    ASSERT_EQ(iv->holders.size(), 1u);
    EXPECT_EQ(iv->holders[0].pid, 11u);
    ASSERT_EQ(iv->holder_programs.size(), 1u);
    const HolderProgram &p = iv->holder_programs[0];
    EXPECT_EQ(p.program.processes, 2u);
    EXPECT_EQ(p.holds, 2u);
    EXPECT_EQ(p.entered_cache, 1u);
    EXPECT_EQ(p.holding_now, 1u);
    EXPECT_EQ(p.total_held_ns, 3 * kSec + 7 * kSec); // 1..4 s ended, 2..9 s so far
    EXPECT_EQ(p.longest_held_ns, 7 * kSec);
}

// A census that saw the holder before its event was read: the event has the real start.
TEST(StateModelPrograms, EventAfterCensusGivesTheRealStart) {
    StateModel m;
    const InodeKey k = key(9);
    m.on_census({file_rec(k, 20, "vmtouch", 0x9, FileIoMode::Cached, 1, true)}, 5 * kSec);
    m.on_event(event(EventType::Mmap, k, 4 * kSec,
                     evflag::Holder | evflag::SharedMap | evflag::EnteredCache, 1, 20, "vmtouch",
                     0x9, 1));
    const Snapshot s = m.snapshot();
    const HolderProgram &p = s.find(k)->holder_programs.at(0);
    EXPECT_EQ(p.holds, 1u);
    EXPECT_EQ(p.entered_cache, 1u);
    EXPECT_EQ(p.how, "mmap");
    EXPECT_FALSE(p.since_at_least);
    EXPECT_EQ(s.find(k)->holders.at(0).since_ns, 4 * kSec);
}

// Opens for writing name the writers; kernel names fill paths no descriptor gave.
TEST(StateModelPrograms, WritersAndKernelPaths) {
    StateModel m;
    const InodeKey k = key(10);
    Event o = event(EventType::Open, k, kSec, evflag::WriteOpen, 0, 30, "mariadbd", 0x3, 1);
    o.exe = InodeKey{2049, 1};
    m.on_event(o);
    o.pid = 31;
    m.on_event(o);
    auto wanted = m.names_wanted();
    EXPECT_EQ(wanted.exes.size(), 1u);
    ASSERT_EQ(wanted.paths.size(), 1u);
    EXPECT_EQ(wanted.paths[0], k);
    m.set_kernel_path(k, "/mnt/db/ib_data1", kSec);
    EXPECT_TRUE(m.names_wanted().paths.empty()); // asked once
    Snapshot s = m.snapshot();
    const InodeView *iv = s.find(k);
    ASSERT_EQ(iv->writers.size(), 1u);
    EXPECT_EQ(iv->writers[0].program.processes, 2u);
    EXPECT_EQ(iv->writers[0].opens, 2u);
    EXPECT_EQ(iv->path, "/mnt/db/ib_data1");
    EXPECT_EQ(iv->path_source, PathSource::Kernel);
    // a census's descriptor is current: it replaces the kernel's name
    m.resolve_paths_from_census({file_rec(k, 30, "mariadbd", 0x3, FileIoMode::None, 0, false)},
                                [](uint32_t, uint32_t) { return std::string("/mnt/db/renamed"); });
    s = m.snapshot();
    EXPECT_EQ(s.find(k)->path, "/mnt/db/renamed");
    EXPECT_EQ(s.find(k)->path_source, PathSource::OpenFd);
    m.set_kernel_path(k, "/mnt/db/ib_data1", 2 * kSec); // and is not overwritten by it
    EXPECT_EQ(m.snapshot().find(k)->path, "/mnt/db/renamed");
}

// Threads of one process that named themselves (a database's writer threads) are one
// program, not one per thread name; another process with another name is another.
TEST(StateModelPrograms, ThreadsOfOneProcessAreOneProgram) {
    StateModel m;
    const InodeKey k = key(11);
    const InodeKey exe{2049, 7};
    for (const char *comm : {"mariadbd", "ib_io_wr-1", "ib_io_wr-2"}) {
        Event o = event(EventType::Open, k, kSec, evflag::WriteOpen, 0, 40, comm, 0x4, 1);
        o.exe = exe;
        m.on_event(o);
    }
    Event other = event(EventType::Open, k, kSec, evflag::WriteOpen, 0, 41, "ib_io_wr-3", 0x5, 1);
    other.exe = exe;
    m.on_event(other);
    const Snapshot s = m.snapshot();
    const InodeView *iv = s.find(k);
    ASSERT_NE(iv, nullptr);
    ASSERT_EQ(iv->writers.size(), 2u);
    EXPECT_EQ(iv->writers[0].program.comm, "mariadbd");
    EXPECT_EQ(iv->writers[0].program.processes, 1u);
    EXPECT_EQ(iv->writers[0].opens, 3u);
    EXPECT_EQ(iv->writers[1].program.comm, "ib_io_wr-3");
    EXPECT_EQ(iv->writers[1].opens, 1u);
}

} // namespace
} // namespace fusescope::test

TEST(StateModelViews, BriefViewsRankAndOnlyTheKeptOnesAreMadeFull) {
    StateModel model;
    model.on_event(event(EventType::Open, key(1), 100, evflag::Holder | evflag::EnteredCache, 1, 10,
                         "cat", 0xf1, 1));
    model.on_event(event(EventType::Open, key(2), 110, evflag::Holder | evflag::EnteredCache, 1, 11,
                         "idx", 0xf2, 2));
    InodeCounters c = counters(key(2), 10, 20);
    c.writes[0] = 7;
    c.contention_hist[0][10] = 3;
    model.on_counter_changes({{c}, {}}, 1 * kSec);
    std::vector<InodeView> seen;
    model.snapshot_each([&](InodeView &&iv) { seen.push_back(std::move(iv)); }, ViewDetail::Brief);
    ASSERT_EQ(seen.size(), 2u);
    for (const auto &iv : seen) {
        EXPECT_TRUE(iv.holders.empty()); // what a brief view leaves out
        EXPECT_TRUE(iv.holder_programs.empty());
        EXPECT_TRUE(iv.transitions.empty());
        EXPECT_TRUE(iv.total.wait_hist().empty());
        EXPECT_EQ(iv.mode.kind, ModeKind::Cached); // what it keeps
    }
    // keep only inode 2: it comes back full, inode 1 was never made full
    std::vector<InodeView> kept;
    size_t taken = 0;
    model.snapshot_ranked(
        [&](InodeView &&iv) {
            ++taken;
            if (iv.key == key(2))
                kept.push_back(std::move(iv));
        },
        [&] { return std::vector<InodeView *>{&kept[0]}; });
    EXPECT_EQ(taken, 2u);
    ASSERT_EQ(kept.size(), 1u);
    ASSERT_EQ(kept[0].holders.size(), 1u);
    EXPECT_EQ(kept[0].holders[0].comm, "idx");
    EXPECT_FALSE(kept[0].transitions.empty());
    EXPECT_EQ(kept[0].interval.writes[0], 7u);
    EXPECT_EQ(kept[0].total.wait_hist().count(), 3u);
    const Snapshot of = model.snapshot_of({key(2), key(9)}); // 9: not tracked
    ASSERT_EQ(of.inodes.size(), 1u);
    EXPECT_EQ(of.inodes[0].holders.size(), 1u);
}

TEST(StateModelViews, GenerationStandsOnlyWhileNoViewCanChange) {
    StateModel model;
    InodeCounters c = counters(key(1), 10, 20);
    c.writes[0] = 3;
    uint64_t g = model.generation();
    model.on_counter_changes({{c}, {}}, 1 * kSec);
    EXPECT_NE(model.generation(), g) << "a read that changed an inode";
    g = model.generation();
    model.on_counter_changes({}, 2 * kSec);
    EXPECT_NE(model.generation(), g) << "the first idle read clears the last interval";
    g = model.generation();
    model.on_counter_changes({}, 3 * kSec);
    model.on_health(Health{});
    (void)model.names_wanted();
    EXPECT_EQ(model.generation(), g) << "idle reads, health, names asked: no view changes";
    EXPECT_EQ(model.snapshot().generation, g);
    model.on_counter_changes({{}, {key(1)}}, 4 * kSec);
    EXPECT_NE(model.generation(), g) << "a kernel entry gone";
    g = model.generation();
    model.on_event(event(EventType::Mmap, key(1), 5 * kSec, 0, 0));
    EXPECT_NE(model.generation(), g) << "an event";
    g = model.generation();
    model.set_path(key(1), "/mnt/f");
    EXPECT_NE(model.generation(), g) << "a path";
    g = model.generation();
    model.on_census({}, 6 * kSec);
    EXPECT_NE(model.generation(), g) << "a census";
}
