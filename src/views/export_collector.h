// The Prometheus side of `fusescope export`: a prometheus::Collectable that
// turns state-model snapshots into metric families at scrape time.
// Private to src/views (export.cpp wires it to the session and the HTTP server).
#pragma once

#include "fusescope/model/snapshot.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace fusescope {

// What the exporter says about fusescope itself (fixed for a session).
struct ExporterSelfInfo {
    std::string backend;                             // "trampoline", "tracepoint"
    std::vector<std::pair<std::string, bool>> roles; // HookPlan roles: name, available
    size_t programs_attached = 0;
};

// Scrape-time collector: each scrape asks the model for its summary (per-device
// sums and the top-K inodes) and turns it into families. Holds no state of its
// own, so its memory does not grow with the inodes the model tracks.
class ExportCollector : public prometheus::Collectable {
  public:
    // @summary: the model's summary for a top-K of the given size.
    ExportCollector(std::function<Summary(size_t)> summary, ExporterSelfInfo self,
                    int per_inode_top);

    // Summarizes the model and returns every family. Thread-safe.
    std::vector<prometheus::MetricFamily> Collect() const override;

    // Families for @s. Thread-safe; used by Collect and tests.
    std::vector<prometheus::MetricFamily> families(const Summary &s) const;

  private:
    std::function<Summary(size_t)> summary_;
    ExporterSelfInfo self_;
    size_t per_inode_top_;
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
