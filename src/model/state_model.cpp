// StateModel: per-inode state from counters, events and census.
// See include/fusescope/model/state_model.h for the contract of each input.
#include "fusescope/model/state_model.h"

#include <algorithm>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace fusescope {

namespace {

// Cumulative kernel counters of one inode as WriteStats (+ its identity stamp).
struct RawCounters {
    WriteStats stats;
    uint64_t first_seen_ns = 0;
};

RawCounters to_raw(const InodeCounters &c) {
    RawCounters r;
    r.first_seen_ns = c.first_seen_ns;
    WriteStats &s = r.stats;
    s.writes = c.writes;
    s.bytes = c.write_bytes;
    s.wait_ns = c.write_wait_ns;
    s.service_ns = c.write_service_ns;
    s.contentions = c.contentions;
    s.contention_ns = c.contention_ns;
    for (size_t m = 0; m < static_cast<size_t>(kLockModes); ++m)
        for (size_t i = 0; i < static_cast<size_t>(kHistSlots); ++i)
            s.contention_hist[m].slots[i] = c.contention_hist[m][i];
    s.drain_waits = c.drain_waits;
    s.drain_wait_ns = c.drain_wait_ns;
    s.mode_changes = c.mode_changes;
    return r;
}

// later - earlier, field by field; false if any field went down (entry reset).
bool subtract(const WriteStats &later, const WriteStats &earlier, WriteStats &out) {
    bool ok = true;
    auto sub = [&](uint64_t a, uint64_t b) {
        if (a < b)
            ok = false;
        return a - b;
    };
    for (size_t i = 0; i < later.writes.size(); ++i)
        out.writes[i] = sub(later.writes[i], earlier.writes[i]);
    for (size_t m = 0; m < static_cast<size_t>(kLockModes); ++m) {
        out.bytes[m] = sub(later.bytes[m], earlier.bytes[m]);
        out.wait_ns[m] = sub(later.wait_ns[m], earlier.wait_ns[m]);
        out.service_ns[m] = sub(later.service_ns[m], earlier.service_ns[m]);
        out.contentions[m] = sub(later.contentions[m], earlier.contentions[m]);
        out.contention_ns[m] = sub(later.contention_ns[m], earlier.contention_ns[m]);
        for (size_t i = 0; i < static_cast<size_t>(kHistSlots); ++i)
            out.contention_hist[m].slots[i] =
                sub(later.contention_hist[m].slots[i], earlier.contention_hist[m].slots[i]);
    }
    out.drain_waits = sub(later.drain_waits, earlier.drain_waits);
    out.drain_wait_ns = sub(later.drain_wait_ns, earlier.drain_wait_ns);
    out.mode_changes = sub(later.mode_changes, earlier.mode_changes);
    return ok;
}

struct InodeState {
    InodeKey key;
    uint64_t nodeid = 0;
    std::string path;

    // Mode inputs: newest (iocachectr, cache bit) observation.
    int32_t ctr = 0;
    bool bit = false;
    bool mode_known = false;
    uint64_t mode_obs_ns = 0;
    IoMode mode;
    std::vector<Holder> holders;
    bool holders_unknown = false;
    bool holders_stale = false;
    std::vector<uint64_t> passthrough_files; // file_ids of IOM_UNCACHED opens

    // Counters. prev/interval are heap-allocated: most inodes in a large
    // model are idle, and a WriteStats is ~750 bytes (histograms).
    std::unique_ptr<RawCounters> prev; // present while the kernel entry exists
    WriteStats total;
    std::unique_ptr<WriteStats> interval; // valid if interval_seq == model's counters_seq
    uint64_t interval_seq = 0;
    uint64_t prev_seq = 0;
    uint64_t counter_resets = 0;

