#include "fusescope/core/session.h"

#include "fusescope/abi.h"
#include "fusescope/core/bounded.h"
#include "fusescope/core/exit_codes.h"

#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace fusescope {

std::atomic<bool> g_stop_requested{false};

uint64_t monotonic_ns() {
    struct timespec ts {};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {
void on_stop_signal(int) { g_stop_requested = true; }
} // namespace

void install_stop_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    // SA_RESTART: a write to a full stdout pipe resumes instead of losing the line (stdio
    // drops what a write cut short by EINTR did not take). epoll_wait, which the ring
    // buffer poll blocks in, returns EINTR at once regardless (signal(7)).
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
}

std::unique_ptr<Session> Session::open(const SessionOptions &opts, std::string *error,
                                       int *exit_code) {
    if (::geteuid() != 0) {
        *error = "fusescope needs root (it loads BPF programs and reads every task's files); "
                 "run it with sudo";
        *exit_code = exit_code::kEnvironment;
        return nullptr;
    }
    std::unique_ptr<Session> s(new Session());
    s->opts_ = opts;
    s->facts_ = probe_kernel();
    if (!s->facts_.vmlinux_btf) {
        *error = "this kernel has no BTF (/sys/kernel/btf/vmlinux): fusescope needs a kernel "
                 "built with CONFIG_DEBUG_INFO_BTF=y";
        *exit_code = exit_code::kEnvironment;
        return nullptr;
    }
    if (!s->facts_.fuse_registered && !s->facts_.fuse_module_btf) {
        *error = "FUSE is not available in this kernel (no \"fuse\" in /proc/filesystems): "
                 "load it with `modprobe fuse`";
        *exit_code = exit_code::kEnvironment;
        return nullptr;
    }
    s->mounts_.reload(); // the diff since "nothing" is of no interest here

    BackendOptions bo;
    bo.emit_writes = opts.emit_writes;
    bo.emit_all_opens = opts.emit_all_opens;
    bo.verbose = opts.verbose;
    bo.write_cache = opts.write_cache;
    bo.bpf_stats = opts.bpf_stats;
    ModelOptions mo;
    mo.io_modes_available = s->facts_.offer.has_iomodes;
    // No need to remember more inodes than the kernel's stats map holds: past that the
    // model only re-counts LRU-evicted entries, and every view copies the whole model
    // (bench: 244 MB RSS with 100k inodes at the model's default of 65536).
    mo.max_inodes = FS_MAX_INODES;
    if (opts.mount) {
        // realpath sends the FUSE server requests: bounded, it must not hang the view
        bool timed_out = false;
        auto real =
            opts.mount_is_canonical ? opts.mount : realpath_bounded(*opts.mount, &timed_out);
        if (timed_out) {
            real = lexical_absolute(*opts.mount);
            std::fprintf(stderr,
                         "fusescope: --mount %s: no answer from its filesystem in %.0f s; "
                         "taking the path as written\n",
                         opts.mount->c_str(), kLookupTimeoutS);
        }
        const Mount *m = real ? s->mounts_.find_by_path(*real) : nullptr;
        if (!real) {
            *error = "--mount " + *opts.mount + ": no such path";
            *exit_code = exit_code::kEnvironment;
            return nullptr;
        }
        if (!m || !is_fuse_fstype(m->fstype)) {
            *error = "--mount " + *opts.mount + ": not on a FUSE mount (see `findmnt -t fuse`)";
            *exit_code = exit_code::kEnvironment;
            return nullptr;
        }
        bo.filter_dev = m->kdev;
        mo.devs.push_back(m->kdev);
    }
    if (opts.pid) {
        struct stat st {};
        if (::stat(("/proc/" + std::to_string(*opts.pid)).c_str(), &st) != 0) {
            *error = "--pid " + std::to_string(*opts.pid) + ": no such process";
            *exit_code = exit_code::kEnvironment;
            return nullptr;
        }
        // Filtered at the source: with a tgid filter the BPF side only counts and reports
        // what that process does, so the model needs no pid filter of its own (its filter
        // only knows pids from events and would hide a process that only writes).
        bo.filter_tgid = *opts.pid;
    }

    std::string why;
    auto plan = plan_hooks(s->facts_.offer, opts.backend, &why, {opts.service_time});
    if (!plan) {
        *error = why;
        *exit_code = exit_code::kNoBackend;
        return nullptr;
    }
    s->plan_ = *plan;
    s->backend_ = Backend::create(s->plan_, bo, &why);
    if (!s->backend_) {
        *error = why;
        *exit_code = exit_code::kNoBackend;
        return nullptr;
    }
    mo.writeback_writes_seen = s->plan_.has(Role::WriteWriteback);
    mo.passthrough_writes_seen = s->plan_.has(Role::WritePassthrough);
    s->model_ = std::make_unique<StateModel>(mo);
    s->model_->set_mounts(s->mounts_);
    s->start_ns_ = monotonic_ns();
    s->census(); // users attach long after their database started
    return s;
}

