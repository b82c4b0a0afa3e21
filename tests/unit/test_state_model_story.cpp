// The motivating story: a database writes one file with parallel direct IO;
// an indexer mmaps it shared and silently serialises every write.
#include <gtest/gtest.h>

#include "fusescope/model/state_model.h"
#include "model_test_util.h"

using namespace fusescope;
using namespace fusescope::test;

TEST(StateModelStory, DbAndIndexer) {
    StateModel model;
    const InodeKey db = key(7);
    Mounts mounts = Mounts::parse("36 22 0:45 / /srv/db rw - fuse.testfs testfs rw\n");
    model.set_mounts(mounts);

    // t=1s: 800 shared writes, no contention to speak of.
    InodeCounters c = counters(db, 100 * kMs, 900 * kMs);
    c.writes[0] = 800;
    c.write_bytes[0] = 800 * 65536;
    c.write_wait_ns[0] = 800 * 1000;
    c.iocachectr = -4; // 4 writers were inside the shared section at the last write
    model.on_counters({c}, 1 * kSec);
    {
        auto s = model.snapshot();
        const InodeView *v = s.find(db);
        ASSERT_NE(v, nullptr);
        EXPECT_EQ(v->mount_point, "/srv/db");
        EXPECT_EQ(v->nodeid, 1007u);
        EXPECT_EQ(v->total.shared_writes(), 800u);
        EXPECT_EQ(v->interval.shared_writes(), 800u); // first sighting counts in full
        EXPECT_EQ(v->mode.kind, ModeKind::Parallel);
        EXPECT_EQ(v->mode.count, 4u);
        EXPECT_DOUBLE_EQ(v->exclusive_fraction(), 0.0);
        EXPECT_FALSE(v->top_exclusive_reason().has_value());
    }
    EXPECT_FALSE(model.needs_census());

    // t=1.5s: the kernel saw the inode enter cache mode (from a write path).
    model.on_event(event(EventType::ModeSeen, db, 1500 * kMs, evflag::EnteredCache, 1, 200, "db"));
    {
        auto s = model.snapshot();
        const InodeView *v = s.find(db);
        EXPECT_EQ(v->mode.kind, ModeKind::Cached);
        EXPECT_EQ(v->mode.count, 1u);
        EXPECT_TRUE(v->holders_unknown);
        EXPECT_TRUE(v->holders.empty());
    }
    EXPECT_TRUE(model.needs_census());

    // The caller runs a census: the indexer has a shared mapping; the db's
    // own direct-io opens are IOM_NONE.
    std::vector<CensusRecord> census = {
        file_rec(db, 200, "db", 0xd1, FileIoMode::None, 1, true, 5),
        file_rec(db, 4242, "indexer", 0xa1, FileIoMode::Cached, 1, true, 9),
        vma_rec(db, 4242, "indexer", 0xa1, 1, true),
    };
    model.on_census(census, 1600 * kMs);
    EXPECT_FALSE(model.needs_census());
    model.resolve_paths_from_census(census, [](uint32_t pid, uint32_t fd) -> std::optional<std::string> {
        if (pid == 200 && fd == 5)
            return "/srv/db/table.dat";
        return std::nullopt;
    });
    {
        auto s = model.snapshot();
        const InodeView *v = s.find(db);
        ASSERT_EQ(v->holders.size(), 1u);
        const Holder &h = v->holders[0];
        EXPECT_EQ(h.pid, 4242u);
        EXPECT_EQ(h.comm, "indexer");
        EXPECT_EQ(h.how, HolderHow::Mmap);
        EXPECT_EQ(h.file_id, 0xa1u);
        EXPECT_EQ(h.since_ns, 1600 * kMs);
        EXPECT_TRUE(h.since_is_lower_bound);
        EXPECT_FALSE(v->holders_unknown);
        EXPECT_EQ(v->path, "/srv/db/table.dat");
    }

    // t=2s: +300 exclusive writes because of cache io mode, with long waits.
    c.mode_seen_ns = 1900 * kMs;
    c.writes[3] = 300;
    c.write_bytes[1] = 300 * 65536;
    c.write_wait_ns[1] = 300 * 2 * kMs; // 0.6 s of waiting in a 1 s interval
    c.contentions[1] = 250;
    c.contention_hist[1][21] = 250; // ~2-4 ms
    c.iocachectr = 1;
    c.cache_io_mode = true;
    model.on_counters({c}, 2 * kSec);
    {
        auto s = model.snapshot();
        const InodeView *v = s.find(db);
        EXPECT_EQ(s.interval_ns, 1 * kSec);
        EXPECT_EQ(v->interval.shared_writes(), 0u);
        EXPECT_EQ(v->interval.exclusive_writes(), 300u);
        EXPECT_EQ(v->total.total_writes(), 1100u);
        EXPECT_NEAR(v->exclusive_fraction(), 300.0 / 1100.0, 1e-9);
        EXPECT_DOUBLE_EQ(v->exclusive_fraction(true), 1.0);
        EXPECT_EQ(v->top_exclusive_reason(), WriteReason::CacheIoMode);
        EXPECT_NEAR(v->wait_seconds_per_second(), 0.6, 1e-9);
        EXPECT_NEAR(v->writes_per_second(), 300.0, 1e-9);
        EXPECT_GE(v->wait_p50_ns(true), double(1 << 21));
        EXPECT_LE(v->wait_p99_ns(true), double(1 << 22));
        EXPECT_EQ(v->holders.size(), 1u); // unchanged by counters
        EXPECT_EQ(v->mode.kind, ModeKind::Cached);
    }

    // t=2.5s: the indexer unmaps and closes; the inode leaves cache mode.
    model.on_event(event(EventType::Release, db, 2500 * kMs, evflag::WasHolder | evflag::LeftCache, 0, 4242,
                         "indexer", 0xa1));
    {
        auto s = model.snapshot();
        const InodeView *v = s.find(db);
        EXPECT_EQ(v->mode.kind, ModeKind::None);
        EXPECT_TRUE(v->holders.empty());
        EXPECT_FALSE(v->holders_unknown);
        ASSERT_GE(v->transitions.size(), 3u);
        const auto &tr = v->transitions;
        // ... -> parallel (counters), parallel -> cached (write-seen), cached -> none (release)
        EXPECT_EQ(tr[tr.size() - 2].from.kind, ModeKind::Parallel);
        EXPECT_EQ(tr[tr.size() - 2].to.kind, ModeKind::Cached);
        EXPECT_EQ(tr[tr.size() - 2].cause, TransitionCause::WriteSeen);
        EXPECT_EQ(tr.back().from.kind, ModeKind::Cached);
        EXPECT_EQ(tr.back().to.kind, ModeKind::None);
        EXPECT_EQ(tr.back().cause, TransitionCause::Release);
        EXPECT_EQ(tr.back().pid, 4242u);
        EXPECT_EQ(tr.back().comm, "indexer");
    }

    // Re-reading the same counters (mode_seen unchanged) must not bring the
    // stale "cached" back: the release event is newer.
    model.on_counters({c}, 3 * kSec);
    {
        auto s = model.snapshot();
        const InodeView *v = s.find(db);
        EXPECT_EQ(v->mode.kind, ModeKind::None);
        EXPECT_TRUE(v->interval.is_zero());
        EXPECT_EQ(v->total.total_writes(), 1100u);
    }
}
