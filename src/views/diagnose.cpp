// `fusescope diagnose`: census now, watch --duration seconds, then one
// report of ranked findings (logic: diagnose_findings.cpp; JSON schema and
// finding kinds: include/fusescope/views/diagnose.h).
// Exit status: 0 healthy, exit_code::kFindings when a warning or critical
// finding was reported, the usual codes for errors.
#include "fusescope/views/diagnose.h"

#include "fusescope/core/bounded.h"
#include "fusescope/core/exit_codes.h"
#include "fusescope/views/text_escape.h"
#include "fusescope/views/views.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace fusescope {

namespace {

diagnose::Environment environment_of(const Session &s, const SessionOptions &so,
                                     const DiagnoseOptions &d) {
    diagnose::Environment env;
    env.kernel = s.facts().release;
    env.io_modes = s.facts().offer.has_iomodes;
    env.backend = std::string(to_string(s.plan().backend));
    env.roles = s.plan().roles;
    env.mount = so.mount.value_or("");
    env.path = d.path;
    env.pid = so.pid;
    return env;
}

// Paths of the inodes worth reporting that neither a census nor the kernel's names gave:
// a bounded walk of their mount (lstat only, not crossing into other filesystems), in a
// child process with a time limit (bounded.h). False when the walk got no answer in time.
bool fill_paths(Snapshot &snap, const std::function<void()> &on_timeout) {
    std::map<std::string, std::vector<InodeView *>> by_mount;
    for (auto &iv : snap.inodes)
        if (iv.path.empty() && !iv.mount_point.empty() &&
            (iv.total.total_writes() > 0 || iv.mode.kind == ModeKind::Cached ||
             !iv.holders.empty() || iv.total.drain_waits > 0 || iv.drain_events > 0))
            by_mount[iv.mount_point].push_back(&iv);
    namespace fs = std::filesystem;
    for (auto &[mp, want] : by_mount) {
        // the child prints "ino<TAB>path" lines for the inodes it found
        BoundedResult r = run_bounded(
            [&, &mp = mp, &want = want] {
                std::string out;
                size_t left = want.size(), budget = 20000;
                std::error_code ec;
                fs::recursive_directory_iterator it(
                    mp, fs::directory_options::skip_permission_denied, ec),
                    end;
                for (; !ec && it != end && left > 0 && budget-- > 0; it.increment(ec)) {
                    struct stat st {};
                    if (::lstat(it->path().c_str(), &st) != 0)
                        continue;
                    const uint32_t kdev = kernel_dev(major(st.st_dev), minor(st.st_dev));
                    if (S_ISDIR(st.st_mode) &&
                        (it.depth() >= 16 || kdev != want.front()->key.dev)) {
                        it.disable_recursion_pending();
                        continue;
                    }
                    for (auto *iv : want)
                        if (iv->key.dev == kdev && iv->key.ino == st.st_ino &&
                            it->path().string().find('\n') == std::string::npos) {
                            out += std::to_string(st.st_ino) + "\t" + it->path().string() + "\n";
                            --left;
                        }
                }
                return out;
            },
            kLookupTimeoutS, on_timeout);
        if (r.timed_out)
            return false;
        for (size_t i = 0; i < r.out.size();) {
            size_t nl = r.out.find('\n', i), tab = r.out.find('\t', i);
            if (nl == std::string::npos || tab == std::string::npos || tab > nl)
                break;
            const uint64_t ino = std::strtoull(r.out.c_str() + i, nullptr, 10);
            for (auto *iv : want)
                if (iv->path.empty() && iv->key.ino == ino) {
                    iv->path = r.out.substr(tab + 1, nl - tab - 1);
                    iv->path_source = PathSource::Walk;
                }
            i = nl + 1;
        }
    }
    return true;
}

// "server not answering": a lookup on the mount got no answer within the time limit.
diagnose::Finding not_answering(const std::string &what, const Mount *mount, double waited_s,
                                std::optional<uint64_t> read) {
    diagnose::Finding f;
    f.kind = "server_not_answering";
    f.severity = diagnose::Severity::Critical;
    const uint32_t kdev = mount ? mount->kdev : 0;
    const bool known = read.has_value();
    const uint64_t waiting = known ? *read : 0;
    f.cost_ns = static_cast<uint64_t>(waited_s * 1e9);
    f.title = known ? fmt::format("FUSE server not answering: {} requests waiting for at least "
                                  "{:.1f} s",
                                  waiting, waited_s)
                    : fmt::format("FUSE server not answering for at least {:.1f} s", waited_s);
    f.evidence = {{"waiting", true, waiting, 0},
                  {"waited_ns", true, f.cost_ns, 0},
                  {"connection", true, kdev, 0}};
    f.explanation.push_back(fmt::format(
        "{} got no answer from {} within {:.1f} s: fusescope stopped waiting and reports "
        "instead (the lookup's child process is left to finish when the server answers).",
        what, mount ? "the server of " + safe_name(mount->mount_point) : "its filesystem",
        waited_s));
    if (known)
        f.explanation.push_back(fmt::format("The kernel waits on {} request(s) of this connection "
                                            "(/sys/fs/fuse/connections/{}/waiting).",
                                            waiting, kdev));
    f.advice.push_back("Look at the FUSE server: is it stopped (state T), blocked in D state, "
                       "or deadlocked? Every process touching the mount waits with it.");
    f.advice.push_back(
        fmt::format("If it cannot recover, abort the connection (echo 1 > "
                    "/sys/fs/fuse/connections/{}/abort) or unmount it lazily (umount -l): waiting "
                    "processes get ENOTCONN.",
                    kdev));
    return f;
}

} // namespace

