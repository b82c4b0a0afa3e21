// OpenHints (src/model/open_hints.cpp): FUSE_OPEN/FUSE_CREATE hints and a census of the
// opener become the open and mmap events the syscall exits would have reported.
#include "fusescope/abi.h"
#include "fusescope/model/open_hints.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace fusescope;

namespace {

constexpr uint32_t kDev = 0x28;
constexpr uint64_t kMs = 1'000'000;

Event sent(uint32_t pid, uint64_t nodeid, uint64_t ts, bool create = false) {
    Event e;
    e.type = EventType::OpenSent;
    e.ts_ns = ts;
    e.pid = pid;
    e.tid = pid + 1;
    e.comm = "opener" + std::to_string(pid);
    e.key.dev = kDev;
    e.nodeid = nodeid;
    e.cgroup_id = 7;
    if (create)
        e.flags |= evflag::Create;
    return e;
}

struct Rec {
    CensusKind kind = CensusKind::File;
    uint32_t pid = 100;
    uint64_t nodeid = 2;
    uint64_t file_id = 0xf1;
    FileIoMode iomode = FileIoMode::None;
    uint32_t open_flags = 0;
    int32_t ctr = 0;
    bool writable = false;
    bool writable_map = false;
};

CensusRecord rec(const Rec &r) {
    CensusRecord c;
    c.kind = r.kind;
    c.pid = r.pid;
    c.comm = "leader";
    c.key = {kDev, 1000 + r.nodeid};
    c.nodeid = r.nodeid;
    c.file_id = r.file_id;
    c.fh = 17;
    c.iomode = r.iomode;
    c.open_flags = r.open_flags;
    c.iocachectr = r.ctr;
    c.writable = r.writable;
    c.writable_map = r.writable_map;
    c.release_id = r.file_id + 1;
    c.vm_start = r.kind == CensusKind::Vma ? 0x7f0000 : 0;
    c.vm_end = r.kind == CensusKind::Vma ? 0x800000 : 0;
    return c;
}

// What one event must be: its type, time and the flags it carries.
struct Expect {
    EventType type;
    uint64_t ts_ns;
    uint32_t flags;
};

struct Case {
    const char *name;
    std::vector<CensusRecord> census; // of the opener, 2 ms after its FUSE_OPEN at 1 s
    std::vector<Expect> events;
};

constexpr uint64_t kSent = 1000 * kMs;
constexpr uint64_t kCensus = kSent + 2 * kMs;

TEST(OpenHints, EachKindOfOpenBecomesTheEventsTheSyscallExitWouldReport) {
    const uint32_t holder = evflag::Holder | evflag::EnteredCache;
    const Case cases[] = {
        {"a caching open holds cache mode from its FUSE_OPEN",
         {rec({.iomode = FileIoMode::Cached, .ctr = 1})},
         {{EventType::Open, kSent, holder}}},
        {"a second caching open holds it but did not enter it",
         {rec({.iomode = FileIoMode::Cached, .ctr = 2})},
         {{EventType::Open, kSent, evflag::Holder}}},
        {"a direct-IO open for writing names a writer and holds nothing",
         {rec({.open_flags = FS_FOPEN_DIRECT_IO, .writable = true})},
         {{EventType::Open, kSent, evflag::WriteOpen}}},
        {"a shared writable mapping of a direct-IO open holds from the census",
         {rec({.iomode = FileIoMode::Cached, .open_flags = FS_FOPEN_DIRECT_IO, .ctr = 1}),
          rec({.kind = CensusKind::Vma,
               .iomode = FileIoMode::Cached,
               .open_flags = FS_FOPEN_DIRECT_IO,
               .ctr = 1,
               .writable_map = true})},
         {{EventType::Open, kSent, 0},
          {EventType::Mmap, kCensus, evflag::SharedMap | evflag::WritableMap | holder}}},
        {"a mapping whose fd was closed (vmtouch) still names the open",
         {rec({.kind = CensusKind::Vma, .iomode = FileIoMode::Cached, .ctr = 1})},
         {{EventType::Open, kSent, holder}, {EventType::Mmap, kCensus, evflag::SharedMap}}},
        {"a passthrough open is marked so",
         {rec({.iomode = FileIoMode::Uncached})},
         {{EventType::Open, kSent, evflag::Passthrough}}},
        {"another process's file or another inode is not this open",
         {rec({.pid = 101, .iomode = FileIoMode::Cached}),
          rec({.nodeid = 3, .iomode = FileIoMode::Cached})},
         {}},
    };
    for (const auto &c : cases) {
        SCOPED_TRACE(c.name);
        OpenHints h;
        h.on_sent(sent(100, 2, kSent));
        ASSERT_EQ(h.next_due_ns(), kCensus);
        ASSERT_EQ(h.due(kCensus), std::vector<uint32_t>{100});
        auto evs = h.resolve(100, c.census, kCensus);
        ASSERT_EQ(evs.size(), c.events.size());
        for (size_t i = 0; i < evs.size(); ++i) {
            SCOPED_TRACE(i);
            EXPECT_EQ(evs[i].type, c.events[i].type);
            EXPECT_EQ(evs[i].ts_ns, c.events[i].ts_ns);
            EXPECT_EQ(evs[i].flags, c.events[i].flags);
            EXPECT_EQ(evs[i].pid, 100u);
            EXPECT_EQ(evs[i].tid, 101u);
            EXPECT_EQ(evs[i].comm, "opener100"); // the opening thread, not the census's task
            EXPECT_EQ(evs[i].key.ino, 1002u);
            EXPECT_EQ(evs[i].file_id, 0xf1u);
            EXPECT_EQ(evs[i].release_id, 0xf2u);
            EXPECT_EQ(evs[i].cgroup_id, 7u);
        }
        EXPECT_EQ(h.resolved(), c.events.empty() ? 0u : 1u);
        EXPECT_EQ(h.pending(), c.events.empty());
    }
}

TEST(OpenHints, AnOpenNotYetAnsweredIsRetriedThenDropped) {
    OpenHints h;
    h.on_sent(sent(100, 2, kSent));
    uint64_t now = kCensus;
    for (uint64_t delay : {20 * kMs, 200 * kMs, 1000 * kMs}) {
        EXPECT_TRUE(h.resolve(100, {}, now).empty());
        EXPECT_EQ(h.next_due_ns(), kSent + delay);
        EXPECT_TRUE(h.due(kSent + delay - 1).empty());
        now = kSent + delay;
    }
    EXPECT_TRUE(h.resolve(100, {}, now).empty());
    EXPECT_FALSE(h.pending());
    EXPECT_EQ(h.dropped(), 1u);
    EXPECT_EQ(h.next_due_ns(), UINT64_MAX);
}

TEST(OpenHints, AReadOnlyDirectIoOpenIsAskedAgainUntilItIsMapped) {
    OpenHints h;
    h.on_sent(sent(100, 2, kSent));
    const auto plain = rec({.open_flags = FS_FOPEN_DIRECT_IO});
    EXPECT_TRUE(h.resolve(100, {plain}, kCensus).empty()); // changes nothing: no event
    EXPECT_EQ(h.next_due_ns(), kSent + 20 * kMs);
    auto mapped = rec({.iomode = FileIoMode::Cached, .open_flags = FS_FOPEN_DIRECT_IO, .ctr = 1});
    auto evs = h.resolve(100, {mapped}, kSent + 20 * kMs);
    ASSERT_EQ(evs.size(), 2u);
    EXPECT_EQ(evs[1].type, EventType::Mmap);
    EXPECT_EQ(evs[1].ts_ns, kSent + 20 * kMs);
    EXPECT_EQ(evs[1].flags, evflag::SharedMap | evflag::Holder | evflag::EnteredCache);
    // one never mapped is let go after the last try, and was not a miss
    h.on_sent(sent(100, 2, 2 * kSent));
    for (uint64_t at : {2, 20, 200, 1000})
        EXPECT_TRUE(h.resolve(100, {rec({.file_id = 0xf9, .open_flags = FS_FOPEN_DIRECT_IO})},
                              2 * kSent + at * kMs)
                        .empty());
    EXPECT_FALSE(h.pending());
    EXPECT_EQ(h.dropped(), 0u);
}

TEST(OpenHints, FilesOpenBeforeTheHintAreNotItsOpen) {
    OpenHints h;
    const auto before = rec({.file_id = 0xa, .iomode = FileIoMode::Cached});
    h.on_full_census({before}, kSent - kMs); // open when fusescope started
    h.on_sent(sent(100, 2, kSent));
    EXPECT_TRUE(h.resolve(100, {before}, kCensus).empty());
    // the same inode opened again: a new file
    auto evs = h.resolve(100, {before, rec({.file_id = 0xb, .iomode = FileIoMode::Cached})},
                         kSent + 200 * kMs);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].file_id, 0xbu);
    EXPECT_EQ(evs[0].ts_ns, kSent);
}

