// The process_* metrics every Prometheus client library exports about its own process
// (client_golang's process collector names): CPU, memory, file descriptors, start time.
// Read from /proc/self; the parsers are pure and unit-tested.
#pragma once

#include <optional>
#include <string_view>

namespace fusescope {

struct ProcessStats {
    double cpu_seconds = 0;        // utime + stime
    double resident_bytes = 0;     // rss
    double virtual_bytes = 0;      // vsize
    double start_time_seconds = 0; // Unix time
    double open_fds = 0;
    double max_fds = 0; // RLIMIT_NOFILE, soft
};

// Fields of /proc/self/stat (its text) into *out, given the clock tick rate, the page size
// and the boot time (Unix seconds). false if the text is not a stat line.
bool parse_proc_stat(std::string_view stat, double ticks_per_s, double page_bytes,
                     double boot_time_s, ProcessStats *out);
// The "btime" line of /proc/stat.
std::optional<double> parse_boot_time(std::string_view proc_stat);

// Everything above for this process; fields it cannot read stay 0.
ProcessStats read_process_stats();

} // namespace fusescope
