// The hook planner names BPF programs by string; the objects define them with SEC().
// Both skeletons are opened here (open parses the embedded ELF: no root, nothing is
// loaded) and every program any plan can emit, over the recorded kernel offers and
// their variations, must be in the object of its backend. A renamed or removed program
// fails here, at build time, instead of at attach time on the one kernel that plans it.
#include "fusescope/backend/hook_plan.h"

#include "recorded_offers.h"

#include "fusescope_tracepoint.skel.h"
#include "fusescope_trampoline.skel.h"

#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace fusescope;
using namespace fusescope::recorded;

namespace {

// Every plan the recorded offers can give, varied in what the planner branches on.
std::vector<HookPlan> every_plan() {
    std::vector<HookPlan> plans;
    const std::vector<std::set<std::string>> extra_funcs = {
        {}, {"fuse_dio_wr_exclusive_lock"}, {"fuse_dio_wr_needs_exclusive_lock"}};
    const std::vector<std::set<std::string>> extra_tps = {
        {}, {"syscalls/sys_exit_openat2", "syscalls/sys_exit_open", "syscalls/sys_exit_creat"}};
    const std::optional<BackendKind> forced[] = {std::nullopt, BackendKind::Trampoline,
                                                 BackendKind::Tracepoint};
    for (const KernelOffer &base : {debian_61(), debian_612(), host_618()})
        for (const auto &funcs : extra_funcs)
            for (const auto &tps : extra_tps)
                for (bool iomodes : {false, true})
                    for (bool probe_read : {false, true})
                        for (bool rt : {false, true})
                            for (bool service_time : {false, true})
                                for (bool syscalls : {false, true})
                                    for (auto f : forced) {
                                        KernelOffer k = base;
                                        k.btf_funcs.insert(funcs.begin(), funcs.end());
                                        k.tracepoints.insert(tps.begin(), tps.end());
                                        k.has_iomodes = iomodes;
                                        k.probe_read_allowed = probe_read;
                                        k.preempt_rt = rt;
                                        std::string err;
                                        if (auto p =
                                                plan_hooks(k, f, &err, {service_time, syscalls}))
                                            plans.push_back(std::move(*p));
                                    }
    return plans;
}

// The programs of one backend's object, opened (not loaded).
struct ObjectPrograms {
    std::map<std::string, bpf_attach_type> programs; // name -> expected attach type
};

template <typename Skel> ObjectPrograms programs_of(Skel *(*open)(), void (*destroy)(Skel *)) {
    ObjectPrograms out;
    std::unique_ptr<Skel, void (*)(Skel *)> skel(open(), destroy);
    EXPECT_TRUE(skel) << "opening the BPF object failed";
    if (!skel)
        return out;
    bpf_program *prog;
    bpf_object__for_each_program(prog, skel->obj) {
        out.programs.emplace(bpf_program__name(prog), bpf_program__expected_attach_type(prog));
    }
    return out;
}

const ObjectPrograms &object_of(BackendKind k) {
    static const ObjectPrograms tramp =
        programs_of(fusescope_trampoline__open, fusescope_trampoline__destroy);
    static const ObjectPrograms tp =
        programs_of(fusescope_tracepoint__open, fusescope_tracepoint__destroy);
    return k == BackendKind::Trampoline ? tramp : tp;
}

} // namespace

// backend -> program -> the attach targets plans give it ("" = as compiled)
using Planned = std::map<BackendKind, std::map<std::string, std::set<std::string>>>;

Planned planned_programs() {
    Planned out;
    for (const HookPlan &p : every_plan())
        for (const ProgramChoice &c : p.programs)
            out[p.backend][c.program].insert(c.target);
    return out;
}

TEST(BpfPrograms, TheVariedOffersPlanBothBackends) {
    const Planned planned = planned_programs();
    EXPECT_TRUE(planned.count(BackendKind::Trampoline));
    EXPECT_TRUE(planned.count(BackendKind::Tracepoint));
}

TEST(BpfPrograms, EveryPlannedProgramIsInItsBackendsObject) {
    for (const auto &[kind, programs] : planned_programs()) {
        const ObjectPrograms &obj = object_of(kind);
        ASSERT_FALSE(obj.programs.empty());
        for (const auto &[name, targets] : programs) {
            auto it = obj.programs.find(name);
            if (it == obj.programs.end()) {
                ADD_FAILURE() << name << " is planned for the " << to_string(kind)
                              << " backend but its BPF object has no such program";
                continue;
            }
            // a retargeted program must be a trampoline: only those take an attach target
            for (const std::string &t : targets)
                EXPECT_TRUE(t.empty() || it->second == BPF_TRACE_FENTRY ||
                            it->second == BPF_TRACE_FEXIT)
                    << name << " is targeted at " << t << " but is not an fentry/fexit program";
        }
    }
}

// The other direction: a program no plan loads is dead code in the object (or a role
// the planner forgot).
TEST(BpfPrograms, EveryProgramInAnObjectIsPlannedSomewhere) {
    const Planned planned = planned_programs();
    for (BackendKind k : {BackendKind::Trampoline, BackendKind::Tracepoint})
        for (const auto &[name, type] : object_of(k).programs)
            EXPECT_TRUE(planned.count(k) && planned.at(k).count(name))
                << name << " is in the " << to_string(k) << " object but no plan loads it";
}