TEST(OpenHints, AFullCensusBeforeTheHintsCensusLeavesItsFileToTheHint) {
    OpenHints h;
    h.on_sent(sent(100, 2, kSent));
    const auto file = rec({.iomode = FileIoMode::Cached, .ctr = 1});
    h.on_full_census({file, rec({.pid = 200, .file_id = 0xc})}, kSent + kMs);
    auto evs = h.resolve(100, {file}, kCensus);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].ts_ns, kSent); // the hold's real start, before the census found it
    // reported once: a later census of the process finds nothing new
    h.on_sent(sent(100, 2, kSent + 50 * kMs));
    EXPECT_TRUE(h.resolve(100, {file}, kSent + 70 * kMs).empty());
}

TEST(OpenHints, AHintReadAfterTheCensusThatFoundItsFileStillClaimsItOnce) {
    OpenHints h;
    const auto file = rec({.iomode = FileIoMode::Cached, .ctr = 1});
    h.on_full_census({file}, kSent + kMs); // the FUSE_OPEN's hint was still in the ring
    h.on_sent(sent(100, 2, kSent));
    auto evs = h.resolve(100, {file}, kCensus);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].ts_ns, kSent);            // the model moves the census's lower bound to it
    h.on_sent(sent(100, 2, kSent + 10 * kMs)); // a later open of the same inode: not this file
    EXPECT_TRUE(h.resolve(100, {file}, kSent + 20 * kMs).empty());
}

