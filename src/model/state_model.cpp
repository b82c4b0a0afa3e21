// StateModel: per-inode state from counters, events and census.
// See include/fusescope/model/state_model.h for the contract of each input.
#include "fusescope/model/state_model.h"

#include "fusescope/model/compact_stats.h"
#include "fusescope/model/workload.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace fusescope {

namespace {

// counters.X - (total.X - base.X) for one field; false (via ok) if it went down.
struct DeltaCalc {
    bool ok = true;
    uint64_t operator()(uint64_t raw, uint64_t total, uint64_t base) {
        const uint64_t prev = total - base;
        if (raw < prev)
            ok = false;
        return raw - prev;
    }
};

// The delta of a kernel entry since the model's last read of it, without expanding
// the compact totals: the entry's previous values are total - base. False if any
// field went down (the kernel LRU re-created the entry).
bool delta_since(const InodeCounters &c, const CompactStats &total, const CompactStats *base,
                 WriteStats &d) {
    static const CompactStats zero;
    const CompactStats &b = base ? *base : zero;
    DeltaCalc sub;
    for (size_t i = 0; i < d.writes.size(); ++i)
        d.writes[i] = sub(c.writes[i], total.writes[i], b.writes[i]);
    for (size_t m = 0; m < static_cast<size_t>(kWriteLockModes); ++m) {
        d.bytes[m] = sub(c.write_bytes[m], total.bytes[m], b.bytes[m]);
        d.wait_ns[m] = sub(c.write_wait_ns[m], total.wait_ns[m], b.wait_ns[m]);
        d.service_ns[m] = sub(c.write_service_ns[m], total.service_ns[m], b.service_ns[m]);
    }
    d.writeback_requests =
        sub(c.writeback_requests, total.writeback_requests, b.writeback_requests);
    d.writeback_bytes = sub(c.writeback_bytes, total.writeback_bytes, b.writeback_bytes);
    for (size_t m = 0; m < static_cast<size_t>(kLockModes); ++m) {
        d.contentions[m] = sub(c.contentions[m], total.contentions[m], b.contentions[m]);
        d.contention_ns[m] = sub(c.contention_ns[m], total.contention_ns[m], b.contention_ns[m]);
        const CompactHist &th = total.contention_hist[m], &bh = b.contention_hist[m];
        for (int i = 0; i < kHistSlots; ++i)
            d.contention_hist[m].slots[static_cast<size_t>(i)] =
                sub(c.contention_hist[m][static_cast<size_t>(i)], th.at(i), bh.at(i));
    }
    d.drain_waits = sub(c.drain_waits, total.drain_waits, b.drain_waits);
    d.drain_wait_ns = sub(c.drain_wait_ns, total.drain_wait_ns, b.drain_wait_ns);
    d.mode_changes = sub(c.mode_changes, total.mode_changes, b.mode_changes);
    return sub.ok;
}

// The kernel entry's values as a delta from nothing (a fresh or re-created entry).
WriteStats as_delta(const InodeCounters &c) {
    WriteStats s;
    s.writes = c.writes;
    s.bytes = c.write_bytes;
    s.wait_ns = c.write_wait_ns;
    s.service_ns = c.write_service_ns;
    s.writeback_requests = c.writeback_requests;
    s.writeback_bytes = c.writeback_bytes;
    s.contentions = c.contentions;
    s.contention_ns = c.contention_ns;
    for (size_t m = 0; m < static_cast<size_t>(kLockModes); ++m)
        for (size_t i = 0; i < static_cast<size_t>(kHistSlots); ++i)
            s.contention_hist[m].slots[i] = c.contention_hist[m][i];
    s.drain_waits = c.drain_waits;
    s.drain_wait_ns = c.drain_wait_ns;
    s.mode_changes = c.mode_changes;
    return s;
}

bool is_zero(const CompactStats &s) {
    static const CompactStats zero;
    return s == zero;
}

// What few inodes have: kept off the per-inode record so that the many idle
// inodes of a large model cost a pointer for all of it.
// One program's part in an inode's story (HolderProgram, WriterProgram): processes
// grouped by comm plus executable.
struct ProgramAcc {
    static constexpr size_t kPidsCounted = 1024; // distinct pids remembered for the count

    std::string comm;
    InodeKey exe; // ino 0: unknown, matches any executable of the same comm
    uint64_t cgroup_id = 0;
    std::vector<uint32_t> pids;
    uint32_t processes = 0;
    std::array<uint32_t, 2> by_how{}; // holds by HolderHow (caching open, shared mmap)
    uint32_t lower_bound_holds = 0;   // holds first seen by a census: they began earlier
    uint64_t holds = 0, entered_cache = 0, opens = 0;
    uint64_t ended_ns = 0, longest_ns = 0; // of holds that ended

