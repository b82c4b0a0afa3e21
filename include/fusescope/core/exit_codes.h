// fusescope's exit statuses (documented in README.md, "Exit status").
#pragma once

namespace fusescope::exit_code {
inline constexpr int kOk = 0;
inline constexpr int kFailure = 1;     // something broke while running
inline constexpr int kUsage = 2;       // bad command line
inline constexpr int kEnvironment = 3; // not root, no BTF, no tracefs, no such mount/pid
inline constexpr int kNoBackend =
    4; // no backend can run here, or its BPF programs failed to load/attach
inline constexpr int kFindings = 5; // diagnose: problems found and reported
} // namespace fusescope::exit_code