TEST(OpenHints, ACreateTakesTheNewFileTheNamedOpensDidNot) {
    OpenHints h;
    h.on_sent(sent(100, 1, kSent, /*create=*/true)); // nodeid 1: the directory
    h.on_sent(sent(100, 3, kSent + kMs));
    const auto opened = rec({.nodeid = 3, .file_id = 0x3, .writable = true});
    const auto created = rec({.nodeid = 9, .file_id = 0x9, .writable = true});
    auto evs = h.resolve(100, {opened, created}, kSent + 30 * kMs);
    ASSERT_EQ(evs.size(), 2u);
    EXPECT_EQ(evs[0].file_id, 0x3u); // the named open first, though sent second
    EXPECT_EQ(evs[0].ts_ns, kSent + kMs);
    EXPECT_EQ(evs[1].file_id, 0x9u);
    EXPECT_EQ(evs[1].ts_ns, kSent);
}

TEST(OpenHints, AFreedFileWhoseAddressAnotherOpenGetsIsNotTakenForIt) {
    OpenHints h;
    const auto old = rec({.pid = 100, .file_id = 0xa, .iomode = FileIoMode::Cached});
    h.on_full_census({old}, kSent - kMs); // then closed; its memory goes to the next open
    h.on_sent(sent(200, 2, kSent));
    auto reused = rec({.pid = 200, .file_id = 0xa, .iomode = FileIoMode::Cached});
    reused.release_id = 0x77;
    auto evs = h.resolve(200, {reused}, kCensus);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].pid, 200u);
    EXPECT_EQ(evs[0].release_id, 0x77u);
}

TEST(OpenHints, DueListsEachProcessOnce) {
    OpenHints h;
    h.on_sent(sent(100, 2, kSent));
    h.on_sent(sent(100, 3, kSent));
    h.on_sent(sent(200, 2, kSent + 100 * kMs));
    EXPECT_EQ(h.due(kCensus), std::vector<uint32_t>{100});
    EXPECT_EQ(h.due(kSent + 120 * kMs), (std::vector<uint32_t>{100, 200}));
}

