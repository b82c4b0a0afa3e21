// The FUSE mounts of the system, from /proc/self/mountinfo.
// Mounts::parse is pure (string in, table out) so it can be unit-tested and
// fuzzed; reload() is the only part touching the OS.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fusescope {

// mountinfo prints st_dev as "major:minor"; the kernel's s_dev (what BPF reads,
// InodeKey::dev) is the internal encoding major << 20 | minor.
constexpr uint32_t kernel_dev(uint32_t major, uint32_t minor) {
    return (major << 20) | (minor & 0xFFFFF);
}

// "fuse", "fuse.*" (fuse.sshfs, ...), "fuseblk", "virtiofs".
bool is_fuse_fstype(std::string_view fstype);

// Undo mountinfo's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash).
std::string unescape_mount_field(std::string_view s);

struct Mount {
    int mount_id = 0;
    int parent_id = 0;
    uint32_t major = 0, minor = 0;
    uint32_t kdev = 0;       // kernel_dev(major, minor) == InodeKey::dev
    std::string root;        // root of the mount inside its filesystem
    std::string mount_point; // unescaped
    std::string fstype;      // e.g. "fuse.sshfs"
    std::string source;      // unescaped
    bool operator==(const Mount &) const = default;
};

struct MountsDiff {
    std::vector<Mount> added;
    std::vector<Mount> removed;
    bool empty() const { return added.empty() && removed.empty(); }
};

class Mounts {
  public:
    // Parse mountinfo text, keeping FUSE mounts only (@fuse_only false: every mount).
    // Never throws or crashes: malformed lines are skipped and counted in bad_lines().
    static Mounts parse(std::string_view mountinfo, bool fuse_only = true);

    const std::vector<Mount> &all() const { return mounts_; }
    size_t bad_lines() const { return bad_lines_; }

    // Mount with this kernel s_dev (the last one in mountinfo order if several).
    const Mount *find_by_dev(uint32_t kdev) const;
    // Mount whose mount point is the longest path-component prefix of `abs_path`
    // (already canonical: core/bounded.h realpath_bounded). Pure string logic.
    const Mount *find_by_path(std::string_view abs_path) const;
    // Where @rel, a path from the root of filesystem @kdev (as the kernel's dentries spell
    // it, KernelName::relative()), shows: on the mount of that filesystem whose root
    // holds it (the later of equals), its mount point joined with the rest. nullopt when
    // no mount of it shows that part of the filesystem.
    std::optional<std::string> path_on_mount(uint32_t kdev, std::string_view rel) const;

    // Replace the table with `mountinfo` and report what changed (by mount id + dev).
    MountsDiff update(std::string_view mountinfo);
    // update() from /proc/self/mountinfo; nullopt if it cannot be read (table kept).
    std::optional<MountsDiff> reload(const std::string &path = "/proc/self/mountinfo");

  private:
    std::vector<Mount> mounts_;
    size_t bad_lines_ = 0;
};

} // namespace fusescope