    // The program of a task (comm @c, executable @e, process @pid): the threads of one
    // process are one program whatever names they gave themselves (prctl PR_SET_NAME).
    bool is(const std::string &c, const InodeKey &e, uint32_t pid) const {
        if (exe != e && exe.ino != 0 && e.ino != 0)
            return false;
        return comm == c || (pid != 0 && std::find(pids.begin(), pids.end(), pid) != pids.end());
    }
    void note(uint32_t pid, const InodeKey &e, uint64_t cgroup) {
        if (exe.ino == 0)
            exe = e;
        if (cgroup_id == 0)
            cgroup_id = cgroup;
        if (std::find(pids.begin(), pids.end(), pid) != pids.end())
            return;
        ++processes;
        if (pids.size() < kPidsCounted)
            pids.push_back(pid);
    }
};

struct InodeExtra {
    std::string path;
    PathSource path_source = PathSource::None;
    uint64_t path_captured_ns = 0;
    std::vector<Holder> holders;
    std::vector<ProgramAcc> hold_programs;   // bounded: kProgramsKept
    std::vector<ProgramAcc> write_programs;  // bounded: kProgramsKept
    std::vector<uint64_t> passthrough_files; // file_ids of IOM_UNCACHED opens
    std::vector<DrainWaiter> drain_waiters;  // bounded, oldest first
    uint64_t mmaps_shared = 0, mmaps_private = 0, mmaps_writable = 0;
    uint64_t drain_events = 0, drain_events_ns = 0;
};

// A Transition in 40 bytes instead of 80 (most inodes of a large model keep one
// or two): the modes as (kind, iocachectr, bit), re-derived by derive_io_mode
// (the kind tells what it needs besides: passthrough known, io modes at all);
// comm inline.
struct PackedTransition {
    uint64_t ts_ns = 0;
    uint32_t pid = 0;
    int32_t from_ctr = 0, to_ctr = 0;
    ModeKind from_kind = ModeKind::None, to_kind = ModeKind::None;
    TransitionCause cause = TransitionCause::Counters;
    uint8_t bits = 0; // bit 0: from.cache_bit, bit 1: to.cache_bit
    std::array<char, 16> comm{};

    static IoMode mode_of(ModeKind k, int32_t ctr, bool bit) {
        return derive_io_mode(ctr, bit, k == ModeKind::Passthrough, k != ModeKind::NotAvailable);
    }
    static PackedTransition pack(const Transition &t) {
        PackedTransition p;
        p.ts_ns = t.ts_ns;
        p.pid = t.pid;
        p.from_ctr = t.from.iocachectr;
        p.to_ctr = t.to.iocachectr;
        p.from_kind = t.from.kind;
        p.to_kind = t.to.kind;
        p.cause = t.cause;
        p.bits = static_cast<uint8_t>((t.from.cache_bit ? 1 : 0) | (t.to.cache_bit ? 2 : 0));
        std::memcpy(p.comm.data(), t.comm.data(), std::min(t.comm.size(), p.comm.size()));
        return p;
    }
    Transition unpack() const {
        Transition t;
        t.ts_ns = ts_ns;
        t.pid = pid;
        t.from = mode_of(from_kind, from_ctr, (bits & 1) != 0);
        t.to = mode_of(to_kind, to_ctr, (bits & 2) != 0);
        t.cause = cause;
        t.comm.assign(comm.data(), strnlen(comm.data(), comm.size()));
        return t;
    }
};
static_assert(sizeof(PackedTransition) == 40);

struct InodeState {
    InodeKey key;
    uint64_t nodeid = 0;

    // Mode inputs: newest (iocachectr, cache bit) observation.
    int32_t ctr = 0;
    bool bit = false;
    bool mode_known = false;
    bool holders_unknown = false;
    bool holders_stale = false;
    bool pid_match = false;
    // The kernel map has an entry for this inode whose values are total - base.
    bool in_kernel = false;
    IoMode mode;
    uint64_t mode_obs_ns = 0;

    // Counters. The kernel entry's values at the last read are total - base: no
    // copy of them is kept. base (totals before the current kernel entry) only
    // exists for the few inodes whose kernel entry was re-created; the last
    // interval's deltas are kept by the model for the inodes that changed.
    CompactStats total;
    std::unique_ptr<CompactStats> base;
    uint64_t seen_seq = 0;             // last counters read that listed it
    uint64_t kernel_first_seen_ns = 0; // identity stamp of the kernel entry
    uint64_t counter_resets = 0;

    std::vector<PackedTransition> transitions; // bounded, oldest first
    std::unique_ptr<InodeExtra> extra;
    uint64_t first_seen_ns = 0, last_seen_ns = 0, last_write_ns = 0;

    InodeState *lru_prev = nullptr, *lru_next = nullptr; // intrusive LRU (map nodes are stable)

    void seen(uint64_t ts) {
        if (ts == 0)
            return;
        if (first_seen_ns == 0 || ts < first_seen_ns)
            first_seen_ns = ts;
        last_seen_ns = std::max(last_seen_ns, ts);
    }
    InodeExtra &ext() {
        if (!extra)
            extra = std::make_unique<InodeExtra>();
        return *extra;
    }
    bool has_holders() const { return extra && !extra->holders.empty(); }
    bool passthrough_known() const { return extra && !extra->passthrough_files.empty(); }
};

constexpr size_t kProgramsKept = 16; // per inode, of holders and of writers
constexpr size_t kExamplePids = 5;

// The program of @comm/@exe (or of process @pid) among @progs; with @create, created
// if there is room.
ProgramAcc *program_of(std::vector<ProgramAcc> &progs, const std::string &comm, const InodeKey &exe,
                       uint32_t pid, bool create = true) {
    for (auto &p : progs)
        if (p.is(comm, exe, pid))
            return &p;
    if (!create || progs.size() >= kProgramsKept)
        return nullptr;
    progs.push_back(ProgramAcc{});
    progs.back().comm = comm;
    return &progs.back();
}

// Per device: counters summed as the model takes them in, so they stay
// monotonic whatever the model evicts; transitions counted as they happen.
struct DevAcc {
    WriteStats total;
    std::map<std::pair<TransitionCause, ModeKind>, uint64_t> transitions;
    std::string label; // last known mount point
};

} // namespace

