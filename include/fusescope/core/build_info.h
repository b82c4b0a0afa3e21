// What this fusescope binary is: its version (CMake's project version) and the source
// revision it was built from (`git describe`, "unknown" outside a git checkout).
// `fusescope --version` prints them; the exporter serves them as fusescope_build_info.
#pragma once

#include <string_view>

namespace fusescope {

std::string_view build_version();
std::string_view build_revision();

} // namespace fusescope
