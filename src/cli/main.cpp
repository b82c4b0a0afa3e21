// fusescope's command line: parses options (CLI11) and hands over to a view.
#include "fusescope/core/build_info.h"
#include "fusescope/core/exit_codes.h"
#include "fusescope/core/session.h"
#include "fusescope/core/status.h"
#include "fusescope/views/top_render.h"
#include "fusescope/views/views.h"

#include "cli_docs.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>

using namespace fusescope;

namespace {

struct CommonFlags {
    std::string backend = "auto";
    bool verbose = false;
    bool service_time = false;
    bool no_write_cache = false;
    std::string mount;
    uint32_t pid = 0;
};

// NaN passes CLI11's Range and NonNegativeNumber (every comparison is false), and inf or
// 1e300 seconds overflow the nanosecond deadlines: durations must be finite and bounded.
const CLI::Validator kFinite(
    [](std::string &in) -> std::string {
        double v = 0;
        if (CLI::detail::lexical_cast(in, v) && !std::isfinite(v))
            return "Value " + in + " is not a finite number";
        return {};
    },
    "FINITE", "FINITE");
constexpr double kMaxSeconds = 365.0 * 86400; // one year

void add_filters(CLI::App *cmd, CommonFlags &f) {
    cmd->add_option("--mount", f.mount, "only this FUSE mount (any path on it)");
    cmd->add_option("--pid", f.pid, "only this process")->check(CLI::PositiveNumber);
}

SessionOptions session_options(const CommonFlags &f) {
    SessionOptions so;
    so.backend = backend_from_string(f.backend); // "auto" -> nullopt
    so.verbose = f.verbose;
    so.service_time = f.service_time;
    so.write_cache = !f.no_write_cache;
    if (!f.mount.empty())
        so.mount = f.mount;
    if (f.pid)
        so.pid = f.pid;
    return so;
}

int run(int argc, char **argv) {
    CLI::App app{"fusescope: who puts FUSE inodes into cache IO mode, and what it costs "
                 "direct-IO writers"};
    app.require_subcommand(0, 1); // exactly one, checked below: the generators take none
    app.set_version_flag("--version", fmt::format("fusescope, version {} (revision: {})",
                                                  build_version(), build_revision()));
    CommonFlags f;
    app.add_option("--backend", f.backend, "auto | trampoline | tracepoint")
        ->check(CLI::IsMember({"auto", "trampoline", "tracepoint"}));
    app.add_flag("-v,--verbose", f.verbose, "show libbpf's messages (verifier logs)");
    app.add_flag("--service-time", f.service_time,
                 "tracepoint backend: also time each FUSE write request (runs one more BPF "
                 "program on every FUSE request; the trampoline backend always has it)");
    int status_fd = -1;
    app.add_option("--status-fd", status_fd,
                   "write status lines to file descriptor N, one JSON object per line: "
                   "watching, health, exit (see STATUS STREAM)")
        ->type_name("N")
        ->check(CLI::Range(0, std::numeric_limits<int>::max()));
    app.add_flag("--no-write-cache", f.no_write_cache,
                 "tracepoint backend: count every write in the shared per-inode map instead "
                 "of a per-CPU slot for the inode the CPU last wrote (for comparing costs)");

    // The man pages and the bash completion are generated from these definitions (the
    // build does it, cli_docs.h); hidden from --help (no group).
    std::string man_dir;
    bool completion = false;
    app.add_option("--generate-man", man_dir, "write the man pages into DIR")->group("");
    app.add_flag("--generate-completion", completion, "print the bash completion script")
        ->group("");

    DoctorOptions doctor;
    auto *c_doctor =
        app.add_subcommand("doctor", "what attaches where on this kernel, and why not");
    c_doctor->add_flag("--json", doctor.json, "machine-readable output");

    TraceOptions trace;
    auto *c_trace = app.add_subcommand(
        "trace", "one line per event (writes, opens, mmaps, releases, drain waits)");
    c_trace->add_flag("--json", trace.json, "JSON lines");
    c_trace->add_option("--duration", trace.duration_s, "seconds to run (default: until Ctrl-C)")
        ->check(kFinite & CLI::Range(0.0, kMaxSeconds));
    add_filters(c_trace, f);

    TopOptions top;
    auto *c_top =
        app.add_subcommand("top", "live view of FUSE inodes: io mode, holders, lock modes, waits");
    c_top->add_option("--interval", top.interval_s, "seconds between refreshes")
        ->check(kFinite & CLI::Range(0.1, 3600.0));
    c_top->add_flag("-b,--batch", top.batch, "print plain-text snapshots (for scripts and logs)");
    c_top->add_flag("--json", top.json,
                    "batch mode, one JSON object per refresh with the screen's fields");
    c_top->add_option("-n", top.iterations, "snapshots to print in batch mode")
        ->check(CLI::NonNegativeNumber);
    c_top->add_option("--sort", top.sort, top::sort_keys_list());
    c_top->add_option("--rows", top.rows, "rows per batch snapshot, first in sort order (0: all)")
        ->check(CLI::Range(0, 1000000));
    add_filters(c_top, f);

    ExportOptions exp;
    auto *c_export = app.add_subcommand("export", "Prometheus exporter (/metrics)");
    c_export
        ->add_option("--web.listen-address,--listen", exp.listen,
                     "ADDR:PORT to listen on, [ADDR]:PORT for IPv6, :PORT for every "
                     "address; repeat for several (default 127.0.0.1:10100 only)")
        ->allow_extra_args(false); // one value per flag, as node_exporter takes them
    c_export->add_option("--web.config.file", exp.web_config_file,
                         "TLS and basic auth settings, in the format node_exporter reads "
                         "(exporter-toolkit's web configuration file)");
    c_export->add_flag("--bpf-stats", exp.bpf_stats,
                       "have the kernel account fusescope's BPF run time while it runs "
                       "(fusescope_bpf_program_*; costs tens of ns per program run)");
    c_export->add_flag("--metrics-reference", exp.metrics_reference,
                       "print the reference of every metric family (Markdown) and exit");
    c_export
        ->add_option("--per-inode-top", exp.per_inode_top,
                     "per-inode series for the K inodes with most wait")
        ->check(CLI::Range(0, 1000));
    add_filters(c_export, f);

    DiagnoseOptions diag;
    auto *c_diag = app.add_subcommand(
        "diagnose", "one-shot report: why are direct-IO writes on this mount slow?");
    c_diag->add_option("--duration", diag.duration_s, "seconds to watch (0: census only)")
        ->check(kFinite & CLI::Range(0.0, 86400.0));
    c_diag->add_option("--path", diag.path, "only this file");
    c_diag->add_flag("--json", diag.json, "machine-readable report");
    add_filters(c_diag, f);

    DemoOptions demo;
    auto *c_demo = app.add_subcommand(
        "demo", "mount the built-in test filesystem, run a database and an indexer on it, "
                "and watch with top");
    c_demo->add_option("--duration", demo.duration_s, "seconds (default: until q or Ctrl-C)")
        ->check(kFinite & CLI::Range(0.0, kMaxSeconds));
    c_demo->add_flag("-b,--batch", demo.batch, "print snapshots instead of the live view");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        std::string msg = e.what();
        fmt::print(stderr, "fusescope: {} (see `fusescope --help`)\n", msg);
        return exit_code::kUsage;
    }

