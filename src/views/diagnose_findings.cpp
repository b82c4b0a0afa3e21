// Pure logic of `fusescope diagnose`: Snapshot + Environment -> ranked
// findings -> text or JSON (schema: include/fusescope/views/diagnose.h).
#include "fusescope/views/diagnose.h"
#include "fusescope/views/format.h"
#include "fusescope/views/json_out.h"
#include "fusescope/views/text_escape.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <map>

namespace fusescope::diagnose {

std::string_view to_string(Severity s) {
    switch (s) {
    case Severity::Ok:
        return "ok";
    case Severity::Info:
        return "info";
    case Severity::Warning:
        return "warning";
    case Severity::Critical:
        return "critical";
    }
    return "info";
}

const Number *Finding::ev(std::string_view key) const {
    for (const auto &n : evidence)
        if (n.key == key)
            return &n;
    return nullptr;
}

std::optional<KernelVersion> parse_kernel_release(std::string_view rel) {
    KernelVersion v;
    int *parts[3] = {&v.major, &v.minor, &v.patch};
    const char *p = rel.data();
    const char *end = rel.data() + rel.size();
    for (int i = 0; i < 3; ++i) {
        auto [next, ec] = std::from_chars(p, end, *parts[i]);
        if (ec != std::errc()) {
            if (i < 2)
                return std::nullopt; // need at least major.minor
            break;
        }
        p = next;
        if (i < 2) {
            if (p == end || *p != '.') {
                if (i == 0)
                    return std::nullopt;
                break; // "6.10-rc1": patch 0
            }
            ++p;
        }
    }
    return v;
}

bool has_cache_mode_lock_bug(const KernelVersion &v) {
    if (v.major != 6)
        return false;
    if (v.minor == 9 || v.minor == 11)
        return true;
    return v.minor == 10 && v.patch < 13;
}

namespace {

std::string dur(uint64_t ns) { return format_ns(static_cast<double>(ns), Spacing::Spaced); }

std::string secs(double s) { return fmt::format("{:.1f} s", s); }

std::string pct(uint64_t part, uint64_t whole) {
    if (whole == 0)
        return "0%";
    return fmt::format("{:.0f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

Number num(std::string key, uint64_t v) { return Number{std::move(key), true, v, 0}; }
Number numf(std::string key, double v) { return Number{std::move(key), false, 0, v}; }

uint64_t reason_writes(const WriteStats &s, WriteReason r) {
    return s.writes[static_cast<size_t>(r)];
}

InodeRef ref_of(const InodeView &iv) {
    return InodeRef{iv.key.dev, iv.key.ino, iv.path, iv.path_source};
}

// The inode for a sentence, escaped (names are untrusted: text_escape.h).
std::string where(const InodeView &iv) {
    if (!iv.path.empty())
        return safe_name(iv.path);
    std::string s = fmt::format("inode {} on {}", iv.key.ino, dev_string(iv.key.dev));
    if (!iv.mount_point.empty())
        s += fmt::format(" ({})", safe_name(iv.mount_point));
    return s;
}

bool touched_cache_mode(const InodeView &iv) {
    if (!iv.holder_programs.empty() || iv.mode.kind == ModeKind::Cached || !iv.holders.empty())
        return true;
    if (reason_writes(iv.total, WriteReason::CacheIoMode) > 0)
        return true;
    return std::any_of(iv.transitions.begin(), iv.transitions.end(),
                       [](const Transition &t) { return t.to.kind == ModeKind::Cached; });
}

double secs_of(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

// The programs that held the inode in cache mode (the model groups their processes);
// where no holder was seen, the processes the mode transitions name.
std::vector<Culprit> cache_culprits(const InodeView &iv, uint64_t now_ns, uint64_t cost_ns) {
    std::vector<Culprit> out;
    std::vector<HolderProgram> progs = iv.holder_programs;
    split_cost_by_hold(progs, cost_ns);
    for (const auto &p : progs) {
        Culprit c;
        c.pid = p.program.pids.empty() ? 0 : p.program.pids.front();
        c.comm = p.program.comm;
        c.exe = p.program.exe;
        c.how = p.how;
        c.holding = p.holding_now > 0 && iv.mode.kind == ModeKind::Cached;
        c.held_s = secs_of(p.total_held_ns);
        c.longest_held_s = secs_of(p.longest_held_ns);
        c.since_at_least = p.since_at_least;
        c.processes = p.program.processes;
        c.pids = p.program.pids;
        c.holds = p.holds;
        c.entered_cache = p.entered_cache;
        c.cost_ns = p.cost_ns;
        c.where = p.program.where;
        out.push_back(std::move(c));
    }
    if (!out.empty())
        return out;
    const auto &tr = iv.transitions;
    for (size_t i = 0; i < tr.size(); ++i) {
        const Transition &t = tr[i];
        if (t.to.kind != ModeKind::Cached || t.from.kind == ModeKind::Cached || t.pid == 0)
            continue;
        if (t.cause != TransitionCause::Open && t.cause != TransitionCause::Mmap &&
            t.cause != TransitionCause::DrainWait)
            continue;
        const std::string how = t.cause == TransitionCause::Mmap ? "mmap" : "open";
        bool known = std::any_of(out.begin(), out.end(),
                                 [&](const Culprit &c) { return c.pid == t.pid && c.how == how; });
        if (known)
            continue;
        uint64_t end = now_ns;
        bool still = true;
        for (size_t j = i + 1; j < tr.size(); ++j)
            if (tr[j].to.kind != ModeKind::Cached) {
                end = tr[j].ts_ns;
                still = false;
                break;
            }
        Culprit c;
        c.pid = t.pid;
        c.comm = t.comm;
        c.how = how;
        c.holding = still && iv.mode.kind == ModeKind::Cached;
        c.held_s = end > t.ts_ns ? secs_of(end - t.ts_ns) : 0;
        c.longest_held_s = c.held_s;
        c.pids = {t.pid};
        c.holds = c.entered_cache = 1;
        out.push_back(std::move(c));
    }
    if (out.size() == 1)
        out.front().cost_ns = cost_ns;
    return out;
}

// "rg (/usr/bin/rg)" and where it runs, escaped for text.
std::string program_text(const std::string &comm, const std::string &exe, const Workload &w) {
    std::string s = safe_name(comm.empty() ? "?" : comm);
    if (!exe.empty())
        s += " (" + safe_name(exe) + ")";
    if (w.known() && w.cgroup != "/")
        s += " [" + safe_name(w.label()) + "]";
    return s;
}

std::string pids_text(const std::vector<uint32_t> &pids, uint32_t processes) {
    std::string s;
    for (uint32_t p : pids)
        s += (s.empty() ? "" : ", ") + std::to_string(p);
    if (processes > pids.size())
        s += ", ...";
    return s;
}

std::string culprit_text(const Culprit &c) {
    std::string s = program_text(c.comm, c.exe, c.where);
    s += c.processes > 1
             ? fmt::format(", {} processes (pids {})", c.processes, pids_text(c.pids, c.processes))
             : fmt::format(", pid {}", c.pid);
    s += c.how == "mmap"   ? " via a shared mmap"
         : c.how == "open" ? " via a caching open"
                           : " via caching opens and shared mmaps";
    if (c.holds > 1)
        s += fmt::format(": {} holds, {} of them put it in cache mode, {}{} in total, longest {}",
                         c.holds, c.entered_cache, c.since_at_least ? "at least " : "",
                         secs(c.held_s), secs(c.longest_held_s));
    else if (c.held_s > 0)
        s += fmt::format(", {} for {}{}", c.holding ? "holding it" : "held it",
                         c.since_at_least ? "at least " : "", secs(c.held_s));
    if (c.holding)
        s += c.holds > 1 ? "; still holding it" : (c.held_s > 0 ? "" : ", holding it");
    else
        s += " (released)";
    if (c.cost_ns > 0)
        s += fmt::format("; its share of the wait: {}", dur(c.cost_ns));
    return s;
}

// The programs that opened the inode for writing, for the findings' text and JSON.
std::vector<std::string> writers_text(const InodeView &iv) {
    std::vector<std::string> out;
    for (const auto &w : iv.writers)
        out.push_back(fmt::format(
            "Written by {}{}.", program_text(w.program.comm, w.program.exe, w.program.where),
            w.program.processes > 1
                ? fmt::format(", {} processes", w.program.processes)
                : fmt::format(", pid {}", w.program.pids.empty() ? 0u : w.program.pids.front())));
    return out;
}

Severity weight(uint64_t n, uint64_t total, uint64_t cost) {
    const bool most = n * 2 >= total && cost > 0;
    return most || cost >= 1'000'000'000ull ? Severity::Critical : Severity::Warning;
}

void add_cache_mode(const InodeView &iv, uint64_t now_ns, uint64_t fallback_writes,
                    bool pid_filtered, std::vector<Finding> &out) {
    const WriteStats &s = iv.total;
    const uint64_t writes = s.total_writes();
    const uint64_t n = reason_writes(s, WriteReason::CacheIoMode) + fallback_writes;
    const bool cached_now = iv.mode.kind == ModeKind::Cached;
    if (n == 0 && !cached_now && iv.holders.empty() && iv.holder_programs.empty())
        return;
    Finding f;
    f.kind = "cache_io_mode";
    f.inode = ref_of(iv);
    f.cost_ns = s.wait_share_ns(n);
    f.culprits = cache_culprits(iv, now_ns, f.cost_ns);
    if (n > 0) {
        f.severity = weight(n, writes, f.cost_ns);
        f.title = "Cache IO mode forced direct writes onto the exclusive lock";
    } else {
        f.severity = Severity::Info;
        f.title = cached_now ? "File is in cache IO mode (no direct writes seen)"
                             : "File was put in cache IO mode (no direct writes seen then)";
    }
    f.evidence = {num("writes", writes),
                  num("exclusive_writes", s.exclusive_writes()),
                  num("cache_mode_writes", n),
                  num("wait_ns", f.cost_ns),
                  num("holders", iv.holders.size()),
                  num("holder_programs", f.culprits.size()),
                  num("mode_changes", s.mode_changes)};
    f.explanation.push_back(fmt::format("{}: {} (now {}).", where(iv),
                                        cached_now ? "in cache IO mode" : "was in cache IO mode",
                                        to_string(iv.mode)));
    if (f.culprits.empty()) {
        f.explanation.push_back(iv.holders_unknown
                                    ? "The kernel counts caching users fusescope could not name."
                                    : "Who put it there was not seen (it ended before a census).");
        if (pid_filtered)
            f.explanation.push_back(
                "--pid hides other processes' opens and maps: run without --pid to see "
                "who holds the file.");
    } else {
        for (const auto &c : f.culprits)
            f.explanation.push_back("Cached by " + culprit_text(c) + ".");
    }
    if (n > 0)
        f.explanation.push_back(
            fmt::format("{} of {} direct writes ({}) took the exclusive inode lock because "
                        "of it; writers waited {} for the lock.",
                        n, writes, pct(n, writes), dur(f.cost_ns)));
    else
        f.explanation.push_back(
            "Any direct-IO writer of this file is serialized while it stays cached.");
    std::string who = "the holder";
    if (!f.culprits.empty()) {
        const Culprit &c = f.culprits.front();
        who = program_text(c.comm, c.exe, c.where);
        who += c.processes > 1 ? fmt::format(" ({} processes)", c.processes)
                               : fmt::format(" (pid {})", c.pid);
    }
    f.advice.push_back(
        fmt::format("Stop or reconfigure {} so it does not map or open this file through the "
                    "page cache while the database writes.",
                    who));
    f.advice.push_back(
        "Make readers open the file with O_DIRECT (an O_DIRECT open on a direct-io file does not "
        "enter cache mode) and close caching handles as soon as possible.");
    f.advice.push_back(
        "Server side: FUSE_DIRECT_IO_ALLOW_MMAP lets direct-io files be mmapped, but every "
        "shared mmap still puts the inode in cache mode; refusing mmap (no ALLOW_MMAP) keeps "
        "writers parallel at the cost of failing mmap callers.");
    out.push_back(std::move(f));
}

void add_reason(const InodeView &iv, WriteReason r, uint64_t extra, std::vector<Finding> &out) {
    const WriteStats &s = iv.total;
    const uint64_t writes = s.total_writes();
    const uint64_t n = reason_writes(s, r) + extra;
    if (n == 0)
        return;
    Finding f;
    f.inode = ref_of(iv);
    f.cost_ns = s.wait_share_ns(n);
    f.severity = weight(n, writes, f.cost_ns);
    const std::string head =
        fmt::format("{}: {} of {} writes ({})", where(iv), n, writes, pct(n, writes));
    switch (r) {
    case WriteReason::NoParallelFlag:
        f.kind = "no_parallel_flag";
        f.title = "The server does not grant FOPEN_PARALLEL_DIRECT_WRITES";
        f.evidence = {num("writes", writes), num("no_parallel_flag_writes", n),
                      num("shared_writes", s.shared_writes()), num("wait_ns", f.cost_ns)};
        f.explanation.push_back(head +
                                " were opened without FOPEN_PARALLEL_DIRECT_WRITES, so every write "
                                "takes the exclusive inode lock.");
        if (s.shared_writes() == 0)
            f.explanation.push_back(
                "No write on this file ever took the shared lock: the server never "
                "grants the flag here.");
        f.advice.push_back(
            "Have the FUSE server set FOPEN_PARALLEL_DIRECT_WRITES together with "
            "FOPEN_DIRECT_IO in its open/create replies (libfuse: fi->parallel_direct_writes = 1, "
            "fi->direct_io = 1).");
        f.advice.push_back(
            "Check the server's mount options or version: many servers only grant it when "
            "direct IO is enabled for the file.");
        break;
    case WriteReason::PastEof:
        f.kind = "past_eof";
        f.title = "Writes past EOF take the exclusive lock";
        f.evidence = {num("writes", writes), num("past_eof_writes", n), num("wait_ns", f.cost_ns)};
        f.explanation.push_back(head +
                                " ended past end-of-file, which the kernel only allows under the "
                                "exclusive inode lock.");
        f.advice.push_back(
            "Preallocate the file before the writers start: fallocate(fd, 0, 0, size) or "
            "posix_fallocate(), or at least ftruncate() it to the final size.");
        f.advice.push_back(
            "Grow the file in large steps (e.g. extend by 64 MiB when nearing EOF) instead of "
            "one write at a time.");
        break;
    case WriteReason::Append:
        f.kind = "append";
        f.title = "Appending writes take the exclusive lock";
        f.evidence = {num("writes", writes), num("append_writes", n), num("wait_ns", f.cost_ns)};
        f.explanation.push_back(
            head + " used O_APPEND/RWF_APPEND; an append needs the final EOF and always "
                   "takes the exclusive inode lock.");
        f.advice.push_back(
            "Write at explicit offsets with pwrite() into a preallocated region instead of "
            "O_APPEND (e.g. reserve offsets with an atomic counter).");
        f.advice.push_back(
            "Or accept the serialization for this file (a log) and keep it apart from files "
            "that need parallel writes.");
        break;
    case WriteReason::NoDirectIoOpen:
        f.kind = "no_direct_io_open";
        f.title = "O_DIRECT writes on opens without FOPEN_DIRECT_IO take the exclusive lock";
        f.evidence = {num("writes", writes), num("no_direct_io_open_writes", n),
                      num("wait_ns", f.cost_ns)};
        f.explanation.push_back(
            head + " used O_DIRECT on a file the server opened without FOPEN_DIRECT_IO: the "
                   "kernel's page-cache write path takes the exclusive inode lock for every "
                   "write, and the kernel drops FOPEN_PARALLEL_DIRECT_WRITES on such opens.");
        f.advice.push_back(
            "Have the FUSE server reply FOPEN_DIRECT_IO together with "
            "FOPEN_PARALLEL_DIRECT_WRITES to the opens of files written with O_DIRECT "
            "(libfuse: fi->direct_io = 1, fi->parallel_direct_writes = 1; many servers have a "
            "direct_io mount option).");
        break;
    case WriteReason::Buffered:
        f.kind = "buffered";
        f.title = "Buffered writes take the exclusive lock";
        f.evidence = {num("writes", writes), num("buffered_writes", n), num("wait_ns", f.cost_ns)};
        f.explanation.push_back(head + " went through the page cache, which always takes the "
                                       "exclusive inode lock.");
        f.advice.push_back("Write files that need parallel writers with O_DIRECT on a server "
                           "that grants FOPEN_DIRECT_IO and FOPEN_PARALLEL_DIRECT_WRITES.");
        break;
    case WriteReason::Passthrough:
        f.kind = "passthrough";
        f.title = "Writes to a passthrough file take the exclusive lock";
        f.evidence = {num("writes", writes), num("passthrough_writes", n),
                      num("wait_ns", f.cost_ns)};
        f.explanation.push_back(
            head + " went to a passthrough (FOPEN_PASSTHROUGH) backing file, which the kernel "
                   "writes under the exclusive inode lock whatever the open flags.");
        f.advice.push_back("For parallel writers, open the file with FOPEN_DIRECT_IO and "
                           "FOPEN_PARALLEL_DIRECT_WRITES instead of passthrough.");
        break;
    case WriteReason::Fallback:
        f.kind = "fallback";
        f.severity = Severity::Warning;
        f.title = "Writers retook the lock exclusive after trying shared";
        f.evidence = {num("writes", writes), num("fallback_writes", n), num("wait_ns", f.cost_ns)};
        f.explanation.push_back(
            head + " tried the shared lock, found the file grown or a caching open racing "
                   "in, and waited again for the exclusive lock.");
        f.advice.push_back(
            "Preallocate the file (fallocate) and avoid caching opens or shared mmaps of it.");
        break;
    default:
        return;
    }
    out.push_back(std::move(f));
}

bool role_available(const Environment &env, Role r) {
    return std::any_of(env.roles.begin(), env.roles.end(),
                       [&](const RolePlan &p) { return p.role == r && p.available; });
}

// Writes counted but not classified: async writes another task sent (the
// connection's background queue was full), so their lock mode was not seen.
void add_unclassified(const InodeView &iv, std::vector<Finding> &out) {
    const WriteStats &s = iv.total;
    const uint64_t n = s.unclassified_writes(), writes = s.total_writes();
    if (n == 0)
        return;
    const uint64_t excl = reason_writes(s, WriteReason::UnclassifiedExclusive);
    Finding f;
    f.kind = "unclassified_writes";
    f.severity = Severity::Warning;
    f.inode = ref_of(iv);
    f.title = "Some writes' lock mode could not be seen";
    f.evidence = {num("writes", writes), num("unclassified_writes", n),
                  num("unclassified_exclusive_writes", excl),
                  num("unknown_lock_bytes", s.bytes[static_cast<size_t>(LockMode::Unknown)])};
    f.explanation.push_back(fmt::format(
        "{}: {} of {} writes ({}) were async writes that waited in the connection's full "
        "background queue and were sent by another task, after their writer had let go of "
        "the lock{}. They are counted, but not as shared or exclusive.",
        where(iv), n, writes, pct(n, writes),
        excl ? fmt::format(" ({} of them extend the file, so they were exclusive)", excl) : ""));
    f.explanation.push_back(
        "A full background queue (max_background requests in flight) also means the server "
        "is not keeping up with the writers.");
    f.advice.push_back("Let the server raise max_background in its INIT reply (libfuse: "
                       "conn->max_background) so async writers do not queue behind it.");
    f.advice.push_back("Where the kernel allows trampolines (fusescope doctor), the trampoline "
                       "backend classifies every write in its writer.");
    out.push_back(std::move(f));
}

// Writes this backend cannot see on this inode: buffered writes under the
// writeback cache (only their writeback requests show) and passthrough writes.
void add_not_visible(const InodeView &iv, const Environment &env, std::vector<Finding> &out) {
    const WriteStats &s = iv.total;
    if (s.writeback_requests > 0 && !role_available(env, Role::WriteWriteback)) {
        Finding f;
        f.kind = "writes_not_visible";
        f.severity = Severity::Warning;
        f.inode = ref_of(iv);
        f.title = "Buffered writes under the writeback cache were not seen";
        f.evidence = {num("writeback_requests", s.writeback_requests),
                      num("writeback_bytes", s.writeback_bytes), num("writes", s.total_writes())};
        f.explanation.push_back(fmt::format(
            "{}: the server uses the writeback cache, so writers only dirty pages (under the "
            "exclusive inode lock); {} FUSE_WRITE requests ({} bytes) came later from "
            "writeback. The {} backend cannot see those writers: their writes are not in the "
            "counts.",
            where(iv), s.writeback_requests, s.writeback_bytes, env.backend));
        f.advice.push_back("Run fusescope where trampolines load to count these writes (fusescope "
                           "doctor shows the write-writeback role).");
        out.push_back(std::move(f));
    }
    const bool passthrough = iv.passthrough_files > 0 || iv.mode.kind == ModeKind::Passthrough;
    if (passthrough && !role_available(env, Role::WritePassthrough)) {
        Finding f;
        f.kind = "writes_not_visible";
        f.severity = Severity::Warning;
        f.inode = ref_of(iv);
        f.title = "Writes to a passthrough file were not seen";
        f.evidence = {num("passthrough_files", iv.passthrough_files),
                      num("writes", s.total_writes())};
        f.explanation.push_back(fmt::format(
            "{}: the file is open in passthrough mode; its writes go to the backing file "
            "without a FUSE request, which the {} backend cannot see (they take the exclusive "
            "inode lock; lock waits on it are counted).",
            where(iv), env.backend));
        f.advice.push_back("Run fusescope where trampolines load to count passthrough writes.");
        out.push_back(std::move(f));
    }
}

void add_drain(const InodeView &iv, std::vector<Finding> &out) {
    const uint64_t waits = std::max(iv.total.drain_waits, iv.drain_events);
    const uint64_t wait_ns = std::max(iv.total.drain_wait_ns, iv.drain_events_ns);
    if (waits == 0)
        return;
    Finding f;
    f.kind = "drain_wait";
    f.inode = ref_of(iv);
    f.cost_ns = wait_ns;
    uint64_t max_ns = 0;
    std::map<uint32_t, std::pair<std::string, uint64_t>> by_pid;
    for (const auto &w : iv.last_drain_waiters) {
        max_ns = std::max(max_ns, w.wait_ns);
        auto &e = by_pid[w.pid];
        e.first = w.comm;
        e.second += w.wait_ns;
    }
    for (const auto &[pid, e] : by_pid) {
        Culprit c;
        c.pid = pid;
        c.comm = e.first;
        c.how = "open";
        for (const auto &h : iv.holders)
            if (h.pid == pid) {
                c.how = std::string(to_string(h.how));
                c.holding = true;
            }
        c.held_s = static_cast<double>(e.second) / 1e9; // time it spent blocked
        f.culprits.push_back(std::move(c));
    }
    f.severity = max_ns >= 1'000'000'000ull || wait_ns >= 1'000'000'000ull ? Severity::Critical
                                                                           : Severity::Warning;
    f.title = "Caching opens waited for parallel writers to drain";
    f.evidence = {num("drain_waits", waits), num("drain_wait_ns", wait_ns),
                  num("max_wait_ns", max_ns)};
    f.explanation.push_back(
        fmt::format("{}: {} caching open(s) or shared mmap(s) blocked {} in total until the "
                    "in-flight parallel direct writes finished.",
                    where(iv), waits, dur(wait_ns)));
    for (const auto &c : f.culprits)
        f.explanation.push_back(fmt::format("Blocked: pid {} ({}) for {}.", c.pid,
                                            safe_name(c.comm),
                                            dur(static_cast<uint64_t>(c.held_s * 1e9))));
    f.advice.push_back(
        "Open the file with O_DIRECT in that process, or avoid mmap/buffered access to a file "
        "that is written in parallel.");
    f.advice.push_back(
        "If the caching access is needed, schedule it when the writers are idle: it waits for "
        "them and then serializes them while it holds the file.");
    out.push_back(std::move(f));
}

void add_environment(const Snapshot &snap, const Environment &env, bool saw_cache_mode,
                     std::vector<Finding> &out) {
    auto kv = parse_kernel_release(env.kernel);
    if (!env.io_modes || !snap.io_modes_available) {
        Finding f;
        f.kind = "kernel_no_io_modes";
        f.severity = Severity::Info;
        f.title = "Kernel has no FUSE IO modes (older than 6.9)";
        f.explanation.push_back(
            fmt::format("Kernel {} predates fs/fuse/iomode.c: caching opens and mmaps do "
                        "not serialize direct writers, and cache-mode findings cannot occur.",
                        env.kernel));
        if (kv && (kv->major < 6 || (kv->major == 6 && kv->minor < 2)))
            f.explanation.push_back(
                "Before 6.2 (6.1.110 for 6.1) every direct write takes the exclusive lock: "
                "FOPEN_PARALLEL_DIRECT_WRITES does not exist there.");
        else
            f.explanation.push_back(
                "On 6.6.8-6.8, FUSE_DIRECT_IO_ALLOW_MMAP disables parallel direct writes "
                "for the whole connection.");
        f.advice.push_back(
            "Upgrade to 6.12 or newer for parallel direct writes with a correct page-cache "
            "interlock.");
        out.push_back(std::move(f));
    } else if (kv && has_cache_mode_lock_bug(*kv)) {
        Finding f;
        f.kind = "kernel_cache_mode_bug";
        f.severity = saw_cache_mode ? Severity::Warning : Severity::Info;
        f.title = "Kernel has the 6.9-6.11 cache-mode lock bug";
        f.explanation.push_back(
            fmt::format("Kernel {} does not take the exclusive lock for direct writes while "
                        "the inode is in cache IO mode (fixed in 6.12 by 2f3d8ff45798, "
                        "6.10.13 in stable).",
                        env.kernel));
        f.explanation.push_back(
            "Writers keep running in parallel next to cached users, and a caching open can "
            "be starved waiting for them to drain; cache_io_mode counts read low.");
        f.advice.push_back("Upgrade to 6.12+ (or 6.10.13+).");
        out.push_back(std::move(f));
    }

    uint64_t missing = 0, approx = 0;
    std::vector<std::string> lines;
    for (const auto &r : env.roles) {
        if (!r.available) {
            ++missing;
            lines.push_back(fmt::format("{}: not observed{}", to_string(r.role),
                                        r.note.empty() ? "" : " (" + r.note + ")"));
        } else if (!r.note.empty()) {
            ++approx;
            lines.push_back(fmt::format("{}: {}", to_string(r.role), r.note));
        }
    }
    if (missing + approx > 0) {
        Finding f;
        f.kind = "backend_limits";
        f.severity = Severity::Info;
        f.title =
            fmt::format("fusescope runs the {} backend: some numbers are approximate", env.backend);
        f.evidence = {num("roles_missing", missing), num("roles_approximate", approx)};
        f.explanation = lines;
        f.advice.push_back(
            "Counts may be lower bounds; `fusescope doctor` explains each role. A kernel that "
            "allows fentry/fexit programs gives the exact trampoline backend.");
        out.push_back(std::move(f));
    }
    if (snap.health.prog_misses > 0) {
        Finding f;
        f.kind = "probe_misses";
        f.severity = Severity::Info;
        f.title = "the kernel skipped some of fusescope's probe runs";
        f.evidence = {num("prog_misses", snap.health.prog_misses)};
        f.explanation.push_back(fmt::format(
            "{} runs of fusescope's BPF programs were skipped by the kernel's recursion "
            "protection (a task preempted inside a probe on a preemptible kernel); "
            "up to that many writes are missing from the counts.",
            snap.health.prog_misses));
        f.advice.push_back("Counts are lower bounds by at most this number.");
        out.push_back(std::move(f));
    }
    if (snap.health.events_lost > 0) {
        Finding f;
        f.kind = "events_lost";
        f.severity = Severity::Info;
        f.title = "fusescope lost events";
        f.evidence = {num("events_lost", snap.health.events_lost)};
        f.explanation.push_back(
            fmt::format("{} ring-buffer events were lost; holders and drain waits may be "
                        "incomplete (counters are not affected).",
                        snap.health.events_lost));
        f.advice.push_back("Narrow the scope with --mount/--pid/--path.");
        out.push_back(std::move(f));
    }
}

} // namespace

Report build_report(const Snapshot &snap, const Environment &env) {
    Report rep;
    rep.env = env;
    rep.events_lost = snap.health.events_lost;
    std::vector<Finding> found;
    uint64_t files = 0, writes = 0, shared = 0, excl = 0, wait = 0;
    bool saw_cache_mode = false;
    for (const auto &iv : snap.inodes) {
        if (env.only && iv.key != *env.only)
            continue;
        const WriteStats &s = iv.total;
        if (s.total_writes() > 0)
            ++files;
        writes += s.total_writes();
        shared += s.shared_writes();
        excl += s.exclusive_writes();
        wait += s.total_wait_ns();

        const bool cache = touched_cache_mode(iv);
        saw_cache_mode = saw_cache_mode || cache;
        // A fallback is the cache mode racing in or the file growing under
        // the shared lock: give it to the cause that is evidently present.
        const uint64_t fb = reason_writes(s, WriteReason::Fallback);
        uint64_t fb_cache = 0, fb_eof = 0, fb_left = 0;
        if (fb > 0) {
            if (cache)
                fb_cache = fb;
            else if (reason_writes(s, WriteReason::PastEof) > 0)
                fb_eof = fb;
            else
                fb_left = fb;
        }
        const size_t first = found.size();
        if (cache)
            add_cache_mode(iv, snap.now_ns, fb_cache, env.pid.has_value(), found);
        add_reason(iv, WriteReason::NoParallelFlag, 0, found);
        add_reason(iv, WriteReason::PastEof, fb_eof, found);
        add_reason(iv, WriteReason::Append, 0, found);
        add_reason(iv, WriteReason::NoDirectIoOpen, 0, found);
        add_reason(iv, WriteReason::Buffered, 0, found);
        add_reason(iv, WriteReason::Passthrough, 0, found);
        if (fb_left > 0)
            add_reason(iv, WriteReason::Fallback, 0, found);
        add_unclassified(iv, found);
        add_not_visible(iv, env, found);
        add_drain(iv, found);
        const std::vector<std::string> writers = writers_text(iv);
        for (size_t i = first; i < found.size(); ++i) {
            found[i].writers = iv.writers;
            found[i].explanation.insert(found[i].explanation.end(), writers.begin(), writers.end());
        }
    }
    add_environment(snap, env, saw_cache_mode, found);

    rep.healthy = std::none_of(found.begin(), found.end(),
                               [](const Finding &f) { return f.severity >= Severity::Warning; });
    if (rep.healthy) {
        Finding f;
        f.kind = "healthy";
        f.severity = Severity::Ok;
        f.evidence = {num("files", files),          num("writes", writes),
                      num("shared_writes", shared), num("exclusive_writes", excl),
                      num("wait_ns", wait),         numf("window_s", env.window_s)};
        if (writes == 0) {
            f.title = "Healthy: no problems found";
            f.explanation.push_back(
                fmt::format("No writes were seen in {} and no file is held in cache IO mode.",
                            secs(env.window_s)));
        } else {
            f.title = "Healthy: direct writes run in parallel";
            f.explanation.push_back(fmt::format(
                "{} writes on {} file(s) in {}: {} ({}) took the shared "
                "lock, {} exclusive; writers waited {} for the lock in total.",
                writes, files, secs(env.window_s), shared, pct(shared, writes), excl, dur(wait)));
        }
        found.push_back(std::move(f));
    }
    // Problems first (by the waiting they cost), then the healthy verdict,
    // then context notes.
    auto group = [](const Finding &f) {
        return f.severity >= Severity::Warning ? 0 : f.severity == Severity::Ok ? 1 : 2;
    };
    std::stable_sort(found.begin(), found.end(), [&](const Finding &a, const Finding &b) {
        if (group(a) != group(b))
            return group(a) < group(b);
        if (a.cost_ns != b.cost_ns)
            return a.cost_ns > b.cost_ns;
        return a.severity > b.severity;
    });
    rep.findings = std::move(found);
    return rep;
}

namespace {

// Greedy word wrap; continuation lines get @indent.
void wrap(std::string &out, const std::string &text, const std::string &first,
          const std::string &indent, size_t width) {
    std::string line = first;
    bool empty = true;
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && text[i] == ' ')
            ++i;
        size_t j = text.find(' ', i);
        if (j == std::string::npos)
            j = text.size();
        std::string word = text.substr(i, j - i);
        i = j;
        if (word.empty())
            continue;
        if (!empty && line.size() + 1 + word.size() > width) {
            out += line + "\n";
            line = indent;
            empty = true;
        }
        if (!empty)
            line += ' ';
        line += word;
        empty = false;
    }
    out += line + "\n";
}

std::string upper(std::string_view s) {
    std::string u(s);
    for (auto &c : u)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return u;
}

} // namespace

std::string render_text(const Report &r, size_t width) {
    std::string out;
    const Environment &e = r.env;
    std::string head = fmt::format("fusescope diagnose: watched {} on kernel {} ({} backend)",
                                   secs(e.window_s), e.kernel, e.backend);
    if (!e.mount.empty())
        head += ", mount " + safe_name(e.mount);
    if (!e.path.empty())
        head += ", file " + safe_name(e.path);
    if (e.pid)
        head += fmt::format(", pid {}", *e.pid);
    wrap(out, head + ".", "", "  ", width);
    out += "\n";
    size_t problems = 0;
    for (const auto &f : r.findings)
        if (f.severity >= Severity::Warning)
            ++problems;
    if (r.healthy)
        out += "HEALTHY: nothing is slowing direct-IO writes down.\n\n";
    else
        wrap(out,
             fmt::format("{} problem(s) found, most costly first (wait = time writers queued on "
                         "the inode lock).",
                         problems),
             "", "", width);
    if (!r.healthy)
        out += "\n";
    int n = 0;
    for (const auto &f : r.findings) {
        ++n;
        std::string tag = f.severity == Severity::Ok ? "OK" : upper(to_string(f.severity));
        wrap(out, fmt::format("{}. [{}] {}", n, tag, f.title), "", "   ", width);
        if (f.inode)
            wrap(out,
                 fmt::format("file: {} (dev {} ino {}){}",
                             f.inode->path.empty() ? "(path unknown)" : safe_name(f.inode->path),
                             dev_string(f.inode->dev), f.inode->ino,
                             path_may_be_stale(f.inode->path_source)
                                 ? " (its name when first opened: a rename since is not seen)"
                                 : ""),
                 "   ", "     ", width);
        for (const auto &s : f.explanation)
            wrap(out, s, "   ", "   ", width);
        if (!f.advice.empty()) {
            out += "   Fix:\n";
            for (const auto &a : f.advice)
                wrap(out, a, "   - ", "     ", width);
        }
        out += "\n";
    }
    return escape_text(out, EscapeScope::Output); // names were escaped: this catches the rest
}

namespace {
template <class J> void workload_json(J &j, const Workload &w) {
    j["cgroup"] = w.cgroup;
    j["unit"] = w.unit;
    j["container"] = w.container;
    j["container_runtime"] = w.runtime;
}
} // namespace

std::string render_json(const Report &r) {
    using J = nlohmann::ordered_json;
    J j;
    j["schema_version"] = 1;
    j["healthy"] = r.healthy;
    j["window_s"] = r.env.window_s;
    J env;
    env["kernel"] = r.env.kernel;
    env["io_modes"] = r.env.io_modes;
    env["backend"] = r.env.backend;
    J roles = J::array();
    for (const auto &ro : r.env.roles)
        roles.push_back({{"role", to_string(ro.role)},
                         {"available", ro.available},
                         {"hooks", ro.hooks},
                         {"note", ro.note}});
    env["roles"] = roles;
    env["mount"] = r.env.mount.empty() ? J(nullptr) : J(r.env.mount);
    env["path"] = r.env.path.empty() ? J(nullptr) : J(r.env.path);
    env["pid"] = r.env.pid ? J(*r.env.pid) : J(nullptr);
    env["events_lost"] = r.events_lost;
    j["environment"] = env;
    J fs = J::array();
    for (const auto &f : r.findings) {
        J o;
        o["kind"] = f.kind;
        o["severity"] = to_string(f.severity);
        o["title"] = f.title;
        if (f.inode)
            o["inode"] = {{"dev", dev_string(f.inode->dev)},
                          {"ino", f.inode->ino},
                          {"path", f.inode->path},
                          {"path_source", to_string(f.inode->path_source)},
                          {"path_may_be_stale", path_may_be_stale(f.inode->path_source)}};
        else
            o["inode"] = nullptr;
        J cs = J::array();
        for (const auto &c : f.culprits) {
            J cj = {{"pid", c.pid},
                    {"comm", c.comm},
                    {"exe", c.exe},
                    {"how", c.how},
                    {"holding", c.holding},
                    {"held_s", c.held_s},
                    {"since_at_least", c.since_at_least},
                    {"processes", c.processes},
                    {"pids", c.pids},
                    {"holds", c.holds},
                    {"entered_cache_mode", c.entered_cache},
                    {"longest_held_s", c.longest_held_s},
                    {"cost_ns", c.cost_ns}};
            workload_json(cj, c.where);
            cs.push_back(std::move(cj));
        }
        o["culprits"] = cs;
        J ws = J::array();
        for (const auto &w : f.writers) {
            J wj = {{"comm", w.program.comm},
                    {"exe", w.program.exe},
                    {"processes", w.program.processes},
                    {"pids", w.program.pids},
                    {"opens", w.opens}};
            workload_json(wj, w.program.where);
            ws.push_back(std::move(wj));
        }
        o["writers"] = ws;
        J ev = J::object();
        for (const auto &nm : f.evidence) {
            if (nm.is_int)
                ev[nm.key] = nm.u;
            else
                ev[nm.key] = nm.d;
        }
        o["evidence"] = ev;
        o["cost_ns"] = f.cost_ns;
        o["advice"] = f.advice;
        fs.push_back(std::move(o));
    }
    j["findings"] = fs;
    return json_text(j, 2) + "\n";
}

} // namespace fusescope::diagnose
