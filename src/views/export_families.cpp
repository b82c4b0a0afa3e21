#include "export_families.h"

#include "fusescope/model/snapshot.h"
#include "fusescope/model/types.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace fusescope {

namespace {

using G = FamilyGroup;
using T = prometheus::MetricType;

constexpr FamilyDef kFamilies[] = {
    {Family::Writes, G::Mount, "fusescope_writes_total", T::Counter, "mount lock reason",
     "Writes by i_rwsem mode and reason (reason=shared for the shared lock; otherwise why the "
     "kernel took it exclusively; unclassified: the lock mode was not visible, lock=unknown)",
     ""},
    {Family::WriteBytes, G::Mount, "fusescope_write_bytes_total", T::Counter, "mount lock",
     "Bytes the writes sent to the server (async writes: as queued), by lock mode", ""},
    {Family::WriteLockWait, G::Mount, "fusescope_write_lock_wait_seconds_total", T::Counter,
     "mount lock", "Time writers spent queued for the inode's i_rwsem, by lock mode", ""},
    {Family::WritebackRequests, G::Mount, "fusescope_writeback_requests_total", T::Counter, "mount",
     "FUSE_WRITE requests from page writeback (writeback cache): their writers are not seen "
     "by the tracepoint backend",
     ""},
    {Family::WritebackBytes, G::Mount, "fusescope_writeback_bytes_total", T::Counter, "mount",
     "Bytes of the FUSE_WRITE requests from page writeback", ""},
    {Family::WriteService, G::Mount, "fusescope_write_service_seconds_total", T::Counter,
     "mount lock", "Time direct-IO writes spent after getting the lock, by lock mode",
     "Absent, not zero, where it is not measured: the tracepoint backend without "
     "`--service-time`."},
    {Family::LockContentions, G::Mount, "fusescope_lock_contentions_total", T::Counter,
     "mount lock",
     "Contended i_rwsem acquisitions by writers (lock:contention_* tracepoints), by lock mode", ""},
    {Family::LockWaitHistogram, G::Mount, "fusescope_lock_wait_seconds", T::Histogram, "mount lock",
     "Distribution of contended i_rwsem waits of writers, by lock mode",
     "Buckets double from 2^10 ns (~1 µs; shorter waits count there) to 2^35 ns."},
    {Family::DrainWaits, G::Mount, "fusescope_drain_waits_total", T::Counter, "mount",
     "Caching opens/mmaps that waited for parallel direct-IO writers to drain", ""},
    {Family::DrainWaitSeconds, G::Mount, "fusescope_drain_wait_seconds_total", T::Counter, "mount",
     "Time caching opens/mmaps waited for parallel direct-IO writers to drain",
     "On the tracepoint backend an upper bound: it includes the server's answer to the open."},
    {Family::IoModeChanges, G::Mount, "fusescope_io_mode_changes_total", T::Counter, "mount",
     "IO mode changes of the mount's inodes counted by the kernel probes",
     "Exact, without a cause."},
    {Family::IoModeTransitions, G::Mount, "fusescope_io_mode_transitions_total", T::Counter,
     "mount cause to", "IO mode transitions the model observed, by cause and new mode",
     "As the model recorded them (a transition it learnt of from the counters has cause "
     "`counters`)."},
    {Family::Inodes, G::Mount, "fusescope_inodes", T::Gauge, "mount io_mode",
     "Inodes fusescope tracks (bounded, see fusescope_model_inodes_limit), by IO mode",
     "Not every inode of the mount: those fusescope has seen written, opened or mapped."},
    {Family::InodesDraining, G::Mount, "fusescope_inodes_draining", T::Gauge, "mount",
     "Inodes entering cache mode while parallel writers drain", ""},
    {Family::CacheModeHolders, G::Mount, "fusescope_cache_mode_holders", T::Gauge, "mount how",
     "Open files / shared mappings keeping inodes in cache IO mode, by how", ""},

    {Family::InodeWriteLockWait, G::Inode, "fusescope_inode_write_lock_wait_seconds_total",
     T::Counter, "mount path ino lock",
     "Top-K inodes by wait: time writers spent queued for the i_rwsem, by lock mode", ""},
    {Family::InodeWrites, G::Inode, "fusescope_inode_writes_total", T::Counter,
     "mount path ino lock reason", "Top-K inodes by wait: writes by lock mode and reason", ""},
    {Family::InodeIoMode, G::Inode, "fusescope_inode_io_mode", T::Gauge, "mount path ino io_mode",
     "Top-K inodes by wait: 1 for the inode's current IO mode", ""},
    {Family::InodeCacheModeHolders, G::Inode, "fusescope_inode_cache_mode_holders", T::Gauge,
     "mount path ino", "Top-K inodes by wait: open files / mappings holding cache IO mode", ""},
    {Family::InodeCacheModeHolderInfo, G::Inode, "fusescope_inode_cache_mode_holder_info", T::Gauge,
     "mount path ino comm how exe cgroup unit container",
     "Top-K inodes by wait: who holds the inode in cache IO mode now (value always 1)",
     "One series per distinct (comm, how, exe, cgroup) among the inode's holders, at most 8 "
     "per inode; fusescope_inode_cache_mode_holders counts them all. Gone when the holder "
     "releases."},
    {Family::InodeCacheModeHolderSince, G::Inode,
     "fusescope_inode_cache_mode_holder_since_timestamp_seconds", T::Gauge,
     "mount path ino comm how exe cgroup unit container",
     "Top-K inodes by wait: since when (Unix time) the earliest of these holders holds the "
     "inode in cache mode",
     "For a holder that was there before fusescope started (found by the census): when "
     "fusescope first saw it, so the real start is no later."},

    {Family::InodeWriterProcesses, G::Inode, "fusescope_inode_writer_processes", T::Gauge,
     "mount path ino comm exe cgroup unit container",
     "Top-K inodes by wait: processes of each program that opened the inode for writing since "
     "fusescope started",
     "One series per program (comm and executable) and cgroup, at most 8 per inode."},

    {Family::BuildInfo, G::Self, "fusescope_build_info", T::Gauge,
     "version revision backend kernel",
     "fusescope's version, source revision, BPF backend and kernel release (value always 1)", ""},
    {Family::ProbesAttached, G::Self, "fusescope_probes_attached", T::Gauge, "role",
     "1 if a probe fills this role on this kernel (hook plan), else 0",
     "Some roles are off by design: service_time on the tracepoint backend without "
     "`--service-time`; open, drain_wait and release on kernels without IO modes (< 6.9). "
     "`fusescope doctor` says why."},
    {Family::BpfProgramsAttached, G::Self, "fusescope_bpf_programs_attached", T::Gauge, "",
     "BPF programs loaded and attached", ""},
    {Family::BpfStatsEnabled, G::Self, "fusescope_bpf_stats_enabled", T::Gauge, "",
     "1 while the kernel accounts BPF run time (kernel.bpf_stats_enabled, or fusescope "
     "export --bpf-stats), else 0",
     ""},
    {Family::BpfProgramRunSeconds, G::Self, "fusescope_bpf_program_run_seconds_total", T::Counter,
     "program", "Run time of each of fusescope's BPF programs, as the kernel accounts it",
     "Only while fusescope_bpf_stats_enabled is 1 (the kernel counts nothing otherwise). The "
     "accounting itself adds tens of ns to every run (README, Performance)."},
    {Family::BpfProgramRuns, G::Self, "fusescope_bpf_program_runs_total", T::Counter, "program",
     "Runs of each of fusescope's BPF programs, as the kernel accounts them",
     "Only while fusescope_bpf_stats_enabled is 1."},
    {Family::BpfProgMisses, G::Self, "fusescope_bpf_prog_misses_total", T::Counter, "",
     "Runs of fusescope's BPF programs the kernel skipped (recursion protection, e.g. a "
     "preempted fentry program); writes may be missing",
     ""},
    {Family::EventsLost, G::Self, "fusescope_events_lost_total", T::Counter, "",
     "Ring-buffer events lost (buffer full)", ""},
    {Family::EventsReceived, G::Self, "fusescope_events_received_total", T::Counter, "",
     "Ring-buffer events received", ""},
    {Family::MapFull, G::Self, "fusescope_map_full_total", T::Counter, "map",
     "BPF map updates that failed because the map was full", ""},
    {Family::WritesUnresolved, G::Self, "fusescope_writes_unresolved_total", T::Counter, "",
     "Writes whose lock mode or reason the probes could not resolve", ""},
    {Family::OpensUnexplained, G::Self, "fusescope_opens_unexplained_total", T::Counter, "",
     "FUSE_OPENs whose file no census of the opener found (it closed within a second; top "
     "and export without the syscall hooks): their holders and writers are not named",
     ""},
    {Family::CensusRuns, G::Self, "fusescope_census_runs_total", T::Counter, "",
     "Census runs: open files and mappings walked, of every process or of one opener (after its "
     "FUSE_OPEN, without the syscall hooks)",
     ""},
    {Family::ModelInodes, G::Self, "fusescope_model_inodes", T::Gauge, "",
     "Inodes the state model holds", ""},
    {Family::ModelInodesLimit, G::Self, "fusescope_model_inodes_limit", T::Gauge, "",
     "Bound on the inodes the state model holds", ""},
    {Family::ModelEvictions, G::Self, "fusescope_model_evictions_total", T::Counter, "",
     "Inodes the state model dropped to stay within its bound", ""},
    {Family::ScrapeDuration, G::Self, "fusescope_scrape_duration_seconds", T::Gauge, "",
     "Time fusescope took to summarize the model and build this scrape's metrics", ""},
    {Family::HttpRequests, G::Self, "fusescope_http_requests_total", T::Counter, "handler code",
     "HTTP requests answered, by handler and status code",
     "Counted after the answer: a scrape shows the requests before it."},
    {Family::HttpConnections, G::Self, "fusescope_http_connections", T::Gauge, "",
     "Open HTTP client connections, idle ones included", ""},

    {Family::ProcessCpuSeconds, G::Process, "process_cpu_seconds_total", T::Counter, "",
     "Total user and system CPU time spent in seconds.", ""},
    {Family::ProcessResidentMemory, G::Process, "process_resident_memory_bytes", T::Gauge, "",
     "Resident memory size in bytes.", ""},
    {Family::ProcessVirtualMemory, G::Process, "process_virtual_memory_bytes", T::Gauge, "",
     "Virtual memory size in bytes.", ""},
    {Family::ProcessOpenFds, G::Process, "process_open_fds", T::Gauge, "",
     "Number of open file descriptors.", ""},
    {Family::ProcessMaxFds, G::Process, "process_max_fds", T::Gauge, "",
     "Maximum number of open file descriptors.", ""},
    {Family::ProcessStartTime, G::Process, "process_start_time_seconds", T::Gauge, "",
     "Start time of the process since unix epoch in seconds.", ""},
};
static_assert(std::size(kFamilies) == static_cast<size_t>(Family::kCount));

constexpr bool in_enum_order() {
    for (size_t i = 0; i < std::size(kFamilies); ++i)
        if (static_cast<size_t>(kFamilies[i].id) != i)
            return false;
    return true;
}
static_assert(in_enum_order(), "kFamilies must list the families in enum order");

std::string joined(const std::vector<std::string> &v) {
    std::string s;
    for (const auto &x : v)
        s += (s.empty() ? "`" : ", `") + x + "`";
    return s;
}

// The values an enumerated label takes, from the model's own enums.
std::string label_values(std::string_view label) {
    std::vector<std::string> v;
    if (label == "lock")
        for (int i = 0; i < kLockModes; ++i)
            v.emplace_back(to_string(static_cast<LockMode>(i)));
    else if (label == "reason")
        for (int i = 0; i < kWriteReasons; ++i)
            v.emplace_back(to_string(static_cast<WriteReason>(i)));
    else if (label == "io_mode" || label == "to")
        for (size_t i = 0; i < kModeKinds; ++i)
            v.push_back(io_mode_label(static_cast<ModeKind>(i)));
    else if (label == "cause")
        for (int i = 0; i <= static_cast<int>(TransitionCause::Counters); ++i)
            v.push_back(snake_label(to_string(static_cast<TransitionCause>(i))));
    else if (label == "how")
        for (HolderHow h : {HolderHow::Open, HolderHow::Mmap})
            v.emplace_back(to_string(h));
    else if (label == "handler") {
        for (std::string_view p : kHttpPaths)
            v.emplace_back(p);
        v.emplace_back("other");
    } else if (label == "map")
        v = {"inode", "task", "req"};
    else if (label == "backend")
        v = {"trampoline", "tracepoint"};
    return joined(v);
}

struct LabelDoc {
    std::string_view name, meaning;
};
constexpr LabelDoc kLabels[] = {
    {"mount", "The FUSE mount point (/proc/self/mountinfo); `dev:MAJOR:MINOR` for a device "
              "that is no longer mounted"},
    {"lock", "The i_rwsem mode a writer took"},
    {"reason", "Why: `shared` for the shared lock, else the kernel's reason for exclusive "
               "(kernel-fuse-iomode.md)"},
    {"io_mode", "The inode's IO mode"},
    {"cause", "What the model saw that changed the mode"},
    {"to", "The IO mode after the transition"},
    {"how", "How the holder keeps cache mode: a caching open, or a shared mmap"},
    {"path", "The inode's path: from an open descriptor, else the kernel's name for it when "
             "fusescope first saw it opened (a rename since is not seen); empty until known"},
    {"ino", "The inode number"},
    {"comm", "The process's command name (the task's comm, at most 15 characters)"},
    {"exe", "The process's executable; empty when not known"},
    {"cgroup", "The process's cgroup v2 path; empty when not known"},
    {"unit", "The systemd unit its cgroup path names; empty for none"},
    {"container", "The container id (first 12 hex digits) its cgroup path names; empty for none"},
    {"role", "A hook plan role, as `fusescope doctor` lists them, in snake_case"},
    {"map", "The BPF map that was full"},
    {"program", "One of fusescope's BPF programs (named `fs_*`)"},
    {"version", "fusescope's version"},
    {"revision", "The source revision it was built from (`git describe`)"},
    {"backend", "The BPF backend this fusescope runs"},
    {"kernel", "The running kernel's release (`uname -r`)"},
    {"handler", "The HTTP path asked for"},
    {"code", "The HTTP status code answered"},
};

constexpr std::string_view kGroupTitles[] = {
    "Per mount",
    "Per inode: the top-K inodes by writers' lock wait (`--per-inode-top`, default 5)",
    "fusescope itself",
    "The process (named as the Prometheus client libraries name them)",
};

std::string_view type_name(prometheus::MetricType t) {
    switch (t) {
    case T::Counter:
        return "counter";
    case T::Gauge:
        return "gauge";
    case T::Histogram:
        return "histogram";
    case T::Summary:
        return "summary";
    case T::Untyped:
        return "untyped";
    }
    return "?";
}

} // namespace