    uint64_t mmaps_shared = 0, mmaps_private = 0, mmaps_writable = 0;
    uint64_t drain_events = 0, drain_events_ns = 0;
    // Small bounded rings kept as vectors: an empty std::deque still allocates
    // ~600 bytes, which adds up over 65536 mostly idle inodes.
    std::vector<DrainWaiter> drain_waiters;
    std::vector<Transition> transitions;
    uint64_t first_seen_ns = 0, last_seen_ns = 0, last_write_ns = 0;
    bool pid_match = false;

    std::list<InodeKey>::iterator lru_it;

    void seen(uint64_t ts) {
        if (ts == 0)
            return;
        if (first_seen_ns == 0 || ts < first_seen_ns)
            first_seen_ns = ts;
        last_seen_ns = std::max(last_seen_ns, ts);
    }
};

} // namespace

struct StateModel::Impl {
    ModelOptions opts;
    mutable std::mutex mu;
    std::unordered_map<InodeKey, InodeState, InodeKeyHash> inodes;
    std::list<InodeKey> lru; // front = most recently active
    Mounts mounts;
    Health health;
    ModelStats stats;
    uint64_t now_ns = 0;
    uint64_t last_counters_ns = 0;
    uint64_t interval_ns = 0;
    uint64_t counters_seq = 0;
    bool census_wanted = false;

    explicit Impl(ModelOptions o) : opts(std::move(o)) {
        if (opts.max_inodes == 0)
            opts.max_inodes = 1;
    }

    bool accept(const InodeKey &k) const {
        return opts.devs.empty() || std::find(opts.devs.begin(), opts.devs.end(), k.dev) != opts.devs.end();
    }

    void touch(InodeState &s) { lru.splice(lru.begin(), lru, s.lru_it); }

    // Drop the least recently active inode that is not in cached mode; inodes
    // in cached mode (or with holders) are what users come for, so they are
    // only dropped when nothing else is left (forced eviction).
    void evict_one() {
        for (size_t scanned = 0, n = lru.size(); scanned < n; ++scanned) {
            auto it = inodes.find(lru.back());
            InodeState &s = it->second;
            if (s.mode.kind == ModeKind::Cached || !s.holders.empty()) {
                touch(s); // protected: rotate to the front, keep scanning
                continue;
            }
            lru.pop_back();
            inodes.erase(it);
            ++stats.evictions;
            return;
        }
        inodes.erase(lru.back());
        lru.pop_back();
        ++stats.evictions;
        ++stats.forced_evictions;
    }

    InodeState &get_or_create(const InodeKey &k) {
        auto it = inodes.find(k);
        if (it != inodes.end()) {
            touch(it->second);
            return it->second;
        }
        while (inodes.size() >= opts.max_inodes && !inodes.empty())
            evict_one();
        InodeState &s = inodes[k];
        s.key = k;
        s.mode = derive_io_mode(0, false, false, opts.io_modes_available);
        lru.push_front(k);
        s.lru_it = lru.begin();
        return s;
    }

    void push_transition(InodeState &s, const Transition &t) {
        s.transitions.push_back(t);
        if (s.transitions.size() > opts.transitions_kept)
            s.transitions.erase(s.transitions.begin(),
                                s.transitions.end() - static_cast<std::ptrdiff_t>(opts.transitions_kept));
    }

    // Record a (iocachectr, bit) observation unless we already know a newer one.
    void observe_mode(InodeState &s, int32_t ctr, bool bit, uint64_t ts) {
        if (s.mode_known && ts < s.mode_obs_ns)
            return;
        s.ctr = ctr;
        s.bit = bit;
        s.mode_known = true;
        s.mode_obs_ns = ts;
    }

    // Re-derive the mode from the inputs; record a transition if its kind changed;
    // keep holders consistent with it.
    void recompute(InodeState &s, uint64_t ts, TransitionCause cause, uint32_t pid, const std::string &comm) {
        IoMode m = derive_io_mode(s.ctr, s.bit, !s.passthrough_files.empty(), opts.io_modes_available);
        if (m.kind != s.mode.kind)
            push_transition(s, Transition{ts, s.mode, m, cause, pid, comm});
        s.mode = m;
        if (m.kind != ModeKind::Cached) {
            // Not cached as of mode_obs_ns: nobody observed before then holds it.
            std::erase_if(s.holders, [&](const Holder &h) { return h.since_ns <= s.mode_obs_ns; });
            s.holders_unknown = false;
            s.holders_stale = false;
            return;
        }
        // The kernel counts m.count caching files; we may know fewer of them.
        bool unknown = m.count > s.holders.size();
        if (unknown && !s.holders_unknown)
            census_wanted = true;
        s.holders_unknown = unknown;
    }

