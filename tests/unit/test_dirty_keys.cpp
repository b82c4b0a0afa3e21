// Which entries a counter read looks at (src/backend/dirty_keys.h): the keys
// the BPF side posted, for three reads, or a walk of the whole map.
#include <gtest/gtest.h>

#include <vector>

#include "../../src/backend/dirty_keys.h"

using namespace fusescope;

namespace {

constexpr uint64_t kSecond = 1'000'000'000;

fs_inode_key key(uint64_t ino, uint32_t dev = 1) { return fs_inode_key{ino, dev, 0}; }

std::vector<uint64_t> inos(const std::vector<fs_inode_key> &keys) {
    std::vector<uint64_t> out;
    for (const fs_inode_key &k : keys)
        out.push_back(k.ino);
    return out;
}

// One read after another, a second apart, with what each read is told.
struct Reads {
    DirtyKeys d;
    uint64_t now = 0;
    std::vector<fs_inode_key> keys;

    // true: a walk; else keys holds the plan
    bool read(std::vector<uint64_t> posted, uint64_t lost = 0, size_t entries = 1000,
              std::vector<fs_inode_key> extra = {}, size_t capacity = 16384) {
        now += kSecond;
        for (uint64_t ino : posted)
            d.posted(key(ino));
        return d.plan(now, lost, entries, capacity, extra, keys);
    }
};

} // namespace

TEST(DirtyKeys, TheFirstReadWalks) {
    Reads r;
    EXPECT_FALSE(r.d.quiet(r.now, 0)) << "a fresh reader has no base";
    EXPECT_TRUE(r.read({5}));
    EXPECT_TRUE(r.keys.empty());
    EXPECT_TRUE(r.d.walked());
}

TEST(DirtyKeys, APostedKeyIsLookedUpByThreeReadsThenTheReaderIsQuiet) {
    Reads r;
    r.read({});
    EXPECT_TRUE(r.d.quiet(r.now, 0));
    ASSERT_FALSE(r.read({7}));
    EXPECT_EQ(inos(r.keys), (std::vector<uint64_t>{7}));
    for (int later = 1; later <= 2; ++later) {
        EXPECT_FALSE(r.d.quiet(r.now, 0)) << "read " << later << " after the drain";
        ASSERT_FALSE(r.read({}));
        EXPECT_EQ(inos(r.keys), (std::vector<uint64_t>{7})) << "read " << later;
    }
    EXPECT_TRUE(r.d.quiet(r.now, 0));
    ASSERT_FALSE(r.read({}));
    EXPECT_TRUE(r.keys.empty());
}

TEST(DirtyKeys, KeysAreSortedOnceEachWithTheExtraAndTheAskedAgain) {
    Reads r;
    r.read({});
    r.d.again(key(40));
    ASSERT_FALSE(r.read({9, 3, 9, 3}, 0, 1000, {key(3), key(1, 2)}));
    // sorted by device, then inode: (1,3) (1,9) (1,40) (2,1)
    EXPECT_EQ(inos(r.keys), (std::vector<uint64_t>{3, 9, 40, 1}));
    EXPECT_EQ(r.keys.back().dev, 2u);
    // asked again once: the next read has 9 and 3 still, not 40
    ASSERT_FALSE(r.read({}));
    EXPECT_EQ(inos(r.keys), (std::vector<uint64_t>{3, 9}));
}

TEST(DirtyKeys, ManyKeysWalkInstead) {
    Reads r;
    r.read({});
    EXPECT_FALSE(r.read({1, 2, 3}, 0, 6)); // 3 of 6: by keys
    EXPECT_TRUE(r.read({4}, 0, 6));        // 1 + 3 carried = 4 of 6: a walk
    EXPECT_TRUE(r.keys.empty());
}

TEST(DirtyKeys, MoreEntriesKnownThanTheMapHoldsWalk) {
    Reads r;
    r.read({});
    EXPECT_FALSE(r.read({1}, 0, 100, {}, 100));
    EXPECT_TRUE(r.read({2}, 0, 101, {}, 100)) << "the LRU evicted one: which, a walk says";
}

TEST(DirtyKeys, ALostKeyWalksThatReadAndTheNext) {
    Reads r;
    r.read({});
    EXPECT_FALSE(r.d.quiet(r.now, 1));
    EXPECT_TRUE(r.read({}, 1));
    EXPECT_FALSE(r.d.quiet(r.now, 1)) << "the second walk is still owed";
    EXPECT_TRUE(r.read({}, 1));
    EXPECT_TRUE(r.d.quiet(r.now, 1));
    EXPECT_FALSE(r.read({}, 1));
}

TEST(DirtyKeys, TheMapIsWalkedEveryThirtySecondsForWhatTheLruEvicted) {
    Reads r;
    r.read({});
    int walks = 0;
    for (int s = 1; s <= 60; ++s)
        walks += r.read({}) ? 1 : 0;
    EXPECT_EQ(walks, 2);
    r.now += DirtyKeys::kFullWalkNs;
    EXPECT_FALSE(r.d.quiet(r.now, 0));
}
