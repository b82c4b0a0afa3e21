// fusescope's command line: parses options (CLI11) and hands over to a view.
#include "fusescope/core/exit_codes.h"
#include "fusescope/core/session.h"
#include "fusescope/views/views.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>

using namespace fusescope;

namespace {

struct CommonFlags {
    std::string backend = "auto";
    bool verbose = false;
    std::string mount;
    uint32_t pid = 0;
};

void add_filters(CLI::App *cmd, CommonFlags &f) {
    cmd->add_option("--mount", f.mount, "only this FUSE mount (any path on it)");
    cmd->add_option("--pid", f.pid, "only this process")->check(CLI::PositiveNumber);
}

SessionOptions session_options(const CommonFlags &f) {
    SessionOptions so;
    so.backend = backend_from_string(f.backend); // "auto" -> nullopt
    so.verbose = f.verbose;
    if (!f.mount.empty())
        so.mount = f.mount;
    if (f.pid)
        so.pid = f.pid;
    return so;
}

} // namespace

int main(int argc, char **argv) {
    CLI::App app{"fusescope: who puts FUSE inodes into cache IO mode, and what it costs "
                 "direct-IO writers"};
    app.require_subcommand(1);
    CommonFlags f;
    app.add_option("--backend", f.backend, "auto | trampoline | tracepoint")
        ->check(CLI::IsMember({"auto", "trampoline", "tracepoint"}));
    app.add_flag("-v,--verbose", f.verbose, "show libbpf's messages (verifier logs)");

    DoctorOptions doctor;
    auto *c_doctor = app.add_subcommand("doctor", "what attaches where on this kernel, and why not");
    c_doctor->add_flag("--json", doctor.json, "machine-readable output");

    TraceOptions trace;
    auto *c_trace = app.add_subcommand("trace", "one line per event (writes, opens, mmaps, releases, drain waits)");
    c_trace->add_flag("--json", trace.json, "JSON lines");
    c_trace->add_option("--duration", trace.duration_s, "seconds to run (default: until Ctrl-C)")
        ->check(CLI::NonNegativeNumber);
    add_filters(c_trace, f);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        std::string msg = e.what();
        fmt::print(stderr, "fusescope: {} (see `fusescope --help`)\n", msg);
        return exit_code::kUsage;
    }

    install_stop_signals();
    SessionOptions so = session_options(f);
    if (c_doctor->parsed())
        return run_doctor(so, doctor);
    if (c_trace->parsed())
        return run_trace(so, trace);
    return exit_code::kUsage;
}
