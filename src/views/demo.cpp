// `fusescope demo`: the README's first command. Mounts fusescope-testfs (the
// project's own FUSE server, with parallel direct writes) on a temporary
// directory, runs the db-and-indexer workload on it in a loop (a database-like
// writer pool, and an `indexer` process that mmaps the file for a while), and
// shows `fusescope top` on that mount. On exit everything is stopped,
// unmounted and removed; the children get SIGTERM if the demo itself dies
// (PR_SET_PDEATHSIG), so even a SIGKILLed demo leaves no mount behind.
#include "fusescope/core/exit_codes.h"
#include "fusescope/views/views.h"

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fusescope {
namespace {

namespace fs = std::filesystem;

// Next to the fusescope binary (installed), or in the build tree's sibling dirs, or on PATH.
std::string find_tool(const std::string &argv0, const std::string &name) {
    std::error_code ec;
    fs::path self = fs::canonical("/proc/self/exe", ec);
    if (ec)
        self = fs::path(argv0);
    fs::path dir = self.parent_path();
    for (const fs::path &cand :
         {dir / name, dir / ".." / "testfs" / name, dir / ".." / "load" / name})
        if (::access(cand.c_str(), X_OK) == 0)
            return cand.string();
    if (const char *path = std::getenv("PATH")) {
        std::string p = path;
        size_t pos = 0;
        while (pos <= p.size()) {
            size_t c = p.find(':', pos);
            fs::path cand =
                fs::path(p.substr(pos, c == std::string::npos ? std::string::npos : c - pos)) /
                name;
            if (::access(cand.c_str(), X_OK) == 0)
                return cand.string();
            if (c == std::string::npos)
                break;
            pos = c + 1;
        }
    }
    return "";
}

// fork+exec with the parent-death signal set; stdout to @out_fd (or /dev/null).
pid_t spawn(const std::vector<std::string> &argv, int out_fd) {
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid != 0)
        return pid;
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent)
        _exit(127);
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(out_fd >= 0 ? out_fd : devnull, STDOUT_FILENO);
    ::dup2(devnull, STDERR_FILENO);
    std::vector<char *> args;
    args.reserve(argv.size() + 1);
    for (const auto &a : argv)
        args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
}

int stop_child(pid_t pid) {
    if (pid <= 0)
        return 0;
    ::kill(pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100; i++) {
        if (::waitpid(pid, &status, WNOHANG) == pid)
            return status;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return status;
}

} // namespace

int run_demo(const std::string &argv0, const SessionOptions &so_in, const DemoOptions &d) {
    if (::geteuid() != 0) {
        fmt::print(stderr, "fusescope demo: needs root (it mounts a FUSE filesystem and loads "
                           "BPF); run it with sudo\n");
        return exit_code::kEnvironment;
    }
    std::string testfs = find_tool(argv0, "fusescope-testfs");
    std::string load = find_tool(argv0, "fusescope-load");
    if (testfs.empty() || load.empty()) {
        fmt::print(
            stderr,
            "fusescope demo: fusescope-testfs and fusescope-load not found next to fusescope "
            "or on PATH; build the whole project (cmake --build build)\n");
        return exit_code::kEnvironment;
    }
    char tmpl[] = "/tmp/fusescope-demo.XXXXXX";
    if (!::mkdtemp(tmpl)) {
        fmt::print(stderr, "fusescope demo: cannot create a directory in /tmp: {}\n",
                   std::strerror(errno));
        return exit_code::kEnvironment;
    }
    fs::path dir = tmpl, backing = dir / "backing", mnt = dir / "mnt";
    fs::create_directories(backing);
    fs::create_directories(mnt);

    int pipefd[2];
    if (::pipe(pipefd) != 0)
        return exit_code::kFailure;
    pid_t server =
        spawn({testfs, "--direct-io", "--parallel-direct-writes", "--direct-io-allow-mmap",
               "--write-delay-us", "300", backing.string(), mnt.string()},
              pipefd[1]);
    ::close(pipefd[1]);
    // wait for "ready <mnt>"
    std::string ready;
    char c;
    while (ready.find('\n') == std::string::npos && ::read(pipefd[0], &c, 1) == 1)
        ready.push_back(c);
    ::close(pipefd[0]);
    int rc = exit_code::kOk;
    if (ready.rfind("ready", 0) != 0) {
        fmt::print(stderr,
                   "fusescope demo: the test filesystem did not mount (is /dev/fuse there?)\n");
        stop_child(server);
        fs::remove_all(dir);
        return exit_code::kEnvironment;
    }

    // the workload, over and over: writers all along, the indexer arrives after 3 s and holds 10 s
    std::atomic<bool> done{false};
    std::atomic<pid_t> workload{0};
    std::thread runner([&] {
        while (!done && !g_stop_requested) {
            pid_t p = spawn({load, "db-and-indexer", "--file", (mnt / "db.dat").string(),
                             "--threads", "4", "--size", "65536", "--duration", "25",
                             "--indexer-delay", "3", "--indexer-hold", "10"},
                            -1);
            workload = p;
            int st;
            while (::waitpid(p, &st, 0) < 0 && errno == EINTR) {
            }
            workload = 0;
        }
    });

    SessionOptions so = so_in;
    so.mount = mnt.string();
    TopOptions top;
    top.batch = d.batch || !::isatty(STDOUT_FILENO);
    if (d.duration_s > 0)
        top.iterations = static_cast<int>(d.duration_s / top.interval_s);
    if (top.batch && top.iterations == 0 && !::isatty(STDOUT_FILENO))
        top.iterations = 30;
    rc = run_top(so, top);

    done = true;
    if (pid_t p = workload.load())
        stop_child(p);
    runner.join();
    stop_child(server);
    std::error_code ec;
    fs::remove_all(dir, ec);
    return rc;
}

} // namespace fusescope
