// Compact per-inode counters for the state model. The model keeps one set of
// totals for each of up to FS_MAX_INODES inodes, and a WriteStats with its two
// full 36-slot histograms is ~750 bytes, nearly all of it zero: most inodes
// never see a contended lock. CompactHist stores only the slot range that has
// samples, on the heap, and nothing at all while empty; CompactStats is a
// WriteStats with such histograms (~170 bytes). Views still get WriteStats
// (expand()): only the model stores the compact form.
#pragma once

#include <cstdint>
#include <memory>

#include "fusescope/model/histogram.h"
#include "fusescope/model/snapshot.h"

namespace fusescope {

class CompactHist {
  public:
    CompactHist() = default;
    CompactHist(const CompactHist &o) { *this = o; }
    CompactHist &operator=(const CompactHist &o);
    CompactHist(CompactHist &&) noexcept = default;
    CompactHist &operator=(CompactHist &&) noexcept = default;

    bool empty() const { return n_ == 0; }
    uint64_t at(int slot) const; // 0 outside the stored range
    // Slots [lo, lo + width) are stored; other slots are zero.
    int lo() const { return lo_; }
    int width() const { return n_; }

    // Adds @h slot by slot, growing the stored range only as far as @h has samples.
    void add(const Histogram &h);
    Histogram expand() const;
    // Heap bytes held (for tests and the model's memory figures).
    size_t heap_bytes() const { return static_cast<size_t>(n_) * sizeof(uint64_t); }

    bool operator==(const CompactHist &o) const;

  private:
    void widen(int lo, int hi); // make [lo, hi] stored, keeping the values

    std::unique_ptr<uint64_t[]> slots_;
    uint8_t lo_ = 0; // first stored slot
    uint8_t n_ = 0;  // stored slots; 0 = empty, no allocation
};

struct CompactStats {
    std::array<uint64_t, kWriteReasons> writes{};
    std::array<uint64_t, kWriteLockModes> bytes{};
    std::array<uint64_t, kWriteLockModes> wait_ns{};
    std::array<uint64_t, kWriteLockModes> service_ns{};
    uint64_t writeback_requests = 0, writeback_bytes = 0;
    std::array<uint64_t, kLockModes> contentions{};
    std::array<uint64_t, kLockModes> contention_ns{};
    std::array<CompactHist, kLockModes> contention_hist{};
    uint64_t drain_waits = 0, drain_wait_ns = 0;
    uint64_t mode_changes = 0;

    CompactStats &operator+=(const WriteStats &d);
    WriteStats expand() const;
    // The same without the histograms (left empty): what a brief view's totals need.
    WriteStats expand_counts() const;
    bool operator==(const CompactStats &) const = default;
};

} // namespace fusescope