struct StateModel::Impl {
    ModelOptions opts;
    mutable std::mutex mu;
    std::unordered_map<InodeKey, InodeState, InodeKeyHash> inodes;
    InodeState *lru_head = nullptr; // most recently active
    InodeState *lru_tail = nullptr;
    std::map<uint32_t, DevAcc> devs;
    // The last counters read's deltas of the inodes that changed in it (the rest
    // had none): replaced at every read, so idle inodes hold nothing.
    std::unordered_map<InodeKey, CompactStats, InodeKeyHash> intervals;
    Mounts mounts;
    Health health;
    ModelStats stats;
    // StateModel::generation(): bumped under the lock by every change a brief view may show.
    uint64_t generation = 0;
    // The lock for such a change, with the generation bumped: what mutators take.
    std::unique_lock<std::mutex> lock_for_change() {
        std::unique_lock lk(mu);
        ++generation;
        return lk;
    }
    uint64_t now_ns = 0;
    uint64_t last_counters_ns = 0;
    uint64_t interval_ns = 0;
    uint64_t counters_seq = 0;
    bool census_wanted = false;
    // Who and where: names the session resolved, and ids still waiting for one.
    std::unordered_map<InodeKey, std::string, InodeKeyHash> exe_paths;
    std::unordered_map<uint64_t, std::string> cgroup_paths;
    std::unordered_map<InodeKey, uint32_t, InodeKeyHash> exe_wanted; // -> a pid running it
    std::unordered_set<uint64_t> cgroup_wanted;
    std::vector<InodeKey> path_wanted;     // inodes new since the last names_wanted()
    std::map<uint32_t, bool> uring_by_dev; // from census records: the transport of each device

    explicit Impl(ModelOptions o) : opts(std::move(o)) {
        if (opts.max_inodes == 0)
            opts.max_inodes = 1;
    }

    bool accept(const InodeKey &k) const {
        return opts.devs.empty() ||
               std::find(opts.devs.begin(), opts.devs.end(), k.dev) != opts.devs.end();
    }

    void lru_unlink(InodeState &s) {
        (s.lru_prev ? s.lru_prev->lru_next : lru_head) = s.lru_next;
        (s.lru_next ? s.lru_next->lru_prev : lru_tail) = s.lru_prev;
        s.lru_prev = s.lru_next = nullptr;
    }
    void lru_push_front(InodeState &s) {
        s.lru_prev = nullptr;
        s.lru_next = lru_head;
        (lru_head ? lru_head->lru_prev : lru_tail) = &s;
        lru_head = &s;
    }
    void touch(InodeState &s) {
        if (lru_head == &s)
            return;
        lru_unlink(s);
        lru_push_front(s);
    }
    void erase(InodeState &s) {
        lru_unlink(s);
        intervals.erase(s.key);
        inodes.erase(s.key);
        ++stats.evictions;
    }

    // Drop the least recently active inode that is not in cached mode; inodes
    // in cached mode (or with holders) are what users come for, so they are
    // only dropped when nothing else is left (forced eviction).
    void evict_one() {
        for (size_t scanned = 0, n = inodes.size(); scanned < n; ++scanned) {
            InodeState &s = *lru_tail;
            if (s.mode.kind == ModeKind::Cached || s.has_holders()) {
                touch(s); // protected: rotate to the front, keep scanning
                continue;
            }
            erase(s);
            return;
        }
        erase(*lru_tail);
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
        lru_push_front(s);
        path_wanted.push_back(k);
        return s;
    }

    DevAcc &dev_acc(uint32_t dev) {
        auto [it, fresh] = devs.try_emplace(dev);
        if (fresh)
            if (const Mount *mt = mounts.find_by_dev(dev))
                it->second.label = mt->mount_point;
        return it->second;
    }