std::span<const FamilyDef> family_defs() { return kFamilies; }
const FamilyDef &family_def(Family f) { return kFamilies[static_cast<size_t>(f)]; }

std::vector<std::string_view> label_names(const FamilyDef &f) {
    std::vector<std::string_view> out;
    for (size_t pos = 0; pos < f.labels.size();) {
        size_t sp = f.labels.find(' ', pos);
        if (sp == std::string_view::npos)
            sp = f.labels.size();
        out.push_back(f.labels.substr(pos, sp - pos));
        pos = sp + 1;
    }
    return out;
}

std::string snake_label(std::string_view s) {
    std::string r(s);
    std::replace(r.begin(), r.end(), '-', '_');
    return r;
}

std::string io_mode_label(ModeKind k) {
    return k == ModeKind::NotAvailable ? "not_available" : std::string(to_string(k));
}

std::string metrics_reference_markdown() {
    std::string out =
        "# fusescope metrics reference\n\n"
        "Every metric family `fusescope export` serves. Generated from the exporter's family\n"
        "table (`src/views/export_families.cpp`) by `fusescope export --metrics-reference`;\n"
        "a unit test fails when this file and the table differ (regenerate it with\n"
        "`build/src/cli/fusescope export --metrics-reference > docs/metrics.md`).\n\n"
        "Cardinality is bounded by design: per mount a fixed set of label values; per inode\n"
        "only the top-K inodes by lock wait (`--per-inode-top K`, default 5), each with at most\n"
        "8 holder series; no pid label anywhere. Series of an inode vanish when it leaves the\n"
        "top-K; a holder's series vanish when it releases.\n";
    for (size_t g = 0; g < std::size(kGroupTitles); ++g) {
        out += fmt::format("\n## {}\n\n| family | type | labels | meaning |\n|---|---|---|---|\n",
                           kGroupTitles[g]);
        for (const FamilyDef &f : kFamilies) {
            if (static_cast<size_t>(f.group) != g)
                continue;
            std::string labels;
            for (std::string_view l : label_names(f))
                labels += (labels.empty() ? "`" : ", `") + std::string(l) + "`";
            out += fmt::format("| `{}` | {} | {} | {}{}{} |\n", f.name, type_name(f.type), labels,
                               f.help, f.note.empty() ? "" : ". ", f.note);
        }
    }
    out += "\n## Labels\n\n| label | values | meaning |\n|---|---|---|\n";
    for (const LabelDoc &l : kLabels)
        out += fmt::format("| `{}` | {} | {} |\n", l.name, label_values(l.name), l.meaning);
    return out;
}

} // namespace fusescope
