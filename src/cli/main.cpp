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
#include <memory>

using namespace fusescope;

namespace {

struct CommonFlags {
    std::string backend = "auto";
    bool verbose = false;
    bool service_time = false;
    uint32_t service_time_slots = kRequestSlotsDefault;
    bool no_write_cache = false;
    std::string syscall_hooks = "auto";
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
// --service-time-slots: what the backend takes (request_slots_valid), said before anything loads
const CLI::Validator kRequestSlots(
    [](std::string &in) -> std::string {
        uint64_t v = 0;
        if (CLI::detail::lexical_cast(in, v) && request_slots_valid(v))
            return {};
        return "Value " + in + " is not a power of two from 1 to " +
               std::to_string(kRequestSlotsMax);
    },
    "POWER OF TWO", "REQUEST_SLOTS");

void add_filters(CLI::App *cmd, CommonFlags &f) {
    cmd->add_option("--mount", f.mount, "only this FUSE mount (any path on it)");
    cmd->add_option("--pid", f.pid, "only this process")->check(CLI::PositiveNumber);
}

SessionOptions session_options(const CommonFlags &f) {
    SessionOptions so;
    so.backend = backend_from_string(f.backend); // "auto" -> nullopt
    so.verbose = f.verbose;
    so.service_time = f.service_time;
    so.request_slots = f.service_time_slots;
    so.write_cache = !f.no_write_cache;
    if (f.syscall_hooks != "auto")
        so.syscall_hooks = f.syscall_hooks == "on";
    if (!f.mount.empty())
        so.mount = f.mount;
    if (f.pid)
        so.pid = f.pid;
    return so;
}

// Everything the command line fills, and the App that fills it (define() sets it up).
struct Cli {
    CLI::App app{"fusescope: who puts FUSE inodes into cache IO mode, and what it costs "
                 "direct-IO writers"};
    CommonFlags f;
    int status_fd = -1;
    // The man pages and the bash completion are generated from these definitions (the
    // build does it, cli_docs.h); hidden from --help (no group).
    std::string man_dir;
    bool completion = false;
    DoctorOptions doctor;
    TraceOptions trace;
    TopOptions top;
    ExportOptions exp;
    DiagnoseOptions diag;
    DemoOptions demo;
    CLI::App *c_doctor = nullptr, *c_trace = nullptr, *c_top = nullptr, *c_export = nullptr,
             *c_diag = nullptr, *c_demo = nullptr;
};

// The options and commands. CLI11 reports a definition it cannot take by throwing (a
// CLI::ConstructionError): run() turns that into one line and exit status 1.
void define(Cli &c) {
    CLI::App &app = c.app;
    CommonFlags &f = c.f;
    app.require_subcommand(0, 1); // exactly one, checked below: the generators take none
    app.set_version_flag("--version", fmt::format("fusescope, version {} (revision: {})",
                                                  build_version(), build_revision()));
    app.add_option("--backend", f.backend, "auto | trampoline | tracepoint")
        ->check(CLI::IsMember({"auto", "trampoline", "tracepoint"}));
    app.add_flag("-v,--verbose", f.verbose, "show libbpf's messages (verifier logs)");
    CLI::Option *service_time =
        app.add_flag("--service-time", f.service_time,
                     "tracepoint backend: also time each FUSE write request (runs one more BPF "
                     "program on every FUSE request; the trampoline backend always has it)");
    app.add_option("--service-time-slots", f.service_time_slots,
                   "tracepoint backend: slots for the start times of FUSE writes in flight (a "
                   "power of two; two requests on one slot lose a sample, counted in "
                   "req_map_full: raise it when that grows)")
        ->type_name("N")
        ->default_val(kRequestSlotsDefault)
        ->check(kRequestSlots)
        ->needs(service_time);
    app.add_option("--syscall-hooks", f.syscall_hooks,
                   "tracepoint backend: attach the open/mmap syscall tracepoints (auto: trace "
                   "and diagnose do, top and export do not; while attached, every syscall on "
                   "the machine takes the kernel's slow path)")
        ->check(CLI::IsMember({"auto", "on", "off"}));
    app.add_flag("--no-write-cache", f.no_write_cache,
                 "tracepoint backend: count every write in the shared per-inode map instead "
                 "of a per-CPU slot for the inode the CPU last wrote (for comparing costs)");
    app.add_option("--status-fd", c.status_fd,
                   "write status lines to file descriptor N, one JSON object per line: "
                   "watching, health, exit (see STATUS STREAM)")
        ->type_name("N")
        ->check(CLI::Range(0, std::numeric_limits<int>::max()));

    app.add_option("--generate-man", c.man_dir, "write the man pages into DIR")->group("");
    app.add_flag("--generate-completion", c.completion, "print the bash completion script")
        ->group("");

    c.c_doctor = app.add_subcommand("doctor", "what attaches where on this kernel, and why not");
    c.c_doctor->add_flag("--json", c.doctor.json, "machine-readable output");

    c.c_trace = app.add_subcommand(
        "trace", "one line per event (writes, opens, mmaps, releases, drain waits)");
    c.c_trace->add_flag("--json", c.trace.json, "JSON lines");
    c.c_trace
        ->add_option("--duration", c.trace.duration_s, "seconds to run (default: until Ctrl-C)")
        ->check(kFinite & CLI::Range(0.0, kMaxSeconds));
    add_filters(c.c_trace, f);

    c.c_top =
        app.add_subcommand("top", "live view of FUSE inodes: io mode, holders, lock modes, waits");
    c.c_top->add_option("--interval", c.top.interval_s, "seconds between refreshes")
        ->check(kFinite & CLI::Range(0.1, 3600.0));
    c.c_top->add_flag("-b,--batch", c.top.batch,
                      "print plain-text snapshots (for scripts and logs)");
    c.c_top->add_flag("--json", c.top.json,
                      "batch mode, one JSON object per refresh with the screen's fields");
    c.c_top->add_option("-n", c.top.iterations, "snapshots to print in batch mode")
        ->check(CLI::NonNegativeNumber);
    c.c_top->add_option("--sort", c.top.sort, top::sort_keys_list());
    c.c_top
        ->add_option("--rows", c.top.rows, "rows per batch snapshot, first in sort order (0: all)")
        ->check(CLI::Range(0, 1000000));
    add_filters(c.c_top, f);

    c.c_export = app.add_subcommand("export", "Prometheus exporter (/metrics)");
    c.c_export
        ->add_option("--web.listen-address,--listen", c.exp.listen,
                     "ADDR:PORT to listen on, [ADDR]:PORT for IPv6, :PORT for every "
                     "address; repeat for several (default 127.0.0.1:10100 only)")
        ->allow_extra_args(false); // one value per flag, as node_exporter takes them
    c.c_export->add_option("--web.config.file", c.exp.web_config_file,
                           "TLS and basic auth settings, in the format node_exporter reads "
                           "(exporter-toolkit's web configuration file)");
    c.c_export->add_flag("--bpf-stats", c.exp.bpf_stats,
                         "have the kernel account fusescope's BPF run time while it runs "
                         "(fusescope_bpf_program_*; costs tens of ns per program run)");
    c.c_export->add_flag("--metrics-reference", c.exp.metrics_reference,
                         "print the reference of every metric family (Markdown) and exit");
    c.c_export
        ->add_option("--per-inode-top", c.exp.per_inode_top,
                     "per-inode series for the K inodes with most wait")
        ->check(CLI::Range(0, 1000));
    add_filters(c.c_export, f);

    c.c_diag = app.add_subcommand("diagnose",
                                  "one-shot report: why are direct-IO writes on this mount slow?");
    c.c_diag->add_option("--duration", c.diag.duration_s, "seconds to watch (0: census only)")
        ->check(kFinite & CLI::Range(0.0, 86400.0));
    c.c_diag->add_option("--path", c.diag.path, "only this file");
    c.c_diag->add_flag("--json", c.diag.json, "machine-readable report");
    add_filters(c.c_diag, f);

    c.c_demo = app.add_subcommand(
        "demo", "mount the built-in test filesystem, run a database and an indexer on it, "
                "and watch with top");
    c.c_demo->add_option("--duration", c.demo.duration_s, "seconds (default: until q or Ctrl-C)")
        ->check(kFinite & CLI::Range(0.0, kMaxSeconds));
    c.c_demo->add_flag("-b,--batch", c.demo.batch, "print snapshots instead of the live view");
}

// One line on stderr that cannot throw: a stderr that fails (closed, a full disk) must not
// turn an error into an escaping exception (fmt::print throws when the write fails).
void say(const std::string &line) noexcept { std::fputs(line.c_str(), stderr); }

int run(int argc, char **argv) {
    std::unique_ptr<Cli> defined;
    try {
        defined = std::make_unique<Cli>();
        define(*defined);
    } catch (const std::exception &e) {
        say(fmt::format("fusescope: internal error: the command line could not be set up: {} "
                        "(please report it)\n",
                        e.what()));
        return exit_code::kFailure;
    }
    Cli &c = *defined;
    CLI::App &app = c.app;
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp &e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        say(fmt::format("fusescope: {} (see `fusescope --help`)\n", e.what()));
        return exit_code::kUsage;
    } catch (const std::exception &e) { // from a conversion or check of a value
        say(fmt::format("fusescope: bad command line: {} (see `fusescope --help`)\n", e.what()));
        return exit_code::kUsage;
    }

