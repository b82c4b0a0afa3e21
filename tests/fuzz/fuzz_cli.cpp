// libFuzzer target: fusescope's command line (src/cli/main.cpp, compiled with
// -Dmain=fusescope_cli_main) with the views, the man page writer and the status stream stubbed out.
// The input is split at NUL bytes into argv. A parse must end in a status, never a crash or an
// escaping exception, and values that reach a view must be in range (the checks below).
#include "fusescope/core/build_info.h"
#include "fusescope/core/exit_codes.h"
#include "fusescope/core/session.h"
#include "fusescope/core/status.h"
#include "fusescope/views/top_render.h"
#include "fusescope/views/views.h"

#include "../../src/cli/cli_docs.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

int fusescope_cli_main(int argc, char **argv);

namespace fusescope {
std::atomic<bool> g_stop_requested{false};
void install_stop_signals() {}
std::string_view build_version() { return "0.0.0-fuzz"; }
std::string_view build_revision() { return "fuzz"; }
namespace {
void check_duration(double d, double max) {
    if (!std::isfinite(d) || d < 0 || d > max)
        std::abort();
}
} // namespace
int run_trace(const SessionOptions &so, const TraceOptions &t) {
    if (so.pid && *so.pid == 0)
        std::abort();
    check_duration(t.duration_s, 365.0 * 86400);
    return 0;
}
int run_doctor(const SessionOptions &, const DoctorOptions &) { return 0; }
int run_top(const SessionOptions &, const TopOptions &t) {
    check_duration(t.interval_s, 3600);
    if (t.interval_s < 0.1 || t.iterations < 0)
        std::abort();
    return 0;
}
int run_export(const SessionOptions &, const ExportOptions &e) {
    if (e.per_inode_top < 0 || e.per_inode_top > 1000)
        std::abort();
    return 0;
}
int run_diagnose(const SessionOptions &, const DiagnoseOptions &d) {
    check_duration(d.duration_s, 86400);
    return 0;
}
int run_demo(const std::string &, const SessionOptions &, const DemoOptions &d) {
    check_duration(d.duration_s, 365.0 * 86400);
    return 0;
}
std::string top::sort_keys_list() { return "wait | path"; }
// Stubbed: a fuzzed --generate-man DIR must not write files wherever the input says.
bool cli::write_man_pages(CLI::App &, const std::string &, const std::string &, std::string *) {
    return true;
}
std::string cli::bash_completion(CLI::App &, const cli::Completions &) { return {}; }
// Stubbed: a fuzzed --status-fd N must not write into the fuzzer's own descriptors. Odd
// numbers are taken, even ones refused, so both paths run.
std::string status::Stream::open(int fd) { return fd % 2 ? "" : "stub: refused"; }
status::Stream &status::stream() {
    static Stream s;
    return s;
}
void status::exit(int) {}
} // namespace fusescope

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::vector<std::string> args{"fusescope"};
    std::string cur;
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == 0) {
            args.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(static_cast<char>(data[i]));
        }
    }
    if (!cur.empty())
        args.push_back(cur);
    if (args.size() > 64)
        return 0;
    std::vector<char *> argv;
    for (auto &a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = fusescope_cli_main(static_cast<int>(args.size()), argv.data());
    if (rc < 0 || rc > fusescope::exit_code::kFindings)
        std::abort();
    return 0;
}
