// Hook selection on recorded kernel offers: the Debian kernels of the VM
// matrix, the locked-down 6.18 host, and kernels we cannot boot here (one
// whose lock helper is out of line, one without trampolines or FUSE
// tracepoints, a confidentiality-locked one).
#include "fusescope/backend/hook_plan.h"

#include "recorded_offers.h"

#include <gtest/gtest.h>

using namespace fusescope;
using namespace fusescope::recorded;

namespace {

const RolePlan &role(const HookPlan &p, const std::string &name) {
    auto want = role_from_string(name);
    EXPECT_TRUE(want) << "no role named " << name;
    for (const auto &r : p.roles)
        if (want && r.role == *want)
            return r;
    static RolePlan none;
    ADD_FAILURE() << "no role " << name;
    return none;
}

std::string target_of(const HookPlan &p, const std::string &prog) {
    for (const auto &c : p.programs)
        if (c.program == prog)
            return c.target;
    return "<not loaded>";
}

} // namespace

TEST(HookPlan, Debian61UsesTrampolinesWithoutIoModes) {
    std::string err;
    auto p = plan_hooks(debian_61(), std::nullopt, &err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->backend, BackendKind::Trampoline);
    EXPECT_TRUE(p->lock_roles_ok());
    EXPECT_TRUE(p->loads("fs_write_enter"));
    EXPECT_FALSE(p->loads("fs_uncached_io_start_exit"));
    EXPECT_FALSE(p->loads("fs_io_open_exit"));
    EXPECT_FALSE(role(*p, "open").available);
    EXPECT_EQ(role(*p, "open").note, "n/a (kernel has no IO modes)");
    EXPECT_EQ(target_of(*p, "fs_dio_decision"), "<not loaded>");
}

TEST(HookPlan, Debian612FillsEveryRoleWithTrampolines) {
    std::string err;
    auto p = plan_hooks(debian_612(), std::nullopt, &err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->backend, BackendKind::Trampoline);
    for (const auto &r : p->roles)
        EXPECT_TRUE(r.available) << to_string(r.role) << ": " << r.note;
    EXPECT_TRUE(p->loads("fs_uncached_io_start_exit"));
    EXPECT_FALSE(p->loads("fs_request_send"));
}

TEST(HookPlan, LockedDownHostFallsBackToTracepoints) {
    std::string err;
    auto p = plan_hooks(host_618(), std::nullopt, &err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->backend, BackendKind::Tracepoint);
    EXPECT_NE(p->why.find("EPERM"), std::string::npos) << p->why;
    EXPECT_TRUE(p->lock_roles_ok());
    EXPECT_TRUE(p->loads("fs_request_send"));
    EXPECT_TRUE(p->has(Role::DrainWait));
    EXPECT_FALSE(p->loads("fs_write_enter"));
    // per-request timing is opt-in here: it would add a program to every FUSE request
    EXPECT_FALSE(p->loads("fs_request_end"));
    EXPECT_FALSE(role(*p, "service-time").available);
    EXPECT_NE(role(*p, "service-time").note.find("--service-time"), std::string::npos);
    // not seen without trampolines: service time (opt-in), writeback and passthrough writes
    for (const auto &r : p->roles)
        EXPECT_TRUE(r.available || r.role == Role::ServiceTime || r.role == Role::WriteWriteback ||
                    r.role == Role::WritePassthrough)
            << to_string(r.role);
}

TEST(HookPlan, ServiceTimeIsOptInOnTracepointsAndFreeWithTrampolines) {
    std::string err;
    auto tp = plan_hooks(host_618(), std::nullopt, &err, {.service_time = true});
    ASSERT_TRUE(tp) << err;
    EXPECT_TRUE(tp->loads("fs_request_end"));
    EXPECT_TRUE(role(*tp, "service-time").available);
    auto tr = plan_hooks(debian_612(), std::nullopt, &err);
    ASSERT_TRUE(tr) << err;
    EXPECT_TRUE(role(*tr, "service-time").available);
    EXPECT_FALSE(tr->loads("fs_request_end"));
}

TEST(HookPlan, WithoutSyscallHooksOpensComeFromFuseOpenAndNoSyscallIsTaxed) {
    std::string err;
    auto p = plan_hooks(host_618(), std::nullopt, &err, {.syscall_hooks = false});
    ASSERT_TRUE(p) << err;
    for (const auto &prog : p->programs)
        EXPECT_NE(prog.program.rfind("fs_sys_", 0), 0u) << prog.program;
    EXPECT_TRUE(p->loads("fs_request_send"));
    EXPECT_TRUE(role(*p, "open").available);
    EXPECT_NE(role(*p, "open").hooks.find("FUSE_OPEN"), std::string::npos);
    EXPECT_FALSE(role(*p, "mmap").available); // the census finds mappings
    EXPECT_FALSE(role(*p, "drain-wait").available);
    EXPECT_NE(role(*p, "drain-wait").note.find("--syscall-hooks on"), std::string::npos);
    // the trampoline backend has no syscall hooks to leave off
    auto tr = plan_hooks(debian_612(), std::nullopt, &err, {.syscall_hooks = false});
    ASSERT_TRUE(tr) << err;
    EXPECT_TRUE(role(*tr, "mmap").available);
    EXPECT_TRUE(role(*tr, "drain-wait").available);
}