TEST(OpenHints, AProcessIsCensusedAtMostOncePerGap) {
    // a process opening files one after another: each hint falls due 2 ms after its
    // FUSE_OPEN, but after a census of that process the next waits for the gap
    OpenHints h;
    constexpr uint64_t kGap = OpenHints::kCensusGapNs;
    h.on_sent(sent(100, 2, kSent));
    ASSERT_EQ(h.due(kCensus), std::vector<uint32_t>{100});
    h.resolve(100, {rec({.nodeid = 2, .file_id = 0xf2, .writable = true})}, kCensus);
    h.on_sent(sent(100, 3, kCensus + kMs));
    h.on_sent(sent(200, 3, kCensus + kMs)); // another process is not held back
    EXPECT_EQ(h.next_due_ns(), kCensus + 3 * kMs);
    EXPECT_EQ(h.due(kCensus + 3 * kMs), std::vector<uint32_t>{200});
    EXPECT_EQ(h.due(kCensus + kGap - 1), std::vector<uint32_t>{200});
    EXPECT_EQ(h.due(kCensus + kGap), (std::vector<uint32_t>{100, 200}));
    // that census finds both files of process 100 opened since: one event each
    auto evs = h.resolve(100,
                         {rec({.nodeid = 2, .file_id = 0xf2, .writable = true}),
                          rec({.nodeid = 3, .file_id = 0xf3, .writable = true})},
                         kCensus + kGap);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].nodeid, 3u);
    EXPECT_EQ(evs[0].ts_ns, kCensus + kMs);
    // a census the model took for itself (a full one) does not hold the next one back
    h.on_sent(sent(300, 4, 3 * kSent));
    h.resolve_from_full_census({}, 3 * kSent + kMs);
    EXPECT_EQ(h.due(3 * kSent + 2 * kMs), (std::vector<uint32_t>{200, 300}));
}

TEST(OpenHints, ThousandsOfOpensOfOneProcessResolveInOneCensus) {
    OpenHints h;
    constexpr uint64_t kFiles = 3000;
    std::vector<CensusRecord> census;
    for (uint64_t i = 0; i < kFiles; ++i) {
        h.on_sent(sent(100, 10 + i, kSent + i));
        census.push_back(rec({.nodeid = 10 + i, .file_id = 0x1000 + i, .writable = true}));
    }
    auto evs = h.resolve(100, census, kSent + kFiles + 2 * kMs);
    ASSERT_EQ(evs.size(), kFiles);
    for (uint64_t i = 0; i < kFiles; ++i)
        EXPECT_EQ(evs[i].file_id, 0x1000 + i);
    EXPECT_FALSE(h.pending());
}

} // namespace

TEST(OpenHints, AFullCensusResolvesEveryOpenerFromItsOwnRecords) {
    OpenHints h;
    h.on_sent(sent(300, 4, kSent));
    h.on_sent(sent(100, 2, kSent + 1));
    h.on_sent(sent(400, 5, kSent + 2)); // its process is gone: nothing of it in the census
    h.on_sent(sent(100, 3, kSent + 3));
    const std::vector<CensusRecord> census = {
        rec({.pid = 100, .nodeid = 2, .file_id = 0xa2, .writable = true}),
        rec({.pid = 200, .nodeid = 4, .file_id = 0xb4, .writable = true}), // not 300's open
        rec({.pid = 300, .nodeid = 4, .file_id = 0xc4, .writable = true}),
        rec({.pid = 100, .nodeid = 3, .file_id = 0xa3, .writable = true}),
        // 300's file, mapped by a child that holds it
        rec({.kind = CensusKind::Vma, .pid = 301, .nodeid = 4, .file_id = 0xc4}),
    };
    auto evs = h.resolve_from_full_census(census, kSent + kMs);
    // in hint order, grouped by process; the mapping found in the child's records
    ASSERT_EQ(evs.size(), 4u);
    EXPECT_EQ(evs[0].file_id, 0xc4u);
    EXPECT_EQ(evs[0].type, EventType::Open);
    EXPECT_EQ(evs[1].file_id, 0xc4u);
    EXPECT_EQ(evs[1].type, EventType::Mmap);
    EXPECT_EQ(evs[1].offset, 0x7f0000u); // the mapping: where and how long
    EXPECT_EQ(evs[1].bytes, 0x10000u);
    EXPECT_EQ(evs[2].file_id, 0xa2u);
    EXPECT_EQ(evs[3].file_id, 0xa3u);
    // the gone process's hint keeps its schedule
    EXPECT_TRUE(h.pending());
    EXPECT_EQ(h.due(kSent + 2 + OpenHints::kRetryDelaysNs[0]), std::vector<uint32_t>{400});
}