int run_diagnose(const SessionOptions &so_in, const DiagnoseOptions &d) {
    SessionOptions so = so_in;
    std::optional<InodeKey> only;
    // A lookup that got no answer in time: what, where, how long (reported, exit 5).
    struct Unanswered {
        std::string what;
        std::optional<Mount> mount;
        double waited_s = 0;
        std::optional<uint64_t> waiting;
    };
    std::optional<Unanswered> unanswered;
    Mounts mounts;
    const bool have_mounts = mounts.reload().has_value();
    if (!d.path.empty()) {
        const Mount *m = mounts.find_by_path(lexical_absolute(d.path));
        std::optional<uint64_t> waiting;                 // read while our own request still waits
        const StatResult st = stat_bounded(d.path, [&] { // the server may not answer: bounded.h
            if (m)
                waiting = fuse_connection_waiting(m->kdev, true);
        });
        if (st.timed_out) {
            unanswered =
                Unanswered{"stat(" + d.path + ")", m ? std::optional<Mount>(*m) : std::nullopt,
                           st.waited_s, waiting};
            if (m && !so.mount) {
                so.mount = m->mount_point; // from mountinfo: no lookup that could hang again
                so.mount_is_canonical = true;
            }
        } else if (st.err != 0) {
            fmt::print(stderr, "fusescope diagnose: --path {}: {}\n", d.path,
                       std::strerror(st.err));
            return exit_code::kEnvironment;
        } else {
            const auto dev = static_cast<dev_t>(st.dev);
            InodeKey k{kernel_dev(major(dev), minor(dev)), st.ino};
            if (have_mounts && !mounts.find_by_dev(k.dev)) {
                fmt::print(stderr,
                           "fusescope diagnose: --path {}: not on a FUSE mount (see `findmnt -t "
                           "fuse`)\n",
                           d.path);
                return exit_code::kEnvironment;
            }
            if (!so.mount)
                if (const Mount *on = mounts.find_by_dev(k.dev)) {
                    so.mount = on->mount_point;
                    so.mount_is_canonical = true;
                }
            only = k;
        }
    }

    // The mount under diagnosis must answer at all: one request it cannot serve from a
    // cache (FUSE_STATFS), bounded. Its lookup first, bounded too.
    if (!unanswered && so.mount) {
        bool timed_out = false;
        std::optional<std::string> real =
            so.mount_is_canonical ? so.mount : realpath_bounded(*so.mount, &timed_out);
        const Mount *m = real        ? mounts.find_by_path(*real)
                         : timed_out ? mounts.find_by_path(lexical_absolute(*so.mount))
                                     : nullptr; // no such path: Session::open says so
        std::optional<uint64_t> waiting;
        auto read_waiting = [&] {
            if (m)
                waiting = fuse_connection_waiting(m->kdev, true);
        };
        double waited = kLookupTimeoutS;
        if (timed_out)
            read_waiting();
        if (timed_out || (m && !statfs_answers(m->mount_point, read_waiting, &waited)))
            unanswered = Unanswered{timed_out ? "realpath(" + *so.mount + ")"
                                              : "statfs(" + m->mount_point + ")",
                                    m ? std::optional<Mount>(*m) : std::nullopt, waited, waiting};
        if (m) {
            so.mount = m->mount_point; // from mountinfo: no lookup that could hang again
            so.mount_is_canonical = true;
        }
    }

    int code = exit_code::kFailure;
    auto s = Session::open_for_view(so, "diagnose", &code); // takes the census
    if (!s)
        return code;
    std::optional<diagnose::Finding> stuck;
    if (unanswered) // fusectl's "waiting" was read above, while still privileged
        stuck = not_answering(unanswered->what, unanswered->mount ? &*unanswered->mount : nullptr,
                              unanswered->waited_s, unanswered->waiting);

    // A server that does not answer is the finding: report now, not after the watch.
    const double duration = stuck ? 0 : d.duration_s;
    const bool progress = duration > 0 && ::isatty(STDERR_FILENO);
    const uint64_t start = monotonic_ns();
    // One line even without a terminal: scripts wait for it before starting a workload.
    fmt::print(stderr, "fusescope diagnose: census taken, watching {:g} s ({} backend)\n", duration,
               to_string(s->plan().backend));
    std::fflush(stderr);
    s->watching();
    if (duration > 0) {
        const uint64_t deadline = start + static_cast<uint64_t>(duration * 1e9);
        auto tick = [&] {
            if (!progress)
                return;
            const double done = static_cast<double>(monotonic_ns() - start) / 1e9;
            uint64_t writes = 0;
            for (const auto &iv : s->model().snapshot().inodes)
                if (!only || iv.key == *only)
                    writes += iv.total.total_writes();
            const int bar = 20;
            const int filled = std::min(bar, static_cast<int>(done / duration * bar));
            fmt::print(stderr, "\rdiagnose: [{}{}] {:.0f}/{:.0f} s, {} direct writes seen ",
                       std::string(filled, '#'), std::string(bar - filled, '.'), done, duration,
                       writes);
            std::fflush(stderr);
        };
        tick();
        s->run([&] { return monotonic_ns() < deadline; }, {}, tick);
        if (progress) {
            fmt::print(stderr, "\r{:79}\r", "");
            std::fflush(stderr);
        }
    } else {
        s->refresh();
    }

    diagnose::Environment env = environment_of(*s, so_in, d);
    env.window_s = duration > 0 ? static_cast<double>(monotonic_ns() - start) / 1e9 : 0;
    env.only = only;
    Snapshot snap = s->model().snapshot();
    if (only)
        for (auto &iv : snap.inodes)
            if (iv.key == *only && iv.path.empty()) {
                iv.path = d.path;
                iv.path_source = PathSource::Argument;
            }
    if (!stuck) {
        const Mount *m = so.mount ? mounts.find_by_path(lexical_absolute(*so.mount)) : nullptr;
        std::optional<uint64_t> waiting;
        if (!fill_paths(snap, [&] {
                if (m)
                    waiting = fuse_connection_waiting(m->kdev, false);
            }))
            stuck =
                not_answering("The walk of the mount for file names", m, kLookupTimeoutS, waiting);
    }
    diagnose::Report rep = diagnose::build_report(snap, env);
    if (stuck) {
        rep.findings.insert(rep.findings.begin(), std::move(*stuck));
        rep.healthy = false;
        std::erase_if(rep.findings, [](const diagnose::Finding &f) { return f.kind == "healthy"; });
    }
    if (d.json)
        fmt::print("{}", diagnose::render_json(rep));
    else
        fmt::print("{}", diagnose::render_text(rep));
    std::fflush(stdout);
    return rep.healthy ? exit_code::kOk : exit_code::kFindings;
}

} // namespace fusescope
