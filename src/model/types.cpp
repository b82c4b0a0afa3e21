// to_string for the records declared in include/fusescope/model/types.h.
#include "fusescope/model/types.h"

#include <fmt/format.h>

#include <iterator>

namespace fusescope {

std::string_view to_string(LockMode m) {
    switch (m) {
#define FS_X(c, cpp, name)                                                                         \
    case LockMode::cpp:                                                                            \
        return name;
        FS_LOCK_MODE_TABLE(FS_X)
#undef FS_X
    }
    return "?";
}

std::string_view to_string(WriteReason r) {
    return static_cast<size_t>(r) < std::size(kWriteReasonInfo) ? info(r).name : "?";
}

std::optional<WriteReason> write_reason_from_string(std::string_view s) {
    for (const WriteReasonInfo &i : kWriteReasonInfo)
        if (i.name == s)
            return i.reason;
    return std::nullopt;
}

std::string_view to_string(FileIoMode m) {
    switch (m) {
    case FileIoMode::None:
        return "none";
    case FileIoMode::Cached:
        return "cached";
    case FileIoMode::Uncached:
        return "uncached";
    case FileIoMode::NotAvailable:
        return "n/a";
    }
    return "?";
}

std::string_view to_string(EventType t) {
    switch (t) {
#define FS_X(c, cpp, value, name)                                                                  \
    case EventType::cpp:                                                                           \
        return name;
        FS_EVENT_TYPE_TABLE(FS_X)
#undef FS_X
    }
    return "?";
}

} // namespace fusescope

namespace fusescope {

std::string KernelName::relative() const {
    std::string out = complete ? "" : "/...";
    for (auto it = components.rbegin(); it != components.rend(); ++it)
        out += "/" + *it;
    return out.empty() ? "/" : out;
}

std::string dev_string(uint32_t kdev) { return fmt::format("{}:{}", kdev >> 20, kdev & 0xfffff); }

} // namespace fusescope
