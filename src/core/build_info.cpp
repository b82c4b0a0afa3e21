#include "fusescope/core/build_info.h"

#include "fusescope_revision.h" // generated at build time (cmake/revision.cmake)

namespace fusescope {

std::string_view build_version() { return FUSESCOPE_VERSION; }
std::string_view build_revision() { return FUSESCOPE_REVISION; }

} // namespace fusescope
