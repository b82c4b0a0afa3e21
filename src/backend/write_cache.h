// The per-CPU write cache's share of a counter read (tracepoint backend).
//
// A write to the inode its CPU wrote last counts in that CPU's slot of the
// write_cache array (struct fs_write_cache in abi.h), not in the inode map;
// the counts move to the map entry when the CPU writes another inode (or
// every FS_WCACHE_FLUSH_WRITES writes). A read of the counters is therefore
// "map entry + what the slots holding that inode still have", and it must
// neither count a moving slot twice (once in the slot, once in the map) nor
// report less than the previous read did (the model takes a decrease for a
// re-created entry).
//
// The protocol: a slot's seq is odd while its counts move and its key
// changes. Slots are copied before the map walk and after it; a slot whose
// seq stayed the same did not move anything into the map in between, so the
// map's entry plus the slot's counts (the later copy) is exact. A slot whose
// seq changed may have moved its earlier key's counts only partly by the time
// that entry was read: the entry is read again, bracketed by two more copies
// of the slots, until a round sees no slot change (a few rounds at most; keys
// still unsettled then are left for the next read, not reported low).
//
// Private to src/backend; header-only so the unit tests can drive it with a
// simulated kernel.
#pragma once

#include "decode.h"
#include "fusescope/abi.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace fusescope {

// One consistent copy of a slot.
struct WcacheSlot {
    uint64_t seq = 0;
    bool valid = false; // copied between two reads of the same even seq
    fs_inode_key key{}; // ino 0: empty
    uint64_t writes[FS_DIO_REASONS] = {};
    uint64_t write_bytes[FS_LOCK_MODES] = {};
};

// Copies a slot that BPF programs on another CPU may be changing (the mmap'd
// array). x86-64 keeps loads in order; the fences keep the compiler from
// moving them.
inline WcacheSlot copy_wcache_slot(const fs_write_cache *src) {
    WcacheSlot out;
    auto load = [](const __u64 *p) -> uint64_t { return __atomic_load_n(p, __ATOMIC_RELAXED); };
    constexpr int kTries = 100; // a move takes a few hundred ns; the writer cannot be preempted
    for (int t = 0; t < kTries; ++t) {
        const uint64_t seq = __atomic_load_n(&src->seq, __ATOMIC_ACQUIRE);
        if (seq & 1) {
            __builtin_ia32_pause();
            continue;
        }
        out.key.ino = load(&src->key.ino);
        out.key.dev = __atomic_load_n(&src->key.dev, __ATOMIC_RELAXED);
        for (int i = 0; i < FS_DIO_REASONS; ++i)
            out.writes[i] = load(&src->writes[i]);
        for (int i = 0; i < FS_LOCK_MODES; ++i)
            out.write_bytes[i] = load(&src->write_bytes[i]);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&src->seq, __ATOMIC_RELAXED) == seq) {
            out.seq = seq;
            out.valid = true;
            return out;
        }
    }
    out.valid = false;
    return out;
}

class WriteCacheMerge {
  public:
    static constexpr int kRounds = 4;

    // Before the map walk. @read_slot(i) copies slot i of @n.
    template <typename ReadSlot> void begin(size_t n, ReadSlot &&read_slot) {
        read_all(n, read_slot, start_);
        held_.clear();
        if (last_key_.size() != n)
            last_key_.assign(n, fs_inode_key{});
        // Entries whose reading must wait for the slots' second copy: what the
        // slots hold now, and what they held at the previous read's end (the
        // counts reported with those entries may be moving into the map now).
        for (size_t i = 0; i < n; ++i) {
            if (start_[i].valid && start_[i].key.ino)
                held_.try_emplace(key_of(start_[i].key), Held{start_[i].key, std::nullopt});
            if (last_key_[i].ino)
                held_.try_emplace(key_of(last_key_[i]), Held{last_key_[i], std::nullopt});
            if (start_[i].valid)
                last_key_[i] = start_[i].key;
        }
    }

    // After begin(): the keys whose entries must be read during the walk (a read of
    // only some entries must include these).
    void held_keys(std::vector<fs_inode_key> &out) const {
        out.clear();
        for (const auto &[k, h] : held_)
            out.push_back(h.key);
    }

    // During the walk: keeps @st and returns true if @k's entry is settled in finish().
    bool hold(const fs_inode_key &k, const fs_inode_stats &st) {
        if (held_.empty())
            return false;
        auto it = held_.find(key_of(k));
        if (it == held_.end())
            return false;
        it->second.stats = st;
        return true;
    }

    // After the walk. @lookup(key, &stats) reads one entry again (false: gone);
    // @report(key, stats) takes a settled entry with the slots' counts added;
    // @keep(key) is called for an entry left unsettled (it is still in the map).
    template <typename ReadSlot, typename Lookup, typename Report, typename Keep>
    void finish(size_t n, ReadSlot &&read_slot, Lookup &&lookup, Report &&report, Keep &&keep) {
        std::vector<WcacheSlot> *prev = &start_, *cur = &end_;
        read_all(n, read_slot, *cur);
        std::vector<fs_inode_key> suspects;
        for (int round = 0;; ++round) {
            suspects.clear();
            for (size_t i = 0; i < n; ++i) {
                const WcacheSlot &a = (*prev)[i], &b = (*cur)[i];
                if (!(a.valid && b.valid && a.seq == b.seq) && last_key_[i].ino)
                    suspects.push_back(last_key_[i]); // moved, or moving, its counts
                if (b.valid)
                    last_key_[i] = b.key;
            }
            if (suspects.empty() || round + 1 == kRounds)
                break;
            for (const fs_inode_key &k : suspects) {
                fs_inode_stats st;
                const bool found = lookup(k, st);
                held_.insert_or_assign(key_of(k),
                                       Held{k, found ? std::optional(st) : std::nullopt});
            }
            std::swap(prev, cur);
            read_all(n, read_slot, *cur);
        }
        for (const fs_inode_key &k : suspects) {
            auto it = held_.find(key_of(k));
            if (it == held_.end())
                continue;
            if (it->second.stats)
                keep(k);
            held_.erase(it);
        }
        for (size_t i = 0; i < n; ++i) {
            const WcacheSlot &s = (*cur)[i];
            if (!s.valid || !s.key.ino)
                continue;
            auto it = held_.find(key_of(s.key));
            if (it == held_.end() || !it->second.stats)
                continue; // not read this time (claimed during the walk), or gone
            fs_inode_stats &st = *it->second.stats;
            for (int r = 0; r < FS_DIO_REASONS; ++r)
                st.writes[r] += s.writes[r];
            for (int m = 0; m < FS_LOCK_MODES; ++m)
                st.write_bytes[m] += s.write_bytes[m];
        }
        for (const auto &[k, h] : held_)
            if (h.stats)
                report(h.key, *h.stats);
    }

  private:
    struct Held {
        fs_inode_key key;                    // as the map has it, for @report
        std::optional<fs_inode_stats> stats; // nullopt: not read (yet), or gone
    };

    template <typename ReadSlot>
    static void read_all(size_t n, ReadSlot &read_slot, std::vector<WcacheSlot> &out) {
        out.resize(n);
        for (size_t i = 0; i < n; ++i)
            out[i] = read_slot(i);
    }

    std::vector<WcacheSlot> start_, end_;
    // Per slot: its key in the last valid copy (the inode it may be moving counts of).
    std::vector<fs_inode_key> last_key_;
    std::unordered_map<InodeKey, Held, InodeKeyHash> held_;
};

} // namespace fusescope
