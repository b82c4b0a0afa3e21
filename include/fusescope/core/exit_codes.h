// fusescope's exit statuses (documented in README.md, "Exit status", and in the man pages,
// which are generated from kExitStatuses).
#pragma once

#include <string_view>

namespace fusescope::exit_code {
inline constexpr int kOk = 0;
inline constexpr int kFailure = 1;     // something broke while running
inline constexpr int kUsage = 2;       // bad command line
inline constexpr int kEnvironment = 3; // not root, no BTF, no tracefs, no such mount/pid
inline constexpr int kNoBackend =
    4; // no backend can run here, or its BPF programs failed to load/attach
inline constexpr int kFindings = 5; // diagnose: problems found and reported

struct ExitStatus {
    int code;
    std::string_view meaning;
};
inline constexpr ExitStatus kExitStatuses[] = {
    {kOk, "success (diagnose: healthy)"},
    {kFailure, "something failed while running"},
    {kUsage, "bad command line"},
    {kEnvironment, "environment: not root, no BTF, no tracefs, no such mount/path/pid"},
    {kNoBackend, "no backend can run on this kernel, or its BPF programs failed to load or attach"},
    {kFindings, "diagnose: problems found and reported (a FUSE server that does not answer "
                "is one)"},
};
} // namespace fusescope::exit_code
