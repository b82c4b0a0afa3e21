// fusescope diagnose (placeholder until the view lands)
#include "fusescope/core/exit_codes.h"
#include "fusescope/views/views.h"

#include <fmt/format.h>

namespace fusescope {
int run_diagnose(const SessionOptions &, const DiagnoseOptions &) {
    fmt::print(stderr, "fusescope diagnose: not implemented yet\n");
    return exit_code::kFailure;
}
} // namespace fusescope