TEST(HookPlan, PatchedKernelWithOutOfLineLockHelperAttachesToIt) {
    KernelOffer k = debian_612();
    k.btf_funcs.insert({"fuse_dio_wr_exclusive_lock", "fuse_dio_lock", "fuse_dio_unlock"});
    std::string err;
    auto p = plan_hooks(k, std::nullopt, &err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(target_of(*p, "fs_dio_decision"), "fuse_dio_wr_exclusive_lock");
    EXPECT_NE(role(*p, "write-lock").hooks.find("fexit fuse_dio_wr_exclusive_lock"),
              std::string::npos);
}

TEST(HookPlan, OlderPatchNameIsUsedWhenItIsTheOnlyOne) {
    KernelOffer k = debian_612();
    k.btf_funcs.insert("fuse_dio_wr_needs_exclusive_lock");
    std::string err;
    auto p = plan_hooks(k, std::nullopt, &err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(target_of(*p, "fs_dio_decision"), "fuse_dio_wr_needs_exclusive_lock");
}

TEST(HookPlan, ForcedBackendThatCannotRunIsAnError) {
    std::string err;
    EXPECT_FALSE(plan_hooks(host_618(), BackendKind::Trampoline, &err));
    EXPECT_NE(err.find("EPERM"), std::string::npos) << err;
    EXPECT_FALSE(plan_hooks(debian_61(), BackendKind::Tracepoint, &err));
    EXPECT_NE(err.find("fuse_request_send"), std::string::npos) << err;
}

TEST(HookPlan, ForcedTracepointOnAKernelThatAllowsBoth) {
    std::string err;
    auto p = plan_hooks(debian_612(), BackendKind::Tracepoint, &err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->backend, BackendKind::Tracepoint);
    EXPECT_EQ(p->why, "forced by --backend");
}

TEST(HookPlan, NoTrampolinesNoFuseTracepointsMeansNoBackend) {
    KernelOffer k = debian_61();
    k.trampolines_allowed = false;
    std::string err;
    EXPECT_FALSE(plan_hooks(k, std::nullopt, &err));
    EXPECT_NE(err.find("no usable backend"), std::string::npos) << err;
}

TEST(HookPlan, ConfidentialityLockdownLosesProbeReadRolesOnly) {
    KernelOffer k = host_618();
    k.probe_read_allowed = false;
    std::string err;
    auto p = plan_hooks(k, std::nullopt, &err);
    ASSERT_TRUE(p) << err;
    EXPECT_TRUE(p->lock_roles_ok()); // tracepoint backend reads through bpf_rdonly_cast
    // opens by the FUSE_OPEN hint and the census, which need no probe_read
    EXPECT_TRUE(role(*p, "open").available);
    EXPECT_NE(role(*p, "open").note.find("confidentiality lockdown"), std::string::npos);
    EXPECT_FALSE(role(*p, "mmap").available);
    EXPECT_FALSE(p->loads("fs_sys_exit_openat"));
    // drain waits are timed to the open's/mmap's syscall exit
    EXPECT_FALSE(p->has(Role::DrainWait));
    EXPECT_EQ(role(*p, "drain-wait").note, "needs the open/mmap syscall hooks");
    EXPECT_TRUE(role(*p, "census").available);
}

TEST(HookPlan, BackendNames) {
    EXPECT_EQ(backend_from_string("trampoline"), BackendKind::Trampoline);
    EXPECT_EQ(backend_from_string("tracepoint"), BackendKind::Tracepoint);
    EXPECT_FALSE(backend_from_string("auto"));
    EXPECT_EQ(to_string(BackendKind::Tracepoint), "tracepoint");
}

TEST(HookPlan, PreemptRtLosesOnlyTheTracepointDrainHeuristic) {
    // Debian's rt flavour: spinlocks are sleeping locks, so the tracepoint backend cannot tell
    // an opener's drain wait from its other sleeps; the trampoline backend times the function.
    std::string err;
    KernelOffer rt = host_618();
    rt.preempt_rt = true;
    auto tp = plan_hooks(rt, std::nullopt, &err);
    ASSERT_TRUE(tp) << err;
    EXPECT_TRUE(tp->preempt_rt);
    EXPECT_FALSE(tp->has(Role::DrainWait));
    EXPECT_NE(role(*tp, "drain-wait").note.find("PREEMPT_RT"), std::string::npos);
    EXPECT_TRUE(tp->lock_roles_ok());
    KernelOffer rt_tramp = debian_612();
    rt_tramp.preempt_rt = true;
    auto tr = plan_hooks(rt_tramp, std::nullopt, &err);
    ASSERT_TRUE(tr) << err;
    EXPECT_TRUE(tr->has(Role::DrainWait));
}
