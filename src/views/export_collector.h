// The Prometheus side of `fusescope export`: a prometheus::Collectable that
// turns state-model snapshots into metric families at scrape time.
// Private to src/views (export.cpp wires it to the session and the HTTP server).
#pragma once

#include "fusescope/model/snapshot.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fusescope {

// What the exporter says about fusescope itself (fixed for a session).
struct ExporterSelfInfo {
    std::string backend;                             // "trampoline", "tracepoint"
    std::vector<std::pair<std::string, bool>> roles; // HookPlan roles: name, available
    size_t programs_attached = 0;
};

// Mount-level counters must stay monotonic although the model forgets inodes
// (bounded LRU): the collector remembers each live inode's last totals and, when
// the inode leaves the snapshot, folds them into a per-device "retired" sum.
// Its memory is bounded by the model's inode bound plus one entry per FUSE
// device seen (devices that are unmounted and have no inode left are dropped).
class ExportCollector : public prometheus::Collectable {
  public:
    ExportCollector(std::function<Snapshot()> snapshot, ExporterSelfInfo self, int per_inode_top);

    // Takes a snapshot, folds it in and returns every family. Thread-safe.
    std::vector<prometheus::MetricFamily> Collect() const override;

    // Folds a snapshot into the accumulators without building families; the
    // export loop calls it after every model refresh so that inodes evicted
    // between two scrapes still count. Thread-safe.
    void observe(const Snapshot &s) const;

    // Families for @s (folds it in first). Thread-safe; used by Collect and tests.
    std::vector<prometheus::MetricFamily> families(const Snapshot &s) const;

  private:
    struct InodeSeen {
        uint32_t dev = 0;
        WriteStats total;
        uint64_t last_transition_ts = 0;
        size_t transitions_at_last_ts = 0; // how many with ts == last_transition_ts were counted
    };
    struct DevAcc {
        WriteStats retired; // totals of inodes the model no longer lists
        std::map<std::pair<std::string, std::string>, uint64_t> transitions; // (cause, to) -> count
        std::string label; // last known mount point
    };

    void fold_locked(const Snapshot &s) const;

    std::function<Snapshot()> snapshot_;
    ExporterSelfInfo self_;
    size_t per_inode_top_;

    mutable std::mutex mu_;
    mutable std::unordered_map<InodeKey, InodeSeen, InodeKeyHash> seen_;
    mutable std::map<uint32_t, DevAcc> devs_;
};

// log2-ns histogram -> Prometheus buckets in seconds (cumulative counts, upper
// bounds 2^(i+1) ns for slot i; slots below 1 us are merged into the first
// bucket; the open-ended last slot only counts in +Inf). Exposed for tests.
struct SecondsBucket {
    double le = 0;
    uint64_t cumulative = 0;
};
std::vector<SecondsBucket> seconds_buckets(const Histogram &h);

} // namespace fusescope
