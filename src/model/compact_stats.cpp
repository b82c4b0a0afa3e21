#include "fusescope/model/compact_stats.h"

#include <algorithm>

namespace fusescope {

CompactHist &CompactHist::operator=(const CompactHist &o) {
    if (this == &o)
        return *this;
    if (o.n_ == 0) {
        slots_.reset();
    } else {
        slots_ = std::make_unique<uint64_t[]>(o.n_);
        std::copy_n(o.slots_.get(), o.n_, slots_.get());
    }
    lo_ = o.lo_;
    n_ = o.n_;
    return *this;
}

uint64_t CompactHist::at(int slot) const {
    if (slot < lo_ || slot >= lo_ + n_)
        return 0;
    return slots_[static_cast<size_t>(slot - lo_)];
}

void CompactHist::widen(int lo, int hi) {
    if (n_ != 0) {
        lo = std::min(lo, static_cast<int>(lo_));
        hi = std::max(hi, lo_ + n_ - 1);
        if (lo == lo_ && hi == lo_ + n_ - 1)
            return;
    }
    const int n = hi - lo + 1;
    auto grown = std::make_unique<uint64_t[]>(static_cast<size_t>(n)); // zeroed
    for (int i = 0; i < n_; ++i)
        grown[static_cast<size_t>(lo_ + i - lo)] = slots_[static_cast<size_t>(i)];
    slots_ = std::move(grown);
    lo_ = static_cast<uint8_t>(lo);
    n_ = static_cast<uint8_t>(n);
}

void CompactHist::add(const Histogram &h) {
    int first = -1, last = -1;
    for (int i = 0; i < kHistSlots; ++i) {
        if (h.slots[static_cast<size_t>(i)] == 0)
            continue;
        if (first < 0)
            first = i;
        last = i;
    }
    if (first < 0)
        return;
    widen(first, last);
    for (int i = first; i <= last; ++i)
        slots_[static_cast<size_t>(i - lo_)] += h.slots[static_cast<size_t>(i)];
}

Histogram CompactHist::expand() const {
    Histogram h;
    for (size_t i = 0; i < n_; ++i)
        h.slots[lo_ + i] = slots_[i];
    return h;
}

bool CompactHist::operator==(const CompactHist &o) const {
    // Equal as histograms: the stored ranges may differ by zero slots.
    for (int i = 0; i < kHistSlots; ++i)
        if (at(i) != o.at(i))
            return false;
    return true;
}

CompactStats &CompactStats::operator+=(const WriteStats &d) {
    add_write_stats(*this, d, [](CompactHist &h, const Histogram &x) { h.add(x); });
    return *this;
}

WriteStats CompactStats::expand() const {
    WriteStats s = expand_counts();
    for (size_t m = 0; m < static_cast<size_t>(kLockModes); ++m)
        s.contention_hist[m] = contention_hist[m].expand();
    return s;
}

WriteStats CompactStats::expand_counts() const {
    WriteStats s;
    s.writes = writes;
    s.bytes = bytes;
    s.wait_ns = wait_ns;
    s.service_ns = service_ns;
    s.writeback_requests = writeback_requests;
    s.writeback_bytes = writeback_bytes;
    s.contentions = contentions;
    s.contention_ns = contention_ns;
    s.drain_waits = drain_waits;
    s.drain_wait_ns = drain_wait_ns;
    s.mode_changes = mode_changes;
    return s;
}

} // namespace fusescope
