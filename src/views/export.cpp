// fusescope export (placeholder until the view lands)
#include "fusescope/core/exit_codes.h"
#include "fusescope/views/views.h"

#include <fmt/format.h>

namespace fusescope {
int run_export(const SessionOptions &, const ExportOptions &) {
    fmt::print(stderr, "fusescope export: not implemented yet\n");
    return exit_code::kFailure;
}
} // namespace fusescope
