// fusescope top's pure logic: sorting, filtering, path shortening, holder
// formatting, column layout, batch text.
#include "fusescope/views/top_render.h"

#include "fusescope/model/state_model.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace fusescope;
using namespace fusescope::top;

namespace {

InodeView inode(uint64_t ino, std::string path, uint64_t wait_ns, uint64_t writes = 0) {
    InodeView iv;
    iv.key = {(0u << 20) | 53u, ino};
    iv.path = std::move(path);
    iv.mount_point = "/mnt/fuse";
    iv.interval_ns = 1'000'000'000;
    iv.interval.wait_ns[1] = wait_ns;
    iv.interval.writes[0] = writes;
    iv.total = iv.interval;
    return iv;
}

Holder holder(uint32_t pid, std::string comm, HolderHow how = HolderHow::Mmap) {
    Holder h;
    h.pid = pid;
    h.comm = std::move(comm);
    h.how = how;
    h.since_ns = 1;
    return h;
}

std::vector<uint64_t> inos(const std::vector<const InodeView *> &rows) {
    std::vector<uint64_t> out;
    for (auto *r : rows)
        out.push_back(r->key.ino);
    return out;
}

} // namespace

TEST(TopRender, SortKeysParseAndCycle) {
    EXPECT_EQ(parse_sort_key("wait"), SortKey::Wait);
    EXPECT_EQ(parse_sort_key("path"), SortKey::Path);
    EXPECT_FALSE(parse_sort_key("bogus"));
    for (int i = 0; i < kSortKeys; ++i) {
        auto k = static_cast<SortKey>(i);
        EXPECT_EQ(parse_sort_key(to_string(k)), k);
        EXPECT_EQ(next_sort_key(next_sort_key(k, 1), -1), k);
    }
    EXPECT_EQ(next_sort_key(SortKey::Mode, 1), SortKey::Wait);
    EXPECT_EQ(next_sort_key(SortKey::Wait, -1), SortKey::Mode);
}