    void push_transition(InodeState &s, const Transition &t) {
        ++dev_acc(s.key.dev).transitions[{t.cause, t.to.kind}];
        s.transitions.push_back(PackedTransition::pack(t));
        if (s.transitions.size() > opts.transitions_kept)
            s.transitions.erase(s.transitions.begin(),
                                s.transitions.end() -
                                    static_cast<std::ptrdiff_t>(opts.transitions_kept));
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
    void recompute(InodeState &s, uint64_t ts, TransitionCause cause, uint32_t pid,
                   const std::string &comm) {
        IoMode m = derive_io_mode(s.ctr, s.bit, s.passthrough_known(), opts.io_modes_available);
        if (m.kind != s.mode.kind)
            push_transition(s, Transition{ts, s.mode, m, cause, pid, comm});
        s.mode = m;
        if (m.kind != ModeKind::Cached) {
            // Not cached as of mode_obs_ns: nobody observed before then holds it.
            if (s.extra)
                std::erase_if(s.extra->holders, [&](const Holder &h) {
                    if (h.since_ns > s.mode_obs_ns)
                        return false;
                    end_hold(s, h, s.mode_obs_ns); // its release was not seen: the mode says
                    return true;
                });
            s.holders_unknown = false;
            s.holders_stale = false;
            return;
        }
        // The kernel counts m.count caching files; we may know fewer of them.
        const size_t known = s.extra ? s.extra->holders.size() : 0;
        bool unknown = m.count > known;
        if (unknown && !s.holders_unknown)
            census_wanted = true;
        s.holders_unknown = unknown;
    }

    void want_names(const InodeKey &exe, uint32_t pid, uint64_t cgroup_id) {
        if (exe.ino != 0 && !exe_paths.contains(exe))
            exe_wanted.try_emplace(exe, pid);
        if (cgroup_id != 0 && !cgroup_paths.contains(cgroup_id))
            cgroup_wanted.insert(cgroup_id);
    }

    // A hold begins: the holder and its program's count.
    void begin_hold(InodeState &s, Holder h, bool entered_cache) {
        InodeExtra &x = s.ext();
        want_names(h.exe, h.pid, h.cgroup_id);
        if (ProgramAcc *p = program_of(x.hold_programs, h.comm, h.exe, h.pid)) {
            p->note(h.pid, h.exe, h.cgroup_id);
            ++p->by_how[static_cast<size_t>(h.how)];
            ++p->holds;
            if (entered_cache)
                ++p->entered_cache;
            if (h.since_is_lower_bound)
                ++p->lower_bound_holds;
        }
        x.holders.push_back(std::move(h));
    }

    // A hold ends at @end_ns (its release, or when the mode or a census showed it gone).
    void end_hold(InodeState &s, const Holder &h, uint64_t end_ns) {
        if (!s.extra)
            return;
        if (ProgramAcc *p = program_of(s.extra->hold_programs, h.comm, h.exe, h.pid, false)) {
            const uint64_t held = end_ns > h.since_ns ? end_ns - h.since_ns : 0;
            p->ended_ns += held;
            p->longest_ns = std::max(p->longest_ns, held);
        }
    }

    void add_holder(InodeState &s, const Event &ev, HolderHow how) {
        auto &holders = s.ext().holders;
        for (auto &h : holders) {
            if (ev.file_id == 0 || h.file_id != ev.file_id)
                continue;
            // Already known (a cached open that also maps), or found by a census taken
            // before this event was read: the event has the real start.
            if (h.since_is_lower_bound && ev.ts_ns <= h.since_ns) {
                if (ProgramAcc *p =
                        program_of(s.extra->hold_programs, h.comm, h.exe, h.pid, false)) {
                    --p->lower_bound_holds;
                    --p->by_how[static_cast<size_t>(h.how)]; // a census may see the file
                    ++p->by_how[static_cast<size_t>(how)];   // after its mapping went
                    if (ev.flags & evflag::EnteredCache)
                        ++p->entered_cache;
                }
                h.since_ns = ev.ts_ns;
                h.since_is_lower_bound = false;
                h.how = how;
            }
            return;
        }
        Holder h;
        h.file_id = ev.file_id;
        h.fh = ev.fh;
        h.pid = ev.pid;
        h.comm = ev.comm;
        h.how = how;
        h.since_ns = ev.ts_ns;
        h.release_id = ev.release_id;
        h.exe = ev.exe;
        h.cgroup_id = ev.cgroup_id;
        begin_hold(s, std::move(h), (ev.flags & evflag::EnteredCache) != 0);
    }

    void add_writer(InodeState &s, const Event &ev) {
        want_names(ev.exe, ev.pid, ev.cgroup_id);
        if (ProgramAcc *p = program_of(s.ext().write_programs, ev.comm, ev.exe, ev.pid)) {
            p->note(ev.pid, ev.exe, ev.cgroup_id);
            ++p->opens;
        }
    }

    // The holder a release ends: the same open file (trampoline backend), the same
    // release arguments (both backends), else the only holder with the server's fh.
    void release_holder(InodeState &s, const Event &ev) {
        if (!s.extra)
            return;
        auto &holders = s.extra->holders;
        auto by = [&](auto same) {
            auto it = std::find_if(holders.begin(), holders.end(), same);
            if (it == holders.end())
                return false;
            end_hold(s, *it, ev.ts_ns);
            holders.erase(it);
            return true;
        };
        if (ev.file_id != 0 && by([&](const Holder &h) { return h.file_id == ev.file_id; }))
            return;
        if (ev.release_id != 0 &&
            by([&](const Holder &h) { return h.release_id == ev.release_id; }))
            return;
        if (!(ev.flags & evflag::WasHolder))
            return; // the file is not one of them
        auto n = std::count_if(holders.begin(), holders.end(),
                               [&](const Holder &h) { return h.fh == ev.fh; });
        if (n == 1) {
            by([&](const Holder &h) { return h.fh == ev.fh; });
        } else if (n > 1) {
            // Ambiguous: removing the wrong one would blame the wrong process.
            s.holders_stale = true;
            census_wanted = true;
        }
    }

    void begin_counters(uint64_t now);
    void take_counters(const InodeCounters &c);

    InodeView make_view(const InodeState &s, ViewDetail detail = ViewDetail::Full) const;

    std::string exe_path_of(const InodeKey &exe) const {
        auto it = exe_paths.find(exe);
        return it == exe_paths.end() ? std::string() : it->second;
    }
    Workload workload_of(uint64_t cgroup_id) const {
        auto it = cgroup_paths.find(cgroup_id);
        return it == cgroup_paths.end() ? Workload{} : workload_of_cgroup(it->second);
    }
    ProgramRef program_ref(const ProgramAcc &p) const {
        ProgramRef r;
        r.comm = p.comm;
        r.exe = exe_path_of(p.exe);
        r.where = workload_of(p.cgroup_id);
        r.processes = p.processes;
        r.pids.assign(p.pids.begin(), p.pids.begin() + static_cast<std::ptrdiff_t>(
                                                           std::min(p.pids.size(), kExamplePids)));
        return r;
    }
    // The inode's holding programs, their current holds counted up to now.
    std::vector<HolderProgram> holder_programs(const InodeExtra &x) const {
        std::vector<HolderProgram> out;
        for (const auto &p : x.hold_programs) {
            HolderProgram hp;
            hp.program = program_ref(p);
            const bool opens = p.by_how[static_cast<size_t>(HolderHow::Open)] > 0;
            const bool mmaps = p.by_how[static_cast<size_t>(HolderHow::Mmap)] > 0;
            hp.how = opens && mmaps ? "open+mmap" : mmaps ? "mmap" : "open";
            hp.holds = p.holds;
            hp.entered_cache = p.entered_cache;
            hp.total_held_ns = p.ended_ns;
            hp.longest_held_ns = p.longest_ns;
            hp.since_at_least = p.lower_bound_holds > 0;
            for (const auto &h : x.holders)
                if (p.is(h.comm, h.exe, h.pid)) {
                    const uint64_t held = now_ns > h.since_ns ? now_ns - h.since_ns : 0;
                    ++hp.holding_now;
                    hp.total_held_ns += held;
                    hp.longest_held_ns = std::max(hp.longest_held_ns, held);
                }
            out.push_back(std::move(hp));
        }
        std::stable_sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
            return a.total_held_ns > b.total_held_ns;
        });
        return out;
    }
};

