// Which entries of a BPF hash map changed since the previous walk over it:
// a checksum of each entry's value, remembered per key in a flat
// open-addressing table (one cache line per lookup, prefetchable, no node per
// key). Private to src/backend; header-only so the unit tests can use it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fusescope/model/types.h"

namespace fusescope {

// Sum of the value's 64-bit words times fixed random odd constants. A change
// of one word always changes it (odd factor); several words would have to
// change by exactly cancelling amounts. A collision only delays an entry's
// delta to its next change (the counters are cumulative).
template <size_t N> uint64_t value_checksum(const void *value) {
    static_assert(N % 8 == 0);
    static constexpr auto kFactors = [] {
        std::array<uint64_t, N / 8> k{};
        uint64_t x = 0x9E3779B97F4A7C15ull; // splitmix64
        for (auto &f : k) {
            x += 0x9E3779B97F4A7C15ull;
            uint64_t z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            f = (z ^ (z >> 31)) | 1;
        }
        return k;
    }();
    const auto *p = static_cast<const unsigned char *>(value);
    uint64_t sum = 0;
    for (size_t i = 0; i < N / 8; ++i) {
        uint64_t w;
        std::memcpy(&w, p + i * 8, 8);
        sum += w * kFactors[i];
    }
    return sum;
}

class EntrySums {
  public:
    // Start a walk over the map.
    void begin() {
        if (++gen_ == 0) // wrapped (after 2^32 walks): start afresh
            clear_all();
        listed_ = 0;
    }

    // Hint that @k is about to be looked up (batch of keys: overlaps the misses).
    void prefetch(const InodeKey &k) const {
        if (!slots_.empty())
            __builtin_prefetch(&slots_[index(k)]);
    }

    // Record @k's checksum for this walk; true if it is new or differs from the
    // previous walk's. Listing a key twice in one walk is harmless.
    bool changed(const InodeKey &k, uint64_t sum) {
        if ((count_ + 1) * 2 > slots_.size())
            grow();
        for (size_t i = index(k);; i = (i + 1) & (slots_.size() - 1)) {
            Slot &s = slots_[i];
            if (s.gen == 0) { // empty: a new key
                s = Slot{k.ino, k.dev, gen_, sum};
                ++count_;
                ++listed_;
                return true;
            }
            if (s.ino == k.ino && s.dev == k.dev) {
                if (s.gen != gen_)
                    ++listed_;
                s.gen = gen_;
                const bool differs = s.sum != sum;
                s.sum = sum;
                return differs;
            }
        }
    }

    // List @k in this walk but keep its checksum: a change is reported by a
    // later walk. (A key not known yet stays unknown.)
    void keep(const InodeKey &k) {
        if (slots_.empty())
            return;
        for (size_t i = index(k);; i = (i + 1) & (slots_.size() - 1)) {
            Slot &s = slots_[i];
            if (s.gen == 0)
                return;
            if (s.ino == k.ino && s.dev == k.dev) {
                if (s.gen != gen_)
                    ++listed_;
                s.gen = gen_;
                return;
            }
        }
    }

    // End the walk: forget keys it did not list, and append them to @gone.
    // In place (backward-shift deletion): no second table, no page faults.
    void end(std::vector<InodeKey> &gone) {
        if (listed_ == count_)
            return;
        const size_t mask = slots_.size() - 1;
        for (size_t p = 0; p < slots_.size(); ++p) {
            // A deletion may shift a later key into p: look at p until it stays.
            while (slots_[p].gen != 0 && slots_[p].gen != gen_) {
                gone.push_back(InodeKey{slots_[p].dev, slots_[p].ino});
                erase_at(p, mask);
            }
        }
    }

    size_t size() const { return count_; }

  private:
    struct Slot {
        uint64_t ino = 0;
        uint32_t dev = 0;
        uint32_t gen = 0; // walk that last listed it; 0 = empty slot
        uint64_t sum = 0;
    };

    size_t index(const InodeKey &k) const {
        uint64_t z = k.ino ^ (uint64_t{k.dev} << 40) ^ 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return static_cast<size_t>(z ^ (z >> 31)) & (slots_.size() - 1);
    }

    // Empties slot @hole and moves later keys of its probe run back, so that no
    // key sits after an empty slot on its way from its home slot.
    void erase_at(size_t hole, size_t mask) {
        for (size_t j = (hole + 1) & mask; slots_[j].gen != 0; j = (j + 1) & mask) {
            const size_t home = index(InodeKey{slots_[j].dev, slots_[j].ino});
            // j's key may fill the hole if its home is not in (hole, j], cyclically
            const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
            if (stays)
                continue;
            slots_[hole] = slots_[j];
            hole = j;
        }
        slots_[hole] = Slot{};
        --count_;
    }

    void insert(const Slot &s) {
        size_t i = index(InodeKey{s.dev, s.ino});
        while (slots_[i].gen != 0)
            i = (i + 1) & (slots_.size() - 1);
        slots_[i] = s;
        ++count_;
    }

    void grow() {
        std::vector<Slot> old(slots_.empty() ? 1024 : slots_.size() * 2);
        old.swap(slots_);
        count_ = 0;
        for (const Slot &s : old)
            if (s.gen != 0)
                insert(s);
    }

    void clear_all() {
        slots_.clear();
        count_ = 0;
        gen_ = 1;
    }

    std::vector<Slot> slots_; // power-of-two size, at most half full
    size_t count_ = 0;
    size_t listed_ = 0;
    uint32_t gen_ = 0;
};

} // namespace fusescope
