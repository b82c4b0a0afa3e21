// The OS-facing half of Mounts: reading /proc/self/mountinfo.
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

} // namespace fusescope
