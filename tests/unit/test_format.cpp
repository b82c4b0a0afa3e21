// The one duration format (fusescope/views/format.h): the unit that keeps two or three
// digits, in top's compact form and diagnose's spaced one, including the values that round
// up into the next unit.
#include "fusescope/views/format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace fusescope;

namespace {

struct Case {
    double ns;
    const char *compact;
    const char *spaced;
};

const Case kCases[] = {
    {0, "-", "0 ns"},
    {-5, "-", "0 ns"},
    {std::nan(""), "-", "0 ns"},
    {1, "1ns", "1 ns"},
    {850, "850ns", "850 ns"},
    {999.4, "999ns", "999 ns"},
    {999.6, "1.0us", "1.0 us"}, // rounds up: the next unit, never "1000ns"
    {1000, "1.0us", "1.0 us"},
    {1500, "1.5us", "1.5 us"},
    {9949, "9.9us", "9.9 us"},
    {9950, "10us", "10 us"},
    {12345, "12us", "12 us"},
    {999'499, "999us", "999 us"},
    {999'500, "1.0ms", "1.0 ms"},
    {2.5e6, "2.5ms", "2.5 ms"},
    {9.96e6, "10ms", "10 ms"},
    {340e6, "340ms", "340 ms"},
    {999.4e6, "999ms", "999 ms"},
    {999.6e6, "1.00s", "1.00 s"},
    {1e9, "1.00s", "1.00 s"},
    {3e9, "3.00s", "3.00 s"},
    {125.5e9, "125.50s", "125.50 s"},
    {std::numeric_limits<double>::infinity(), "infs", "inf s"},
};

TEST(FormatNs, Table) {
    for (const Case &c : kCases) {
        EXPECT_EQ(format_ns(c.ns), c.compact) << c.ns;
        EXPECT_EQ(format_ns(c.ns, Spacing::Compact), c.compact) << c.ns;
        EXPECT_EQ(format_ns(c.ns, Spacing::Spaced), c.spaced) << c.ns;
    }
}

TEST(FormatNs, AtMostThreeDigitsBelowOneSecond) {
    for (double ns = 1; ns < 1e9; ns *= 1.01) {
        const std::string s = format_ns(ns);
        size_t digits = 0;
        for (char ch : s)
            digits += ch >= '0' && ch <= '9';
        EXPECT_LE(digits, 3u) << ns << " -> " << s;
    }
}

} // namespace
