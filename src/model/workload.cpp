// Systemd units and container ids in cgroup v2 paths (include/fusescope/model/workload.h).
//
// The path shapes recognised, as the runtimes create them:
//   systemd:        .../NAME.service, .../NAME.scope (the deepest one is the unit)
//   docker:         /system.slice/docker-ID.scope      (systemd driver)
//                   /docker/ID                          (cgroupfs driver)
//   podman:         .../libpod-ID.scope[/container]
//   containerd/k8s: .../cri-containerd-ID.scope, /kubepods/.../podUID/ID
//   cri-o:          .../crio-ID.scope
//   lxc:            /lxc.payload.NAME
// ID: 64 hex digits (a bare component needs at least 32).
#include "fusescope/model/workload.h"

#include <array>
#include <vector>

namespace fusescope {

namespace {

bool all_hex(std::string_view s) {
    if (s.empty())
        return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

struct ScopePrefix {
    std::string_view prefix, runtime;
};
constexpr std::array<ScopePrefix, 5> kScopes = {{{"docker-", "docker"},
                                                 {"libpod-", "podman"},
                                                 {"cri-containerd-", "containerd"},
                                                 {"crio-", "cri-o"},
                                                 {"containerd-", "containerd"}}};

// "docker-ID.scope" -> (docker, ID); nothing for other components.
bool container_scope(std::string_view c, Workload &w) {
    if (!c.ends_with(".scope"))
        return false;
    c.remove_suffix(6);
    for (const auto &s : kScopes)
        if (c.starts_with(s.prefix) && c.size() - s.prefix.size() >= 32 &&
            all_hex(c.substr(s.prefix.size()))) {
            w.runtime = s.runtime;
            w.container = std::string(c.substr(s.prefix.size()));
            return true;
        }
    return false;
}

} // namespace

std::string short_container_id(std::string_view id) {
    return std::string(all_hex(id) ? id.substr(0, 12) : id);
}

std::string Workload::label() const {
    if (!container.empty())
        return runtime + " " + short_container_id(container);
    if (!unit.empty())
        return "unit " + unit;
    return cgroup;
}

Workload workload_of_cgroup(std::string_view path) {
    Workload w;
    w.cgroup = std::string(path);
    std::vector<std::string_view> parts;
    for (size_t i = 0; i < path.size();) {
        size_t j = path.find('/', i);
        if (j == std::string_view::npos)
            j = path.size();
        if (j > i)
            parts.push_back(path.substr(i, j - i));
        i = j + 1;
    }
    for (size_t i = 0; i < parts.size(); ++i) {
        std::string_view c = parts[i];
        if (w.container.empty() && container_scope(c, w))
            continue;
        if (w.container.empty() && c.size() >= 32 && all_hex(c)) {
            std::string_view parent = i > 0 ? parts[i - 1] : std::string_view();
            w.runtime = parent == "docker"          ? "docker"
                        : parent.starts_with("pod") ? "kubernetes"
                                                    : "container";
            w.container = std::string(c);
            continue;
        }
        if (w.container.empty() && c.starts_with("lxc.payload.") && c.size() > 12) {
            w.runtime = "lxc";
            w.container = std::string(c.substr(12));
            continue;
        }
        if (c.ends_with(".service") || c.ends_with(".scope"))
            w.unit = std::string(c); // the deepest wins
    }
    return w;
}

} // namespace fusescope