StateModel::StateModel(ModelOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}
StateModel::~StateModel() = default;

void StateModel::Impl::begin_counters(uint64_t now) {
    ++counters_seq;
    interval_ns = (last_counters_ns != 0 && now > last_counters_ns) ? now - last_counters_ns : 0;
    intervals.clear();
    last_counters_ns = now;
    now_ns = std::max(now_ns, now);
}

void StateModel::Impl::take_counters(const InodeCounters &c) {
    if (!accept(c.key))
        return;
    auto it = inodes.find(c.key);
    InodeState *sp = it == inodes.end() ? nullptr : &it->second;
    WriteStats d;
    bool fresh = !sp || !sp->in_kernel;
    if (!fresh) {
        const bool recreated = sp->kernel_first_seen_ns != 0 && c.first_seen_ns != 0 &&
                               sp->kernel_first_seen_ns != c.first_seen_ns;
        if (recreated || !delta_since(c, sp->total, sp->base.get(), d)) {
            fresh = true; // LRU evicted and re-created the kernel entry
            ++sp->counter_resets;
            ++stats.counter_resets;
        }
    }
    if (fresh) {
        // First sighting, or its kernel entry is new (missing from an earlier read,
        // or re-created): everything in it is new.
        d = as_delta(c);
        if (sp && !is_zero(sp->total))
            sp->base = std::make_unique<CompactStats>(sp->total);
        else if (sp)
            sp->base.reset();
    }
    const bool active = !d.is_zero();
    if (!sp)
        sp = &get_or_create(c.key);
    else if (active)
        touch(*sp);
    InodeState &s = *sp;
    if (c.nodeid != 0)
        s.nodeid = c.nodeid;
    s.seen(c.first_seen_ns);
    s.seen(c.mode_seen_ns);
    s.in_kernel = true;
    s.seen_seq = counters_seq;
    s.kernel_first_seen_ns = c.first_seen_ns;
    if (active) {
        s.seen(last_counters_ns); // the kernel stamps no time on a write
        s.total += d;
        dev_acc(c.key.dev).total += d;
        intervals[c.key] += d;
    }
    // The kernel's iocachectr/bit are as of mode_seen_ns (when they last changed).
    if (!s.mode_known || c.mode_seen_ns > s.mode_obs_ns) {
        observe_mode(s, c.iocachectr, c.cache_io_mode, c.mode_seen_ns);
        recompute(s, c.mode_seen_ns, TransitionCause::Counters, 0, {});
    }
}

void StateModel::on_counters(const std::vector<InodeCounters> &counters, uint64_t now_ns) {
    Impl &m = *impl_;
    auto lk = m.lock_for_change();
    m.begin_counters(now_ns);
    for (const auto &c : counters)
        m.take_counters(c);
    // The dump is the whole kernel map: an inode missing from it lost its kernel
    // entry, and its next one starts from zero.
    for (auto &[key, s] : m.inodes) {
        if (s.in_kernel && s.seen_seq != m.counters_seq) {
            s.in_kernel = false;
            s.base.reset();
            m.intervals.erase(key);
        }
    }
}

void StateModel::on_counter_changes(const CountersDelta &delta, uint64_t now_ns) {
    Impl &m = *impl_;
    std::lock_guard lk(m.mu);
    // an idle read (nothing listed, no interval to clear) changes no view but its interval
    // length, which only scales an interval that is zero: top keeps its ranking then
    if (!delta.changed.empty() || !delta.gone.empty() || !m.intervals.empty())
        ++m.generation;
    m.begin_counters(now_ns);
    for (const auto &c : delta.changed)
        m.take_counters(c);
    for (const auto &k : delta.gone) {
        auto it = m.inodes.find(k);
        if (it == m.inodes.end())
            continue;
        it->second.in_kernel = false;
        it->second.base.reset();
        m.intervals.erase(k);
    }
    // Unlisted entries did not change: no interval entry, i.e. zero.
}

