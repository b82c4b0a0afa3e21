// The command-line views. Each takes parsed options, opens a Session (or
// not, for doctor's kernel report) and returns an exit status.
#pragma once

#include "fusescope/core/session.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fusescope {

struct TraceOptions {
    bool json = false;
    double duration_s = 0; // 0: until interrupted
};
int run_trace(const SessionOptions &so, const TraceOptions &to);

struct DoctorOptions {
    bool json = false;
};
int run_doctor(const SessionOptions &so, const DoctorOptions &d);

struct TopOptions {
    double interval_s = 1.0;
    bool batch = false;        // -b: plain-text snapshots, like top -b
    int iterations = 0;        // -n: snapshots to print in batch mode (0: until interrupted)
    std::string sort = "wait"; // --sort KEY
    int rows = 100;            // --rows: rows per batch snapshot (0: all)
    bool json = false;         // --json: batch snapshots as JSON lines
};
int run_top(const SessionOptions &so, const TopOptions &t);

struct ExportOptions {
    std::vector<std::string> listen; // --web.listen-address ADDR:PORT...; none: the default
    std::string web_config_file;     // --web.config.file (exporter-toolkit format); "": none
    int per_inode_top = 5;           // per-inode series for the top-K inodes by wait
    double interval_s = 1.0;         // model refresh
    bool bpf_stats = false;          // account fusescope's BPF run time while it runs
    bool metrics_reference = false;  // print the metrics reference (Markdown) and exit
};
int run_export(const SessionOptions &so, const ExportOptions &e);

struct DiagnoseOptions {
    double duration_s = 10;
    std::string path; // --path FILE
    bool json = false;
};
int run_diagnose(const SessionOptions &so, const DiagnoseOptions &d);

struct DemoOptions {
    double duration_s = 0; // 0: until q / Ctrl-C
    bool batch = false;    // print snapshots instead of the live view
};
int run_demo(const std::string &argv0, const SessionOptions &so, const DemoOptions &d);

} // namespace fusescope
