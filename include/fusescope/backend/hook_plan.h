// Which BPF program fills which role on this kernel, decided from what the
// kernel offers (BTF functions, tracepoints, whether trampolines load).
// Pure logic: doctor prints it, the backends obey it, and unit tests feed it
// recorded symbol tables of kernels we cannot boot (e.g. one whose
// fuse_dio_* lock helpers are out of line).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace fusescope {

enum class BackendKind { Trampoline, Tracepoint };
std::string_view to_string(BackendKind k);
std::optional<BackendKind> backend_from_string(std::string_view s);

struct KernelOffer {
    std::set<std::string> btf_funcs;   // FUNC names in vmlinux BTF and the fuse module's BTF
    std::set<std::string> tracepoints; // "group/name", e.g. "fuse/fuse_request_send"
    bool trampolines_allowed = false;  // a minimal fentry program loaded
    bool trampoline_probe_done = false;
    std::string trampoline_error;   // why it did not, e.g. "EPERM"
    bool probe_read_allowed = true; // lockdown is not "confidentiality"
    bool has_iomodes = false;       // struct fuse_inode has iocachectr (6.9+)
};

// One BPF program and the kernel function or tracepoint it attaches to.
struct ProgramChoice {
    std::string program; // name in the BPF object
    std::string target;  // attach target ("" = as compiled)
};

struct RolePlan {
    std::string role; // "write-lock", "service-time", "open", "drain-wait", "mmap", "release",
                      // "lock-wait", "census"
    bool available = false;
    std::string hooks; // human readable: what fills it
    std::string note;  // why not, or what is weaker
};

struct HookPlan {
    BackendKind backend = BackendKind::Tracepoint;
    std::string why;                     // why this backend
    std::vector<ProgramChoice> programs; // programs to load and attach
    std::vector<RolePlan> roles;
    bool has(std::string_view role) const; // the role is available
    bool lock_roles_ok() const;            // write-lock and lock-wait both available
    bool loads(std::string_view program) const;
};

struct PlanOptions {
    // Per-request service time in the tracepoint backend: a second program on
    // every FUSE request's completion, so it is opt-in there (--service-time).
    // The trampoline backend has it for free (fexit of the write).
    bool service_time = false;
};

// Fills *error and returns nullopt when no backend can run (or the forced one cannot).
std::optional<HookPlan> plan_hooks(const KernelOffer &offer, std::optional<BackendKind> forced,
                                   std::string *error, const PlanOptions &opts = {});

} // namespace fusescope
