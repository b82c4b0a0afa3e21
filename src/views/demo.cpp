// fusescope demo (placeholder)
#include "fusescope/core/exit_codes.h"
#include "fusescope/views/views.h"

#include <fmt/format.h>

namespace fusescope {
int run_demo(const std::string &, const SessionOptions &, const DemoOptions &) {
    fmt::print(stderr, "fusescope demo: not implemented yet\n");
    return exit_code::kFailure;
}
} // namespace fusescope