    if (c.status_fd >= 0)
        if (std::string err = status::stream().open(c.status_fd); !err.empty()) {
            say(fmt::format("fusescope: {} (see `fusescope --help`)\n", err));
            return exit_code::kUsage;
        }

    if (!c.man_dir.empty()) {
        std::string err;
        if (!cli::write_man_pages(app, std::string(build_version()), c.man_dir, &err)) {
            say(fmt::format("fusescope: --generate-man: {}\n", err));
            return exit_code::kFailure;
        }
        return exit_code::kOk;
    }
    if (c.completion) {
        const std::string sort_keys = [] {
            std::string w = top::sort_keys_list();
            std::erase(w, '|');
            return w;
        }();
        fmt::print("{}",
                   cli::bash_completion(
                       app, {{"--backend", {cli::ValueKind::Words, "auto trampoline tracepoint"}},
                             {"--syscall-hooks", {cli::ValueKind::Words, "auto on off"}},
                             {"--sort", {cli::ValueKind::Words, sort_keys}},
                             {"--mount", {cli::ValueKind::Dirs, ""}},
                             {"--path", {cli::ValueKind::Files, ""}},
                             {"--web.config.file", {cli::ValueKind::Files, ""}},
                             {"--generate-man", {cli::ValueKind::Dirs, ""}}}));
        return exit_code::kOk;
    }
    if (app.get_subcommands().empty()) {
        say("fusescope: A subcommand is required (see `fusescope --help`)\n");
        return exit_code::kUsage;
    }

    install_stop_signals();
    SessionOptions so = session_options(c.f);
    if (c.c_doctor->parsed())
        return run_doctor(so, c.doctor);
    if (c.c_trace->parsed())
        return run_trace(so, c.trace);
    if (c.c_top->parsed())
        return run_top(so, c.top);
    if (c.c_export->parsed())
        return run_export(so, c.exp);
    if (c.c_diag->parsed())
        return run_diagnose(so, c.diag);
    if (c.c_demo->parsed())
        return run_demo(argv[0], so, c.demo);
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
        std::fprintf(stderr,
                     "fusescope: internal error: %s (please report it with the output of "
                     "`fusescope -v doctor`)\n",
                     e.what());
    } catch (...) {
        say("fusescope: internal error (please report it with the output of "
            "`fusescope -v doctor`)\n");
    }
    status::exit(code);
    return code;
}
