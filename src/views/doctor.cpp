// `fusescope doctor`: what the kernel offers, which backend was chosen and
// why, and for every role the hook that fills it or why none can. It then
// loads and attaches the plan for real (and detaches), so "attaches" means
// it did. Exit 0 when at least the lock roles work.
#include "fusescope/core/exit_codes.h"
#include "fusescope/views/json_out.h"
#include "fusescope/views/text_escape.h"
#include "fusescope/views/views.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

namespace fusescope {
namespace {

// The transport of each FUSE mount, where the census saw a file open on it (the
// connection's io_uring ring is set once its server registered one).
struct MountTransport {
    std::string mount_point;
    std::string dev;
    std::string transport; // "io_uring", "/dev/fuse", "unknown"
    std::string note;      // what this backend misses there, if anything
};

std::vector<MountTransport> mount_transports(const Snapshot &snap, const HookPlan &plan) {
    std::vector<MountTransport> out;
    for (const Mount &m : snap.mounts) {
        MountTransport t{m.mount_point, dev_string(m.kdev), "unknown",
                         "no file open on it when fusescope looked"};
        if (auto it = snap.uring_by_dev.find(m.kdev); it != snap.uring_by_dev.end()) {
            t.transport = it->second ? "io_uring" : "/dev/fuse";
            t.note = it->second && plan.uring_background_unseen
                         ? "async writes are not seen here on this kernel (6.14-6.17)"
                         : "";
        }
        out.push_back(std::move(t));
    }
    return out;
}

} // namespace

int run_doctor(const SessionOptions &so, const DoctorOptions &d) {
    if (::geteuid() != 0) {
        fmt::print(stderr, "fusescope doctor: needs root to probe BPF support; run it with sudo\n");
        return exit_code::kEnvironment;
    }
    KernelFacts k = probe_kernel();
    std::string plan_err;
    auto plan =
        plan_hooks(k.offer, so.backend, &plan_err,
                   {so.service_time, so.syscall_hooks.value_or(syscall_hooks_default("doctor"))});

    std::string load_err;
    int load_code = exit_code::kOk;
    std::vector<AttachedProgram> attached;
    size_t write_cache_slots = 0, request_slots = 0;
    std::vector<MountTransport> transports;
    if (plan) {
        auto s = Session::open(so, &load_err, &load_code);
        if (s) {
            attached = s->backend().attached();
            write_cache_slots = s->backend().write_cache_slots();
            request_slots = s->backend().request_slots();
            transports = mount_transports(s->model().snapshot(), *plan);
        }
    }
    bool ok = plan && load_err.empty() && plan->lock_roles_ok();

    if (d.json) {
        nlohmann::ordered_json j;
        j["kernel"] = k.release;
        j["btf"] = {{"vmlinux", k.vmlinux_btf}, {"fuse_module", k.fuse_module_btf}};
        j["fuse_registered"] = k.fuse_registered;
        j["lockdown"] = k.lockdown;
        j["tracefs"] = k.tracefs;
        j["io_modes"] = k.offer.has_iomodes;
        j["preempt_rt"] = k.offer.preempt_rt;
        j["trampolines"] = {{"allowed", k.offer.trampolines_allowed},
                            {"error", k.offer.trampoline_error}};
        j["backend"] = plan ? nlohmann::ordered_json(to_string(plan->backend))
                            : nlohmann::ordered_json(nullptr);
        j["why"] = plan ? plan->why : plan_err;
        nlohmann::ordered_json roles = nlohmann::ordered_json::array();
        if (plan)
            for (const auto &r : plan->roles)
                roles.push_back({{"role", to_string(r.role)},
                                 {"available", r.available},
                                 {"hooks", r.hooks},
                                 {"note", r.note}});
        j["roles"] = roles;
        if (plan && plan->backend == BackendKind::Tracepoint) {
            nlohmann::ordered_json by_view;
            for (const auto &v : syscall_hooks_defaults())
                by_view[std::string(v.view)] = v.syscall_hooks;
            j["syscall_hooks"] = {{"this_run", plan->loads("fs_sys_exit_openat")},
                                  {"default_by_view", by_view}};
        }
        nlohmann::ordered_json progs = nlohmann::ordered_json::array();
        for (const auto &a : attached)
            progs.push_back({{"program", a.program}, {"target", a.target}});
        j["attached"] = progs;
        j["write_cache_slots"] = write_cache_slots;
        j["request_slots"] = request_slots;
        nlohmann::ordered_json mounts = nlohmann::ordered_json::array();
        for (const auto &t : transports)
            mounts.push_back({{"mount", t.mount_point},
                              {"dev", t.dev},
                              {"transport", t.transport},
                              {"note", t.note}});
        j["mounts"] = mounts;
        j["load_error"] = load_err;
        j["ok"] = ok;
        fmt::print("{}\n", json_text(j, 2));
    } else {
        std::string out; // what the kernel reports is printed escaped like any name
        out += fmt::format("kernel        {}\n", k.release);
        out += fmt::format("BTF           vmlinux: {}, fuse module: {}\n",
                           k.vmlinux_btf ? "yes" : "NO",
                           k.fuse_module_btf ? "yes" : "no (built in or not loaded)");
        out +=
            fmt::format("FUSE          {}\n", k.fuse_registered ? "registered" : "NOT registered");
        out += fmt::format("lockdown      {}\n", k.lockdown);
        out += fmt::format("tracefs       {}{}\n", k.tracefs.empty() ? "not mounted" : k.tracefs,
                           k.tracefs_mounted_by_us ? " (mounted by fusescope)" : "");
        out +=
            fmt::format("IO modes      {}\n", k.offer.has_iomodes ? "yes (fs/fuse/iomode.c, 6.9+)"
                                                                  : "n/a (kernel has no IO modes)");
        if (k.offer.preempt_rt)
            out += "PREEMPT_RT    yes (sleeping spinlocks, preemptible BPF programs)\n";
        out += fmt::format("trampolines   {}\n", k.offer.trampolines_allowed
                                                     ? "fentry/fexit load"
                                                     : "refused: " + k.offer.trampoline_error);
        if (!plan) {
            out += fmt::format("backend       NONE: {}\n", plan_err);
        } else {
            out += fmt::format("backend       {}: {}\n", to_string(plan->backend), plan->why);
            if (plan->backend == BackendKind::Tracepoint) {
                std::vector<std::string> on, off;
                for (const auto &v : syscall_hooks_defaults())
                    (v.syscall_hooks ? on : off).emplace_back(v.view);
                out += fmt::format("syscall hooks {} below; by default on for {}, off for {} "
                                   "(while attached, every syscall on the machine takes the "
                                   "kernel's slow path)\n",
                                   plan->loads("fs_sys_exit_openat") ? "on" : "off",
                                   fmt::join(on, ", "), fmt::join(off, ", "));
            }
            out += fmt::format("\n{:<18} {:<4} {}\n", "ROLE", "OK", "HOOKS / NOTE");
            for (const auto &r : plan->roles) {
                std::string text = r.available ? r.hooks : "-";
                if (!r.note.empty())
                    text += (r.available ? "  (" + r.note + ")" : "  " + r.note);
                out += fmt::format("{:<18} {:<4} {}\n", to_string(r.role),
                                   r.available ? "yes" : "no", text);
            }
            if (!load_err.empty()) {
                out += fmt::format("\nload/attach FAILED: {}\n", load_err);
            } else {
                out += fmt::format("\nloaded and attached {} programs, then detached them\n",
                                   attached.size());
                if (write_cache_slots)
                    out += fmt::format(
                        "write cache   one slot per CPU ({}): writes to the inode a CPU "
                        "wrote last count there\n",
                        write_cache_slots);
                if (request_slots)
                    out += fmt::format("request slots {} (--service-time-slots): writes in "
                                       "flight on one slot lose a sample (req_map_full)\n",
                                       request_slots);
                if (!transports.empty()) {
                    out += fmt::format("\n{:<40} {:<8} {:<10} {}\n", "FUSE MOUNT", "DEV",
                                       "TRANSPORT", "NOTE");
                    for (const auto &t : transports)
                        out += fmt::format("{:<40} {:<8} {:<10} {}\n", t.mount_point, t.dev,
                                           t.transport, t.note);
                }
            }
        }
        fmt::print("{}", escape_text(out, EscapeScope::Output));
    }
    if (!plan)
        return exit_code::kNoBackend;
    if (!load_err.empty())
        return load_code;
    return ok ? exit_code::kOk : exit_code::kNoBackend;
}

} // namespace fusescope
