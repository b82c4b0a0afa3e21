// Metric families of `fusescope export`, built at scrape time from the state
// model's summary (per-device aggregates and the top-K inodes), as
// ebpf_exporter does: nothing is copied or folded between scrapes.
//
// Naming follows Prometheus conventions: prefix fusescope_, base units
// (seconds, bytes), counters end in _total and come from the model's
// cumulative totals (never re-derived from rates). Label cardinality is
// bounded by design: mount, lock (2), reason (6), io_mode (5), cause (7), role,
// map; per-inode series only for the top-K inodes by wait (path + ino labels)
// and they vanish when the inode drops out of the top-K. No pid labels.
//
// What the numbers cover:
// - Mount-level counters are the model's per-device sums of every counter delta
//   it took in, so they never go down when the model evicts inodes.
// - fusescope_io_mode_transitions_total counts the transitions the model
//   recorded, as it recorded them. fusescope_io_mode_changes_total is the
//   kernel probes' own count (exact, no cause).
// - Gauges by IO mode count the inodes the model tracks (bounded by
//   fusescope_model_inodes_limit), not every inode of the mount.
// - prometheus-cpp's Exposer adds its own exposer_* metrics to /metrics.
#include "export_collector.h"

#include "fusescope/views/views.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <map>

namespace fusescope {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

constexpr double kNsPerS = 1e9;
constexpr int kFirstBucketSlot = 9; // slot 9 ends at 2^10 ns ~ 1 us: everything below is merged

double secs(uint64_t ns) { return static_cast<double>(ns) / kNsPerS; }

std::string_view lock_label(int lock) { return to_string(static_cast<LockMode>(lock)); }
// A reason's lock label: the lock mode its row of the reason table implies.
std::string_view reason_lock_label(int reason) {
    return to_string(lock_mode_of(static_cast<WriteReason>(reason)));
}

std::string_view mode_label(ModeKind k) {
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
        return "not_available";
    }
    return "none";
}
constexpr ModeKind kModes[] = {ModeKind::None, ModeKind::Cached, ModeKind::Parallel,
                               ModeKind::Passthrough, ModeKind::NotAvailable};

// Label values in snake_case ("write-seen" -> "write_seen").
std::string snake(std::string_view s) {
    std::string r(s);
    std::replace(r.begin(), r.end(), '-', '_');
    return r;
}

class Builder {
  public:
    MetricFamily &family(std::string name, std::string help, MetricType type) {
        fams_.push_back(MetricFamily{std::move(name), std::move(help), type, {}});
        return fams_.back();
    }
    static void counter(MetricFamily &f, Labels l, double v) {
        ClientMetric m;
        m.label = std::move(l);
        m.counter.value = v;
        f.metric.push_back(std::move(m));
    }
    static void gauge(MetricFamily &f, Labels l, double v) {
        ClientMetric m;
        m.label = std::move(l);
        m.gauge.value = v;
        f.metric.push_back(std::move(m));
    }
    static void histogram(MetricFamily &f, Labels l, const Histogram &h, double sum_s) {
        ClientMetric m;
        m.label = std::move(l);
        for (const auto &b : seconds_buckets(h))
            m.histogram.bucket.push_back(ClientMetric::Bucket{b.cumulative, b.le});
        m.histogram.sample_count = h.count();
        m.histogram.sample_sum = sum_s;
        f.metric.push_back(std::move(m));
    }
    std::vector<MetricFamily> take() {
        std::vector<MetricFamily> out;
        for (auto &f : fams_)
            if (!f.metric.empty()) // families without samples would only print HELP/TYPE lines
                out.push_back(std::move(f));
        fams_.clear();
        return out;
    }

  private:
    std::deque<MetricFamily> fams_; // stable references while families are filled
};

} // namespace

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
    auto fams = families(summary_(per_inode_top_));
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MetricFamily f{"fusescope_scrape_duration_seconds",
                   "Time fusescope took to summarize the model and build this scrape's metrics",
                   MetricType::Gauge,
                   {}};
    ClientMetric m;
    m.gauge.value = took;
    f.metric.push_back(m);
    fams.push_back(std::move(f));
    return fams;
}

