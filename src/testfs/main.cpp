// fusescope-testfs: a FUSE filesystem that serves a backing directory and lets the command line
// choose every FOPEN/INIT flag that matters for FUSE's direct-IO write locking. It speaks the
// kernel protocol on /dev/fuse itself because Debian 12's libfuse (3.14) cannot set
// FOPEN_PARALLEL_DIRECT_WRITES or passthrough.
#include "config.h"
#include "mount.h"
#include "ops.h"
#include "server.h"
#include "uring.h"

#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>

using namespace testfs;

namespace {

[[noreturn]] void die(int code, const std::string &msg) {
    fmt::print(stderr, "fusescope-testfs: {}\n", msg);
    std::exit(code);
}

std::string canonical_dir(const std::string &path, const char *what) {
    char buf[PATH_MAX];
    if (!::realpath(path.c_str(), buf)) {
        const int e = errno;
        die(kExitUsage, fmt::format("{} {}: {}{}", what, path, std::strerror(e),
                                    e == ENOENT ? " (create it first)" : ""));
    }
    struct stat st {};
    if (::stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        die(kExitUsage, fmt::format("{} {} is not a directory", what, path));
    return buf;
}

constexpr const char *kFooter = R"(
Prints "ready <MOUNTPOINT>" on stdout (flushed) once the kernel accepted INIT (with --io-uring:
and every ring entry is registered, so requests from then on go through the rings); wait for
that line before using the mount. Stops on SIGINT/SIGTERM/SIGHUP: unmounts (lazily if busy), exits 0.
If the connection is aborted or someone else unmounts, it removes any dead mount and exits.

Exit status: 0 clean stop, 1 runtime failure (e.g. connection aborted), 2 usage error,
3 environment (not root, no /dev/fuse, kernel lacks a requested feature), 4 mount(2) failed.)";

} // namespace

int main(int argc, char **argv) {
    Config cfg;
    CLI::App app{"fusescope-testfs: FUSE server over a backing directory with selectable "
                 "FOPEN/INIT flags",
                 "fusescope-testfs"};
    app.footer(kFooter);
    app.add_option("BACKING_DIR", cfg.backing_dir, "directory whose files are served")->required();
    app.add_option("MOUNTPOINT", cfg.mountpoint, "empty directory to mount on")->required();
    app.add_flag("--direct-io", cfg.direct_io, "FOPEN_DIRECT_IO on every open");
    app.add_flag("--parallel-direct-writes", cfg.parallel_direct_writes,
                 "FOPEN_PARALLEL_DIRECT_WRITES on every open (the kernel honours it only "
                 "together with FOPEN_DIRECT_IO)");
    app.add_flag("--keep-cache", cfg.keep_cache, "FOPEN_KEEP_CACHE on every open");
    app.add_flag("--cache-readonly-opens", cfg.cache_readonly_opens,
                 "O_RDONLY opens get neither FOPEN_DIRECT_IO nor FOPEN_PARALLEL_DIRECT_WRITES: a "
                 "caching open that puts the inode in cached io mode");
    app.add_flag("--direct-io-allow-mmap", cfg.direct_io_allow_mmap,
                 "INIT flag FUSE_DIRECT_IO_ALLOW_MMAP: direct-io files may be mmapped MAP_SHARED");
    app.add_flag(
        "--passthrough", cfg.passthrough,
        "INIT flag FUSE_PASSTHROUGH and FOPEN_PASSTHROUGH on every file open (Linux 6.9+); "
        "reads/writes/mmap then bypass the server");
    // libfuse3 asks for FUSE_ASYNC_DIO by default, so most real servers run with it; so do we.
    // "--async-dio" stays accepted (it was the opt-in before the default changed).
    app.add_flag("--async-dio,!--no-async-dio", cfg.async_dio,
                 "INIT flag FUSE_ASYNC_DIO: on by default, as libfuse3 does; --no-async-dio turns "
                 "it off (--async-dio is accepted and changes nothing)");
    app.add_flag("--io-uring", cfg.io_uring,
                 "serve requests through FUSE over io_uring (Linux 6.14+, CONFIG_FUSE_IO_URING, "
                 "/sys/module/fuse/parameters/enable_uring=Y): one queue per CPU, --threads "
                 "spread over them");
    app.add_option("--write-delay-us", cfg.write_delay_us,
                   "server-side sleep before each WRITE, in microseconds")
        ->check(CLI::Range(0U, 10'000'000U));
    app.add_option("--threads", cfg.threads,
                   "server threads: readers, each on a cloned /dev/fuse fd; with --io-uring, "
                   "ring threads spread over the per-CPU queues (at least one per queue)")
        ->check(CLI::Range(1U, 256U))
        ->capture_default_str();
    app.add_option("--max-write", cfg.max_write, "max_write in bytes, 4096..16777216")
        ->check(CLI::Range(4096U, 16U << 20))
        ->capture_default_str();
    app.add_option("--stats", cfg.stats_path,
                   "write per-opcode request counts as JSON to this file at exit");
    app.add_flag("--debug", cfg.debug, "log every request on stderr");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        die(kExitUsage, fmt::format("{} (see --help)", e.what()));
    }
    if (cfg.passthrough && cfg.keep_cache)
        die(kExitUsage, "--keep-cache cannot be combined with --passthrough (the kernel refuses "
                        "FOPEN_KEEP_CACHE on passthrough opens)");

    // Environment checks before touching anything.
    if (::geteuid() != 0)
        die(kExitEnvironment, "must run as root (it mounts with mount(2)); try sudo");
    cfg.backing_dir = canonical_dir(cfg.backing_dir, "backing directory");
    cfg.mountpoint = canonical_dir(cfg.mountpoint, "mountpoint");
    if ((cfg.mountpoint + "/").starts_with(cfg.backing_dir + "/"))
        die(kExitUsage, "the mountpoint must not be inside the backing directory (the server "
                        "would call into its own mount)");

    std::string err;
    int fuse_fd = open_fuse_device(err);
    if (fuse_fd < 0)
        die(kExitEnvironment, err);
    if (cfg.passthrough && !kernel_has_passthrough_ioctl(fuse_fd))
        die(kExitEnvironment, "this kernel has no FUSE passthrough (needs Linux 6.9+ with "
                              "CONFIG_FUSE_PASSTHROUGH); run without --passthrough");

    if (cfg.io_uring)
        if (std::string why = uring_unavailable_reason(); !why.empty())
            die(kExitEnvironment, why);

    int root_fd = ::open(cfg.backing_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        die(kExitUsage, fmt::format("cannot open backing directory {}: {}", cfg.backing_dir,
                                    std::strerror(errno)));
    // Modes in CREATE/MKDIR requests are already masked by the caller's umask.
    ::umask(0);
    std::signal(SIGPIPE, SIG_IGN);
    // Block the stop signals now: serve() picks them up with a signalfd, and until then a signal
    // must not kill us with the mount in place.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    Filesystem fs(cfg, root_fd);
    if (int e = mount_fuse(fuse_fd, cfg.mountpoint))
        die(kExitMount, fmt::format("mount on {} failed: {}", cfg.mountpoint, std::strerror(e)));
    unmount_on_crash(cfg.mountpoint);
    return serve(cfg, fuse_fd, fs);
}
