// Metric families of `fusescope export`, built at scrape time from the state
// model's summary (per-device aggregates and the top-K inodes), as
// ebpf_exporter does: nothing is copied or folded between scrapes. Names, types,
// label names and help texts come from the family table (export_families.cpp).
//
// Naming follows Prometheus conventions: prefix fusescope_, base units
// (seconds, bytes), counters end in _total and come from the model's
// cumulative totals (never re-derived from rates). Label cardinality is
// bounded by design: mount, lock, reason, io_mode, cause, role, map, program
// take fixed sets of values; per-inode series only for the top-K inodes by wait
// (path + ino labels), at most kHoldersPerInode holder and writer series each (comm,
// exe, cgroup, unit, container: bounded by the same top-K), and they vanish when the
// inode drops out of the top-K. No pid labels.
//
// What the numbers cover:
// - Mount-level counters are the model's per-device sums of every counter delta
//   it took in, so they never go down when the model evicts inodes.
// - fusescope_io_mode_transitions_total counts the transitions the model
//   recorded, as it recorded them. fusescope_io_mode_changes_total is the
//   kernel probes' own count (exact, no cause).
// - Gauges by IO mode count the inodes the model tracks (bounded by
//   fusescope_model_inodes_limit), not every inode of the mount.
#include "export_collector.h"

#include "export_families.h"
#include "process_stats.h"

#include "fusescope/views/views.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <deque>
#include <limits>
#include <map>
#include <stdexcept>

namespace fusescope {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr double kNsPerS = 1e9;
constexpr int kFirstBucketSlot = 9; // slot 9 ends at 2^10 ns ~ 1 us: everything below is merged

double secs(uint64_t ns) { return static_cast<double>(ns) / kNsPerS; }
double num(uint64_t n) { return static_cast<double>(n); }

// A reason's lock label: the lock mode its row of the reason table implies.
LockMode lock_of(WriteReason r) { return lock_mode_of(r); }
std::string lock_label(int lock) { return std::string(to_string(static_cast<LockMode>(lock))); }
std::string reason_label(int r) { return std::string(to_string(static_cast<WriteReason>(r))); }
std::string reason_lock_label(int r) {
    return std::string(to_string(lock_of(static_cast<WriteReason>(r))));
}

// A family being filled: its table entry, its label names and the samples so far.
struct Fam {
    const FamilyDef *def;
    std::vector<std::string> label_names;
    MetricFamily mf;
};

class Builder {
  public:
    Fam &family(Family id) {
        const FamilyDef &d = family_def(id);
        Fam f{&d, {}, MetricFamily{std::string(d.name), std::string(d.help), d.type, {}}};
        for (std::string_view l : label_names(d))
            f.label_names.emplace_back(l);
        fams_.push_back(std::move(f));
        return fams_.back();
    }
    static void counter(Fam &f, std::vector<std::string> values, double v) {
        sample(f, std::move(values)).counter.value = v;
    }
    static void gauge(Fam &f, std::vector<std::string> values, double v) {
        sample(f, std::move(values)).gauge.value = v;
    }
    static void histogram(Fam &f, std::vector<std::string> values, const Histogram &h,
                          double sum_s) {
        ClientMetric &m = sample(f, std::move(values));
        for (const auto &b : seconds_buckets(h))
            m.histogram.bucket.push_back(ClientMetric::Bucket{b.cumulative, b.le});
        m.histogram.sample_count = h.count();
        m.histogram.sample_sum = sum_s;
    }
    std::vector<MetricFamily> take() {
        std::vector<MetricFamily> out;
        for (auto &f : fams_)
            if (!f.mf.metric.empty()) // families without samples would only print HELP/TYPE
                out.push_back(std::move(f.mf));
        fams_.clear();
        return out;
    }

