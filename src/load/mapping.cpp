// Scenarios that put an inode into cached io mode: a process holding a MAP_SHARED mapping
// (mmap-holder, and the indexer child of db-and-indexer) and repeated cached opens.
#include "common.h"
#include "indexer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace load {
namespace {

constexpr size_t kPage = 4096;

// Faults every page in (read, or read+write to dirty it) so the mapping is really populated.
uint64_t touch_pages(char *p, size_t len, bool write) {
    uint64_t pages = 0;
    volatile char sink = 0;
    for (size_t off = 0; off < len; off += kPage, ++pages) {
        char c = p[off];
        sink = static_cast<char>(sink + c);
        if (write)
            p[off] = c;
    }
    (void)sink;
    return pages;
}

void status_line(const Options &o, const std::string &line) {
    fmt::print(stderr, "{}\n", line);
    std::fflush(stderr);
    if (o.status_fd >= 0) {
        std::string l = line + "\n";
        (void)!::write(o.status_fd, l.data(), l.size());
    }
}

} // namespace

int run_mmap_holder(const Options &o, Json &out) {
    int fd = ::open(o.file.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0)
        fail(kExitEnvironment, fmt::format("cannot open {}: {}", o.file, std::strerror(errno)));
    struct stat st {};
    ::fstat(fd, &st);
    const size_t len = o.size_given ? o.size : static_cast<size_t>(st.st_size);
    if (len == 0)
        fail(kExitEnvironment,
             fmt::format("{} is empty; give --size to map (and extend) it", o.file));
    // Touching a page past EOF would SIGBUS; grow the file (a SETATTR, no WRITE) if needed.
    const bool extended = static_cast<size_t>(st.st_size) < len;
    if (extended && ::ftruncate(fd, static_cast<off_t>(len)) != 0)
        fail(kExitEnvironment, fmt::format("cannot extend {}: {}", o.file, std::strerror(errno)));
    ::prctl(PR_SET_NAME, o.comm.c_str(), 0, 0, 0);

    // Stop signals are taken synchronously, so a SIGTERM still unmaps and reports.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, nullptr);

    out.kv("scenario", "mmap-holder").kv("pid", ::getpid()).kv("comm", o.comm).kv("file", o.file);
    out.kv("length", len).kv("extended", extended);
    void *map = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        int e = errno;
        fmt::print(stderr, "fusescope-load: mmap MAP_SHARED of {} failed: {}{}\n", o.file,
                   std::strerror(e),
                   e == ENODEV ? " (direct-io file on a mount without --direct-io-allow-mmap?)"
                               : "");
        out.kv("errors", 1).kv("error", std::strerror(e));
        ::close(fd);
        return kExitIoErrors;
    }
    const double t0 = now_s();
    const uint64_t pages = touch_pages(static_cast<char *>(map), len, o.touch_write);
    status_line(o, fmt::format("holding {}", ::getpid()));

    std::string ended_by = "timeout";
    int sig = -1;
    if (o.hold_until_signal) {
        sig = sigwaitinfo(&sigs, nullptr);
    } else {
        timespec ts{
            static_cast<time_t>(o.hold),
            static_cast<long>((o.hold - static_cast<double>(static_cast<time_t>(o.hold))) * 1e9)};
        while ((sig = sigtimedwait(&sigs, nullptr, &ts)) < 0 && errno == EINTR) {
        }
    }
    if (sig > 0)
        ended_by = sigabbrev_np(sig) ? fmt::format("SIG{}", sigabbrev_np(sig)) : "signal";
    const double held = now_s() - t0;
    ::munmap(map, len);
    ::close(fd);
    status_line(o, fmt::format("released {}", ::getpid()));
    out.kv("pages_touched", pages).kv("touch_write", o.touch_write).kv("held_s", held);
    out.kv("ended_by", ended_by).kv("errors", 0);
    return kExitOk;
}

int run_cached_reader(const Options &o, Json &out) {
    const size_t chunk = std::min<size_t>(o.size, 64 * 1024);
    std::string buf(chunk, '\0');
    uint64_t errors = 0, bytes = 0;
    int first_errno = 0;
    const double t0 = now_s();
    for (unsigned i = 0; i < o.opens; ++i) {
        int fd = ::open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            errors++;
            first_errno = first_errno ? first_errno : errno;
            continue;
        }
        ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
        if (n < 0) {
            errors++;
            first_errno = first_errno ? first_errno : errno;
        } else {
            bytes += static_cast<uint64_t>(n);
        }
        sleep_s(o.open_hold_ms / 1000.0); // hold the cached open so it overlaps the writers
        ::close(fd);
    }
    out.kv("scenario", "cached-reader").kv("pid", ::getpid()).kv("file", o.file);
    out.kv("opens", o.opens).kv("bytes_read", bytes).kv("errors", errors);
    out.kv("first_errno", first_errno).kv("duration_s", now_s() - t0);
    return errors ? kExitIoErrors : kExitOk;
}

// ---- the indexer child of db-and-indexer ----------------------------------------------------

pid_t spawn_indexer(const Options &o, int &go_fd, int &report_fd) {
    int go[2], rep[2];
    if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(rep, O_CLOEXEC) != 0)
        fail(kExitEnvironment, fmt::format("pipe: {}", std::strerror(errno)));
    pid_t pid = ::fork();
    if (pid < 0)
        fail(kExitEnvironment, fmt::format("fork: {}", std::strerror(errno)));
    if (pid > 0) {
        ::close(go[0]);
        ::close(rep[1]);
        go_fd = go[1];
        report_fd = rep[0];
        return pid;
    }
    // Child: a separate process named "indexer", as a real one would be. Forked before any
    // writer thread exists, so no lock can be inherited in a held state.
    ::close(go[1]);
    ::close(rep[0]);
    ::prctl(PR_SET_NAME, o.indexer_comm.c_str(), 0, 0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    IndexerReport r{};
    char c;
    if (::read(go[0], &c, 1) != 1) // parent died or gave up before starting
        ::_exit(1);
    sleep_s(o.indexer_delay);
    int fd = ::open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_size == 0) {
        r.err = fd < 0 ? errno : EINVAL;
    } else {
        r.length = static_cast<uint64_t>(st.st_size);
        // MAP_SHARED, even read-only: this is what switches a direct-io inode to cached mode.
        void *map = ::mmap(nullptr, r.length, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            r.err = errno;
        } else {
            r.mapped_at = now_s();
            r.pages = touch_pages(static_cast<char *>(map), r.length, false);
            sleep_s(o.indexer_hold);
            ::munmap(map, r.length);
            r.unmapped_at = now_s();
        }
    }
    if (fd >= 0)
        ::close(fd);
    (void)!::write(rep[1], &r, sizeof(r));
    ::_exit(r.err ? 1 : 0);
}

IndexerReport wait_indexer(pid_t pid, int report_fd) {
    IndexerReport r{};
    if (::read(report_fd, &r, sizeof(r)) != static_cast<ssize_t>(sizeof(r)))
        r.err = EPIPE;
    ::close(report_fd);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

} // namespace load
