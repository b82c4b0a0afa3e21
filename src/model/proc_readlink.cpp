// Default ReadlinkFn and MapPathFn: the path behind an open file descriptor or a mapping of
// another process.
#include <unistd.h>

#include <cinttypes>
#include <climits>
#include <cstdio>
#include <fstream>
#include <string>

#include "fusescope/model/state_model.h"

namespace fusescope {

std::optional<std::string> proc_fd_readlink(uint32_t pid, uint32_t fd) {
    const std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    char buf[PATH_MAX];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
    if (n <= 0)
        return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::string> proc_map_path(uint32_t pid, uint64_t vm_start) {
    std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
        // start-end perms offset dev inode path (the path may contain spaces)
        uint64_t start = 0;
        int path_at = 0;
        if (std::sscanf(line.c_str(), "%" SCNx64 "-%*x %*s %*x %*s %*u %n", &start, &path_at) < 1 ||
            start != vm_start)
            continue;
        if (path_at <= 0 || static_cast<size_t>(path_at) >= line.size() || line[path_at] != '/')
            return std::nullopt;
        return line.substr(static_cast<size_t>(path_at));
    }
    return std::nullopt;
}

} // namespace fusescope