  private:
    // One sample with @values for the family's label names, in the table's order.
    static ClientMetric &sample(Fam &f, std::vector<std::string> values) {
        if (values.size() != f.label_names.size())
            throw std::logic_error(std::string(f.def->name) + ": " + std::to_string(values.size()) +
                                   " label values for " + std::to_string(f.label_names.size()) +
                                   " labels");
        ClientMetric m;
        for (size_t i = 0; i < values.size(); ++i)
            m.label.push_back({f.label_names[i], std::move(values[i])});
        f.mf.metric.push_back(std::move(m));
        return f.mf.metric.back();
    }
    std::deque<Fam> fams_; // stable references while families are filled
};

// Who a per-inode series names: the program and where it runs (label values).
struct Who {
    std::string comm, how, exe, cgroup, unit, container;
    auto operator<=>(const Who &) const = default;
    // @head's values, then comm [how] exe cgroup unit container, in the table's order
    std::vector<std::string> labels(const std::vector<std::string> &head, bool with_how) const {
        std::vector<std::string> v = head;
        v.push_back(comm);
        if (with_how)
            v.push_back(how);
        v.insert(v.end(), {exe, cgroup, unit, container});
        return v;
    }
};

Who who_of(const std::string &comm, std::string how, const std::string &exe, const Workload &w) {
    return Who{comm, std::move(how), exe, w.cgroup, w.unit, short_container_id(w.container)};
}

// The inode's holders as distinct Who -> earliest since, the earliest first, at most
// kHoldersPerInode of them.
std::vector<std::pair<Who, uint64_t>> distinct_holders(const std::vector<Holder> &holders) {
    std::map<Who, uint64_t> first;
    for (const Holder &h : holders) {
        auto [it, fresh] = first.emplace(
            who_of(h.comm, std::string(to_string(h.how)), h.exe_path, h.where), h.since_ns);
        if (!fresh)
            it->second = std::min(it->second, h.since_ns);
    }
    std::vector<std::pair<Who, uint64_t>> out(first.begin(), first.end());
    std::stable_sort(out.begin(), out.end(),
                     [](const auto &a, const auto &b) { return a.second < b.second; });
    if (out.size() > kHoldersPerInode)
        out.resize(kHoldersPerInode);
    return out;
}

} // namespace

ScrapeClock ScrapeClock::now() {
    timespec mono{}, real{};
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    return {static_cast<uint64_t>(mono.tv_sec) * 1000000000ull +
                static_cast<uint64_t>(mono.tv_nsec),
            static_cast<double>(real.tv_sec) + static_cast<double>(real.tv_nsec) / kNsPerS};
}

double ScrapeClock::unix_of(uint64_t monotonic) const {
    return monotonic >= monotonic_ns ? unix_s : unix_s - secs(monotonic_ns - monotonic);
}

std::vector<SecondsBucket> seconds_buckets(const Histogram &h) {
    std::vector<SecondsBucket> out;
    uint64_t cum = 0;
    for (int i = 0; i < kHistSlots; ++i) {
        cum += h.slots[static_cast<size_t>(i)];
        if (i < kFirstBucketSlot || i == kHistSlots - 1)
            continue;
        out.push_back({static_cast<double>(Histogram::slot_high(i)) / kNsPerS, cum});
    }
    out.push_back({std::numeric_limits<double>::infinity(), cum});
    return out;
}

ExportCollector::ExportCollector(std::function<Summary(size_t)> summary, ExporterSelfInfo self,
                                 int per_inode_top)
    : summary_(std::move(summary)), self_(std::move(self)),
      per_inode_top_(per_inode_top > 0 ? static_cast<size_t>(per_inode_top) : 0) {}

std::vector<MetricFamily> ExportCollector::Collect() const {
    const auto t0 = std::chrono::steady_clock::now();
    auto fams = families(summary_(per_inode_top_), ScrapeClock::now());
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Builder b;
    Builder::gauge(b.family(Family::ScrapeDuration), {}, took);
    for (auto &f : b.take())
        fams.push_back(std::move(f));
    return fams;
}