    if (status_fd >= 0)
        if (std::string err = status::stream().open(status_fd); !err.empty()) {
            fmt::print(stderr, "fusescope: {} (see `fusescope --help`)\n", err);
            return exit_code::kUsage;
        }

    if (!man_dir.empty()) {
        std::string err;
        if (!cli::write_man_pages(app, std::string(build_version()), man_dir, &err)) {
            fmt::print(stderr, "fusescope: --generate-man: {}\n", err);
            return exit_code::kFailure;
        }
        return exit_code::kOk;
    }
    if (completion) {
        const std::string sort_keys = [] {
            std::string w = top::sort_keys_list();
            std::erase(w, '|');
            return w;
        }();
        fmt::print("{}",
                   cli::bash_completion(
                       app, {{"--backend", {cli::ValueKind::Words, "auto trampoline tracepoint"}},
                             {"--sort", {cli::ValueKind::Words, sort_keys}},
                             {"--mount", {cli::ValueKind::Dirs, ""}},
                             {"--path", {cli::ValueKind::Files, ""}},
                             {"--web.config.file", {cli::ValueKind::Files, ""}},
                             {"--generate-man", {cli::ValueKind::Dirs, ""}}}));
        return exit_code::kOk;
    }
    if (app.get_subcommands().empty()) {
        fmt::print(stderr, "fusescope: A subcommand is required (see `fusescope --help`)\n");
        return exit_code::kUsage;
    }

    install_stop_signals();
    SessionOptions so = session_options(f);
    if (c_doctor->parsed())
        return run_doctor(so, doctor);
    if (c_trace->parsed())
        return run_trace(so, trace);
    if (c_top->parsed())
        return run_top(so, top);
    if (c_export->parsed())
        return run_export(so, exp);
    if (c_diag->parsed())
        return run_diagnose(so, diag);
    if (c_demo->parsed())
        return run_demo(argv[0], so, demo);
    return exit_code::kUsage;
}

} // namespace

int main(int argc, char **argv) {
    // Caught here, an exception unwinds the stack: sessions detach, the demo
    // unmounts (uncaught, std::terminate would skip every destructor).
    int code = exit_code::kFailure;
    try {
        code = run(argc, argv);
    } catch (const std::exception &e) {
        fmt::print(stderr,
                   "fusescope: internal error: {} (please report it with the output of "
                   "`fusescope -v doctor`)\n",
                   e.what());
    } catch (...) {
        fmt::print(stderr, "fusescope: internal error (please report it with the output of "
                           "`fusescope -v doctor`)\n");
    }
    status::exit(code);
    return code;
}
