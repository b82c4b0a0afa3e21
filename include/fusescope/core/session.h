// A running fusescope: the probed kernel, the hook plan, the attached
// backend and the state model, with the loop that moves data from the
// backend into the model. Views (top, export, diagnose, trace) take a
// Session and read session.model(); none of them touches the backend.
#pragma once

#include "fusescope/backend/backend.h"
#include "fusescope/backend/hook_plan.h"
#include "fusescope/backend/kernel_probe.h"
#include "fusescope/core/names.h"
#include "fusescope/model/mounts.h"
#include "fusescope/model/open_hints.h"
#include "fusescope/model/state_model.h"

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace fusescope {

struct SessionOptions {
    std::optional<BackendKind> backend; // nullopt: auto
    std::optional<std::string> mount;   // --mount PATH
    bool mount_is_canonical = false;    // mount is a mount point from mountinfo: no lookup
    std::optional<uint32_t> pid;        // --pid PID
    bool emit_writes = false;           // trace only
    bool emit_all_opens = false;        // trace only
    bool verbose = false;
    bool service_time = false; // tracepoint backend: time each FUSE_WRITE request (opt-in)
    // tracepoint backend: the open/mmap syscall hooks (nullopt: the view's default,
    // syscall_hooks_default())
    std::optional<bool> syscall_hooks;
    bool write_cache = true; // tracepoint backend: per-CPU write cache slots
    // tracepoint backend with service time: slots for writes in flight (--service-time-slots)
    uint32_t request_slots = kRequestSlotsDefault;
    bool bpf_stats = false;        // account BPF run time while the session lives
    double interval_s = 1.0;       // counters refresh
    double census_interval_s = -1; // <0: backend default (trampoline: on hints only; tracepoint: 2
                                   // s with the syscall hooks, 30 s without; Session::run says why)
};

// Whether @view ("trace", "top", ...) attaches the open/mmap syscall hooks unless told
// (--syscall-hooks): the event views, which run briefly and show each open and mmap as it
// happens, do; the monitors that run for days (top, export) do not, because those hooks tax
// every syscall on the machine, and find holders by the census on FUSE_OPEN hints instead.
bool syscall_hooks_default(std::string_view view);
struct ViewSyscallHooks {
    std::string_view view;
    bool syscall_hooks;
};
std::span<const ViewSyscallHooks> syscall_hooks_defaults(); // the table behind it

// What a session is made of once its backend is attached: Session::open builds it from the
// kernel; unit tests give a fake Backend (tests/unit/test_session.cpp).
struct SessionParts {
    KernelFacts facts;
    HookPlan plan;
    std::unique_ptr<Backend> backend; // loaded and attached
    Mounts mounts;
    ModelOptions model; // filters from --mount; what the plan's roles let the model see
};

class Session {
  public:
    // Checks root and the kernel, resolves --mount and --pid, plans the hooks, loads and
    // attaches the backend, then takes the first census. nullptr on failure with *error
    // (one line) and *exit_code set.
    static std::unique_ptr<Session> open(const SessionOptions &opts, std::string *error,
                                         int *exit_code);
    // What every view does to start: open(), the error as one line "fusescope VIEW: ..." on
    // stderr, and once attached, every privilege dropped but the census' (privileges.h).
    // Such a session writes its last health line on the status stream (status.h) when it
    // ends; the view writes "watching" (watching()) once it watches.
    static std::unique_ptr<Session> open_for_view(const SessionOptions &opts, std::string_view view,
                                                  int *exit_code);
    // A session over an attached backend; takes no census (open() then does).
    Session(const SessionOptions &opts, SessionParts parts);
    ~Session(); // open_for_view's: the last health line on the status stream
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;

    const KernelFacts &facts() const { return facts_; }
    const HookPlan &plan() const { return plan_; }
    const Backend &backend() const { return *backend_; }
    StateModel &model() { return *model_; }
    const Mounts &mounts() const { return mounts_; }
    uint64_t start_ns() const { return start_ns_; }

    // Moves data until @keep_going returns false or stop() is called.
    // on_event sees every ring-buffer event (after the model did); on_tick
    // runs after each counters refresh.
    void run(const std::function<bool()> &keep_going,
             const std::function<void(const Event &)> &on_event = {},
             const std::function<void()> &on_tick = {});
    void refresh(); // counters + health + mounts into the model
    // Run the iterators now, feed the model; the opens they explain (open_hints.h) go to
    // @handle (default: the model only).
    void census(const std::function<void(const Event &)> &handle = {});
    // Names the model asked for (executables, cgroups, paths the kernel captured).
    void resolve_names();
    // For views that name what an event carries as it arrives (trace).
    std::optional<std::string> cgroup_path(uint64_t id) { return names_.cgroup_path(id); }
    std::optional<std::string> exe_path(const InodeKey &exe, uint32_t pid) {
        return names_.exe_path(*backend_, exe, pid);
    }
    std::optional<std::string> kernel_path(const InodeKey &key) {
        uint64_t captured = 0;
        return names_.file_path(*backend_, mounts_, key, &captured);
    }
    void stop() { stop_ = true; }
    // The status stream's "watching" line, for the view open_for_view named.
    void watching() const;

  private:
    Health health(); // the backend's, and what the session itself could not explain
    // The census of each process whose FUSE_OPEN hints are due; their opens go to @handle.
    void census_open_hints(const std::function<void(const Event &)> &handle);

    SessionOptions opts_;
    std::string view_; // open_for_view's
    KernelFacts facts_;
    HookPlan plan_;
    std::unique_ptr<Backend> backend_;
    std::unique_ptr<StateModel> model_;
    Mounts mounts_;
    NameResolver names_;
    OpenHints open_hints_; // opens seen only as FUSE_OPEN (no syscall hooks)
    uint64_t start_ns_ = 0;
    uint64_t last_census_ns_ = 0;
    // free heap memory handed back to the kernel (malloc_trim) at most this often
    static constexpr uint64_t kTrimEveryNs = 10'000'000'000;
    uint64_t last_trim_ns_ = 0;
    std::atomic<bool> stop_{false};
};

uint64_t monotonic_ns();

// SIGINT/SIGTERM set this (installed by install_stop_signals()); loops poll it.
extern std::atomic<bool> g_stop_requested;
void install_stop_signals();

} // namespace fusescope
