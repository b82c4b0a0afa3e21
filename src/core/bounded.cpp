// Lookups in a child process with a time limit (include/fusescope/core/bounded.h).
#include "fusescope/core/bounded.h"

#include "fusescope/core/session.h"

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace fusescope {

BoundedResult run_bounded(const std::function<std::string()> &fn, double timeout_s,
                          const std::function<void()> &on_timeout) {
    BoundedResult r;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        r.failed = true;
        return r;
    }
    const uint64_t start = monotonic_ns();
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        r.failed = true;
        return r;
    }
    if (pid == 0) {
        // The child: nothing of the parent's but the pipe (BPF links, sockets, the ring
        // buffer stay with the parent), gone when the parent is.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::prctl(PR_SET_NAME, "fusescope-look", 0, 0, 0);
        const int w = fds[1];
        if (w > 3)
            ::close_range(3, static_cast<unsigned>(w) - 1, 0);
        ::close_range(static_cast<unsigned>(w) + 1, ~0U, 0);
        const std::string out = fn();
        for (size_t off = 0; off < out.size();) {
            const ssize_t n = ::write(w, out.data() + off, out.size() - off);
            if (n <= 0)
                break;
            off += static_cast<size_t>(n);
        }
        ::_exit(0);
    }
    ::close(fds[1]);
    const uint64_t deadline = start + static_cast<uint64_t>(timeout_s * 1e9);
    bool eof = false;
    char buf[4096];
    while (!eof) {
        const uint64_t now = monotonic_ns();
        if (now >= deadline)
            break;
        struct pollfd p {
            fds[0], POLLIN, 0
        };
        const int ms = static_cast<int>((deadline - now) / 1'000'000) + 1;
        const int n = ::poll(&p, 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        const ssize_t got = ::read(fds[0], buf, sizeof buf);
        if (got > 0)
            r.out.append(buf, static_cast<size_t>(got));
        else if (got == 0 || errno != EINTR)
            eof = true;
    }
    ::close(fds[0]);
    r.waited_s = static_cast<double>(monotonic_ns() - start) / 1e9;
    int status = 0;
    if (!eof) {
        r.timed_out = true;
        if (on_timeout)
            on_timeout();
        // A request the server has not read yet is abandoned at once (the wait is killable);
        // one it read keeps the child until it answers: then init reaps it.
        ::kill(pid, SIGKILL);
        for (int i = 0; i < 20 && ::waitpid(pid, &status, WNOHANG) == 0; ++i)
            ::usleep(10'000);
        return r;
    }
    ::waitpid(pid, &status, 0); // it closed the pipe: it is exiting
    r.failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    return r;
}

StatResult stat_bounded(const std::string &path, const std::function<void()> &on_timeout,
                        double timeout_s) {
    BoundedResult b = run_bounded(
        [&] {
            struct stat st {};
            if (::stat(path.c_str(), &st) != 0)
                return "e " + std::to_string(errno);
            return "s " + std::to_string(st.st_dev) + " " + std::to_string(st.st_ino) + " " +
                   std::to_string(st.st_mode);
        },
        timeout_s, on_timeout);
    StatResult s;
    s.timed_out = b.timed_out;
    s.waited_s = b.waited_s;
    if (b.timed_out)
        return s;
    unsigned long long dev = 0, ino = 0;
    unsigned mode = 0;
    int err = 0;
    if (std::sscanf(b.out.c_str(), "s %llu %llu %u", &dev, &ino, &mode) == 3) {
        s.dev = dev;
        s.ino = ino;
        s.mode = mode;
    } else if (std::sscanf(b.out.c_str(), "e %d", &err) == 1) {
        s.err = err;
    } else {
        s.err = EIO; // the child failed
    }
    return s;
}

bool statfs_answers(const std::string &mount_point, const std::function<void()> &on_timeout,
                    double *waited_s, double timeout_s) {
    BoundedResult b = run_bounded(
        [&] {
            struct statfs sf {};
            return std::to_string(::statfs(mount_point.c_str(), &sf));
        },
        timeout_s, on_timeout);
    *waited_s = b.waited_s;
    return !b.timed_out;
}

std::optional<std::string> realpath_bounded(const std::string &path, bool *timed_out,
                                            double timeout_s) {
    BoundedResult b = run_bounded(
        [&] {
            char buf[PATH_MAX];
            return ::realpath(path.c_str(), buf) ? "/" + std::string(buf) : std::string("!");
        },
        timeout_s);
    *timed_out = b.timed_out;
    if (b.timed_out || b.out.size() < 2 || b.out[0] != '/')
        return std::nullopt;
    return b.out.substr(1);
}

std::optional<uint64_t> fuse_connection_waiting(uint32_t kdev, bool may_mount) {
    static const char *kDir = "/sys/fs/fuse/connections";
    const std::string file = std::string(kDir) + "/" + std::to_string(kdev) + "/waiting";
    auto read = [&]() -> std::optional<uint64_t> {
        FILE *f = std::fopen(file.c_str(), "r");
        if (!f)
            return std::nullopt;
        unsigned long long v = 0;
        const bool ok = std::fscanf(f, "%llu", &v) == 1;
        std::fclose(f);
        return ok ? std::optional<uint64_t>(v) : std::nullopt;
    };
    auto v = read();
    // Mounted only for this one read and removed again: nothing of ours stays mounted.
    if (!v && may_mount && ::mount("fusectl", kDir, "fusectl", 0, nullptr) == 0) {
        v = read();
        ::umount2(kDir, MNT_DETACH);
    }
    return v;
}

std::string lexical_absolute(const std::string &path) {
    std::string base;
    if (path.empty() || path[0] != '/') {
        char cwd[PATH_MAX]; // the kernel's dentry path: no request to any server
        base = ::getcwd(cwd, sizeof cwd) ? cwd : "/";
    }
    std::vector<std::string> parts;
    auto add = [&](const std::string &p) {
        for (size_t i = 0; i < p.size();) {
            size_t j = p.find('/', i);
            if (j == std::string::npos)
                j = p.size();
            const std::string c = p.substr(i, j - i);
            if (c == "..") {
                if (!parts.empty())
                    parts.pop_back();
            } else if (!c.empty() && c != ".") {
                parts.push_back(c);
            }
            i = j + 1;
        }
    };
    add(base);
    add(path);
    std::string out;
    for (const auto &c : parts)
        out += "/" + c;
    return out.empty() ? "/" : out;
}

} // namespace fusescope
