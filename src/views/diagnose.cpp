// `fusescope diagnose`: census now, watch --duration seconds, then one
// report of ranked findings (logic: diagnose_findings.cpp; JSON schema and
// finding kinds: include/fusescope/views/diagnose.h).
// Exit status: 0 healthy, exit_code::kFindings when a warning or critical
// finding was reported, the usual codes for errors.
#include "fusescope/views/diagnose.h"

#include "fusescope/core/exit_codes.h"
#include "fusescope/core/privileges.h"
#include "fusescope/views/views.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
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

// Paths of the inodes worth reporting that no census saw open: a bounded walk
// of their mount (lstat only, not crossing into other filesystems).
void fill_paths(Snapshot &snap) {
    std::map<std::string, std::vector<InodeView *>> by_mount;
    for (auto &iv : snap.inodes)
        if (iv.path.empty() && !iv.mount_point.empty() &&
            (iv.total.total_writes() > 0 || iv.mode.kind == ModeKind::Cached ||
             !iv.holders.empty() || iv.total.drain_waits > 0 || iv.drain_events > 0))
            by_mount[iv.mount_point].push_back(&iv);
    namespace fs = std::filesystem;
    for (auto &[mp, want] : by_mount) {
        size_t left = want.size(), budget = 20000;
        std::error_code ec;
        fs::recursive_directory_iterator it(mp, fs::directory_options::skip_permission_denied, ec),
            end;
        for (; !ec && it != end && left > 0 && budget-- > 0; it.increment(ec)) {
            struct stat st {};
            if (::lstat(it->path().c_str(), &st) != 0)
                continue;
            const uint32_t kdev = kernel_dev(major(st.st_dev), minor(st.st_dev));
            if (S_ISDIR(st.st_mode) && (it.depth() >= 16 || kdev != want.front()->key.dev)) {
                it.disable_recursion_pending();
                continue;
            }
            for (auto *iv : want)
                if (iv->path.empty() && iv->key.dev == kdev && iv->key.ino == st.st_ino) {
                    iv->path = it->path().string();
                    --left;
                }
        }
    }
}

} // namespace

int run_diagnose(const SessionOptions &so_in, const DiagnoseOptions &d) {
    SessionOptions so = so_in;
    std::optional<InodeKey> only;
    if (!d.path.empty()) {
        struct stat st {};
        if (::stat(d.path.c_str(), &st) != 0) {
            fmt::print(stderr, "fusescope diagnose: --path {}: {}\n", d.path, std::strerror(errno));
            return exit_code::kEnvironment;
        }
        InodeKey k{kernel_dev(major(st.st_dev), minor(st.st_dev)),
                   static_cast<uint64_t>(st.st_ino)};
        Mounts mounts;
        if (mounts.reload() && !mounts.find_by_dev(k.dev)) {
            fmt::print(
                stderr,
                "fusescope diagnose: --path {}: not on a FUSE mount (see `findmnt -t fuse`)\n",
                d.path);
            return exit_code::kEnvironment;
        }
        if (!so.mount)
            if (const Mount *m = mounts.find_by_dev(k.dev))
                so.mount = m->mount_point;
        only = k;
    }

    std::string err;
    int code = exit_code::kFailure;
    auto s = Session::open(so, &err, &code); // takes the census
    if (!s) {
        fmt::print(stderr, "fusescope diagnose: {}\n", err);
        return code;
    }
    // attached: keep only what the census needs (privileges.h)
    if (std::string cap_err; !drop_privileges(&cap_err))
        fmt::print(stderr, "fusescope diagnose: warning: could not drop capabilities: {}\n",
                   cap_err);

    diagnose::HolderLog holders;
    holders.census(s->model().snapshot());
    const bool progress = d.duration_s > 0 && ::isatty(STDERR_FILENO);
    const uint64_t start = monotonic_ns();
    // One line even without a terminal: scripts wait for it before starting a workload.
    fmt::print(stderr, "fusescope diagnose: census taken, watching {:g} s ({} backend)\n",
               d.duration_s, to_string(s->plan().backend));
    std::fflush(stderr);
    if (d.duration_s > 0) {
        const uint64_t deadline = start + static_cast<uint64_t>(d.duration_s * 1e9);
        auto tick = [&] {
            if (!progress)
                return;
            const double done = static_cast<double>(monotonic_ns() - start) / 1e9;
            uint64_t writes = 0;
            for (const auto &iv : s->model().snapshot().inodes)
                if (!only || iv.key == *only)
                    writes += iv.total.total_writes();
            const int bar = 20;
            const int filled = std::min(bar, static_cast<int>(done / d.duration_s * bar));
            fmt::print(stderr, "\rdiagnose: [{}{}] {:.0f}/{:.0f} s, {} direct writes seen ",
                       std::string(filled, '#'), std::string(bar - filled, '.'), done, d.duration_s,
                       writes);
            std::fflush(stderr);
        };
        tick();
        s->run([&] { return monotonic_ns() < deadline; },
               [&](const Event &e) { holders.on_event(e); }, tick);
        if (progress) {
            fmt::print(stderr, "\r{:79}\r", "");
            std::fflush(stderr);
        }
    } else {
        s->refresh();
    }

    diagnose::Environment env = environment_of(*s, so_in, d);
    env.window_s = d.duration_s > 0 ? static_cast<double>(monotonic_ns() - start) / 1e9 : 0;
    env.only = only;
    Snapshot snap = s->model().snapshot();
    if (only)
        for (auto &iv : snap.inodes)
            if (iv.key == *only && iv.path.empty())
                iv.path = d.path;
    fill_paths(snap);
    diagnose::Report rep = diagnose::build_report(snap, env, holders.all());
    if (d.json)
        fmt::print("{}", diagnose::render_json(rep));
    else
        fmt::print("{}", diagnose::render_text(rep));
    std::fflush(stdout);
    return rep.healthy ? exit_code::kOk : exit_code::kFindings;
}

} // namespace fusescope
