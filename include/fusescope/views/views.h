// The command-line views. Each takes parsed options, opens a Session (or
// not, for doctor's kernel report) and returns an exit status.
#pragma once

#include "fusescope/core/session.h"

#include <cstdint>
#include <optional>
#include <string>

namespace fusescope {

struct TraceOptions {
    bool json = false;
    double duration_s = 0; // 0: until interrupted
};
int run_trace(const SessionOptions &so, const TraceOptions &to);

struct DoctorOptions {
    bool json = false;
};
int run_doctor(const SessionOptions &so, const DoctorOptions &d);

// "maj:min" of a kernel s_dev
std::string dev_string(uint32_t kdev);

} // namespace fusescope
