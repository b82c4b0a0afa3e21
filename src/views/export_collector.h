// The Prometheus side of `fusescope export`: a prometheus::Collectable that
// turns state-model summaries into metric families at scrape time.
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
    std::string version, revision;                   // fusescope_build_info
    std::string backend;                             // "trampoline", "tracepoint"
    std::string kernel;                              // uname -r
    std::vector<std::pair<std::string, bool>> roles; // HookPlan roles: name, available
    size_t programs_attached = 0;
};

// The two clocks at a scrape: the model's times are CLOCK_MONOTONIC, metrics say Unix time.
struct ScrapeClock {
    uint64_t monotonic_ns = 0;
    double unix_s = 0;
    static ScrapeClock now();
    double unix_of(uint64_t monotonic) const; // a model time as Unix seconds
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

    // Families for @s at @clock. Thread-safe; used by Collect and tests.
    std::vector<prometheus::MetricFamily> families(const Summary &s,
                                                   const ScrapeClock &clock) const;

  private:
    std::function<Summary(size_t)> summary_;
    ExporterSelfInfo self_;
    size_t per_inode_top_;
};

// process_* families for this process (process_stats.h), built from the family table.
std::vector<prometheus::MetricFamily> process_families();

// log2-ns histogram -> Prometheus buckets in seconds (cumulative counts, upper
// bounds 2^(i+1) ns for slot i; slots below 1 us are merged into the first
// bucket; the open-ended last slot only counts in +Inf). Exposed for tests.
struct SecondsBucket {
    double le = 0;
    uint64_t cumulative = 0;
};
std::vector<SecondsBucket> seconds_buckets(const Histogram &h);

} // namespace fusescope