void StateModel::on_event(const Event &ev) {
    Impl &m = *impl_;
    auto lk = m.lock_for_change();
    ++m.stats.events;
    m.now_ns = std::max(m.now_ns, ev.ts_ns);
    if (ev.type == EventType::OpenSent)
        return; // no inode yet: the session's census of the opener reports the open
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
        if ((ev.flags & evflag::Passthrough) && ev.file_id != 0) {
            auto &pf = s.ext().passthrough_files;
            if (std::find(pf.begin(), pf.end(), ev.file_id) == pf.end())
                pf.push_back(ev.file_id);
        }
        if (ev.flags & evflag::Holder)
            m.add_holder(s, ev, HolderHow::Open);
        if (ev.flags & evflag::WriteOpen)
            m.add_writer(s, ev);
        break;
    case EventType::Mmap:
        cause = TransitionCause::Mmap;
        if (ev.flags & evflag::SharedMap)
            ++s.ext().mmaps_shared;
        else
            ++s.ext().mmaps_private;
        if (ev.flags & evflag::WritableMap)
            ++s.ext().mmaps_writable;
        if (ev.flags & evflag::Holder)
            m.add_holder(s, ev, HolderHow::Mmap);
        break;
    case EventType::Release:
        cause = TransitionCause::Release;
        m.release_holder(s, ev);
        if (s.extra)
            std::erase(s.extra->passthrough_files, ev.file_id);
        break;
    case EventType::DrainWait: {
        InodeExtra &x = s.ext();
        ++x.drain_events;
        x.drain_events_ns += ev.wait_ns;
        x.drain_waiters.push_back(DrainWaiter{ev.ts_ns, ev.pid, ev.comm, ev.wait_ns});
        if (x.drain_waiters.size() > m.opts.drain_waiters_kept)
            x.drain_waiters.erase(x.drain_waiters.begin(),
                                  x.drain_waiters.end() -
                                      static_cast<std::ptrdiff_t>(m.opts.drain_waiters_kept));
        return;
    } // the waiter's own Open/Mmap event reports the resulting mode
    case EventType::ModeSeen:
    case EventType::OpenSent: // returned above
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
    auto lk = m.lock_for_change();
    ++m.stats.census_runs;
    m.now_ns = std::max(m.now_ns, now_ns);

    std::map<InodeKey, std::vector<const CensusRecord *>> by_inode;
    for (const auto &r : records)
        if (m.accept(r.key)) {
            by_inode[r.key].push_back(&r);
            m.uring_by_dev[r.key.dev] = r.uring;
        }

    static const std::string no_comm;
    // No open file and no mapping left: the kernel's count must be back to 0.
    for (auto &[key, s] : m.inodes) {
        if (by_inode.contains(key))
            continue;
        if (s.extra)
            s.extra->passthrough_files.clear();
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
        std::vector<uint64_t> passthrough;
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
                    std::find(passthrough.begin(), passthrough.end(), r->file_id) ==
                        passthrough.end())
                    passthrough.push_back(r->file_id);
            } else if (!fi.vma) {
                fi.vma = r;
            }
        }
        std::vector<Holder> old_holders;
        if (s.extra)
            old_holders.swap(s.extra->holders);
        std::vector<Holder> found; // holders this census shows that no event reported
        for (const auto &[fid, fi] : files) {
            if (!fi.cached)
                continue;
            auto old = std::find_if(old_holders.begin(), old_holders.end(),
                                    [id = fid](const Holder &h) { return h.file_id == id; });
            if (old != old_holders.end()) {
                s.ext().holders.push_back(std::move(*old));
                old_holders.erase(old);
                continue;
            }
            const CensusRecord *who =
                fi.vma ? fi.vma : fi.file; // the mmapping process explains an mmap holder
            Holder h;
            h.file_id = fid;
            h.fh = fi.fh;
            h.pid = who->pid;
            h.comm = who->comm;
            h.how = fi.vma ? HolderHow::Mmap : HolderHow::Open;
            h.since_ns = now_ns;
            h.since_is_lower_bound = true;
            h.release_id = who->release_id;
            h.exe = who->exe;
            h.cgroup_id = who->cgroup_id;
            found.push_back(std::move(h));
        }
        for (auto &old : old_holders) {
            if (old.since_ns > now_ns) // reported by an event after the census was taken
                s.ext().holders.push_back(std::move(old));
            else
                m.end_hold(s, old, now_ns); // gone without a release seen: by now at the latest
        }
        for (auto &h : found)
            m.begin_hold(s, std::move(h), false);
        if (s.extra || !passthrough.empty())
            s.ext().passthrough_files = std::move(passthrough);
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

Health StateModel::health() const {
    std::lock_guard lk(impl_->mu);
    return impl_->health;
}

void StateModel::set_mounts(const Mounts &mounts) {
    Impl &m = *impl_;
    auto lk = m.lock_for_change();
    m.mounts = mounts;
    if (m.mounts.all().empty())
        return; // no table read: keep every device
    // Keep the last mount point of each device for after its unmount; forget
    // devices that are unmounted and have no inode left (bounded by devices seen).
    std::set<uint32_t> with_inodes;
    const bool some_unmounted = std::any_of(m.devs.begin(), m.devs.end(), [&](const auto &kv) {
        return m.mounts.find_by_dev(kv.first) == nullptr;
    });
    if (some_unmounted) // other FUSE mounts come and go: walk the inodes only when it matters
        for (const auto &[key, s] : m.inodes)
            with_inodes.insert(key.dev);
    for (auto it = m.devs.begin(); it != m.devs.end();) {
        if (const Mount *mt = m.mounts.find_by_dev(it->first)) {
            it->second.label = mt->mount_point;
        } else if (!with_inodes.contains(it->first)) {
            it = m.devs.erase(it);
            continue;
        }
        ++it;
    }
}

void StateModel::set_path(const InodeKey &key, std::string path, PathSource source) {
    auto lk = impl_->lock_for_change();
    auto it = impl_->inodes.find(key);
    if (it == impl_->inodes.end())
        return;
    InodeExtra &x = it->second.ext();
    x.path = std::move(path);
    x.path_source = source;
    x.path_captured_ns = 0;
}

void StateModel::set_kernel_path(const InodeKey &key, std::string path, uint64_t captured_ns) {
    auto lk = impl_->lock_for_change();
    auto it = impl_->inodes.find(key);
    if (it == impl_->inodes.end() || path.empty())
        return;
    InodeExtra &x = it->second.ext();
    if (!x.path.empty() && x.path_source != PathSource::Kernel)
        return; // a census's readlink is current; the kernel's name is from the first open
    x.path = std::move(path);
    x.path_source = PathSource::Kernel;
    x.path_captured_ns = captured_ns;
}

