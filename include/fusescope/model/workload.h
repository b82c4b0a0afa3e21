// Where a process runs, as its cgroup v2 path tells: the path itself and, where
// the path shows one, the systemd unit or the container it belongs to. Pure
// string logic (src/model/workload.cpp); the id -> path lookup is the session's.
#pragma once

#include <string>
#include <string_view>

namespace fusescope {

struct Workload {
    std::string cgroup;    // cgroup v2 path ("/system.slice/mariadb.service"); "" unknown
    std::string unit;      // the systemd unit the path names ("mariadb.service"); "" none
    std::string container; // the container's id (hex) where the path shows one; "" none
    std::string runtime;   // who made that container: "docker", "podman", "containerd",
                           // "cri-o", "kubernetes", "lxc", "container"; "" none
    bool known() const { return !cgroup.empty(); }
    // For one line of text: "docker 0123456789ab", "unit mariadb.service", or the path.
    std::string label() const;
    bool operator==(const Workload &) const = default;
};

// What @cgroup_path (as /proc/PID/cgroup's "0::" line or the cgroup2 tree spells it) says.
Workload workload_of_cgroup(std::string_view cgroup_path);

// A container id cut to the 12 characters docker and podman print.
std::string short_container_id(std::string_view id);

} // namespace fusescope
