// Every metric family `fusescope export` serves: its name, type, label names and meaning,
// in one table. The collector builds its families from it (label names included), and the
// metrics reference (docs/metrics.md, `fusescope export --metrics-reference`) is printed
// from it, so the two cannot disagree. Private to src/views.
#pragma once

#include <prometheus/metric_type.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fusescope {

enum class ModeKind : uint8_t;

enum class Family : uint8_t {
    // per mount
    Writes,
    WriteBytes,
    WriteLockWait,
    WritebackRequests,
    WritebackBytes,
    WriteService,
    LockContentions,
    LockWaitHistogram,
    DrainWaits,
    DrainWaitSeconds,
    IoModeChanges,
    IoModeTransitions,
    Inodes,
    InodesDraining,
    CacheModeHolders,
    // per inode, top-K
    InodeWriteLockWait,
    InodeWrites,
    InodeIoMode,
    InodeCacheModeHolders,
    InodeCacheModeHolderInfo,
    InodeCacheModeHolderSince,
    InodeWriterProcesses,
    // fusescope itself
    BuildInfo,
    ProbesAttached,
    BpfProgramsAttached,
    BpfStatsEnabled,
    BpfProgramRunSeconds,
    BpfProgramRuns,
    BpfProgMisses,
    EventsLost,
    EventsReceived,
    MapFull,
    WritesUnresolved,
    OpensUnexplained,
    CensusRuns,
    ModelInodes,
    ModelInodesLimit,
    ModelEvictions,
    ScrapeDuration,
    HttpRequests,
    HttpConnections,
    // the process (client library conventions)
    ProcessCpuSeconds,
    ProcessResidentMemory,
    ProcessVirtualMemory,
    ProcessOpenFds,
    ProcessMaxFds,
    ProcessStartTime,
    kCount
};

enum class FamilyGroup : uint8_t { Mount, Inode, Self, Process };

struct FamilyDef {
    Family id;
    FamilyGroup group;
    std::string_view name;
    prometheus::MetricType type;
    std::string_view labels; // label names, space-separated, in the order values are given
    std::string_view help;   // the HELP line
    std::string_view note;   // more for the reference: when it is absent, what it bounds
};

std::span<const FamilyDef> family_defs();
const FamilyDef &family_def(Family f);
std::vector<std::string_view> label_names(const FamilyDef &f); // FamilyDef::labels, split

// Label values in snake_case ("write-seen" -> "write_seen").
std::string snake_label(std::string_view s);

// io_mode label values: to_string(ModeKind) in snake_case ("n/a" -> "not_available").
std::string io_mode_label(ModeKind k);

// The reference of every family and label (Markdown): docs/metrics.md is this text.
std::string metrics_reference_markdown();

// The HTTP paths the exporter serves (fusescope_http_requests_total's path label).
inline constexpr std::string_view kHttpPaths[] = {"/", "/metrics", "/-/healthy", "/-/ready"};

// Per inode, the distinct (comm, how, exe, cgroup) holders exported (..._cache_mode_holder_*),
// and the writer programs (fusescope_inode_writer_processes).
inline constexpr size_t kHoldersPerInode = 8;

} // namespace fusescope
