// to_string for the records declared in include/fusescope/model/types.h.
#include "fusescope/model/types.h"

namespace fusescope {

std::string_view to_string(LockMode m) {
    switch (m) {
    case LockMode::Shared: return "shared";
    case LockMode::Exclusive: return "exclusive";
    }
    return "?";
}

std::string_view to_string(WriteReason r) {
    switch (r) {
    case WriteReason::Shared: return "shared";
    case WriteReason::NoParallelFlag: return "no_parallel_flag";
    case WriteReason::Append: return "append";
    case WriteReason::CacheIoMode: return "cache_io_mode";
    case WriteReason::PastEof: return "past_eof";
    case WriteReason::Fallback: return "fallback";
    }
    return "?";
}

std::string_view to_string(FileIoMode m) {
    switch (m) {
    case FileIoMode::None: return "none";
    case FileIoMode::Cached: return "cached";
    case FileIoMode::Uncached: return "uncached";
    case FileIoMode::NotAvailable: return "n/a";
    }
    return "?";
}

std::string_view to_string(EventType t) {
    switch (t) {
    case EventType::Write: return "write";
    case EventType::Open: return "open";
    case EventType::Mmap: return "mmap";
    case EventType::Release: return "release";
    case EventType::DrainWait: return "drain_wait";
    case EventType::ModeSeen: return "mode_seen";
    }
    return "?";
}

} // namespace fusescope
