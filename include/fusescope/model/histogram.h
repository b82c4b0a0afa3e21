// Log2 latency histogram, the userspace twin of the kernel's contention_hist.
// Slot 0 holds [0, 2) ns, slot i holds [2^i, 2^(i+1)) ns; the last slot is
// open-ended (everything >= 2^(kHistSlots-1) lands there).
#pragma once

#include <array>
#include <cstdint>

#include "fusescope/model/types.h"

namespace fusescope {

class Histogram {
public:
    std::array<uint64_t, kHistSlots> slots{};

    static int slot_for(uint64_t ns);
    static uint64_t slot_low(int slot);  // inclusive lower bound in ns
    static uint64_t slot_high(int slot); // exclusive upper bound in ns (2^kHistSlots for the last)

    void add(uint64_t ns, uint64_t n = 1) { slots[static_cast<size_t>(slot_for(ns))] += n; }
    void merge(const Histogram &other);
    uint64_t count() const;
    bool empty() const { return count() == 0; }

    // Estimated p-th percentile (p in [0, 100]) in ns, 0 for an empty histogram.
    // The rank p/100*count is located in its bucket and linearly interpolated
    // between the bucket's bounds, assuming samples are spread uniformly inside
    // the bucket. The answer is therefore exact to within one bucket (a factor 2).
    double percentile(double p) const;

    // Per-slot difference of two cumulative histograms (later - earlier). If any
    // slot went down the source was reset (kernel LRU re-created the entry), and
    // `later` itself is the delta.
    static Histogram delta(const Histogram &later, const Histogram &earlier);

    bool operator==(const Histogram &) const = default;
};

} // namespace fusescope
