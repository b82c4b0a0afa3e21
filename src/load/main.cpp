// fusescope-load: workload driver for fusescope's tests, benchmarks and demo. Each scenario
// issues an exact, reproducible set of IO calls and prints one JSON summary on stdout.
#include "common.h"

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <array>
#include <cstdio>
#include <string>

using namespace load;

namespace {

constexpr std::array kScenarios = {"parallel",      "append",         "extend", "mmap-holder",
                                   "cached-reader", "db-and-indexer", "mixed"};

constexpr const char *kFooter = R"(
Scenarios:
  parallel        --threads K (4) x --writes N (200) in-EOF pwrite()s of --size bytes (65536), each
                  thread on its own O_WRONLY fd, at block t*N+i; the file is preallocated to K*N*size
                  with ftruncate (a SETATTR, zero WRITE requests), so the server sees exactly K*N WRITEs
  append          K x N write()s with O_APPEND on a file truncated to 0
  extend          K (default 1) x N pwrite()s past EOF (block i*K+t) on a file truncated to 0
  mmap-holder     mmap the file MAP_SHARED (length --size or the file size), touch every page,
                  print "holding <pid>" on stderr (and --status-fd), hold --hold seconds or until
                  SIGUSR1/SIGTERM/SIGINT with --hold-until-signal, unmap, print "released <pid>"
  cached-reader   --opens (20) O_RDONLY opens, each reads a little and stays open --open-hold-ms (10)
  db-and-indexer  parallel writers (threads named db-writer-T) for N writes each or --duration s,
                  plus a forked process named --indexer-comm (indexer) that after --indexer-delay s
                  maps the file MAP_SHARED for --indexer-hold s; its pid is in the JSON
  mixed           for --duration s (3): K O_DIRECT writers, an O_DIRECT reader, a buffered writer
                  (with fdatasync) and reader, an mmap writer and reader, a cached opener, all on
                  one --file-size (8 MiB) file; then checks every page is zero or the right pattern.
                  EIO from O_DIRECT/fsync (backing fs DIO-vs-mmap collisions, seen with
                  --passthrough) is counted as collision_eio and is not a failure
Data: block b holds the 16-byte record {u64 b, u64 0x706f637365737566 ^ seed} (little-endian)
repeated. --verify reads the file back after the run and counts differing bytes.
Exit status: 0 ok, 1 IO errors or bad data (see JSON), 2 usage error, 3 file cannot be prepared.)";

} // namespace

int main(int argc, char **argv) {
    Options o;
    CLI::App app{"fusescope-load: reproducible FUSE workloads with a JSON summary",
                 "fusescope-load"};
    app.footer(kFooter);
    app.add_option("SCENARIO", o.scenario, "what to run (see below)")
        ->required()
        ->check(CLI::IsMember(std::vector<std::string>(kScenarios.begin(), kScenarios.end())));
    app.add_option("--file", o.file, "file to work on (created if missing)")->required();
    auto *threads =
        app.add_option("--threads", o.threads, "writer threads")->check(CLI::Range(1U, 1024U));
    app.add_option("--writes", o.writes, "writes per thread")->check(CLI::Range(1U, 100'000'000U));
    auto *size = app.add_option("--size", o.size, "bytes per write / mapping length")
                     ->check(CLI::Range(size_t{1}, size_t{1} << 30));
    app.add_option("--seed", o.seed, "data pattern seed");
    app.add_flag("--sync-start", o.sync_start, "threads open their fds, then start together");
    app.add_flag("--verify", o.verify, "read the file back and check the pattern afterwards");
    app.add_flag("--o-direct", o.o_direct, "writers open with O_DIRECT");
    app.add_option("--duration", o.duration, "seconds (db-and-indexer, mixed; also caps others)")
        ->check(CLI::Range(0.0, 86400.0));
    app.add_option("--hold", o.hold, "mmap-holder: seconds to hold the mapping")
        ->check(CLI::Range(0.0, 86400.0));
    app.add_flag("--hold-until-signal", o.hold_until_signal,
                 "mmap-holder: hold until SIGUSR1/SIGTERM/SIGINT");
    app.add_flag("--touch-write", o.touch_write, "mmap-holder: dirty every page, not just read");
    app.add_option("--comm", o.comm, "mmap-holder: process name (prctl PR_SET_NAME)");
    app.add_option("--status-fd", o.status_fd, "mmap-holder: also write status lines to this fd")
        ->check(CLI::Range(0, 1 << 20));
    app.add_option("--opens", o.opens, "cached-reader: number of opens")
        ->check(CLI::Range(1U, 10'000'000U));
    app.add_option("--open-hold-ms", o.open_hold_ms, "cached-reader: ms each open is held")
        ->check(CLI::Range(0.0, 60'000.0));
    app.add_option("--indexer-delay", o.indexer_delay, "db-and-indexer: seconds before mapping")
        ->check(CLI::Range(0.0, 86400.0));
    app.add_option("--indexer-hold", o.indexer_hold, "db-and-indexer: seconds the map is held")
        ->check(CLI::Range(0.0, 86400.0));
    app.add_option("--indexer-comm", o.indexer_comm, "db-and-indexer: the child's process name");
    app.add_option("--file-size", o.file_size, "mixed: file size in bytes")
        ->check(CLI::Range(size_t{4096}, size_t{1} << 34));

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        fmt::print(stderr, "fusescope-load: {} (see --help)\n", e.what());
        return kExitUsage;
    }
    o.threads_given = threads->count() > 0;
    o.size_given = size->count() > 0;
    if (o.comm.empty() || o.comm.size() > 15 || o.indexer_comm.empty() ||
        o.indexer_comm.size() > 15) {
        fmt::print(stderr, "fusescope-load: --comm/--indexer-comm must be 1..15 characters\n");
        return kExitUsage;
    }

    Json out;
    out.begin_object();
    int code;
    if (o.scenario == "mmap-holder")
        code = run_mmap_holder(o, out);
    else if (o.scenario == "cached-reader")
        code = run_cached_reader(o, out);
    else if (o.scenario == "mixed")
        code = run_mixed(o, out);
    else
        code = run_writers(o, out);
    out.kv("exit_status", code).end_object();
    std::fputs((out.str() + "\n").c_str(), stdout);
    std::fflush(stdout);
    return code;
}
