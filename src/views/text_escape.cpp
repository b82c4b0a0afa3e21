// escape_text: see include/fusescope/views/text_escape.h.
#include "fusescope/views/text_escape.h"

#include <cstdint>

namespace fusescope {

namespace {

// Length of the valid UTF-8 sequence at s[i] (0: not valid), as RFC 3629 allows it:
// no overlong forms, no surrogates, nothing past U+10FFFF.
size_t utf8_len(std::string_view s, size_t i, uint32_t *cp) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char c = b(0);
    size_t n = 0;
    uint32_t v = 0, min = 0;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (i + n > s.size())
        return 0;
    for (size_t k = 1; k < n; ++k) {
        if ((b(k) & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (b(k) & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

void hex(std::string &out, unsigned char c) {
    static constexpr char digits[] = "0123456789abcdef";
    out += "\\x";
    out += digits[c >> 4];
    out += digits[c & 0xf];
}

} // namespace

std::string escape_text(std::string_view s, EscapeScope scope) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            const bool layout = scope == EscapeScope::Output && (c == '\n' || c == '\t');
            if ((c < 0x20 || c == 0x7f) && !layout)
                hex(out, c);
            else if (c == '\\' && scope == EscapeScope::Name)
                out += "\\\\";
            else
                out += static_cast<char>(c);
            ++i;
            continue;
        }
        uint32_t cp = 0;
        const size_t n = utf8_len(s, i, &cp);
        if (n == 0 || (cp >= 0x80 && cp <= 0x9f)) {
            for (size_t k = 0; k < (n ? n : 1); ++k)
                hex(out, static_cast<unsigned char>(s[i + k]));
            i += n ? n : 1;
            continue;
        }
        out.append(s.substr(i, n));
        i += n;
    }
    return out;
}

} // namespace fusescope