void StateModel::resolve_paths_from_census(const std::vector<CensusRecord> &records,
                                           const ReadlinkFn &readlink, const MapPathFn &map_path) {
    struct Want {
        InodeKey key;
        uint32_t pid, fd;
        uint64_t vm_start; // a mapping's (kind Vma): its fd may be closed
        bool map;
    };
    // Unknown paths, and the kernel's names (from a first open: maybe renamed since).
    auto wanted = [](const InodeState &s) {
        return !s.extra || s.extra->path.empty() || s.extra->path_source == PathSource::Kernel;
    };
    std::vector<Want> wants;
    {
        std::lock_guard lk(impl_->mu);
        std::unordered_set<InodeKey, InodeKeyHash> queued;
        // open files first: a mapping is asked only for an inode no descriptor shows
        for (CensusKind kind : {CensusKind::File, CensusKind::Vma})
            for (const auto &r : records) {
                if (r.kind != kind || queued.contains(r.key))
                    continue;
                auto it = impl_->inodes.find(r.key);
                if (it == impl_->inodes.end() || !wanted(it->second))
                    continue;
                queued.insert(r.key);
                wants.push_back({r.key, r.pid, r.fd, r.vm_start, kind == CensusKind::Vma});
            }
    }
    // readlink touches /proc: do it without holding the lock views wait on.
    std::vector<std::pair<InodeKey, std::string>> found;
    for (const auto &w : wants)
        if (auto p = w.map ? map_path(w.pid, w.vm_start) : readlink(w.pid, w.fd); p && !p->empty())
            found.emplace_back(w.key, std::move(*p));
    auto lk = impl_->lock_for_change();
    for (auto &[key, path] : found) {
        auto it = impl_->inodes.find(key);
        if (it != impl_->inodes.end() && wanted(it->second)) {
            InodeExtra &x = it->second.ext();
            x.path = std::move(path);
            x.path_source = PathSource::OpenFd;
            x.path_captured_ns = 0;
        }
    }
}

StateModel::NamesWanted StateModel::names_wanted() {
    Impl &m = *impl_;
    std::lock_guard lk(m.mu);
    NamesWanted w;
    for (const auto &[exe, pid] : m.exe_wanted)
        w.exes.emplace_back(exe, pid);
    m.exe_wanted.clear();
    w.cgroups.assign(m.cgroup_wanted.begin(), m.cgroup_wanted.end());
    m.cgroup_wanted.clear();
    for (const auto &k : m.path_wanted)
        if (auto it = m.inodes.find(k);
            it != m.inodes.end() && (!it->second.extra || it->second.extra->path.empty()))
            w.paths.push_back(k);
    m.path_wanted.clear();
    return w;
}

void StateModel::set_exe_path(const InodeKey &exe, std::string path) {
    std::lock_guard lk(impl_->mu);
    impl_->exe_paths[exe] = std::move(path);
}

void StateModel::set_cgroup_path(uint64_t id, std::string path) {
    std::lock_guard lk(impl_->mu);
    impl_->cgroup_paths[id] = std::move(path);
}

bool StateModel::needs_census() const {
    std::lock_guard lk(impl_->mu);
    return impl_->census_wanted;
}

InodeView StateModel::Impl::make_view(const InodeState &s, ViewDetail detail) const {
    InodeView v;
    v.key = s.key;
    v.nodeid = s.nodeid;
    if (const Mount *mt = mounts.find_by_dev(s.key.dev))
        v.mount_point = mt->mount_point;
    v.mode = s.mode;
    v.mode_observed_ns = s.mode_obs_ns;
    v.holders_unknown = s.holders_unknown;
    v.holders_stale = s.holders_stale;
    v.total = detail == ViewDetail::Full ? s.total.expand() : s.total.expand_counts();
    if (auto it = intervals.find(s.key); it != intervals.end())
        v.interval = it->second.expand();
    v.interval_ns = interval_ns;
    v.counter_resets = s.counter_resets;
    if (const InodeExtra *x = s.extra.get()) {
        v.path = x->path;
        v.path_source = x->path_source;
        v.path_captured_ns = x->path_captured_ns;
        v.passthrough_files = static_cast<uint32_t>(x->passthrough_files.size());
    }
    const InodeExtra *x = detail == ViewDetail::Full ? s.extra.get() : nullptr;
    if (x) {
        v.holders = x->holders;
        for (auto &h : v.holders) {
            h.exe_path = exe_path_of(h.exe);
            h.where = workload_of(h.cgroup_id);
        }
        v.holder_programs = holder_programs(*x);
        split_cost_by_hold(
            v.holder_programs,
            v.total.wait_share_ns(v.total.writes[static_cast<size_t>(WriteReason::CacheIoMode)]));
        for (const auto &p : x->write_programs)
            v.writers.push_back(WriterProgram{program_ref(p), p.opens});
        v.mmaps_shared = x->mmaps_shared;
        v.mmaps_private = x->mmaps_private;
        v.mmaps_writable = x->mmaps_writable;
        v.drain_events = x->drain_events;
        v.drain_events_ns = x->drain_events_ns;
        v.last_drain_waiters = x->drain_waiters;
    }
    if (detail == ViewDetail::Full) {
        v.transitions.reserve(s.transitions.size());
        for (const auto &t : s.transitions)
            v.transitions.push_back(t.unpack());
    }
    v.first_seen_ns = s.first_seen_ns;
    v.last_seen_ns = s.last_seen_ns;
    v.last_write_ns = s.last_write_ns;
    v.writes_unseen = (!opts.writeback_writes_seen && v.total.writeback_requests > 0) ||
                      (!opts.passthrough_writes_seen &&
                       (v.passthrough_files > 0 || v.mode.kind == ModeKind::Passthrough));
    return v;
}

namespace {
template <typename S>
void fill_header(const S &m, uint64_t &now, uint64_t &interval, bool &iomodes, Health &health,
                 std::vector<Mount> &mounts, ModelStats &stats,
                 std::map<uint32_t, bool> &uring_by_dev) {
    uring_by_dev = m.uring_by_dev;
    now = m.now_ns;
    interval = m.interval_ns;
    iomodes = m.opts.io_modes_available;
    health = m.health;
    mounts = m.mounts.all();
    stats = m.stats;
    stats.inodes = m.inodes.size();
    stats.max_inodes = m.opts.max_inodes;
    stats.census_wanted = m.census_wanted;
}

// A snapshot's fields besides its inodes (the caller holds the lock).
template <typename M> Snapshot snapshot_head(const M &m) {
    Snapshot snap;
    fill_header(m, snap.now_ns, snap.interval_ns, snap.io_modes_available, snap.health, snap.mounts,
                snap.stats, snap.uring_by_dev);
    snap.generation = m.generation;
    return snap;
}

// Each inode's view (those the pid filter lists) to @take (the caller holds the lock).
template <typename M>
void each_view(const M &m, ViewDetail detail, const std::function<void(InodeView &&)> &take) {
    for (const auto &[key, s] : m.inodes)
        if (!m.opts.pid || s.pid_match)
            take(m.make_view(s, detail));
}
} // namespace