Session::~Session() = default;

void Session::refresh() {
    uint64_t now = monotonic_ns();
    model_->on_counter_changes(backend_->read_counters(), now);
    model_->on_health(backend_->read_health());
    if (auto diff = mounts_.reload(); diff && !diff->empty())
        model_->set_mounts(mounts_);
    resolve_names();
}

void Session::resolve_names() {
    StateModel::NamesWanted w = model_->names_wanted();
    for (const auto &[exe, pid] : w.exes)
        if (auto p = names_.exe_path(*backend_, exe, pid))
            model_->set_exe_path(exe, std::move(*p));
    for (uint64_t id : w.cgroups)
        if (auto p = names_.cgroup_path(id))
            model_->set_cgroup_path(id, std::move(*p));
    for (const auto &key : w.paths) {
        uint64_t captured = 0;
        if (auto p = names_.file_path(*backend_, mounts_, key, &captured))
            model_->set_kernel_path(key, std::move(*p), captured);
    }
}

void Session::census() {
    std::string err;
    auto recs = backend_->census(&err);
    uint64_t now = monotonic_ns();
    last_census_ns_ = now;
    if (!err.empty())
        return; // the model keeps what it knew; health shows census_runs not moving
    model_->on_census(recs, now);
    model_->resolve_paths_from_census(recs);
    resolve_names(); // while the processes the census saw still live (/proc/PID/exe)
    model_->on_health(backend_->read_health());
}

void Session::run(const std::function<bool()> &keep_going,
                  const std::function<void(const Event &)> &on_event,
                  const std::function<void()> &on_tick) {
    double census_every = opts_.census_interval_s;
    if (census_every < 0)
        census_every = plan_.backend == BackendKind::Tracepoint ? 2.0 : 0.0;
    const uint64_t interval_ns = static_cast<uint64_t>(opts_.interval_s * 1e9);
    uint64_t next_tick = monotonic_ns() + interval_ns;
    auto handle = [&](const Event &ev) {
        model_->on_event(ev);
        if (on_event)
            on_event(ev);
    };
    while (!stop_ && !g_stop_requested && keep_going()) {
        uint64_t now = monotonic_ns();
        int wait_ms = now >= next_tick ? 0 : static_cast<int>((next_tick - now) / 1000000) + 1;
        if (wait_ms > 100)
            wait_ms = 100; // stay responsive to keep_going()
        if (backend_->poll(wait_ms, handle) < 0)
            break;
        if (model_->needs_census())
            census();
        now = monotonic_ns();
        if (census_every > 0 && now - last_census_ns_ >= static_cast<uint64_t>(census_every * 1e9))
            census();
        if (now >= next_tick) {
            refresh();
            next_tick = now + interval_ns;
            if (on_tick)
                on_tick();
        }
    }
    // drain what is already in the ring buffer, then the final counters
    backend_->poll(0, handle);
    refresh();
}

} // namespace fusescope
