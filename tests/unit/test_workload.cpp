// Systemd units and container ids from cgroup v2 paths (include/fusescope/model/workload.h).
#include "fusescope/model/workload.h"

#include <gtest/gtest.h>

namespace fusescope {
namespace {

const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

TEST(Workload, SystemdUnits) {
    Workload w = workload_of_cgroup("/system.slice/mariadb.service");
    EXPECT_EQ(w.unit, "mariadb.service");
    EXPECT_EQ(w.container, "");
    EXPECT_EQ(w.label(), "unit mariadb.service");
    EXPECT_EQ(workload_of_cgroup("/user.slice/user-1000.slice/session-3.scope").unit,
              "session-3.scope");
    EXPECT_EQ(workload_of_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/"
                                 "app-firefox-1.scope")
                  .unit,
              "app-firefox-1.scope"); // the deepest
    Workload root = workload_of_cgroup("/");
    EXPECT_TRUE(root.known());
    EXPECT_EQ(root.unit, "");
    EXPECT_EQ(root.label(), "/");
    EXPECT_FALSE(workload_of_cgroup("").known());
}

TEST(Workload, Containers) {
    Workload d = workload_of_cgroup("/system.slice/docker-" + kId + ".scope");
    EXPECT_EQ(d.runtime, "docker");
    EXPECT_EQ(d.container, kId);
    EXPECT_EQ(d.unit, ""); // the container's scope is not a unit to name
    EXPECT_EQ(d.label(), "docker 0123456789ab");
    EXPECT_EQ(workload_of_cgroup("/docker/" + kId).runtime, "docker");
    EXPECT_EQ(workload_of_cgroup("/machine.slice/libpod-" + kId + ".scope/container").runtime,
              "podman");
    Workload k = workload_of_cgroup("/kubepods.slice/kubepods-burstable.slice/"
                                    "kubepods-burstable-pod1234.slice/cri-containerd-" +
                                    kId + ".scope");
    EXPECT_EQ(k.runtime, "containerd");
    EXPECT_EQ(k.container, kId);
    EXPECT_EQ(workload_of_cgroup("/kubepods/besteffort/pod1234/" + kId).runtime, "kubernetes");
    EXPECT_EQ(workload_of_cgroup("/kubepods.slice/crio-" + kId + ".scope").runtime, "cri-o");
    Workload l = workload_of_cgroup("/lxc.payload.web1/init.scope");
    EXPECT_EQ(l.runtime, "lxc");
    EXPECT_EQ(l.container, "web1");
    EXPECT_EQ(l.unit, "init.scope");
    EXPECT_EQ(l.label(), "lxc web1");
    // a short hex name is not a container
    EXPECT_EQ(workload_of_cgroup("/system.slice/docker-abc.scope").container, "");
}

} // namespace
} // namespace fusescope
