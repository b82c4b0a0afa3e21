#include "server.h"

#include "mount.h"
#include "protocol.h"
#include "uring.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace testfs {
namespace {

// State shared between the reader threads and the main thread. The main thread sleeps in poll()
// on a signalfd and on `wake`, an eventfd the readers bump when something changes.
struct Shared {
    int wake = -1;
    std::atomic<int> alive{0};
    std::atomic<int> init_state{0}; // 0 pending, 1 ok, 2 refused
    std::atomic<bool> ring_failed{false};
    std::mutex mu;
    std::string init_message; // why INIT was refused, or what it negotiated
    std::string ring_error;

    void notify() const {
        uint64_t one = 1;
        (void)!::write(wake, &one, sizeof(one));
    }
};

void reader_loop(int fd, size_t bufsize, Filesystem &fs, Shared &sh) {
    // The kernel refuses reads into buffers smaller than header + write_in + max_write.
    std::vector<char> buf(bufsize);
    std::vector<char> scratch;
    DevFuseReplier replier(fd);
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            // EINTR: signal; EAGAIN: spurious wakeup; ENOENT: the request we were about to get
            // was interrupted. All harmless.
            if (errno == EINTR || errno == EAGAIN || errno == ENOENT)
                continue;
            // ENODEV: unmounted or aborted; the normal way for a reader to end.
            if (errno != ENODEV)
                fmt::print(stderr, "fusescope-testfs: reading /dev/fuse failed: {}\n",
                           std::strerror(errno));
            break;
        }
        if (static_cast<size_t>(n) < sizeof(fuse_in_header))
            continue;
        auto *h = reinterpret_cast<const fuse_in_header *>(buf.data());
        if (h->len > static_cast<size_t>(n) || h->len < sizeof(*h))
            continue;
        const size_t ext = static_cast<size_t>(h->total_extlen) * 8;
        const size_t arglen = h->len - sizeof(*h);
        Request req{fd, h, buf.data() + sizeof(*h), arglen >= ext ? arglen - ext : 0, &replier};
        fs.handle(req, scratch);
    }
    sh.alive.fetch_sub(1);
    sh.notify();
}

void write_stats(const Config &cfg, const Filesystem &fs) {
    if (cfg.stats_path.empty())
        return;
    std::ofstream out(cfg.stats_path, std::ios::trunc);
    out << fs.stats_json();
    if (!out)
        fmt::print(stderr, "fusescope-testfs: cannot write stats to {}\n", cfg.stats_path);
}

} // namespace

int serve(const Config &cfg, int fuse_fd, Filesystem &fs) {
    static Shared sh; // outlives the detached reader threads (see the end of this function)
    sh.wake = ::eventfd(0, EFD_CLOEXEC);

    fs.on_init = [](bool ok, const std::string &message) {
        {
            std::lock_guard lock(sh.mu);
            sh.init_message = message;
        }
        sh.init_state = ok ? 1 : 2;
        sh.notify();
    };

    // One reader per fd. Replies must go back on the fd the request was read from, so each
    // thread owns its fd; FUSE_DEV_IOC_CLONE attaches a new fd to the same connection.
    // With --io-uring the rings serve the requests; one reader takes what still comes through
    // /dev/fuse (INIT, FORGET, INTERRUPT, and what was sent before the rings were registered).
    const unsigned readers = cfg.io_uring ? 1 : cfg.threads;
    std::vector<int> fds{fuse_fd};
    for (unsigned i = 1; i < readers; ++i) {
        int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
        uint32_t master = static_cast<uint32_t>(fuse_fd);
        if (fd < 0 || ::ioctl(fd, FUSE_DEV_IOC_CLONE, &master) != 0) {
            fmt::print(stderr,
                       "fusescope-testfs: cannot clone /dev/fuse fd ({}); using {} threads\n",
                       std::strerror(errno), fds.size());
            if (fd >= 0)
                ::close(fd);
            break;
        }
        fds.push_back(fd);
    }
    const size_t bufsize = sizeof(fuse_in_header) + sizeof(fuse_write_in) + cfg.max_write + 4096;
    sh.alive = static_cast<int>(fds.size());
    for (int fd : fds)
        std::thread(reader_loop, fd, bufsize, std::ref(fs), std::ref(sh)).detach();

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    int sfd = ::signalfd(-1, &sigs, SFD_CLOEXEC);

    int code = kExitOk;
    std::string why;
    bool announced = false; // "ready" printed
    for (;;) {
        pollfd p[2] = {{sfd, POLLIN, 0}, {sh.wake, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            why = fmt::format("poll failed: {}", std::strerror(errno));
            code = kExitRuntime;
            break;
        }
        if (p[0].revents & POLLIN) {
            signalfd_siginfo si{};
            (void)!::read(sfd, &si, sizeof(si));
            if (cfg.debug)
                fmt::print(stderr, "testfs: signal {}, unmounting\n", si.ssi_signo);
            break; // a clean stop: exit 0 once unmounted
        }
        if (p[1].revents & POLLIN) {
            uint64_t v;
            (void)!::read(sh.wake, &v, sizeof(v));
            if (sh.init_state == 2) {
                std::lock_guard lock(sh.mu);
                why = sh.init_message;
                code = kExitEnvironment;
                break;
            }
            if (sh.init_state == 1 && !announced) {
                if (cfg.io_uring) {
                    // The kernel takes ring entries only once INIT is processed (it sizes the
                    // payload buffers from max_write), so the rings start here.
                    why = start_uring(cfg, fuse_fd, fs, [](const std::string &err) {
                        {
                            std::lock_guard lock(sh.mu);
                            sh.ring_error = err;
                        }
                        sh.ring_failed = true;
                        sh.notify();
                    });
                    if (!why.empty()) {
                        why = "FUSE over io_uring: " + why;
                        code = kExitEnvironment;
                        break;
                    }
                }
                // Before "ready": whoever waits for it may read the debug log at once.
                if (cfg.debug) {
                    std::lock_guard lock(sh.mu);
                    fmt::print(stderr, "testfs: INIT done: {}\n", sh.init_message);
                }
                // The one line on stdout tests wait for; flushed because stdout is a pipe there.
                std::fputs(fmt::format("ready {}\n", cfg.mountpoint).c_str(), stdout);
                std::fflush(stdout);
                announced = true;
            }
            if (sh.ring_failed) {
                std::lock_guard lock(sh.mu);
                why = "FUSE over io_uring: " + sh.ring_error;
                code = kExitRuntime;
                break;
            }
            if (sh.alive == 0) {
                // Every reader saw ENODEV: someone unmounted us (fine) or the connection was
                // aborted (the mount is still there, dead; we remove it and report it).
                if (is_our_mount(cfg.mountpoint)) {
                    why = "the kernel aborted the FUSE connection; removed the dead mount";
                    code = kExitRuntime;
                }
                break;
            }
        }
    }

    std::string err;
    if (!unmount_fuse(cfg.mountpoint, err)) {
        fmt::print(stderr, "fusescope-testfs: {}\n", err);
        code = kExitRuntime;
    }
    if (!why.empty())
        fmt::print(stderr, "fusescope-testfs: {}\n", why);
    write_stats(cfg, fs);
    std::fflush(stdout);
    std::fflush(stderr);
    // Readers may still sit in read() on a lazily detached, busy connection; _exit ends them
    // and closing our /dev/fuse fds aborts what is left of the connection.
    ::_exit(code);
}

} // namespace testfs
