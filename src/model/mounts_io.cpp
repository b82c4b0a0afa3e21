// The OS-facing half of Mounts: reading /proc/self/mountinfo, realpath.
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "fusescope/model/mounts.h"

namespace fusescope {

std::optional<MountsDiff> Mounts::reload(const std::string &path) {
    std::ifstream in(path);
    if (!in)
        return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return update(ss.str());
}

std::optional<std::string> resolve_user_path(const std::string &path) {
    char buf[PATH_MAX];
    if (::realpath(path.c_str(), buf) == nullptr)
        return std::nullopt;
    return std::string(buf);
}

} // namespace fusescope