std::vector<MetricFamily> ExportCollector::families(const Summary &s) const {
    // Per mount label; several devices may share a label (remounts).
    struct MountView {
        WriteStats total;
        std::array<uint64_t, std::size(kModes)> modes{};
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
            mv.transitions[{snake(to_string(k.first)), std::string(mode_label(k.second))}] += n;
        for (size_t i = 0; i < std::size(kModes); ++i)
            mv.modes[i] += d.inodes_by_mode[static_cast<size_t>(kModes[i])];
        mv.draining += d.draining;
        mv.holders_open += d.holders_open;
        mv.holders_mmap += d.holders_mmap;
    }

    Builder b;
    auto L = [](std::initializer_list<std::pair<const char *, std::string>> kv) {
        Labels l;
        for (const auto &[k, v] : kv)
            l.push_back({k, v});
        return l;
    };

    auto &writes =
        b.family("fusescope_writes_total",
                 "Writes by i_rwsem mode and reason (reason=shared for the shared lock; otherwise "
                 "why the kernel took it exclusively; unclassified: lock mode not visible)",
                 MetricType::Counter);
    auto &bytes = b.family("fusescope_write_bytes_total",
                           "Bytes the writes sent to the server (async: queued), by lock mode",
                           MetricType::Counter);
    auto &wwait =
        b.family("fusescope_write_lock_wait_seconds_total",
                 "Time writers spent queued for the inode's i_rwsem, by lock mode",
                 MetricType::Counter);
    auto &wbreq = b.family("fusescope_writeback_requests_total",
                           "FUSE_WRITE requests from page writeback, whose writers were not seen "
                           "(tracepoint backend, writeback cache)",
                           MetricType::Counter);
    auto &wbbytes = b.family("fusescope_writeback_bytes_total",
                             "Bytes of the FUSE_WRITE requests from page writeback",
                             MetricType::Counter);
    // Not measured (tracepoint backend without --service-time): absent, not zero.
    const bool service_timed =
        std::any_of(self_.roles.begin(), self_.roles.end(),
                    [](const auto &r) { return r.first == to_string(Role::ServiceTime) && r.second; });
    auto &wserv = b.family("fusescope_write_service_seconds_total",
                           "Time direct-IO writes spent after getting the lock, by lock mode",
                           MetricType::Counter);
    auto &cont = b.family(
        "fusescope_lock_contentions_total",
        "Contended i_rwsem acquisitions by writers (lock:contention_* tracepoints), by lock mode",
        MetricType::Counter);
    auto &whist = b.family("fusescope_lock_wait_seconds",
                           "Distribution of contended i_rwsem waits of writers, by lock mode",
                           MetricType::Histogram);
    auto &drains =
        b.family("fusescope_drain_waits_total",
                 "Caching opens/mmaps that waited for parallel direct-IO writers to drain",
                 MetricType::Counter);
    auto &drain_s =
        b.family("fusescope_drain_wait_seconds_total",
                 "Time caching opens/mmaps waited for parallel direct-IO writers to drain",
                 MetricType::Counter);
    auto &mchanges = b.family("fusescope_io_mode_changes_total",
                              "IO mode changes of the mount's inodes counted by the kernel probes",
                              MetricType::Counter);
    auto &trans = b.family("fusescope_io_mode_transitions_total",
                           "IO mode transitions the model observed, by cause and new mode",
                           MetricType::Counter);
    auto &inodes =
        b.family("fusescope_inodes",
                 "Inodes fusescope tracks (bounded, see fusescope_model_inodes_limit), by IO mode",
                 MetricType::Gauge);
    auto &draining =
        b.family("fusescope_inodes_draining",
                 "Inodes entering cache mode while parallel writers drain", MetricType::Gauge);
    auto &holders = b.family("fusescope_cache_mode_holders",
                             "Open files / shared mappings keeping inodes in cache IO mode, by how",
                             MetricType::Gauge);

    for (const auto &[mount, mv] : mounts) {
        const WriteStats &t = mv.total;
        for (int r = 0; r < kWriteReasons; ++r)
            Builder::counter(writes,
                             L({{"mount", mount},
                                {"lock", std::string(reason_lock_label(r))},
                                {"reason", std::string(to_string(static_cast<WriteReason>(r)))}}),
                             static_cast<double>(t.writes[static_cast<size_t>(r)]));
        for (int lk2 = 0; lk2 < kWriteLockModes; ++lk2) {
            const auto i = static_cast<size_t>(lk2);
            auto ml = L({{"mount", mount}, {"lock", std::string(lock_label(lk2))}});
            Builder::counter(bytes, ml, static_cast<double>(t.bytes[i]));
            Builder::counter(wwait, ml, secs(t.wait_ns[i]));
            if (service_timed)
                Builder::counter(wserv, ml, secs(t.service_ns[i]));
        }
        Builder::counter(wbreq, L({{"mount", mount}}), static_cast<double>(t.writeback_requests));
        Builder::counter(wbbytes, L({{"mount", mount}}), static_cast<double>(t.writeback_bytes));
        for (int lk2 = 0; lk2 < kLockModes; ++lk2) {
            const auto i = static_cast<size_t>(lk2);
            auto ml = L({{"mount", mount}, {"lock", std::string(lock_label(lk2))}});
            Builder::counter(cont, ml, static_cast<double>(t.contentions[i]));
            Builder::histogram(whist, ml, t.contention_hist[i], secs(t.contention_ns[i]));
        }
        Builder::counter(drains, L({{"mount", mount}}), static_cast<double>(t.drain_waits));
        Builder::counter(drain_s, L({{"mount", mount}}), secs(t.drain_wait_ns));
        Builder::counter(mchanges, L({{"mount", mount}}), static_cast<double>(t.mode_changes));
        for (const auto &[k, n] : mv.transitions)
            Builder::counter(trans, L({{"mount", mount}, {"cause", k.first}, {"to", k.second}}),
                             static_cast<double>(n));
        for (size_t i = 0; i < std::size(kModes); ++i)
            Builder::gauge(inodes,
                           L({{"mount", mount}, {"io_mode", std::string(mode_label(kModes[i]))}}),
                           static_cast<double>(mv.modes[i]));
        Builder::gauge(draining, L({{"mount", mount}}), static_cast<double>(mv.draining));
        Builder::gauge(holders, L({{"mount", mount}, {"how", "open"}}),
                       static_cast<double>(mv.holders_open));
        Builder::gauge(holders, L({{"mount", mount}, {"how", "mmap"}}),
                       static_cast<double>(mv.holders_mmap));
    }

    // Per-inode series: the model's top-K inodes by writers' lock wait (last interval
    // first, then since start), only inodes that wrote or waited.
    std::vector<const InodeView *> ranked;
    for (const auto &iv : s.top)
        if (ranked.size() < per_inode_top_)
            ranked.push_back(&iv);
    auto &iwait =
        b.family("fusescope_inode_write_lock_wait_seconds_total",
                 "Top-K inodes by wait: time writers spent queued for the i_rwsem, by lock mode",
                 MetricType::Counter);
    auto &iwrites = b.family("fusescope_inode_writes_total",
                             "Top-K inodes by wait: direct-IO writes by lock mode and reason",
                             MetricType::Counter);
    auto &imode =
        b.family("fusescope_inode_io_mode",
                 "Top-K inodes by wait: 1 for the inode's current IO mode", MetricType::Gauge);
    auto &iholders = b.family("fusescope_inode_cache_mode_holders",
                              "Top-K inodes by wait: open files / mappings holding cache IO mode",
                              MetricType::Gauge);
    for (const InodeView *iv : ranked) {
        const std::string &mount = label_of(iv->key.dev);
        const std::string ino = std::to_string(iv->key.ino);
        for (int lk2 = 0; lk2 < kLockModes; ++lk2)
            Builder::counter(iwait,
                             L({{"mount", mount},
                                {"path", iv->path},
                                {"ino", ino},
                                {"lock", std::string(lock_label(lk2))}}),
                             secs(iv->total.wait_ns[static_cast<size_t>(lk2)]));
        for (int r = 0; r < kWriteReasons; ++r)
            Builder::counter(iwrites,
                             L({{"mount", mount},
                                {"path", iv->path},
                                {"ino", ino},
                                {"lock", std::string(reason_lock_label(r))},
                                {"reason", std::string(to_string(static_cast<WriteReason>(r)))}}),
                             static_cast<double>(iv->total.writes[static_cast<size_t>(r)]));
        Builder::gauge(imode,
                       L({{"mount", mount},
                          {"path", iv->path},
                          {"ino", ino},
                          {"io_mode", std::string(mode_label(iv->mode.kind))}}),
                       1);
        Builder::gauge(iholders, L({{"mount", mount}, {"path", iv->path}, {"ino", ino}}),
                       static_cast<double>(iv->holders.size()));
    }

    // fusescope itself.
    const Health &h = s.health;
    Builder::gauge(b.family("fusescope_backend_info",
                            "The BPF backend fusescope runs (value is always 1)",
                            MetricType::Gauge),
                   L({{"backend", self_.backend}}), 1);
    auto &roles = b.family("fusescope_probes_attached",
                           "1 if a probe fills this role on this kernel (hook plan), else 0",
                           MetricType::Gauge);
    for (const auto &[role, ok] : self_.roles)
        Builder::gauge(roles, L({{"role", snake(role)}}), ok ? 1 : 0);
    Builder::gauge(b.family("fusescope_bpf_programs_attached", "BPF programs loaded and attached",
                            MetricType::Gauge),
                   {}, static_cast<double>(self_.programs_attached));
    Builder::counter(b.family("fusescope_events_lost_total",
                              "Ring-buffer events lost (buffer full)", MetricType::Counter),
                     {}, static_cast<double>(h.events_lost));
    Builder::counter(b.family("fusescope_events_received_total", "Ring-buffer events received",
                              MetricType::Counter),
                     {}, static_cast<double>(h.events_received));
    auto &mapfull =
        b.family("fusescope_map_full_total", "BPF map updates that failed because the map was full",
                 MetricType::Counter);
    Builder::counter(mapfull, L({{"map", "inode"}}), static_cast<double>(h.inode_map_full));
    Builder::counter(mapfull, L({{"map", "task"}}), static_cast<double>(h.task_map_full));
    Builder::counter(mapfull, L({{"map", "req"}}), static_cast<double>(h.req_map_full));
    Builder::counter(b.family("fusescope_bpf_prog_misses_total",
                              "Runs of fusescope's BPF programs the kernel skipped (recursion "
                              "protection, e.g. a preempted fentry program); writes may be missing",
                              MetricType::Counter),
                     {}, static_cast<double>(h.prog_misses));
    Builder::counter(b.family("fusescope_writes_unresolved_total",
                              "Writes whose lock mode or reason the probes could not resolve",
                              MetricType::Counter),
                     {}, static_cast<double>(h.writes_unresolved));
    Builder::counter(b.family("fusescope_census_runs_total",
                              "Census runs (open files and mappings walked)", MetricType::Counter),
                     {}, static_cast<double>(s.stats.census_runs));
    Builder::gauge(
        b.family("fusescope_model_inodes", "Inodes the state model holds", MetricType::Gauge), {},
        static_cast<double>(s.stats.inodes));
    Builder::gauge(b.family("fusescope_model_inodes_limit",
                            "Bound on the inodes the state model holds", MetricType::Gauge),
                   {}, static_cast<double>(s.stats.max_inodes));
    Builder::counter(b.family("fusescope_model_evictions_total",
                              "Inodes the state model dropped to stay within its bound",
                              MetricType::Counter),
                     {}, static_cast<double>(s.stats.evictions));
    return b.take();
}

} // namespace fusescope
