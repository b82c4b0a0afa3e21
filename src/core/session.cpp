#include "fusescope/core/session.h"

#include "fusescope/abi.h"
#include "fusescope/core/bounded.h"
#include "fusescope/core/exit_codes.h"
#include "fusescope/core/privileges.h"
#include "fusescope/core/status.h"

#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <malloc.h>
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

namespace {

// The kernel can run fusescope at all: root, BTF, FUSE. An error (one line) or "".
std::string environment_error(const KernelFacts &k) {
    if (::geteuid() != 0)
        return "fusescope needs root (it loads BPF programs and reads every task's files); "
               "run it as root (or with sudo)";
    if (!k.vmlinux_btf)
        return "this kernel has no BTF (/sys/kernel/btf/vmlinux): fusescope needs a kernel "
               "built with CONFIG_DEBUG_INFO_BTF=y";
    if (!k.fuse_registered && !k.fuse_module_btf)
        return "FUSE is not available in this kernel (no \"fuse\" in /proc/filesystems): "
               "load it with `modprobe fuse`";
    return "";
}

// --mount and --pid as filters of the BPF side (bo) and of the model (mo). An error or "".
std::string resolve_filters(const SessionOptions &opts, const Mounts &mounts, BackendOptions *bo,
                            ModelOptions *mo) {
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
        if (!real)
            return "--mount " + *opts.mount + ": no such path";
        const Mount *m = mounts.find_by_path(*real);
        if (!m || !is_fuse_fstype(m->fstype))
            return "--mount " + *opts.mount + ": not on a FUSE mount (see `findmnt -t fuse`)";
        bo->filter_dev = m->kdev;
        mo->devs.push_back(m->kdev);
    }
    if (opts.pid) {
        struct stat st {};
        if (::stat(("/proc/" + std::to_string(*opts.pid)).c_str(), &st) != 0)
            return "--pid " + std::to_string(*opts.pid) + ": no such process";
        // Filtered at the source: with a tgid filter the BPF side only counts and reports
        // what that process does, so the model needs no pid filter of its own (its filter
        // only knows pids from events and would hide a process that only writes).
        bo->filter_tgid = *opts.pid;
    }
    return "";
}

} // namespace

std::unique_ptr<Session> Session::open(const SessionOptions &opts, std::string *error,
                                       int *exit_code) {
    SessionParts parts;
    if (::geteuid() == 0) // probing reads BTF and tracefs; without root only the error
        parts.facts = probe_kernel();
    if (*error = environment_error(parts.facts); !error->empty()) {
        *exit_code = exit_code::kEnvironment;
        return nullptr;
    }
    parts.mounts.reload(); // the diff since "nothing" is of no interest here

    BackendOptions bo;
    bo.emit_writes = opts.emit_writes;
    bo.emit_all_opens = opts.emit_all_opens;
    bo.verbose = opts.verbose;
    bo.write_cache = opts.write_cache;
    bo.request_slots = opts.request_slots;
    bo.bpf_stats = opts.bpf_stats;
    parts.model.io_modes_available = parts.facts.offer.has_iomodes;
    // No need to remember more inodes than the kernel's stats map holds: past that the
    // model only re-counts LRU-evicted entries, and every view copies the whole model
    // (bench: 244 MB RSS with 100k inodes at the model's default of 65536).
    parts.model.max_inodes = FS_MAX_INODES;
    if (*error = resolve_filters(opts, parts.mounts, &bo, &parts.model); !error->empty()) {
        *exit_code = exit_code::kEnvironment;
        return nullptr;
    }

    std::string why;
    auto plan = plan_hooks(parts.facts.offer, opts.backend, &why,
                           {opts.service_time, opts.syscall_hooks.value_or(true)});
    if (!plan) {
        *error = why;
        *exit_code = exit_code::kNoBackend;
        return nullptr;
    }
    parts.plan = *plan;
    parts.backend = Backend::create(parts.plan, bo, &why);
    if (!parts.backend) {
        *error = why;
        *exit_code = exit_code::kNoBackend;
        return nullptr;
    }
    auto s = std::make_unique<Session>(opts, std::move(parts));
    s->census(); // users attach long after their database started
    return s;
}

namespace {
constexpr ViewSyscallHooks kSyscallHooksByView[] = {
    {"trace", true}, {"diagnose", true}, {"doctor", true}, {"top", false}, {"export", false}};
} // namespace

std::span<const ViewSyscallHooks> syscall_hooks_defaults() { return kSyscallHooksByView; }

bool syscall_hooks_default(std::string_view view) {
    for (const auto &d : kSyscallHooksByView)
        if (d.view == view)
            return d.syscall_hooks;
    return true;
}

std::unique_ptr<Session> Session::open_for_view(const SessionOptions &opts, std::string_view view,
                                                int *exit_code) {
    std::string err;
    *exit_code = exit_code::kFailure;
    SessionOptions o = opts;
    if (!o.syscall_hooks)
        o.syscall_hooks = syscall_hooks_default(view);
    auto s = open(o, &err, exit_code);
    if (!s) {
        std::fprintf(stderr, "fusescope %.*s: %s\n", static_cast<int>(view.size()), view.data(),
                     err.c_str());
        return nullptr;
    }
    if (std::string cap_err; !drop_privileges(&cap_err))
        std::fprintf(stderr, "fusescope %.*s: warning: could not drop capabilities: %s\n",
                     static_cast<int>(view.size()), view.data(), cap_err.c_str());
    s->view_ = view;
    return s;
}

