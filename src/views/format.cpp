#include "fusescope/views/format.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>
#include <limits>

namespace fusescope {

namespace {

struct Step {
    double below; // the text's value, rounded, stays under this many ns
    double ns_per_unit;
    int decimals;
    const char *unit;
};
constexpr Step kSteps[] = {
    {1e3, 1, 0, "ns"},   {1e4, 1e3, 1, "us"},
    {1e6, 1e3, 0, "us"}, {1e7, 1e6, 1, "ms"},
    {1e9, 1e6, 0, "ms"}, {std::numeric_limits<double>::infinity(), 1e9, 2, "s"},
};

} // namespace

std::string format_ns(double ns, Spacing spacing) {
    const char *sep = spacing == Spacing::Spaced ? " " : "";
    if (!(ns > 0))
        return spacing == Spacing::Spaced ? "0 ns" : "-";
    for (const Step &s : kSteps) {
        const double scale = std::pow(10.0, s.decimals);
        const double shown = std::round(ns / s.ns_per_unit * scale) / scale; // as printed
        if (shown * s.ns_per_unit < s.below || &s == &std::end(kSteps)[-1])
            return fmt::format("{:.{}f}{}{}", shown, s.decimals, sep, s.unit);
    }
    return {}; // not reached: the last step takes everything left (inf too)
}

} // namespace fusescope
