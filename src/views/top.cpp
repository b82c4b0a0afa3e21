// fusescope top (placeholder until the view lands)
#include "fusescope/core/exit_codes.h"
#include "fusescope/views/views.h"

#include <fmt/format.h>

namespace fusescope {
int run_top(const SessionOptions &, const TopOptions &) {
    fmt::print(stderr, "fusescope top: not implemented yet\n");
    return exit_code::kFailure;
}
} // namespace fusescope
