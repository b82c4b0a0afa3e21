// Which inode entries a counter read looks at (src/backend/bpf_backend.cpp).
//
// A BPF program posts an entry's key to the dirty_keys ring the first time it
// changes the entry after a read began (bpf/common.bpf.h fs_stats_mark), and
// it posts before it changes anything. So a read may look a posted key up
// before the change lands, and a program that saw the key already posted skips
// the post but may land its change a moment after the read. Both have landed
// by the second read after the one that drained the key (a program runs for
// microseconds; reads are a refresh interval apart): a drained key is looked
// up by that read and the two after it.
//
// The whole map is walked instead
//  - at the first read, and at the read that sees the BPF side could not post a
//    key (ring full) and the one after (the changes of that key's entry, and of
//    programs that took it as posted, have landed by then);
//  - when the keys to look up are more than half the entries known (one lookup
//    per key costs about what the batched copy costs per entry);
//  - when more entries are known than the map holds: the LRU map evicted some
//    to make room for new ones, and the reader's table of them would grow;
//  - every kFullWalkNs, to learn which entries the LRU map evicted (nobody
//    posts those; a re-created entry is told apart by its first_seen_ns).
//
// Private to src/backend; header-only so the unit tests can drive it.
#pragma once

#include "fusescope/abi.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fusescope {

class DirtyKeys {
  public:
    static constexpr uint64_t kFullWalkNs = 30'000'000'000ull;
    static constexpr size_t kReadsPerKey = 3; // the read that drains a key and the two after

    // A key drained from the ring for the coming read.
    void posted(const fs_inode_key &k) { recent_[0].push_back(k); }
    // Look @k up at the next read too (its entry was left unsettled).
    void again(const fs_inode_key &k) { again_.push_back(k); }

    // Nothing to look at: no key drained for this read or the two before, none
    // asked again, and no walk due. (@lost: fs_dirty_lost now.)
    bool quiet(uint64_t now_ns, uint64_t lost) const {
        return !walk_due(now_ns, lost) && again_.empty() &&
               std::all_of(recent_.begin(), recent_.end(),
                           [](const std::vector<fs_inode_key> &v) { return v.empty(); });
    }

    // Plans the coming read: true if it walks the whole map; else @keys gets
    // the keys to look up (sorted, each once): the recent ones, those asked
    // again, and @extra (say, what the write cache holds). @entries: how many
    // entries the reader knows of; @capacity: how many the map holds at most.
    bool plan(uint64_t now_ns, uint64_t lost, size_t entries, size_t capacity,
              const std::vector<fs_inode_key> &extra, std::vector<fs_inode_key> &keys) {
        keys.clear();
        if (!walk_due(now_ns, lost) && entries <= capacity) {
            for (const auto &v : recent_)
                keys.insert(keys.end(), v.begin(), v.end());
            keys.insert(keys.end(), again_.begin(), again_.end());
            keys.insert(keys.end(), extra.begin(), extra.end());
            auto less = [](const fs_inode_key &a, const fs_inode_key &b) {
                return a.dev != b.dev ? a.dev < b.dev : a.ino < b.ino;
            };
            auto same = [](const fs_inode_key &a, const fs_inode_key &b) {
                return a.dev == b.dev && a.ino == b.ino;
            };
            std::sort(keys.begin(), keys.end(), less);
            keys.erase(std::unique(keys.begin(), keys.end(), same), keys.end());
            if (keys.size() * 2 <= entries) {
                rotate();
                return false;
            }
        }
        keys.clear(); // a walk looks at every entry
        walks_owed_ = lost != last_lost_ ? 1 : walks_owed_ > 0 ? walks_owed_ - 1 : 0;
        walked_ = true;
        last_walk_ns_ = now_ns;
        last_lost_ = lost;
        rotate();
        return true;
    }

    // Whether a plan walked the map yet (the first always does: no base to compare with).
    bool walked() const { return walked_; }

  private:
    bool walk_due(uint64_t now_ns, uint64_t lost) const {
        return !walked_ || lost != last_lost_ || walks_owed_ > 0 ||
               now_ns - last_walk_ns_ >= kFullWalkNs;
    }

    // The keys drained for this read become one read older; the oldest are done.
    void rotate() {
        again_.clear();
        std::rotate(recent_.rbegin(), recent_.rbegin() + 1, recent_.rend());
        recent_[0].clear();
    }

    std::array<std::vector<fs_inode_key>, kReadsPerKey> recent_; // [0]: drained for the coming read
    std::vector<fs_inode_key> again_;                            // for the coming read
    bool walked_ = false;
    uint64_t last_walk_ns_ = 0;
    uint64_t last_lost_ = 0;
    int walks_owed_ = 0; // walks still due after the lost count moved
};

} // namespace fusescope
