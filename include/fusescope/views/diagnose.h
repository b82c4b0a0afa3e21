// `fusescope diagnose`: turns a Snapshot of the state model plus facts about
// the environment into ranked findings, and renders them as text or JSON.
// Pure logic (no root, no BPF): src/views/diagnose_findings.cpp; the command
// itself (session, watching, --path) is src/views/diagnose.cpp.
//
// ---------------------------------------------------------------------------
// JSON report schema (`fusescope diagnose --json`), schema_version 1.
// Stable: fields are only ever added; kinds and severities are never renamed.
//
// {
//   "schema_version": 1,
//   "healthy": true|false,        // false iff a finding has severity
//                                 // "critical" or "warning" (exit status 5)
//   "window_s": 10.0,             // seconds watched (0: census only)
//   "environment": {
//     "kernel": "6.18.44-...",    // uname -r
//     "io_modes": true,           // kernel has fs/fuse/iomode.c (6.9+)
//     "backend": "tracepoint",    // or "trampoline"
//     "roles": [ {"role": "write-lock", "available": true,
//                 "hooks": "...", "note": "..."} ],
//     "mount": "/mnt/db" | null,  // --mount
//     "path": "/mnt/db/f" | null, // --path
//     "pid": 1234 | null,         // --pid
//     "events_lost": 0            // ring-buffer events fusescope lost
//   },
//   "findings": [                 // ranked: most waiting cost first
//     {
//       "kind": "cache_io_mode",  // see the kinds below
//       "severity": "critical",   // "critical" | "warning" | "info" | "ok"
//       "title": "one line",      // human headline
//       "inode": {"dev": "0:52", "ino": 1234, "path": "/mnt/db/f",
//                 "path_source": "fd"|"kernel"|"walk"|"argument"|"",
//                 "path_may_be_stale": false} | null,
//                                 // null for findings about the environment;
//                                 // path "" when unknown; "kernel": the name at
//                                 // the inode's first open (a rename since is
//                                 // not seen), so path_may_be_stale is true
//       "culprits": [             // one per program (comm + executable)
//                    {"pid": 4242, "comm": "indexer",   // pid: its first process
//                     "exe": "/usr/bin/indexer",        // "" unknown
//                     "how": "open"|"mmap"|"open+mmap",
//                     "holding": true,   // one of them still holds it
//                     "held_s": 3.1,     // its holds added up, each one from
//                                        // its start to its own release (so far)
//                     "since_at_least": false, // true: held before fusescope
//                                        // started, held_s is a minimum
//                     "processes": 35, "pids": [4242, ...], // the first few
//                     "holds": 35,       // caching opens / shared mmaps
//                     "entered_cache_mode": 35, // holds that put it in cache mode
//                     "longest_held_s": 0.2,
//                     "cost_ns": 12,     // its share of cost_ns, by hold time
//                     "cgroup": "/system.slice/x.service", // "" unknown
//                     "unit": "x.service", "container": "", "container_runtime": ""} ],
//       "writers": [ {"comm", "exe", "processes", "pids", "opens", "cgroup", "unit",
//                     "container", "container_runtime"} ], // programs that opened
//                                 // the inode for writing (inode findings only)
//       "evidence": {"name": number, ...}, // kind-specific numbers; times
//                                 // are *_ns (integers) or *_s (seconds)
//       "cost_ns": 123,           // the waiting this finding caused (rank key)
//       "advice": ["concrete remedy", ...]
//     }
//   ]
// }
//
// Finding kinds (kind → severity → evidence keys):
//   cache_io_mode      critical|warning|info  Direct-IO writers serialized
//       because the inode is in cache IO mode (a caching open or a shared
//       mmap). culprits: the holders. evidence: writes, exclusive_writes,
//       cache_mode_writes (incl. fallbacks attributed to it), wait_ns,
//       holders, mode_changes. info when nobody wrote during the window.
//   no_parallel_flag   critical|warning   The server did not grant
//       FOPEN_PARALLEL_DIRECT_WRITES. evidence: writes, no_parallel_flag_writes,
//       shared_writes, wait_ns.
//   past_eof           critical|warning   Writes ending past EOF take the
//       exclusive lock. evidence: writes, past_eof_writes, wait_ns.
//   append             critical|warning   O_APPEND/RWF_APPEND writes take the
//       exclusive lock. evidence: writes, append_writes, wait_ns.
//   fallback           warning  Writers tried the shared lock and had to
//       retake it exclusive, cause not attributable. evidence: fallback_writes.
//   drain_wait         critical|warning   Caching opens/mmaps blocked until
//       parallel direct writers drained. culprits: the blocked openers.
//       evidence: drain_waits, drain_wait_ns, max_wait_ns.
//   kernel_no_io_modes info     Kernel < 6.9: no IO modes; cache-mode
//       serialization cannot happen nor be observed. evidence: none.
//   kernel_cache_mode_bug warning|info  Kernel 6.9–6.11 (6.10 < 6.10.13):
//       cache IO mode does not force the exclusive lock (fixed in 6.12 by
//       2f3d8ff45798). warning when an inode was seen in cache mode.
//   backend_limits     info     fusescope runs with a weaker backend or
//       some roles are missing/approximate; what the report may miss.
//       evidence: roles_missing, roles_approximate.
//   events_lost        info     fusescope lost ring-buffer events; counts in
//       the report are lower bounds. evidence: events_lost.
//   server_not_answering critical  The FUSE server did not answer a lookup of
//       --path or --mount within the time limit: fusescope stopped waiting
//       and reports instead. inode null. evidence: waiting (requests the
//       kernel waits on, /sys/fs/fuse/connections/N/waiting), waited_ns,
//       connection (N).
//   healthy            ok       Nothing slows the writers down; the numbers
//       that show it. inode null. evidence: files, writes, shared_writes,
//       exclusive_writes, wait_ns, window_s.
// Severity: critical = the finding's writes are at least half of the inode's
// writes and they waited, or it cost at least 1 s of waiting; warning = a real problem of smaller
// weight; info = context that does not by itself mean something is wrong; ok = healthy.
// ---------------------------------------------------------------------------
#pragma once

