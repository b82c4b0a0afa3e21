// IoMode derivation and the InodeView/WriteStats helpers views use.
#include "fusescope/model/snapshot.h"

#include <algorithm>

#include <fmt/format.h>

namespace fusescope {

IoMode derive_io_mode(int32_t ctr, bool bit, bool passthrough_known, bool io_modes_available) {
    IoMode m;
    m.iocachectr = ctr;
    m.cache_bit = bit;
    if (!io_modes_available) {
        m.kind = ModeKind::NotAvailable;
    } else if (bit || ctr > 0) {
        // The bit alone (ctr <= 0) means a caching opener is waiting for the
        // parallel writers to drain: new writers already go exclusive.
        m.kind = ModeKind::Cached;
        m.count = ctr > 0 ? static_cast<uint32_t>(ctr) : 0;
    } else if (ctr < 0) {
        // Negative refs are passthrough opens plus shared-lock writers in
        // flight; they can only be told apart with per-file data.
        m.kind = passthrough_known ? ModeKind::Passthrough : ModeKind::Parallel;
        m.count = static_cast<uint32_t>(-static_cast<int64_t>(ctr));
    }
    return m;
}

uint64_t WriteStats::total_writes() const {
    uint64_t n = 0;
    for (auto w : writes)
        n += w;
    return n;
}

uint64_t WriteStats::writes_by_lock(LockMode m) const {
    uint64_t n = 0;
    for (const WriteReasonInfo &i : kWriteReasonInfo)
        if (i.lock == m)
            n += writes[static_cast<size_t>(i.reason)];
    return n;
}

uint64_t WriteStats::unclassified_writes() const {
    uint64_t n = 0;
    for (const WriteReasonInfo &i : kWriteReasonInfo)
        if (is_unclassified(i.reason))
            n += writes[static_cast<size_t>(i.reason)];
    return n;
}

uint64_t WriteStats::total_wait_ns() const {
    uint64_t n = 0;
    for (uint64_t w : wait_ns)
        n += w;
    return n;
}

Histogram WriteStats::wait_hist() const {
    Histogram h = contention_hist[0];
    h.merge(contention_hist[1]);
    return h;
}

bool WriteStats::is_zero() const {
    WriteStats z;
    return total_writes() == 0 && bytes == z.bytes && wait_ns == z.wait_ns &&
           service_ns == z.service_ns && writeback_requests == 0 && writeback_bytes == 0 &&
           contentions == z.contentions && contention_ns == z.contention_ns &&
           contention_hist == z.contention_hist && drain_waits == 0 && drain_wait_ns == 0 &&
           mode_changes == 0;
}

WriteStats &WriteStats::operator+=(const WriteStats &o) {
    add_write_stats(*this, o, [](Histogram &h, const Histogram &x) { h.merge(x); });
    return *this;
}

double InodeView::exclusive_fraction(bool in_interval) const {
    const WriteStats &s = in_interval ? interval : total;
    const uint64_t n = s.shared_writes() + s.exclusive_writes(); // those whose lock is known
    return n == 0 ? 0.0 : static_cast<double>(s.exclusive_writes()) / static_cast<double>(n);
}

std::optional<WriteReason> InodeView::top_exclusive_reason(bool in_interval) const {
    const WriteStats &s = in_interval ? interval : total;
    std::optional<WriteReason> best;
    uint64_t best_n = 0;
    for (const WriteReasonInfo &i : kWriteReasonInfo) {
        const uint64_t n = s.writes[static_cast<size_t>(i.reason)];
        if (i.lock == LockMode::Exclusive && n > best_n) {
            best_n = n;
            best = i.reason;
        }
    }
    return best;
}

double InodeView::wait_seconds_per_second() const {
    return interval_ns == 0
               ? 0.0
               : static_cast<double>(interval.total_wait_ns()) / static_cast<double>(interval_ns);
}

double InodeView::writes_per_second() const {
    return interval_ns == 0 ? 0.0
                            : static_cast<double>(interval.total_writes()) * 1e9 /
                                  static_cast<double>(interval_ns);
}

double InodeView::wait_p50_ns(bool in_interval) const {
    return (in_interval ? interval : total).wait_hist().percentile(50);
}

double InodeView::wait_p99_ns(bool in_interval) const {
    return (in_interval ? interval : total).wait_hist().percentile(99);
}

const InodeView *Snapshot::find(const InodeKey &k) const {
    auto it = std::lower_bound(inodes.begin(), inodes.end(), k,
                               [](const InodeView &v, const InodeKey &key) { return v.key < key; });
    return it != inodes.end() && it->key == k ? &*it : nullptr;
}

std::string_view to_string(ModeKind k) {
    switch (k) {
    case ModeKind::None:
        return "none";
    case ModeKind::Cached:
        return "cached";
    case ModeKind::Parallel:
        return "parallel";
    case ModeKind::Passthrough:
        return "passthrough";
    case ModeKind::NotAvailable:
        return "n/a";
    }
    return "?";
}

std::string to_string(const IoMode &m) {
    switch (m.kind) {
    case ModeKind::Cached:
        return m.draining() ? std::string("cached(draining)") : fmt::format("cached({})", m.count);
    case ModeKind::Parallel:
    case ModeKind::Passthrough:
        return fmt::format("{}({})", to_string(m.kind), m.count);
    default:
        return std::string(to_string(m.kind));
    }
}

std::string_view to_string(HolderHow h) { return h == HolderHow::Mmap ? "mmap" : "open"; }

std::string_view to_string(TransitionCause c) {
    switch (c) {
    case TransitionCause::Open:
        return "open";
    case TransitionCause::Mmap:
        return "mmap";
    case TransitionCause::Release:
        return "release";
    case TransitionCause::Census:
        return "census";
    case TransitionCause::WriteSeen:
        return "write-seen";
    case TransitionCause::DrainWait:
        return "drain-wait";
    case TransitionCause::Counters:
        return "counters";
    }
    return "?";
}

} // namespace fusescope

namespace fusescope {

uint64_t WriteStats::wait_share_ns(uint64_t n) const {
    const uint64_t excl = exclusive_writes();
    if (excl == 0 || n == 0)
        return 0;
    const long double w = static_cast<long double>(total_wait_ns()) *
                          static_cast<long double>(std::min(n, excl)) /
                          static_cast<long double>(excl);
    return static_cast<uint64_t>(w);
}

std::string_view to_string(PathSource s) {
    switch (s) {
    case PathSource::None:
        return "";
    case PathSource::OpenFd:
        return "fd";
    case PathSource::Kernel:
        return "kernel";
    case PathSource::Walk:
        return "walk";
    case PathSource::Argument:
        return "argument";
    }
    return "";
}

std::string ProgramRef::name() const { return exe.empty() ? comm : comm + " (" + exe + ")"; }

void split_cost_by_hold(std::vector<HolderProgram> &programs, uint64_t cost_ns) {
    long double held = 0;
    for (const auto &p : programs)
        held += static_cast<long double>(p.total_held_ns);
    for (auto &p : programs)
        p.cost_ns = held > 0
                        ? static_cast<uint64_t>(static_cast<long double>(cost_ns) *
                                                static_cast<long double>(p.total_held_ns) / held)
                    : programs.size() == 1 ? cost_ns
                                           : 0;
}

} // namespace fusescope
