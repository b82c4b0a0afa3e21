// Untrusted names in text output (include/fusescope/views/text_escape.h).
#include "fusescope/views/text_escape.h"

#include <gtest/gtest.h>

namespace fusescope {
namespace {

TEST(TextEscape, ControlsBecomeHex) {
    EXPECT_EQ(safe_name("\x1b[2J\x1b[31mEVIL"), "\\x1b[2J\\x1b[31mEVIL");
    EXPECT_EQ(safe_name(std::string("a\0b", 3)), "a\\x00b");
    EXPECT_EQ(safe_name("tab\there\nnl\rcr\x7f"), "tab\\x09here\\x0anl\\x0dcr\\x7f");
}

TEST(TextEscape, BackslashIsEscapedSoNamesStayDistinct) {
    EXPECT_EQ(safe_name("\\x1b"), "\\\\x1b"); // a name spelled like an escape
    EXPECT_NE(safe_name("\\x1b"), safe_name("\x1b"));
}

TEST(TextEscape, Utf8PassesC1AndBrokenBytesDoNot) {
    EXPECT_EQ(safe_name("r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa7"),
              "r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa7");
    EXPECT_EQ(safe_name("\xc2\x9b"
                        "31m"),
              "\\xc2\\x9b31m"); // C1 CSI, as UTF-8
    EXPECT_EQ(safe_name("\x9b"
                        "31m"),
              "\\x9b31m");                                   // C1 CSI, a lone byte
    EXPECT_EQ(safe_name("\xc0\xaf"), "\\xc0\\xaf");          // overlong '/'
    EXPECT_EQ(safe_name("\xed\xa0\x80"), "\\xed\\xa0\\x80"); // a surrogate
    EXPECT_EQ(safe_name("\xe2\x82"), "\\xe2\\x82");          // cut short
}

TEST(TextEscape, OutputScopeKeepsLayout) {
    EXPECT_EQ(escape_text("a\tb\nc\x1b[0m\\", EscapeScope::Output), "a\tb\nc\\x1b[0m\\");
}

TEST(TextEscape, NoRawControlByteEverSurvives) {
    std::string all;
    for (int c = 0; c < 256; ++c)
        all.push_back(static_cast<char>(c));
    for (EscapeScope sc : {EscapeScope::Name, EscapeScope::Output}) {
        const std::string out = escape_text(all + all, sc);
        for (char ch : out) {
            const auto c = static_cast<unsigned char>(ch);
            if (sc == EscapeScope::Output && (c == '\n' || c == '\t'))
                continue;
            EXPECT_FALSE(c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f && false))
                << static_cast<int>(c);
            EXPECT_LT(c, 0x80) << "no raw high byte: every one of them here is invalid UTF-8";
        }
    }
}

} // namespace
} // namespace fusescope