Snapshot StateModel::snapshot_each(const std::function<void(InodeView &&)> &take,
                                   ViewDetail detail) const {
    const Impl &m = *impl_;
    std::lock_guard lk(m.mu);
    each_view(m, detail, take);
    return snapshot_head(m);
}

Snapshot StateModel::snapshot_ranked(const std::function<void(InodeView &&)> &take,
                                     const std::function<std::vector<InodeView *>()> &kept) const {
    const Impl &m = *impl_;
    std::lock_guard lk(m.mu);
    each_view(m, ViewDetail::Brief, take);
    // same lock, same state: the full view ranks exactly where its brief one did
    for (InodeView *v : kept())
        if (auto it = m.inodes.find(v->key); it != m.inodes.end())
            *v = m.make_view(it->second);
    return snapshot_head(m);
}

Snapshot StateModel::snapshot_of(const std::vector<InodeKey> &keys) const {
    const Impl &m = *impl_;
    std::lock_guard lk(m.mu);
    Snapshot snap = snapshot_head(m);
    for (const auto &k : keys)
        if (auto it = m.inodes.find(k); it != m.inodes.end())
            snap.inodes.push_back(m.make_view(it->second));
    return snap;
}

uint64_t StateModel::generation() const {
    std::lock_guard lk(impl_->mu);
    return impl_->generation;
}

Snapshot StateModel::snapshot() const {
    std::vector<InodeView> views;
    Snapshot snap = snapshot_each([&](InodeView &&iv) { views.push_back(std::move(iv)); });
    std::sort(views.begin(), views.end(),
              [](const InodeView &a, const InodeView &b) { return a.key < b.key; });
    snap.inodes = std::move(views);
    return snap;
}

Summary StateModel::summary(size_t top_k) const {
    const Impl &m = *impl_;
    std::lock_guard lk(m.mu);
    Summary sum;
    fill_header(m, sum.now_ns, sum.interval_ns, sum.io_modes_available, sum.health, sum.mounts,
                sum.stats, sum.uring_by_dev);

    std::map<uint32_t, DeviceSummary> devs;
    auto dev = [&](uint32_t d) -> DeviceSummary & {
        auto [it, fresh] = devs.try_emplace(d);
        if (fresh)
            it->second.dev = d;
        return it->second;
    };
    // Ranking for the per-inode top-K: writers' lock wait in the last interval, then
    // since start, then key (stable between scrapes). Only inodes that wrote or waited.
    using Rank = std::tuple<uint64_t, uint64_t, InodeKey>;
    std::vector<std::pair<Rank, const InodeState *>> heap; // min-heap of the best top_k
    auto worse = [](const auto &a, const auto &b) { return a.first > b.first; };
    for (const auto &[key, s] : m.inodes) {
        if (m.opts.pid && !s.pid_match)
            continue;
        DeviceSummary &ds = dev(key.dev);
        ++ds.inodes;
        ++ds.inodes_by_mode[static_cast<size_t>(s.mode.kind)];
        if (s.mode.draining())
            ++ds.draining;
        if (s.extra)
            for (const auto &h : s.extra->holders)
                ++(h.how == HolderHow::Mmap ? ds.holders_mmap : ds.holders_open);
        const uint64_t total_wait = s.total.wait_ns[0] + s.total.wait_ns[1];
        uint64_t writes = 0;
        for (uint64_t w : s.total.writes)
            writes += w;
        if (top_k == 0 || (writes == 0 && total_wait == 0))
            continue;
        uint64_t interval_wait = 0;
        if (auto it = m.intervals.find(key); it != m.intervals.end())
            interval_wait = it->second.wait_ns[0] + it->second.wait_ns[1];
        Rank r{interval_wait, total_wait, key};
        if (heap.size() < top_k) {
            heap.emplace_back(r, &s);
            std::push_heap(heap.begin(), heap.end(), worse);
        } else if (r > heap.front().first) {
            std::pop_heap(heap.begin(), heap.end(), worse);
            heap.back() = {r, &s};
            std::push_heap(heap.begin(), heap.end(), worse);
        }
    }
    std::sort(heap.begin(), heap.end(),
              [](const auto &a, const auto &b) { return a.first > b.first; });
    sum.top.reserve(heap.size());
    for (const auto &[r, s] : heap)
        sum.top.push_back(m.make_view(*s));

    const bool have_table = !m.mounts.all().empty();
    for (const auto &[d, acc] : m.devs) {
        const bool mounted = m.mounts.find_by_dev(d) != nullptr;
        // An unmounted device without inodes left is history: not listed.
        if (have_table && !mounted && !devs.contains(d))
            continue;
        DeviceSummary &ds = dev(d);
        ds.total = acc.total;
        ds.transitions = acc.transitions;
    }
    for (auto &[d, ds] : devs) {
        if (const Mount *mt = m.mounts.find_by_dev(d))
            ds.mount_point = mt->mount_point;
        else if (auto it = m.devs.find(d); it != m.devs.end())
            ds.mount_point = it->second.label;
        sum.devices.push_back(std::move(ds));
    }
    return sum;
}

} // namespace fusescope