#include "fusescope/backend/hook_plan.h"
#include "fusescope/model/snapshot.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fusescope::diagnose {

// What the report needs to know about where it ran (filled from the
// Session's KernelFacts and HookPlan by diagnose.cpp; tests construct it).
struct Environment {
    std::string kernel;          // uname -r
    bool io_modes = true;        // KernelOffer::has_iomodes
    std::string backend;         // "tracepoint" / "trampoline"
    std::vector<RolePlan> roles; // the HookPlan's
    double window_s = 0;         // seconds watched
    std::string mount;           // --mount ("" if none)
    std::string path;            // --path ("" if none)
    std::optional<uint32_t> pid;
    std::optional<InodeKey> only; // --path resolved: only this inode
};

enum class Severity : uint8_t { Ok = 0, Info = 1, Warning = 2, Critical = 3 };
std::string_view to_string(Severity s); // "ok", "info", "warning", "critical"

// A program (comm plus executable) that held the inode in cache mode: its processes
// grouped (the model's HolderProgram), each hold timed to its own release.
struct Culprit {
    uint32_t pid = 0; // the first of its processes
    std::string comm;
    std::string exe; // "" unknown
    std::string how; // "open" | "mmap" | "open+mmap"
    bool holding = false;
    double held_s = 0; // its holds' time added up (non-overlapping per process)
    bool since_at_least = false;
    double longest_held_s = 0;
    uint32_t processes = 1;
    std::vector<uint32_t> pids; // the first few
    uint64_t holds = 0, entered_cache = 0;
    uint64_t cost_ns = 0; // its share of the finding's cost, by hold time
    Workload where;
};

struct Number {
    std::string key;
    bool is_int = true;
    uint64_t u = 0;
    double d = 0;
};

struct InodeRef {
    uint32_t dev = 0; // kernel s_dev
    uint64_t ino = 0;
    std::string path;
    PathSource path_source = PathSource::None;
};

struct Finding {
    std::string kind;
    Severity severity = Severity::Info;
    std::string title;
    std::optional<InodeRef> inode;
    std::vector<Culprit> culprits;
    std::vector<WriterProgram> writers; // of the inode (inode findings)
    std::vector<Number> evidence;
    uint64_t cost_ns = 0;
    std::vector<std::string> explanation; // sentences for the text report
    std::vector<std::string> advice;

    const Number *ev(std::string_view key) const;
};

struct Report {
    Environment env;
    uint64_t events_lost = 0;
    bool healthy = true;
    std::vector<Finding> findings; // ranked
};

struct KernelVersion {
    int major = 0, minor = 0, patch = 0;
    auto operator<=>(const KernelVersion &) const = default;
};
// "6.10.12-200.fc40.x86_64" -> {6,10,12}; nullopt when unparsable.
std::optional<KernelVersion> parse_kernel_release(std::string_view release);
// 6.9.x, 6.10.0..6.10.12, 6.11.x: the FUSE_I_CACHE_IO_MODE check was a no-op.
bool has_cache_mode_lock_bug(const KernelVersion &v);

// The findings, ranked (most waiting cost first; then severity).
Report build_report(const Snapshot &snap, const Environment &env);

std::string render_text(const Report &r, size_t width = 80);
std::string render_json(const Report &r); // the schema above, pretty-printed

} // namespace fusescope::diagnose
