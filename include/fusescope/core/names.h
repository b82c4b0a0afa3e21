// Who and where, named: turns the ids the BPF side records (an executable's
// (dev, ino), a cgroup v2 id, a FUSE inode) into paths, for the session to hand
// to the state model. Touches only /proc, /sys/fs/cgroup and BPF maps, never a
// FUSE mount: naming must not wait on the filesystem being diagnosed.
#pragma once

#include "fusescope/backend/backend.h"
#include "fusescope/model/mounts.h"
#include "fusescope/model/types.h"

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace fusescope {

// The cgroup v2 path of a cgroup id: the id is the cgroup directory's inode number,
// found by walking the cgroup2 mount (found in mountinfo: /sys/fs/cgroup, or
// /sys/fs/cgroup/unified on hybrid hosts). Paths are remembered; an unknown id
// walks the tree again, at most once a second.
class CgroupNames {
  public:
    std::optional<std::string> path_of(uint64_t id);

  private:
    void walk();
    std::unordered_map<uint64_t, std::string> paths_;
    uint64_t last_walk_ns_ = 0;
};

class NameResolver {
  public:
    // The executable's path: from the kernel's capture (exe_names) on a mount of its
    // filesystem, else /proc/PID/exe while the process lives.
    std::optional<std::string> exe_path(Backend &b, const InodeKey &exe, uint32_t pid);
    std::optional<std::string> cgroup_path(uint64_t id) { return cgroups_.path_of(id); }
    // A FUSE file's path from the kernel's capture (file_names) on its mount (@fuse).
    std::optional<std::string> file_path(Backend &b, const Mounts &fuse, const InodeKey &key,
                                         uint64_t *captured_ns);

  private:
    std::optional<std::string> name_exe(Backend &b, const InodeKey &exe, uint32_t pid);
    std::unordered_map<InodeKey, std::string, InodeKeyHash> exes_; // named already
    Mounts all_mounts_; // every mount, for executables on any filesystem
    uint64_t mounts_read_ns_ = 0;
    CgroupNames cgroups_;
};

} // namespace fusescope
