// The backend's change detection over the kernel's inode map (src/backend/entry_sums.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <cstring>
#include <vector>

#include "../../src/backend/entry_sums.h"
#include "fusescope/abi.h"

using namespace fusescope;

namespace {
struct Value {
    uint64_t words[sizeof(fs_inode_stats) / 8]; // the size of fs_inode_stats
};
uint64_t sum_of(const Value &v) { return value_checksum<sizeof(Value)>(&v); }
} // namespace

TEST(EntrySums, ChecksumSeesEveryOneWordChange) {
    Value v{};
    const uint64_t base = sum_of(v);
    for (size_t w = 0; w < std::size(v.words); ++w) {
        for (uint64_t d : {uint64_t{1}, uint64_t{1} << 32, uint64_t{1} << 63, ~uint64_t{0}}) {
            Value c = v;
            c.words[w] += d;
            EXPECT_NE(sum_of(c), base) << "word " << w;
        }
    }
    // iocachectr 0 -> -1 next to the cache bit, and a counter going up with it
    Value c = v;
    int32_t ctr = -1;
    std::memcpy(&c.words[40], &ctr, sizeof ctr);
    c.words[3] += 1;
    EXPECT_NE(sum_of(c), base);
}

TEST(EntrySums, ReportsNewChangedAndGoneKeys) {
    EntrySums s;
    std::vector<InodeKey> gone;
    s.begin();
    EXPECT_TRUE(s.changed({1, 10}, 100));
    EXPECT_TRUE(s.changed({1, 11}, 200));
    EXPECT_TRUE(s.changed({2, 10}, 300)); // same ino, other device
    s.end(gone);
    EXPECT_TRUE(gone.empty());
    EXPECT_EQ(s.size(), 3u);

    s.begin();
    EXPECT_FALSE(s.changed({1, 10}, 100));
    EXPECT_TRUE(s.changed({1, 11}, 201));
    EXPECT_FALSE(s.changed({1, 11}, 201)); // a walk that restarted lists it again
    s.end(gone);                           // {2, 10} not listed: gone
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0], (InodeKey{2, 10}));
    EXPECT_EQ(s.size(), 2u);

    gone.clear();
    s.begin();
    EXPECT_TRUE(s.changed({2, 10}, 300)); // back: new again
    EXPECT_FALSE(s.changed({1, 10}, 100));
    EXPECT_FALSE(s.changed({1, 11}, 201));
    s.end(gone);
    EXPECT_TRUE(gone.empty());
}

TEST(EntrySums, GrowsAndChurnsLikeTheLruMap) {
    EntrySums s;
    std::vector<InodeKey> gone;
    // 16384 live keys, 1000 replaced per walk, as when files keep being created.
    uint64_t first = 0, next = 0;
    for (int walk = 0; walk < 50; ++walk) {
        s.begin();
        while (next - first < 16384)
            ++next;
        size_t changed = 0;
        for (uint64_t ino = first; ino < next; ++ino)
            changed += s.changed({7, ino}, ino * 3) ? 1 : 0;
        gone.clear();
        s.end(gone);
        EXPECT_EQ(changed, walk == 0 ? 16384u : 1000u);
        EXPECT_EQ(gone.size(), walk == 0 ? 0u : 1000u);
        EXPECT_EQ(s.size(), 16384u);
        first += 1000;
    }
    std::sort(gone.begin(), gone.end());
    EXPECT_EQ(gone.front(), (InodeKey{7, first - 2000}));
}

TEST(EntrySums, ForgettingKeysInPlaceKeepsEveryOtherKeyFindable) {
    // Random walks over a few hundred keys in a 1024-slot table (probe runs
    // long enough to wrap around its end), each listing a random part: end()
    // must report exactly the unlisted keys, and every kept key must still be
    // found (with its sum) at the next walk.
    std::mt19937_64 rng(7);
    EntrySums s;
    std::map<InodeKey, uint64_t> live; // what the table should hold
    for (int walk = 0; walk < 400; ++walk) {
        s.begin();
        std::map<InodeKey, uint64_t> listed;
        for (const auto &[k, sum] : live)
            if (rng() % 4 != 0) { // a quarter disappears
                EXPECT_FALSE(s.changed(k, sum)) << "walk " << walk << " lost ino " << k.ino;
                listed.emplace(k, sum);
            }
        for (int n = static_cast<int>(rng() % 200); n > 0; --n) {
            const InodeKey k{static_cast<uint32_t>(rng() % 3), rng() % 5000};
            if (listed.count(k))
                continue;
            EXPECT_EQ(s.changed(k, k.ino), !live.count(k) || live.at(k) != k.ino);
            listed[k] = k.ino;
        }
        std::vector<InodeKey> gone;
        s.end(gone);
        std::vector<InodeKey> want;
        for (const auto &[k, sum] : live)
            if (!listed.count(k))
                want.push_back(k);
        std::sort(gone.begin(), gone.end());
        ASSERT_EQ(gone, want) << "walk " << walk;
        live = std::move(listed);
        ASSERT_EQ(s.size(), live.size());
    }
}
