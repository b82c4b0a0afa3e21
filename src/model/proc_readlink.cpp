// Default ReadlinkFn: the path behind an open file descriptor of another process.
#include <unistd.h>

#include <climits>
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

} // namespace fusescope
