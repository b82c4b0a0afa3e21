// Naming executables, cgroups and FUSE files from kernel ids (include/fusescope/core/names.h).
#include "fusescope/core/names.h"

#include "fusescope/core/session.h"

#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace fusescope {

namespace {

constexpr uint64_t kRewalkNs = 1'000'000'000ull;

std::optional<std::string> read_mountinfo() {
    std::ifstream in("/proc/self/mountinfo");
    if (!in)
        return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

} // namespace

void CgroupNames::walk() {
    namespace fs = std::filesystem;
    last_walk_ns_ = monotonic_ns();
    auto text = read_mountinfo();
    if (!text)
        return;
    const Mounts all = Mounts::parse(*text, false);
    const Mount *cg = nullptr;
    for (const auto &m : all.all())
        if (m.fstype == "cgroup2")
            cg = &m;
    if (!cg)
        return;
    const std::string root = cg->root == "/" ? "" : cg->root;
    auto note = [&](const std::string &dir, const std::string &rel) {
        struct stat st {};
        if (::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
            paths_[st.st_ino] = rel.empty() ? (root.empty() ? "/" : root) : root + rel;
    };
    note(cg->mount_point, "");
    std::error_code ec;
    fs::recursive_directory_iterator it(cg->mount_point, fs::directory_options::none, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
        if (it.depth() > 64) {
            it.disable_recursion_pending();
            continue;
        }
        if (!it->is_directory(ec) || it->is_symlink(ec))
            continue;
        const std::string full = it->path().string();
        note(full, full.substr(cg->mount_point.size()));
    }
}

std::optional<std::string> CgroupNames::path_of(uint64_t id) {
    if (id == 0)
        return std::nullopt;
    auto it = paths_.find(id);
    if (it == paths_.end() && monotonic_ns() - last_walk_ns_ >= kRewalkNs) {
        walk();
        it = paths_.find(id);
    }
    if (it == paths_.end())
        return std::nullopt;
    return it->second;
}

std::optional<std::string> NameResolver::exe_path(Backend &b, const InodeKey &exe, uint32_t pid) {
    if (exe.ino == 0)
        return std::nullopt;
    if (auto it = exes_.find(exe); it != exes_.end())
        return it->second;
    auto p = name_exe(b, exe, pid);
    if (p)
        exes_.emplace(exe, *p);
    return p;
}

std::optional<std::string> NameResolver::name_exe(Backend &b, const InodeKey &exe, uint32_t pid) {
    if (auto k = b.exe_name(exe)) {
        const uint64_t now = monotonic_ns();
        std::optional<std::string> p = all_mounts_.path_on_mount(exe.dev, k->relative());
        if (!p && now - mounts_read_ns_ >= kRewalkNs) {
            mounts_read_ns_ = now;
            if (auto text = read_mountinfo())
                all_mounts_ = Mounts::parse(*text, false);
            p = all_mounts_.path_on_mount(exe.dev, k->relative());
        }
        if (p)
            return p;
    }
    if (pid == 0)
        return std::nullopt;
    char buf[PATH_MAX];
    const std::string link = "/proc/" + std::to_string(pid) + "/exe";
    const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
    if (n <= 0)
        return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::string> NameResolver::file_path(Backend &b, const Mounts &fuse,
                                                   const InodeKey &key, uint64_t *captured_ns) {
    auto k = b.file_name(key);
    if (!k || k->components.empty())
        return std::nullopt;
    *captured_ns = k->captured_ns;
    return fuse.path_on_mount(key.dev, k->relative());
}

} // namespace fusescope