    void add_holder(InodeState &s, const Event &ev, HolderHow how) {
        for (const auto &h : s.holders)
            if (ev.file_id != 0 && h.file_id == ev.file_id)
                return; // already known (e.g. a cached open that also maps)
        s.holders.push_back(Holder{ev.file_id, ev.fh, ev.pid, ev.comm, how, ev.ts_ns, false});
    }

    void release_holder(InodeState &s, const Event &ev) {
        if (ev.file_id != 0) {
            auto it = std::find_if(s.holders.begin(), s.holders.end(),
                                   [&](const Holder &h) { return h.file_id == ev.file_id; });
            if (it != s.holders.end()) {
                s.holders.erase(it);
                return;
            }
        }
        // No file_id (or unknown one): fall back to the server's fh.
        auto n = std::count_if(s.holders.begin(), s.holders.end(), [&](const Holder &h) { return h.fh == ev.fh; });
        if (n == 1) {
            std::erase_if(s.holders, [&](const Holder &h) { return h.fh == ev.fh; });
        } else if (n > 1) {
            // Ambiguous: removing the wrong one would blame the wrong process.
            s.holders_stale = true;
            census_wanted = true;
        }
    }

    InodeView make_view(const InodeState &s) const;
};

StateModel::StateModel(ModelOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
StateModel::~StateModel() = default;

void StateModel::on_counters(const std::vector<InodeCounters> &counters, uint64_t now_ns) {
    Impl &m = *impl_;
    std::lock_guard lk(m.mu);
    ++m.counters_seq;
    m.interval_ns = (m.last_counters_ns != 0 && now_ns > m.last_counters_ns) ? now_ns - m.last_counters_ns : 0;
    m.last_counters_ns = now_ns;
    m.now_ns = std::max(m.now_ns, now_ns);
    for (const auto &c : counters) {
        if (!m.accept(c.key))
            continue;
        RawCounters raw = to_raw(c);
        auto it = m.inodes.find(c.key);
        InodeState *sp = nullptr;
        WriteStats d;
        if (it == m.inodes.end() || !it->second.prev || it->second.prev_seq + 1 != m.counters_seq) {
            // First sighting, or missing from the previous dump (its kernel
            // entry was evicted and re-created): everything in it is new.
            d = raw.stats;
        } else {
            const RawCounters &prev = *it->second.prev;
            bool recreated = prev.first_seen_ns != 0 && raw.first_seen_ns != 0 && prev.first_seen_ns != raw.first_seen_ns;
            if (recreated || !subtract(raw.stats, prev.stats, d)) {
                d = raw.stats; // LRU evicted and re-created the kernel entry
                ++it->second.counter_resets;
                ++m.stats.counter_resets;
            }
        }
        const bool active = !d.is_zero();
        if (it == m.inodes.end())
            sp = &m.get_or_create(c.key);
        else {
            sp = &it->second;
            if (active)
                m.touch(*sp);
        }
        InodeState &s = *sp;
        if (c.nodeid != 0)
            s.nodeid = c.nodeid;
        s.seen(c.first_seen_ns);
        s.seen(c.last_seen_ns);
        s.total += d;
        if (active) {
            s.interval = std::make_unique<WriteStats>(d);
            s.interval_seq = m.counters_seq;
        } else {
            s.interval.reset();
        }
        if (s.prev)
            *s.prev = std::move(raw);
        else
            s.prev = std::make_unique<RawCounters>(std::move(raw));
        s.prev_seq = m.counters_seq;
        // The kernel's iocachectr/bit are "as of the last write" (last_seen_ns).
        if (!s.mode_known || c.last_seen_ns > s.mode_obs_ns) {
            m.observe_mode(s, c.iocachectr, c.cache_io_mode, c.last_seen_ns);
            m.recompute(s, c.last_seen_ns, TransitionCause::Counters, 0, {});
        }
    }
    // The dump is the whole kernel map: an inode missing from it lost its
    // kernel entry (see the prev_seq test above). Free the stale baselines now
    // and then, so memory follows the kernel map's size, not the model's.
    if (m.counters_seq % 64 == 0) {
        for (auto &[key, s] : m.inodes) {
            if (s.prev && s.prev_seq != m.counters_seq) {
                s.prev.reset();
                s.interval.reset();
            }
        }
    }
}

void StateModel::on_event(const Event &ev) {
    Impl &m = *impl_;
    std::lock_guard lk(m.mu);
    ++m.stats.events;
    m.now_ns = std::max(m.now_ns, ev.ts_ns);
    if (!m.accept(ev.key)) {
        ++m.stats.events_filtered;
        return;
    }
    InodeState &s = m.get_or_create(ev.key);
    if (ev.nodeid != 0)
        s.nodeid = ev.nodeid;
    s.seen(ev.ts_ns);
    if (m.opts.pid && ev.pid == *m.opts.pid)
        s.pid_match = true;
    if (ev.flags & evflag::CensusHint)
        m.census_wanted = true;

    // The cache bit after the event: explicit flips first, else implied.
    bool bit = ev.iocachectr > 0;
    if (ev.flags & evflag::EnteredCache)
        bit = true;
    if (ev.flags & evflag::LeftCache)
        bit = false;

    TransitionCause cause = TransitionCause::WriteSeen;
    switch (ev.type) {
    case EventType::Open:
        cause = TransitionCause::Open;
        if ((ev.flags & evflag::Passthrough) && ev.file_id != 0 &&
            std::find(s.passthrough_files.begin(), s.passthrough_files.end(), ev.file_id) == s.passthrough_files.end())
            s.passthrough_files.push_back(ev.file_id);
        if (ev.flags & evflag::Holder)
            m.add_holder(s, ev, HolderHow::Open);
        break;
    case EventType::Mmap:
        cause = TransitionCause::Mmap;
        if (ev.flags & evflag::SharedMap)
            ++s.mmaps_shared;
        else
            ++s.mmaps_private;
        if (ev.flags & evflag::WritableMap)
            ++s.mmaps_writable;
        if (ev.flags & evflag::Holder)
            m.add_holder(s, ev, HolderHow::Mmap);
        break;
    case EventType::Release:
        cause = TransitionCause::Release;
        if (ev.flags & evflag::WasHolder)
            m.release_holder(s, ev);
        std::erase(s.passthrough_files, ev.file_id);
        break;
    case EventType::DrainWait:
        ++s.drain_events;
        s.drain_events_ns += ev.wait_ns;
        s.drain_waiters.push_back(DrainWaiter{ev.ts_ns, ev.pid, ev.comm, ev.wait_ns});
        if (s.drain_waiters.size() > m.opts.drain_waiters_kept)
            s.drain_waiters.erase(s.drain_waiters.begin(),
                                  s.drain_waiters.end() - static_cast<std::ptrdiff_t>(m.opts.drain_waiters_kept));
        return; // the waiter's own Open/Mmap event reports the resulting mode
    case EventType::ModeSeen:
        break;
    case EventType::Write:
        s.last_write_ns = std::max(s.last_write_ns, ev.ts_ns);
        if (ev.reason == WriteReason::CacheIoMode)
            bit = true;
        break;
    }
    m.observe_mode(s, ev.iocachectr, bit, ev.ts_ns);
    m.recompute(s, ev.ts_ns, cause, ev.pid, ev.comm);
}

void StateModel::on_census(const std::vector<CensusRecord> &records, uint64_t now_ns) {
    Impl &m = *impl_;
    std::lock_guard lk(m.mu);
    ++m.stats.census_runs;
    m.now_ns = std::max(m.now_ns, now_ns);

    std::map<InodeKey, std::vector<const CensusRecord *>> by_inode;
    for (const auto &r : records)
        if (m.accept(r.key))
            by_inode[r.key].push_back(&r);

    static const std::string no_comm;
    // No open file and no mapping left: the kernel's count must be back to 0.
    for (auto &[key, s] : m.inodes) {
        if (by_inode.contains(key))
            continue;
        s.passthrough_files.clear();
        if (s.mode.kind != ModeKind::None && s.mode.kind != ModeKind::NotAvailable) {
            m.observe_mode(s, 0, false, now_ns);
            m.recompute(s, now_ns, TransitionCause::Census, 0, no_comm);
        }
        s.holders_stale = false;
    }

    for (const auto &[key, recs] : by_inode) {
        InodeState &s = m.get_or_create(key);
        struct FileInfo {
            bool cached = false;
            uint64_t fh = 0;
            const CensusRecord *file = nullptr;
            const CensusRecord *vma = nullptr;
        };
        std::vector<std::pair<uint64_t, FileInfo>> files; // census order
        auto info = [&](uint64_t id) -> FileInfo & {
            for (auto &[fid, fi] : files)
                if (fid == id)
                    return fi;
            files.emplace_back(id, FileInfo{});
            return files.back().second;
        };
        const CensusRecord *mode_src = nullptr;
        s.passthrough_files.clear();
        for (const CensusRecord *r : recs) {
            if (r->nodeid != 0)
                s.nodeid = r->nodeid;
            if (m.opts.pid && r->pid == *m.opts.pid)
                s.pid_match = true;
            if (!mode_src || (r->kind == CensusKind::File && mode_src->kind != CensusKind::File))
                mode_src = r;
            FileInfo &fi = info(r->file_id);
            fi.fh = r->fh;
            if (r->iomode == FileIoMode::Cached)
                fi.cached = true;
            if (r->kind == CensusKind::File) {
                if (!fi.file)
                    fi.file = r;
                if (r->iomode == FileIoMode::Uncached &&
                    std::find(s.passthrough_files.begin(), s.passthrough_files.end(), r->file_id) ==
                        s.passthrough_files.end())
                    s.passthrough_files.push_back(r->file_id);
            } else if (!fi.vma) {
                fi.vma = r;
            }
        }
        std::vector<Holder> holders;
        for (const auto &[fid, fi] : files) {
            if (!fi.cached)
                continue;
            const CensusRecord *who = fi.vma ? fi.vma : fi.file; // the mmapping process explains an mmap holder
            Holder h{fid, fi.fh, who->pid, who->comm, fi.vma ? HolderHow::Mmap : HolderHow::Open, now_ns, true};
            for (const auto &old : s.holders)
                if (old.file_id == fid) {
                    h.since_ns = old.since_ns;
                    h.since_is_lower_bound = old.since_is_lower_bound;
                }
            holders.push_back(std::move(h));
        }
        // Holders reported by events after the census was taken stay.
        for (const auto &old : s.holders)
            if (old.since_ns > now_ns && std::none_of(holders.begin(), holders.end(),
                                                      [&](const Holder &h) { return h.file_id == old.file_id; }))
                holders.push_back(old);
        s.holders = std::move(holders);
        s.holders_stale = false;
        s.holders_unknown = false;
        s.seen(now_ns);
        m.observe_mode(s, mode_src->iocachectr, mode_src->cache_io_mode, now_ns);
        m.recompute(s, now_ns, TransitionCause::Census, 0, no_comm);
    }
    // Whatever is still unknown, this census could not explain; don't loop on it.
    m.census_wanted = false;
}

void StateModel::on_health(const Health &h) {
    std::lock_guard lk(impl_->mu);
    impl_->health = h;
}

void StateModel::set_mounts(const Mounts &mounts) {
    std::lock_guard lk(impl_->mu);
    impl_->mounts = mounts;
}

void StateModel::set_path(const InodeKey &key, std::string path) {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->inodes.find(key);
    if (it != impl_->inodes.end())
        it->second.path = std::move(path);
}

void StateModel::resolve_paths_from_census(const std::vector<CensusRecord> &records, const ReadlinkFn &readlink) {
    struct Want {
        InodeKey key;
        uint32_t pid, fd;
    };
    std::vector<Want> wants;
    {
        std::lock_guard lk(impl_->mu);
        std::unordered_set<InodeKey, InodeKeyHash> queued;
        for (const auto &r : records) {
            if (r.kind != CensusKind::File || queued.contains(r.key))
                continue;
            auto it = impl_->inodes.find(r.key);
            if (it == impl_->inodes.end() || !it->second.path.empty())
                continue;
            queued.insert(r.key);
            wants.push_back({r.key, r.pid, r.fd});
        }
    }
    // readlink touches /proc: do it without holding the lock views wait on.
    std::vector<std::pair<InodeKey, std::string>> found;
    for (const auto &w : wants)
        if (auto p = readlink(w.pid, w.fd); p && !p->empty())
            found.emplace_back(w.key, std::move(*p));
    std::lock_guard lk(impl_->mu);
    for (auto &[key, path] : found) {
        auto it = impl_->inodes.find(key);
        if (it != impl_->inodes.end() && it->second.path.empty())
            it->second.path = std::move(path);
    }
}

bool StateModel::needs_census() const {
    std::lock_guard lk(impl_->mu);
    return impl_->census_wanted;
}

InodeView StateModel::Impl::make_view(const InodeState &s) const {
    InodeView v;
    v.key = s.key;
    v.nodeid = s.nodeid;
    if (const Mount *mt = mounts.find_by_dev(s.key.dev))
        v.mount_point = mt->mount_point;
    v.path = s.path;
    v.mode = s.mode;
    v.mode_observed_ns = s.mode_obs_ns;
    v.holders = s.holders;
    v.holders_unknown = s.holders_unknown;
    v.holders_stale = s.holders_stale;
    v.passthrough_files = static_cast<uint32_t>(s.passthrough_files.size());
    v.total = s.total;
    if (s.interval && s.interval_seq == counters_seq)
        v.interval = *s.interval;
    v.interval_ns = interval_ns;
    v.counter_resets = s.counter_resets;
    v.mmaps_shared = s.mmaps_shared;
    v.mmaps_private = s.mmaps_private;
    v.mmaps_writable = s.mmaps_writable;
    v.drain_events = s.drain_events;
    v.drain_events_ns = s.drain_events_ns;
    v.last_drain_waiters.assign(s.drain_waiters.begin(), s.drain_waiters.end());
    v.transitions.assign(s.transitions.begin(), s.transitions.end());
    v.first_seen_ns = s.first_seen_ns;
    v.last_seen_ns = s.last_seen_ns;
    v.last_write_ns = s.last_write_ns;
    return v;
}

Snapshot StateModel::snapshot() const {
    const Impl &m = *impl_;
    std::lock_guard lk(m.mu);
    Snapshot snap;
    snap.now_ns = m.now_ns;
    snap.interval_ns = m.interval_ns;
    snap.io_modes_available = m.opts.io_modes_available;
    snap.health = m.health;
    snap.mounts = m.mounts.all();
    snap.stats = m.stats;
    snap.stats.inodes = m.inodes.size();
    snap.stats.max_inodes = m.opts.max_inodes;
    snap.stats.census_wanted = m.census_wanted;
    snap.inodes.reserve(m.inodes.size());
    for (const auto &[key, s] : m.inodes)
        if (!m.opts.pid || s.pid_match)
            snap.inodes.push_back(m.make_view(s));
    std::sort(snap.inodes.begin(), snap.inodes.end(),
              [](const InodeView &a, const InodeView &b) { return a.key < b.key; });
    return snap;
}

} // namespace fusescope