Session::Session(const SessionOptions &opts, SessionParts parts)
    : opts_(opts), facts_(std::move(parts.facts)), plan_(std::move(parts.plan)),
      backend_(std::move(parts.backend)), mounts_(std::move(parts.mounts)) {
    ModelOptions mo = parts.model;
    mo.writeback_writes_seen = plan_.has(Role::WriteWriteback);
    mo.passthrough_writes_seen = plan_.has(Role::WritePassthrough);
    model_ = std::make_unique<StateModel>(mo);
    model_->set_mounts(mounts_);
    start_ns_ = monotonic_ns();
}

Session::~Session() {
    if (!view_.empty())
        status::health(view_, model_->health());
}

void Session::watching() const { status::watching(view_, to_string(plan_.backend)); }

void Session::refresh() {
    uint64_t now = monotonic_ns();
    model_->on_counter_changes(backend_->read_counters(now), now);
    model_->on_health(health());
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

Health Session::health() {
    Health h = backend_->read_health();
    h.opens_unexplained = open_hints_.dropped();
    return h;
}

void Session::census(const std::function<void(const Event &)> &handle) {
    std::string err;
    auto recs = backend_->census(&err);
    uint64_t now = monotonic_ns();
    last_census_ns_ = now;
    if (!err.empty())
        return; // the model keeps what it knew; health shows census_runs not moving
    // the opens of pending hints this census shows, before it rebuilds the holders (a hint
    // still in the ring buffer claims its file when it is read: OpenHints::on_full_census)
    for (const Event &ev : open_hints_.resolve_from_full_census(recs, now)) {
        if (handle)
            handle(ev);
        else
            model_->on_event(ev);
    }
    model_->on_census(recs, now);
    open_hints_.on_full_census(recs, now);
    model_->resolve_paths_from_census(recs);
    resolve_names(); // while the processes the census saw still live (/proc/PID/exe)
    model_->on_health(health());
}

void Session::census_open_hints(const std::function<void(const Event &)> &handle) {
    const uint64_t now = monotonic_ns();
    if (open_hints_.next_due_ns() > now)
        return;
    for (uint32_t pid : open_hints_.due(now)) {
        std::string err;
        auto recs = backend_->census(&err, pid);
        if (!err.empty())
            recs.clear(); // the process is gone: its hints run out of tries
        for (const Event &ev : open_hints_.resolve(pid, recs, now))
            handle(ev);
        model_->resolve_paths_from_census(recs); // of the inodes its events brought
    }
    resolve_names(); // while the openers still live (/proc/PID/exe)
}

void Session::run(const std::function<bool()> &keep_going,
                  const std::function<void(const Event &)> &on_event,
                  const std::function<void()> &on_tick) {
    double census_every = opts_.census_interval_s;
    if (census_every < 0) {
        // A census walks every task's files and mappings (the FUSE server's backing fds
        // included): it was most of an idle exporter's CPU. The trampoline backend sees every
        // open and mapping; with the syscall hooks only opens through io_uring hide; without
        // them each FUSE_OPEN brings its opener's census, and a mode change seen by a writer
        // or a lock wait a full one: what is left is a mapping made long after its open while
        // nobody writes.
        if (plan_.backend == BackendKind::Trampoline)
            census_every = 0.0;
        else
            census_every = plan_.loads("fs_sys_exit_openat") ? 2.0 : 30.0;
    }
    const uint64_t interval_ns = static_cast<uint64_t>(opts_.interval_s * 1e9);
    uint64_t next_tick = monotonic_ns() + interval_ns;
    auto handle = [&](const Event &ev) {
        if (ev.type == EventType::OpenSent)
            open_hints_.on_sent(ev);
        model_->on_event(ev);
        if (on_event)
            on_event(ev);
    };
    while (!stop_ && !g_stop_requested && keep_going()) {
        uint64_t now = monotonic_ns();
        int wait_ms = now >= next_tick ? 0 : static_cast<int>((next_tick - now) / 1000000) + 1;
        if (wait_ms > 100)
            wait_ms = 100; // stay responsive to keep_going()
        if (uint64_t due = open_hints_.next_due_ns(); due != UINT64_MAX)
            wait_ms =
                std::min(wait_ms, due > now ? static_cast<int>((due - now) / 1000000) + 1 : 0);
        if (backend_->poll(wait_ms, handle) < 0)
            break;
        if (open_hints_.pending())
            census_open_hints(handle);
        if (model_->needs_census())
            census(handle);
        now = monotonic_ns();
        if (census_every > 0 && now - last_census_ns_ >= static_cast<uint64_t>(census_every * 1e9))
            census(handle);
        if (now >= next_tick) {
            refresh();
            next_tick = now + interval_ns;
            if (on_tick)
                on_tick();
        }
        if (now - last_trim_ns_ >= kTrimEveryNs) {
            // The model drops and re-creates records as inodes come and go (1M files make
            // ~1M evictions): glibc keeps the freed chunks inside the heap, and RSS stays at
            // the churn's peak. Measured after 1M inodes (top -b, bench/run.sh --only
            // inodes): 32.6 MB without, 28.1 MB with this; the cost is one call per 10 s.
            malloc_trim(0);
            last_trim_ns_ = now;
        }
    }
    // drain what is already in the ring buffer, then the final counters
    backend_->poll(0, handle);
    refresh();
}

} // namespace fusescope