std::vector<MetricFamily> ExportCollector::families(const Summary &s,
                                                    const ScrapeClock &clock) const {
    // Per mount label; several devices may share a label (remounts).
    struct MountView {
        WriteStats total;
        std::array<uint64_t, kModeKinds> modes{};
        uint64_t draining = 0, holders_open = 0, holders_mmap = 0;
        std::map<std::pair<std::string, std::string>, uint64_t> transitions;
    };
    std::map<uint32_t, std::string> labels;
    auto label_of = [&](uint32_t dev) -> const std::string & {
        auto it = labels.find(dev);
        if (it == labels.end())
            it = labels.emplace(dev, "dev:" + dev_string(dev)).first;
        return it->second;
    };
    for (const auto &d : s.devices)
        if (!d.mount_point.empty())
            labels[d.dev] = d.mount_point;
    std::map<std::string, MountView> mounts;
    for (const auto &d : s.devices) {
        auto &mv = mounts[label_of(d.dev)];
        mv.total += d.total;
        for (const auto &[k, n] : d.transitions)
            mv.transitions[{snake_label(to_string(k.first)), io_mode_label(k.second)}] += n;
        for (size_t i = 0; i < kModeKinds; ++i)
            mv.modes[i] += d.inodes_by_mode[i];
        mv.draining += d.draining;
        mv.holders_open += d.holders_open;
        mv.holders_mmap += d.holders_mmap;
    }

    Builder b;
    auto &writes = b.family(Family::Writes);
    auto &bytes = b.family(Family::WriteBytes);
    auto &wwait = b.family(Family::WriteLockWait);
    auto &wbreq = b.family(Family::WritebackRequests);
    auto &wbbytes = b.family(Family::WritebackBytes);
    // Not measured (tracepoint backend without --service-time): absent, not zero.
    const bool service_timed =
        std::any_of(self_.roles.begin(), self_.roles.end(), [](const auto &r) {
            return r.first == to_string(Role::ServiceTime) && r.second;
        });
    auto &wserv = b.family(Family::WriteService);
    auto &cont = b.family(Family::LockContentions);
    auto &whist = b.family(Family::LockWaitHistogram);
    auto &drains = b.family(Family::DrainWaits);
    auto &drain_s = b.family(Family::DrainWaitSeconds);
    auto &mchanges = b.family(Family::IoModeChanges);
    auto &trans = b.family(Family::IoModeTransitions);
    auto &inodes = b.family(Family::Inodes);
    auto &draining = b.family(Family::InodesDraining);
    auto &holders = b.family(Family::CacheModeHolders);

    for (const auto &[mount, mv] : mounts) {
        const WriteStats &t = mv.total;
        for (int r = 0; r < kWriteReasons; ++r)
            Builder::counter(writes, {mount, reason_lock_label(r), reason_label(r)},
                             num(t.writes[static_cast<size_t>(r)]));
        for (int lk = 0; lk < kWriteLockModes; ++lk) {
            const auto i = static_cast<size_t>(lk);
            Builder::counter(bytes, {mount, lock_label(lk)}, num(t.bytes[i]));
            Builder::counter(wwait, {mount, lock_label(lk)}, secs(t.wait_ns[i]));
            if (service_timed)
                Builder::counter(wserv, {mount, lock_label(lk)}, secs(t.service_ns[i]));
        }
        Builder::counter(wbreq, {mount}, num(t.writeback_requests));
        Builder::counter(wbbytes, {mount}, num(t.writeback_bytes));
        for (int lk = 0; lk < kLockModes; ++lk) {
            const auto i = static_cast<size_t>(lk);
            Builder::counter(cont, {mount, lock_label(lk)}, num(t.contentions[i]));
            Builder::histogram(whist, {mount, lock_label(lk)}, t.contention_hist[i],
                               secs(t.contention_ns[i]));
        }
        Builder::counter(drains, {mount}, num(t.drain_waits));
        Builder::counter(drain_s, {mount}, secs(t.drain_wait_ns));
        Builder::counter(mchanges, {mount}, num(t.mode_changes));
        for (const auto &[k, n] : mv.transitions)
            Builder::counter(trans, {mount, k.first, k.second}, num(n));
        for (size_t i = 0; i < kModeKinds; ++i)
            Builder::gauge(inodes, {mount, io_mode_label(static_cast<ModeKind>(i))},
                           num(mv.modes[i]));
        Builder::gauge(draining, {mount}, num(mv.draining));
        Builder::gauge(holders, {mount, std::string(to_string(HolderHow::Open))},
                       num(mv.holders_open));
        Builder::gauge(holders, {mount, std::string(to_string(HolderHow::Mmap))},
                       num(mv.holders_mmap));
    }

    // Per-inode series: the model's top-K inodes by writers' lock wait (last interval
    // first, then since start), only inodes that wrote or waited.
    auto &iwait = b.family(Family::InodeWriteLockWait);
    auto &iwrites = b.family(Family::InodeWrites);
    auto &imode = b.family(Family::InodeIoMode);
    auto &iholders = b.family(Family::InodeCacheModeHolders);
    auto &iholder = b.family(Family::InodeCacheModeHolderInfo);
    auto &isince = b.family(Family::InodeCacheModeHolderSince);
    auto &iwriters = b.family(Family::InodeWriterProcesses);
    for (size_t n = 0; n < s.top.size() && n < per_inode_top_; ++n) {
        const InodeView &iv = s.top[n];
        const std::string &mount = label_of(iv.key.dev);
        const std::string ino = std::to_string(iv.key.ino);
        for (int lk = 0; lk < kWriteLockModes; ++lk)
            Builder::counter(iwait, {mount, iv.path, ino, lock_label(lk)},
                             secs(iv.total.wait_ns[static_cast<size_t>(lk)]));
        for (int r = 0; r < kWriteReasons; ++r)
            Builder::counter(iwrites, {mount, iv.path, ino, reason_lock_label(r), reason_label(r)},
                             num(iv.total.writes[static_cast<size_t>(r)]));
        Builder::gauge(imode, {mount, iv.path, ino, io_mode_label(iv.mode.kind)}, 1);
        Builder::gauge(iholders, {mount, iv.path, ino}, num(iv.holders.size()));
        const std::vector<std::string> head{mount, iv.path, ino};
        for (const auto &[who, since] : distinct_holders(iv.holders)) {
            Builder::gauge(iholder, who.labels(head, true), 1);
            Builder::gauge(isince, who.labels(head, true), clock.unix_of(since));
        }
        for (size_t w = 0; w < iv.writers.size() && w < kHoldersPerInode; ++w) {
            const ProgramRef &p = iv.writers[w].program;
            Builder::gauge(iwriters, who_of(p.comm, "", p.exe, p.where).labels(head, false),
                           num(p.processes));
        }
    }

    // fusescope itself.
    const Health &h = s.health;
    Builder::gauge(b.family(Family::BuildInfo),
                   {self_.version, self_.revision, self_.backend, self_.kernel}, 1);
    auto &roles = b.family(Family::ProbesAttached);
    for (const auto &[role, ok] : self_.roles)
        Builder::gauge(roles, {snake_label(role)}, ok ? 1 : 0);
    Builder::gauge(b.family(Family::BpfProgramsAttached), {}, num(self_.programs_attached));
    Builder::gauge(b.family(Family::BpfStatsEnabled), {}, h.bpf_stats_enabled ? 1 : 0);
    auto &run_s = b.family(Family::BpfProgramRunSeconds);
    auto &runs = b.family(Family::BpfProgramRuns);
    if (h.bpf_stats_enabled) // otherwise the kernel counts nothing: absent, not flat
        for (const ProgramStats &p : h.programs) {
            Builder::counter(run_s, {p.name}, secs(p.run_ns));
            Builder::counter(runs, {p.name}, num(p.runs));
        }
    Builder::counter(b.family(Family::BpfProgMisses), {}, num(h.prog_misses));
    Builder::counter(b.family(Family::EventsLost), {}, num(h.events_lost));
    Builder::counter(b.family(Family::EventsReceived), {}, num(h.events_received));
    auto &mapfull = b.family(Family::MapFull);
    Builder::counter(mapfull, {"inode"}, num(h.inode_map_full));
    Builder::counter(mapfull, {"task"}, num(h.task_map_full));
    Builder::counter(mapfull, {"req"}, num(h.req_map_full));
    Builder::counter(b.family(Family::WritesUnresolved), {}, num(h.writes_unresolved));
    Builder::counter(b.family(Family::OpensUnexplained), {}, num(h.opens_unexplained));
    Builder::counter(b.family(Family::CensusRuns), {}, num(h.census_runs)); // process ones too
    Builder::gauge(b.family(Family::ModelInodes), {}, num(s.stats.inodes));
    Builder::gauge(b.family(Family::ModelInodesLimit), {}, num(s.stats.max_inodes));
    Builder::counter(b.family(Family::ModelEvictions), {}, num(s.stats.evictions));
    return b.take();
}

std::vector<MetricFamily> process_families() {
    const ProcessStats p = read_process_stats();
    Builder b;
    Builder::counter(b.family(Family::ProcessCpuSeconds), {}, p.cpu_seconds);
    Builder::gauge(b.family(Family::ProcessResidentMemory), {}, p.resident_bytes);
    Builder::gauge(b.family(Family::ProcessVirtualMemory), {}, p.virtual_bytes);
    Builder::gauge(b.family(Family::ProcessOpenFds), {}, p.open_fds);
    Builder::gauge(b.family(Family::ProcessMaxFds), {}, p.max_fds);
    Builder::gauge(b.family(Family::ProcessStartTime), {}, p.start_time_seconds);
    return b.take();
}

} // namespace fusescope
