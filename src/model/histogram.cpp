#include "fusescope/model/histogram.h"

#include <algorithm>
#include <bit>

namespace fusescope {

int Histogram::slot_for(uint64_t ns) {
    if (ns < 2)
        return 0;
    const int s = static_cast<int>(std::bit_width(ns)) - 1; // floor(log2(ns))
    return std::min(s, kHistSlots - 1);
}

uint64_t Histogram::slot_low(int slot) { return slot <= 0 ? 0 : (uint64_t{1} << slot); }

uint64_t Histogram::slot_high(int slot) { return uint64_t{1} << (std::clamp(slot, 0, kHistSlots - 1) + 1); }

void Histogram::merge(const Histogram &other) {
    for (size_t i = 0; i < slots.size(); ++i)
        slots[i] += other.slots[i];
}

uint64_t Histogram::count() const {
    uint64_t n = 0;
    for (uint64_t s : slots)
        n += s;
    return n;
}

double Histogram::percentile(double p) const {
    const uint64_t n = count();
    if (n == 0)
        return 0.0;
    p = std::clamp(p, 0.0, 100.0);
    const double rank = p / 100.0 * static_cast<double>(n);
    double before = 0;
    for (int i = 0; i < kHistSlots; ++i) {
        const auto c = static_cast<double>(slots[static_cast<size_t>(i)]);
        if (c == 0)
            continue;
        if (before + c >= rank) {
            const double lo = static_cast<double>(slot_low(i));
            const double hi = static_cast<double>(slot_high(i));
            const double frac = std::clamp((rank - before) / c, 0.0, 1.0);
            return lo + (hi - lo) * frac;
        }
        before += c;
    }
    return static_cast<double>(slot_high(kHistSlots - 1)); // unreachable: rank <= n
}

Histogram Histogram::delta(const Histogram &later, const Histogram &earlier) {
    for (size_t i = 0; i < later.slots.size(); ++i)
        if (later.slots[i] < earlier.slots[i])
            return later; // reset: the source restarted from zero
    Histogram d;
    for (size_t i = 0; i < later.slots.size(); ++i)
        d.slots[i] = later.slots[i] - earlier.slots[i];
    return d;
}

} // namespace fusescope
