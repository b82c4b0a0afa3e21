// Names are untrusted input: any process sets its own comm (prctl PR_SET_NAME), any
// user names files and cgroups. Every text output (trace, top, top -b, diagnose,
// doctor) passes them through here, as procps' ps and top do, so that no byte of a
// name reaches a terminal as a control sequence. JSON (nlohmann) and Prometheus labels
// (prometheus-cpp) keep their own escaping and do not use this.
//
// The escape: a C0 control byte (0x00-0x1f), DEL (0x7f), the two bytes of a C1
// control (U+0080-U+009F, which terminals take as CSI and friends) and any byte that
// is not part of valid UTF-8 become "\xNN" (lowercase hex); a backslash becomes "\\",
// so an escaped name cannot pass for another. Valid UTF-8 text passes as it is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fusescope {

enum class EscapeScope : uint8_t {
    Name,   // one name: every byte above is escaped, newlines and tabs included
    Output, // a whole text output made of escaped names: newlines stay, backslashes too
};

std::string escape_text(std::string_view s, EscapeScope scope = EscapeScope::Name);

// The common case: one untrusted name for a text line.
inline std::string safe_name(std::string_view s) { return escape_text(s, EscapeScope::Name); }

} // namespace fusescope