TEST(TopRender, SortsByWaitThenTotalThenKey) {
    Snapshot s;
    s.inodes = {inode(1, "/mnt/fuse/a", 10), inode(2, "/mnt/fuse/b", 500),
                inode(3, "/mnt/fuse/c", 0), inode(4, "/mnt/fuse/d", 0)};
    s.inodes[3].total.wait_ns[0] = 99; // idle now, but waited before: above the never-waited
    EXPECT_EQ(inos(order_rows(s, SortKey::Wait, false, {})), (std::vector<uint64_t>{2, 1, 4, 3}));
    EXPECT_EQ(inos(order_rows(s, SortKey::Wait, true, {})), (std::vector<uint64_t>{3, 4, 1, 2}));
    EXPECT_EQ(inos(order_rows(s, SortKey::Path, false, {})), (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST(TopRender, SortsByModeAndExcl) {
    Snapshot s;
    s.inodes = {inode(1, "/a", 0, 10), inode(2, "/b", 0, 10), inode(3, "/c", 0, 10)};
    s.inodes[1].mode = {ModeKind::Cached, 1, 1, true};
    s.inodes[2].mode = {ModeKind::Parallel, 2, -2, false};
    EXPECT_EQ(inos(order_rows(s, SortKey::Mode, false, {})), (std::vector<uint64_t>{2, 3, 1}));
    s.inodes[2].interval.writes[3] = 30; // 75% exclusive
    EXPECT_EQ(order_rows(s, SortKey::Excl, false, {}).front()->key.ino, 3u);
}

TEST(TopRender, SelectionFollowsTheInode) {
    Snapshot s;
    s.inodes = {inode(1, "/a", 10), inode(2, "/b", 20), inode(3, "/c", 30)};
    std::optional<InodeKey> sel;
    auto rows = order_rows(s, SortKey::Wait, false, {}); // 3 2 1
    EXPECT_EQ(follow_selection(rows, &sel, 0), 0);
    ASSERT_TRUE(sel);
    EXPECT_EQ(sel->ino, 3u);
    sel = s.inodes[1].key; // select ino 2 (row 1), then reverse: 1 2 3 -> still ino 2, row 1
    rows = order_rows(s, SortKey::Wait, true, {});
    EXPECT_EQ(follow_selection(rows, &sel, 1), 1);
    sel = s.inodes[0].key; // ino 1 moves from row 0 to row 2 when the order flips back
    rows = order_rows(s, SortKey::Wait, false, {});
    EXPECT_EQ(follow_selection(rows, &sel, 0), 2);
    EXPECT_EQ(sel->ino, 1u);
    rows = order_rows(s, SortKey::Wait, false, {"/b", ""}); // ino 1 filtered out
    EXPECT_EQ(follow_selection(rows, &sel, 2), 0);
    EXPECT_EQ(sel->ino, 2u);
    rows = order_rows(s, SortKey::Wait, false, {"nothing", ""});
    EXPECT_EQ(follow_selection(rows, &sel, 0), -1);
    EXPECT_FALSE(sel);
}

TEST(TopRender, FiltersByPathAndMount) {
    Snapshot s;
    s.inodes = {inode(1, "/mnt/fuse/db", 1), inode(2, "/mnt/fuse/log", 2)};
    s.inodes[1].mount_point = "/srv/other";
    EXPECT_EQ(inos(order_rows(s, SortKey::Wait, false, {"db", ""})), (std::vector<uint64_t>{1}));
    EXPECT_EQ(inos(order_rows(s, SortKey::Wait, false, {"", "other"})), (std::vector<uint64_t>{2}));
    EXPECT_TRUE(order_rows(s, SortKey::Wait, false, {"db", "other"}).empty());
}

TEST(TopRender, DisplayPathFallsBackToInode) {
    InodeView iv = inode(42, "", 0);
    iv.key.dev = (1u << 20) | 7u;
    EXPECT_EQ(display_path(iv), "ino 42 (1:7)");
}

TEST(TopRender, ShortenPathKeepsFileName) {
    EXPECT_EQ(shorten_path("/a/b", 10), "/a/b");
    const std::string p = "/tmp/fusescope-testfs-abcdef/mnt/db";
    EXPECT_EQ(shorten_path(p, 16), "/tmp/.../mnt/db");
    EXPECT_EQ(shorten_path(p, 12), ".../mnt/db");
    EXPECT_EQ(shorten_path(p, 8), ".../db");
    EXPECT_EQ(shorten_path("/x/averyveryverylongfilename", 10), "...ilename");
    for (size_t w = 3; w < p.size() + 2; ++w)
        EXPECT_LE(shorten_path(p, w).size(), w) << w;
}

TEST(TopRender, HolderFormatting) {
    InodeView iv = inode(1, "/db", 0);
    EXPECT_EQ(format_holders(iv), "-");
    iv.mode = {ModeKind::Cached, 1, 1, true};
    EXPECT_EQ(format_holders(iv), "?");
    iv.holders = {holder(1234, "indexer")};
    EXPECT_EQ(format_holders(iv), "indexer:1234");
    iv.holders.push_back(holder(5, "cat", HolderHow::Open));
    iv.holders.push_back(holder(6, "less", HolderHow::Open));
    EXPECT_EQ(format_holders(iv), "indexer:1234 +2 more");
    EXPECT_EQ(format_holders(iv, 15), "indexer:1234 +2");
    EXPECT_EQ(format_holders(iv, 14), "index~:1234 +2");
    for (size_t w = 1; w < 25; ++w)
        EXPECT_LE(format_holders(iv, w).size(), w) << w;
}

TEST(TopRender, NumberFormatting) { // durations: tests/unit/test_format.cpp
    EXPECT_EQ(format_rate(0), "0");
    EXPECT_EQ(format_rate(1234), "1234");
    EXPECT_EQ(format_rate(12345), "12.3k");
}

TEST(TopRender, LayoutFitsEveryWidth) {
    for (size_t w = 60; w <= 300; ++w) {
        auto cols = layout_columns(w);
        size_t total = 0;
        for (auto &c : cols)
            total += c.width;
        total += cols.size() - 1;
        EXPECT_EQ(total, w) << w;
        EXPECT_EQ(format_table_header(cols, SortKey::Wait, false).size(), w);
    }
    auto has = [](const std::vector<Column> &cols, Col id) {
        for (auto &c : cols)
            if (c.id == id)
                return true;
        return false;
    };
    auto narrow = layout_columns(80);
    for (Col c : {Col::Path, Col::Mode, Col::Holders, Col::Wps, Col::Excl, Col::WaitSs})
        EXPECT_TRUE(has(narrow, c));
    auto wide = layout_columns(160);
    for (Col c : {Col::Mount, Col::Reason, Col::P50, Col::P99, Col::Drain})
        EXPECT_TRUE(has(wide, c));
}

TEST(TopRender, RowShowsModeHoldersAndExclusive) {
    InodeView iv = inode(7, "/mnt/fuse/db", 2'000'000'000, 10);
    iv.interval.writes[3] = 90; // cache_io_mode
    iv.mode = {ModeKind::Cached, 1, 1, true};
    iv.holders = {holder(4321, "indexer")};
    for (size_t w : {80u, 120u, 160u}) {
        auto cols = layout_columns(w);
        std::string row = format_row(iv, cols);
        EXPECT_EQ(row.size(), w);
        EXPECT_NE(row.find("cached(1)"), std::string::npos) << row;
        EXPECT_NE(row.find("indexer:4321"), std::string::npos) << row;
        EXPECT_NE(row.find(" 90 "), std::string::npos) << row;
        EXPECT_NE(row.find("2.00"), std::string::npos) << row;
    }
}

TEST(TopRender, BatchTextStartsWithHeaderAndListsRows) {
    Snapshot s;
    s.interval_ns = 1'000'000'000;
    s.inodes = {inode(1, "/mnt/fuse/a", 10, 5), inode(2, "/mnt/fuse/b", 500, 5)};
    s.health.events_lost = 3;
    HeaderInfo h;
    h.time = "12:00:00";
    h.backend = "trampoline";
    h.kernel = "6.9.0";
    h.mount = "/mnt/fuse";
    std::string t = batch_text(collect_rows(s, h.sort, h.reverse, {}, 0), h, 160);
    EXPECT_EQ(t.rfind("fusescope top - 12:00:00", 0), 0u) << t;
    EXPECT_NE(t.find("DROPPED: 3 events lost"), std::string::npos) << t;
    auto a = t.find("/mnt/fuse/a"), b = t.find("/mnt/fuse/b");
    ASSERT_NE(a, std::string::npos);
    ASSERT_NE(b, std::string::npos);
    EXPECT_LT(b, a); // more wait first
    EXPECT_EQ(t.back(), '\n');
}

TEST(TopRender, DetailPaneNamesHoldersAndTransitions) {
    InodeView iv = inode(7, "/mnt/fuse/db", 2000, 10);
    iv.mode = {ModeKind::Cached, 1, 1, true};
    iv.holders = {holder(4321, "indexer")};
    iv.holders[0].since_ns = 1'000'000'000;
    iv.interval.contention_hist[1].add(5000, 3);
    Transition tr;
    tr.ts_ns = 1'000'000'000;
    tr.from = {};
    tr.to = iv.mode;
    tr.cause = TransitionCause::Mmap;
    tr.pid = 4321;
    tr.comm = "indexer";
    iv.transitions = {tr};
    auto lines = detail_lines(iv, 3'500'000'000, 100);
    std::string all;
    for (auto &l : lines) {
        EXPECT_LE(l.size(), 100u);
        all += l + "\n";
    }
    EXPECT_NE(all.find("indexer:4321  mmap  since 2.5s ago"), std::string::npos) << all;
    EXPECT_NE(all.find("none -> cached(1)"), std::string::npos) << all;
    EXPECT_NE(all.find("lock wait histogram"), std::string::npos) << all;
}

TEST(TopRender, DetailPaneSaysWhereAHolderRunsAndEscapesItsNames) {
    InodeView iv = inode(7, "/mnt/fuse/db", 2000, 10);
    iv.mode = {ModeKind::Cached, 1, 1, true};
    iv.holders = {holder(4321, "\x1b[2Jevil")};
    iv.holders[0].since_ns = 1'000'000'000;
    iv.holders[0].exe_path = "/usr/bin/rg";
    iv.holders[0].where = workload_of_cgroup("/system.slice/scan.service");
    auto lines = detail_lines(iv, 3'500'000'000, 120);
    std::string all;
    for (auto &l : lines)
        all += l + "\n";
    EXPECT_EQ(all.find('\x1b'), std::string::npos) << all;
    EXPECT_NE(all.find("\\x1b[2Jevil:4321"), std::string::npos) << all;
    EXPECT_NE(all.find("(/usr/bin/rg) [unit scan.service]"), std::string::npos) << all;
}

namespace {

// 60 inodes with repeating waits and writes (ties), some paths unknown, a
// few in cache mode, one without its own interval length.
Snapshot many_inodes() {
    Snapshot s;
    s.interval_ns = 2'000'000'000;
    for (uint64_t i = 1; i <= 60; ++i) {
        InodeView iv = inode(i, i % 7 == 0 ? "" : "/mnt/fuse/f" + std::to_string(i % 13),
                             (i * 37) % 11 * 1000, (i * 5) % 9);
        if (i % 10 == 0)
            iv.mode = {ModeKind::Cached, 1, 1, true};
        if (i == 5)
            iv.interval_ns = 0;
        s.inodes.push_back(iv);
    }
    return s;
}

} // namespace

TEST(TopRender, RowCollectorKeepsTheFirstRowsOfTheFullOrder) {
    const Snapshot all = many_inodes();
    // The header's totals, by hand: every inode's interval is 1 s but ino 5's (the
    // snapshot's 2 s); inodes 10, 20, ... 60 are cached.
    double shared_wps = 0, wait_ss = 0;
    for (const auto &iv : all.inodes) {
        const double secs = iv.key.ino == 5 ? 2.0 : 1.0;
        shared_wps += static_cast<double>(iv.interval.shared_writes()) / secs;
        wait_ss += static_cast<double>(iv.interval.total_wait_ns()) / 1e9 / secs;
    }
    for (int k = 0; k < kSortKeys; ++k)
        for (bool reverse : {false, true}) {
            const auto key = static_cast<SortKey>(k);
            auto full = inos(order_rows(all, key, reverse, {}));
            full.resize(7);
            TopData d = collect_rows(all, key, reverse, {}, 7);
            EXPECT_EQ(d.snap.inodes.size(), 7u);
            EXPECT_EQ(inos(order_rows(d.snap, key, reverse, {})), full)
                << to_string(key) << (reverse ? " reversed" : "");
            EXPECT_EQ(d.matched, 60u);
            EXPECT_EQ(d.paths_unknown, 8u); // i % 7 == 0
            EXPECT_EQ(d.totals.inodes, 60u);
            EXPECT_EQ(d.totals.cached, 6u);
            EXPECT_DOUBLE_EQ(d.totals.shared_wps, shared_wps);
            EXPECT_NEAR(d.totals.wait_ss, wait_ss, 1e-12);
        }
}

TEST(TopRender, RowCollectorCountsFilteredRowsAndKeepsAllWithoutLimit) {
    const Snapshot all = many_inodes();
    TopData d = collect_rows(all, SortKey::Wait, false, {"/f1", ""}, 3);
    // f1, f10, f11, f12: i % 13 in {1, 10, 11, 12} and i % 7 != 0, i.e. 4 + 3 + 4 + 4
    EXPECT_EQ(d.matched, 15u);
    EXPECT_EQ(d.snap.inodes.size(), 3u);
    EXPECT_EQ(d.totals.inodes, 60u); // the header counts every inode
    EXPECT_EQ(collect_rows(all, SortKey::Path, false, {}, 0).snap.inodes.size(), 60u);
}

TEST(TopRender, BatchTextSaysHowManyRowsDidNotFit) {
    HeaderInfo h;
    std::string t = batch_text(collect_rows(many_inodes(), h.sort, h.reverse, {}, 10), h, 160);
    EXPECT_NE(t.find("... 50 more inodes (--rows N"), std::string::npos) << t;
    t = batch_text(collect_rows(many_inodes(), h.sort, h.reverse, {}, 0), h, 160);
    EXPECT_EQ(t.find("more inodes"), std::string::npos);
}

TEST(TopRender, DetailPageScrollsWithinTheLines) {
    std::vector<std::string> lines;
    for (int i = 0; i < 40; ++i)
        lines.push_back("line " + std::to_string(i));
    struct Case {
        size_t rows, offset, want_offset;
        std::string position;
        size_t shown;
    };
    const Case cases[] = {
        {10, 0, 0, "lines 1-10 of 40", 10},
        {10, 5, 5, "lines 6-15 of 40", 10},
        {10, 30, 30, "lines 31-40 of 40", 10}, // the last page
        {10, 31, 30, "lines 31-40 of 40", 10}, // one past it: still the last page
        {10, 1000, 30, "lines 31-40 of 40", 10},
        {39, 9, 1, "lines 2-40 of 40", 39},
        {40, 7, 0, "", 40}, // every line fits: no position, no offset
        {100, 3, 0, "", 40},
        {0, 3, 3, "40 lines", 0},
    };
    for (const Case &c : cases) {
        DetailPage p = detail_page(lines, c.rows, c.offset);
        EXPECT_EQ(p.offset, c.want_offset) << c.rows << " " << c.offset;
        EXPECT_EQ(p.position, c.position) << c.rows << " " << c.offset;
        ASSERT_EQ(p.lines.size(), c.shown) << c.rows << " " << c.offset;
        for (size_t i = 0; i < p.lines.size(); ++i)
            EXPECT_EQ(p.lines[i], lines[c.want_offset + i]);
    }
    EXPECT_TRUE(detail_page({}, 10, 5).lines.empty());
    EXPECT_EQ(detail_page({}, 10, 5).offset, 0u);
}

TEST(TopRender, DetailPageOfARealInodeEndsWithItsLastLine) {
    InodeView iv = inode(7, "/mnt/fuse/db", 2000, 10);
    iv.interval.contention_hist[1].add(5000, 3);
    auto all = detail_lines(iv, 3'500'000'000, 100);
    ASSERT_GT(all.size(), 4u);
    DetailPage p = detail_page(all, 4, all.size()); // J pressed more often than there are lines
    EXPECT_EQ(p.offset, all.size() - 4);
    EXPECT_EQ(p.lines.back(), all.back());
}

TEST(TopRender, WatchedCountsTheMountsOfEachRefresh) {
    Snapshot s;
    s.interval_ns = 1'000'000'000;
    HeaderInfo h;
    h.time = "12:00:00";
    EXPECT_EQ(watched_text(h, s), "all FUSE (0)");
    auto first_line = [&] {
        return header_lines(collect_rows(s, h.sort, h.reverse, {}, 0), h, 160)[0];
    };
    s.mounts.resize(2);
    EXPECT_NE(first_line().find("mounts: all FUSE (2)"), std::string::npos) << first_line();
    s.mounts.resize(3); // a mount appeared since top started
    EXPECT_NE(first_line().find("mounts: all FUSE (3)"), std::string::npos) << first_line();
    auto j = nlohmann::json::parse(batch_json(collect_rows(s, h.sort, h.reverse, {}, 0), h));
    EXPECT_EQ(j["watched"], "all FUSE (3)");
    h.pid = 42;
    EXPECT_EQ(watched_text(h, s), "all FUSE (3)  pid 42");
    h.mount = "/mnt/fuse";
    EXPECT_EQ(watched_text(h, s), "/mnt/fuse  pid 42");
}

TEST(TopRender, RankRowsReranksOnlyWhenTheModelOrTheQueryChanged) {
    StateModel model;
    CountersDelta d;
    for (uint64_t i = 1; i <= 50; ++i) {
        InodeCounters c;
        c.key = {(0u << 20) | 53u, i};
        c.first_seen_ns = 1;
        c.writes[0] = i * 7 % 23;
        c.write_wait_ns[0] = i * 11 % 31 * 1000;
        d.changed.push_back(c);
    }
    model.on_counter_changes(d, 1'000'000'000);
    // what a fresh ranking of the whole snapshot says
    auto fresh = [&](SortKey k) {
        return inos(order_rows(collect_rows(model.snapshot(), k, false, {}, 5).snap, k, false, {}));
    };
    auto ranked = [&](SortKey k, Ranking *last) {
        TopData t = rank_rows(model, k, false, {}, 5, last);
        EXPECT_EQ(t.matched, 50u);
        EXPECT_EQ(t.totals.inodes, 50u);
        return inos(order_rows(t.snap, k, false, {}));
    };
    Ranking last;
    EXPECT_EQ(ranked(SortKey::Writes, &last), fresh(SortKey::Writes));
    const uint64_t g = last.generation;
    EXPECT_EQ(last.rankings, 1u);
    EXPECT_EQ(ranked(SortKey::Writes, &last), fresh(SortKey::Writes)); // kept: nothing moved
    EXPECT_EQ(last.generation, g);
    EXPECT_EQ(last.rankings, 1u) << "the last ranking was not reused";
    EXPECT_EQ(ranked(SortKey::Wait, &last), fresh(SortKey::Wait)); // another query
    EXPECT_EQ(last.rankings, 2u);
    // ino 50 becomes the busiest: the next refresh ranks again
    InodeCounters c = d.changed.back();
    c.writes[0] += 1000;
    model.on_counter_changes({{c}, {}}, 2'000'000'000);
    const auto busiest = ranked(SortKey::Writes, &last);
    ASSERT_FALSE(busiest.empty());
    EXPECT_EQ(busiest.front(), 50u);
    EXPECT_EQ(busiest, fresh(SortKey::Writes));
    EXPECT_NE(last.generation, g);
    EXPECT_EQ(last.rankings, 3u);
}
