// Durations as text, the one rule every view uses (top's columns and detail pane, diagnose's
// report): the unit that keeps two or three digits, "850ns", "1.5us", "12us", "3.4ms",
// "340ms", "1.20s". Unit-tested in tests/unit/test_format.cpp.
#pragma once

#include <string>

namespace fusescope {

enum class Spacing {
    Compact, // "1.5ms", and "-" for nothing (a column's empty cell)
    Spaced,  // "1.5 ms", and "0 ns" for nothing (a sentence)
};

std::string format_ns(double ns, Spacing spacing = Spacing::Compact);

} // namespace fusescope
