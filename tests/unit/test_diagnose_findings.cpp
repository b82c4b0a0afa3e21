// fusescope diagnose: findings from constructed Snapshots (no root, no BPF).
#include "fusescope/views/diagnose.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace fusescope::diagnose {
namespace {

constexpr uint32_t kDev = 45; // 0:45
constexpr uint64_t kSec = 1'000'000'000;

Environment env_618() {
    Environment e;
    e.kernel = "6.18.44-fc-v782";
    e.io_modes = true;
    e.backend = "trampoline";
    e.roles = {{Role::WriteLock, true, "fexit fuse_dio_lock", ""},
               {Role::LockWait, true, "contention", ""}};
    e.window_s = 10;
    e.mount = "/mnt";
    return e;
}

InodeView inode(uint64_t ino, std::string path) {
    InodeView iv;
    iv.key = InodeKey{kDev, ino};
    iv.mount_point = "/mnt";
    iv.path = std::move(path);
    return iv;
}

void writes(InodeView &iv, WriteReason r, uint64_t n) {
    iv.total.writes[static_cast<size_t>(r)] += n;
}

// A current holder, and its program as the model groups it.
Holder holder(uint32_t pid, std::string comm, HolderHow how, uint64_t since_ns, bool at_least) {
    Holder h;
    h.file_id = 0x100 + pid;
    h.fh = 1;
    h.pid = pid;
    h.comm = std::move(comm);
    h.how = how;
    h.since_ns = since_ns;
    h.since_is_lower_bound = at_least;
    return h;
}

HolderProgram program(std::string comm, std::string exe, std::string how,
                      std::vector<uint32_t> pids, uint32_t processes, uint64_t holds,
                      uint64_t total_ns, uint32_t holding_now) {
    HolderProgram p;
    p.program.comm = std::move(comm);
    p.program.exe = std::move(exe);
    p.program.pids = std::move(pids);
    p.program.processes = processes;
    p.how = std::move(how);
    p.holds = holds;
    p.entered_cache = holds;
    p.total_held_ns = total_ns;
    p.longest_held_ns = total_ns / (holds ? holds : 1);
    p.holding_now = holding_now;
    return p;
}

void hold(InodeView &iv, uint32_t pid, std::string comm, HolderHow how, uint64_t since_ns,
          bool at_least = false) {
    iv.holders.push_back(holder(pid, comm, how, since_ns, at_least));
    HolderProgram p =
        program(comm, "", std::string(to_string(how)), {pid}, 1, 1, 100 * kSec - since_ns, 1);
    p.since_at_least = at_least;
    iv.holder_programs.push_back(std::move(p));
}

Snapshot snap_of(std::vector<InodeView> v) {
    Snapshot s;
    s.now_ns = 100 * kSec;
    s.inodes = std::move(v);
    return s;
}

const Finding *find_kind(const Report &r, std::string_view kind) {
    for (const auto &f : r.findings)
        if (f.kind == kind)
            return &f;
    return nullptr;
}

uint64_t ev(const Finding &f, std::string_view key) {
    const Number *n = f.ev(key);
    EXPECT_NE(n, nullptr) << key;
    return n ? n->u : 0;
}

TEST(DiagnoseKernel, ParsesReleases) {
    auto v = parse_kernel_release("6.10.12-200.fc40.x86_64");
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, (KernelVersion{6, 10, 12}));
    v = parse_kernel_release("6.11-rc3");
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, (KernelVersion{6, 11, 0}));
    v = parse_kernel_release("5.15.0-101-generic");
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, (KernelVersion{5, 15, 0}));
    EXPECT_FALSE(parse_kernel_release(""));
    EXPECT_FALSE(parse_kernel_release("linux"));
    EXPECT_FALSE(parse_kernel_release("6"));
}

TEST(DiagnoseKernel, CacheModeBugRange) {
    EXPECT_FALSE(has_cache_mode_lock_bug({6, 8, 12}));
    EXPECT_TRUE(has_cache_mode_lock_bug({6, 9, 0}));
    EXPECT_TRUE(has_cache_mode_lock_bug({6, 9, 12}));
    EXPECT_TRUE(has_cache_mode_lock_bug({6, 10, 12}));
    EXPECT_FALSE(has_cache_mode_lock_bug({6, 10, 13}));
    EXPECT_TRUE(has_cache_mode_lock_bug({6, 11, 5}));
    EXPECT_FALSE(has_cache_mode_lock_bug({6, 12, 0}));
    EXPECT_FALSE(has_cache_mode_lock_bug({6, 18, 44}));
}

TEST(Diagnose, HealthyStatesTheNumbers) {
    InodeView iv = inode(7, "/mnt/db");
    writes(iv, WriteReason::Shared, 800);
    iv.total.wait_ns[0] = 3'000'000;
    Report r = build_report(snap_of({iv}), env_618());
    EXPECT_TRUE(r.healthy);
    ASSERT_EQ(r.findings.size(), 1u);
    const Finding &f = r.findings[0];
    EXPECT_EQ(f.kind, "healthy");
    EXPECT_EQ(f.severity, Severity::Ok);
    EXPECT_FALSE(f.inode);
    EXPECT_EQ(ev(f, "writes"), 800u);
    EXPECT_EQ(ev(f, "shared_writes"), 800u);
    EXPECT_EQ(ev(f, "exclusive_writes"), 0u);
    EXPECT_EQ(ev(f, "files"), 1u);
    std::string text = render_text(r);
    EXPECT_NE(text.find("HEALTHY"), std::string::npos) << text;
    EXPECT_NE(text.find("800 writes"), std::string::npos) << text;
}

TEST(Diagnose, HealthyWithoutAnyWrites) {
    Report r = build_report(snap_of({}), env_618());
    EXPECT_TRUE(r.healthy);
    ASSERT_EQ(r.findings.size(), 1u);
    EXPECT_EQ(r.findings[0].kind, "healthy");
    EXPECT_NE(render_text(r).find("No writes were seen"), std::string::npos);
}

TEST(Diagnose, CacheModeHolderIsTopCulpritWithWaitCost) {
    InodeView db = inode(7, "/mnt/db");
    writes(db, WriteReason::Shared, 200);
    writes(db, WriteReason::CacheIoMode, 600);
    writes(db, WriteReason::Fallback, 10);
    db.total.wait_ns[1] = 2 * kSec;
    db.total.wait_ns[0] = 1 * kSec;
    db.mode = IoMode{ModeKind::Cached, 1, 1, true};
    hold(db, 4242, "indexer", HolderHow::Mmap, 97 * kSec);
    // another file with a smaller problem
    InodeView log = inode(8, "/mnt/log");
    writes(log, WriteReason::Append, 50);
    log.total.wait_ns[1] = kSec / 10;

    Report r = build_report(snap_of({log, db}), env_618());
    EXPECT_FALSE(r.healthy);
    ASSERT_GE(r.findings.size(), 2u);
    const Finding &top = r.findings[0];
    EXPECT_EQ(top.kind, "cache_io_mode");
    EXPECT_EQ(top.severity, Severity::Critical);
    ASSERT_TRUE(top.inode);
    EXPECT_EQ(top.inode->ino, 7u);
    EXPECT_EQ(top.inode->path, "/mnt/db");
    ASSERT_EQ(top.culprits.size(), 1u);
    EXPECT_EQ(top.culprits[0].pid, 4242u);
    EXPECT_EQ(top.culprits[0].comm, "indexer");
    EXPECT_EQ(top.culprits[0].how, "mmap");
    EXPECT_TRUE(top.culprits[0].holding);
    EXPECT_DOUBLE_EQ(top.culprits[0].held_s, 3.0);
    EXPECT_EQ(ev(top, "cache_mode_writes"), 610u); // fallbacks attributed to the cache mode
    EXPECT_EQ(ev(top, "exclusive_writes"), 610u);
    EXPECT_EQ(ev(top, "wait_ns"), 3 * kSec); // all the wait: every exclusive write is its
    EXPECT_EQ(top.cost_ns, 3 * kSec);
    EXPECT_FALSE(find_kind(r, "fallback"));
    EXPECT_EQ(r.findings[1].kind, "append");
    EXPECT_FALSE(find_kind(r, "healthy"));
    // advice names the holder
    ASSERT_FALSE(top.advice.empty());
    EXPECT_NE(top.advice[0].find("indexer (pid 4242)"), std::string::npos) << top.advice[0];
}

TEST(Diagnose, ReleasedHolderFoundInTransitions) {
    InodeView db = inode(7, "/mnt/db");
    writes(db, WriteReason::Shared, 100);
    writes(db, WriteReason::CacheIoMode, 100);
    db.total.wait_ns[1] = kSec;
    IoMode none{}, cached{ModeKind::Cached, 1, 1, true};
    db.transitions.push_back(
        Transition{90 * kSec, none, cached, TransitionCause::Mmap, 555, "indexer"});
    db.transitions.push_back(
        Transition{92 * kSec, cached, none, TransitionCause::Release, 555, "indexer"});
    Report r = build_report(snap_of({db}), env_618());
    const Finding *f = find_kind(r, "cache_io_mode");
    ASSERT_TRUE(f);
    ASSERT_EQ(f->culprits.size(), 1u);
    EXPECT_EQ(f->culprits[0].pid, 555u);
    EXPECT_EQ(f->culprits[0].how, "mmap");
    EXPECT_FALSE(f->culprits[0].holding);
    EXPECT_DOUBLE_EQ(f->culprits[0].held_s, 2.0);
    EXPECT_EQ(f->severity, Severity::Critical); // half the writes and they waited
}

// 35 short-lived processes of one program (an indexer's workers, `rg --mmap` per file)
// are one culprit: the program, with its processes counted and its holds added up.
TEST(Diagnose, CulpritsAreProgramsNotProcesses) {
    InodeView db = inode(7, "/mnt/db");
    writes(db, WriteReason::Shared, 100);
    writes(db, WriteReason::CacheIoMode, 300);
    db.total.wait_ns[1] = 4 * kSec;
    std::vector<uint32_t> pids = {1000, 1001, 1002, 1003, 1004};
    db.holder_programs.push_back(program("rg", "/usr/bin/rg", "mmap", pids, 35, 35, 3 * kSec, 0));
    db.holder_programs.push_back(program("cat", "/usr/bin/cat", "open", {77}, 1, 1, kSec, 0));
    db.holder_programs[0].program.where = workload_of_cgroup("/system.slice/indexer.service");
    Report r = build_report(snap_of({db}), env_618());
    ASSERT_EQ(r.findings[0].kind, "cache_io_mode");
    const auto &cs = r.findings[0].culprits;
    ASSERT_EQ(cs.size(), 2u);
    EXPECT_EQ(cs[0].comm, "rg");
    EXPECT_EQ(cs[0].exe, "/usr/bin/rg");
    EXPECT_EQ(cs[0].processes, 35u);
    EXPECT_EQ(cs[0].pids, pids);
    EXPECT_EQ(cs[0].holds, 35u);
    EXPECT_DOUBLE_EQ(cs[0].held_s, 3.0);
    EXPECT_FALSE(cs[0].holding);
    EXPECT_EQ(cs[0].where.unit, "indexer.service");
    // the finding's cost (all 4 s: every exclusive write was cache mode's) split by hold time
    EXPECT_EQ(cs[0].cost_ns, 3 * kSec);
    EXPECT_EQ(cs[1].cost_ns, kSec);
    ASSERT_FALSE(r.findings[0].advice.empty());
    EXPECT_NE(
        r.findings[0].advice[0].find("rg (/usr/bin/rg) [unit indexer.service] (35 processes)"),
        std::string::npos)
        << r.findings[0].advice[0];
    const std::string text = render_text(r, 200);
    EXPECT_NE(text.find("35 processes (pids 1000, 1001, 1002, 1003, 1004, ...)"), std::string::npos)
        << text;
    auto j = nlohmann::json::parse(render_json(r));
    const auto &c0 = j["findings"][0]["culprits"][0];
    EXPECT_EQ(c0["processes"], 35);
    EXPECT_EQ(c0["holds"], 35);
    EXPECT_EQ(c0["entered_cache_mode"], 35);
    EXPECT_EQ(c0["exe"], "/usr/bin/rg");
    EXPECT_EQ(c0["unit"], "indexer.service");
    EXPECT_EQ(c0["cost_ns"], 3 * kSec);
}

// Names are untrusted: the text report escapes them, the JSON keeps them exact.
TEST(Diagnose, TextEscapesNamesJsonKeepsThem) {
    const std::string evil = "\x1b[2J\x1b[31mEVIL";
    InodeView db = inode(7, "/mnt/\x1b]0;x\x07"
                            "db\n");
    writes(db, WriteReason::CacheIoMode, 10);
    db.total.wait_ns[1] = kSec;
    db.mode = IoMode{ModeKind::Cached, 1, 1, true};
    hold(db, 4242, evil, HolderHow::Mmap, 99 * kSec);
    Report r = build_report(snap_of({db}), env_618());
    const std::string text = render_text(r);
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
    EXPECT_EQ(text.find('\x07'), std::string::npos) << text;
    EXPECT_NE(text.find("\\x1b[2J\\x1b[31mEVIL"), std::string::npos) << text;
    EXPECT_NE(text.find("/mnt/\\x1b]0;x\\x07"
                        "db\\x0a"),
              std::string::npos)
        << text;
    auto j = nlohmann::json::parse(render_json(r));
    EXPECT_EQ(j["findings"][0]["culprits"][0]["comm"], evil);
    EXPECT_EQ(j["findings"][0]["inode"]["path"], "/mnt/\x1b]0;x\x07"
                                                 "db\n");
}

TEST(Diagnose, WritersAreNamedWithWhereTheyRun) {
    InodeView db = inode(7, "/mnt/db");
    writes(db, WriteReason::NoParallelFlag, 10);
    db.total.wait_ns[1] = kSec;
    WriterProgram w;
    w.program.comm = "mariadbd";
    w.program.exe = "/usr/sbin/mariadbd";
    w.program.processes = 1;
    w.program.pids = {300};
    w.program.where = workload_of_cgroup(
        "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        ".scope");
    w.opens = 4;
    db.writers.push_back(w);
    db.path_source = PathSource::Kernel;
    Report r = build_report(snap_of({db}), env_618());
    ASSERT_EQ(r.findings[0].kind, "no_parallel_flag");
    const std::string text = render_text(r, 200);
    EXPECT_NE(text.find("Written by mariadbd (/usr/sbin/mariadbd) [docker 0123456789ab], pid 300."),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("its name when first opened"), std::string::npos) << text;
    auto j = nlohmann::json::parse(render_json(r));
    const auto &f = j["findings"][0];
    EXPECT_EQ(f["writers"][0]["comm"], "mariadbd");
    EXPECT_EQ(f["writers"][0]["opens"], 4);
    EXPECT_EQ(f["writers"][0]["container_runtime"], "docker");
    EXPECT_EQ(f["inode"]["path_source"], "kernel");
    EXPECT_EQ(f["inode"]["path_may_be_stale"], true);
}

TEST(Diagnose, UnknownHolderUnderPidFilterSaysWhy) {
    InodeView db = inode(7, "/mnt/db");
    writes(db, WriteReason::CacheIoMode, 10);
    db.mode = IoMode{ModeKind::Cached, 1, 1, true};
    Environment e = env_618();
    e.pid = 321;
    Report r = build_report(snap_of({db}), e);
    ASSERT_EQ(r.findings[0].kind, "cache_io_mode");
    EXPECT_TRUE(r.findings[0].culprits.empty());
    EXPECT_NE(render_text(r).find("run without --pid"), std::string::npos);
}

TEST(Diagnose, CachedButNoWritesIsInfoOnly) {
    InodeView f = inode(9, "/mnt/idx");
    f.mode = IoMode{ModeKind::Cached, 1, 1, true};
    hold(f, 77, "cat", HolderHow::Open, 99 * kSec, true);
    Report r = build_report(snap_of({f}), env_618());
    EXPECT_TRUE(r.healthy);
    const Finding *c = find_kind(r, "cache_io_mode");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->severity, Severity::Info);
    EXPECT_TRUE(c->culprits[0].since_at_least);
    EXPECT_EQ(r.findings.front().kind, "healthy"); // the verdict before the notes
}

TEST(Diagnose, NoParallelFlag) {
    InodeView iv = inode(7, "/mnt/db");
    writes(iv, WriteReason::NoParallelFlag, 400);
    iv.total.wait_ns[1] = kSec;
    Report r = build_report(snap_of({iv}), env_618());
    EXPECT_FALSE(r.healthy);
    ASSERT_EQ(r.findings[0].kind, "no_parallel_flag");
    EXPECT_EQ(r.findings[0].severity, Severity::Critical);
    EXPECT_EQ(ev(r.findings[0], "no_parallel_flag_writes"), 400u);
    EXPECT_EQ(ev(r.findings[0], "shared_writes"), 0u);
    std::string text = render_text(r);
    EXPECT_NE(text.find("FOPEN_PARALLEL_DIRECT_WRITES"), std::string::npos);
    EXPECT_NE(text.find("never"), std::string::npos);
}

TEST(Diagnose, PastEofSuggestsFallocateAndGetsTheFallbacks) {
    InodeView iv = inode(7, "/mnt/db");
    writes(iv, WriteReason::PastEof, 90);
    writes(iv, WriteReason::Fallback, 10);
    writes(iv, WriteReason::Shared, 100);
    iv.total.wait_ns[0] = kSec;
    Report r = build_report(snap_of({iv}), env_618());
    const Finding *f = find_kind(r, "past_eof");
    ASSERT_TRUE(f);
    EXPECT_EQ(ev(*f, "past_eof_writes"), 100u);
    EXPECT_EQ(f->severity, Severity::Critical);
    EXPECT_EQ(f->cost_ns, kSec);
    bool fallocate = std::any_of(f->advice.begin(), f->advice.end(), [](const std::string &a) {
        return a.find("fallocate") != std::string::npos;
    });
    EXPECT_TRUE(fallocate);
    EXPECT_FALSE(find_kind(r, "fallback"));
}

TEST(Diagnose, UnattributedFallback) {
    InodeView iv = inode(7, "/mnt/db");
    writes(iv, WriteReason::Fallback, 3);
    writes(iv, WriteReason::Shared, 300);
    Report r = build_report(snap_of({iv}), env_618());
    const Finding *f = find_kind(r, "fallback");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->severity, Severity::Warning);
    EXPECT_FALSE(r.healthy);
}

TEST(Diagnose, AppendAndWaitSplitByCount) {
    InodeView iv = inode(7, "/mnt/db");
    writes(iv, WriteReason::Append, 30);
    writes(iv, WriteReason::PastEof, 10);
    iv.total.wait_ns[1] = 2 * kSec;
    Report r = build_report(snap_of({iv}), env_618());
    ASSERT_GE(r.findings.size(), 2u);
    EXPECT_EQ(r.findings[0].kind, "append");
    EXPECT_EQ(r.findings[0].cost_ns, 3 * kSec / 2);
    EXPECT_EQ(r.findings[0].severity, Severity::Critical);
    EXPECT_EQ(r.findings[1].kind, "past_eof");
    EXPECT_EQ(r.findings[1].cost_ns, kSec / 2);
    EXPECT_EQ(r.findings[1].severity, Severity::Warning); // a quarter of the writes, < 1 s
    // a minority of the writes that cost seconds is still critical
    iv.total.wait_ns[1] = 8 * kSec;
    r = build_report(snap_of({iv}), env_618());
    EXPECT_EQ(r.findings[1].kind, "past_eof");
    EXPECT_EQ(r.findings[1].severity, Severity::Critical);
}

TEST(Diagnose, DrainWaitNamesTheBlockedOpeners) {
    InodeView iv = inode(7, "/mnt/db");
    writes(iv, WriteReason::Shared, 100);
    iv.total.drain_waits = 2;
    iv.total.drain_wait_ns = 1500 * 1'000'000ull;
    iv.last_drain_waiters.push_back(DrainWaiter{95 * kSec, 31, "backup", 1200 * 1'000'000ull});
    iv.last_drain_waiters.push_back(DrainWaiter{96 * kSec, 31, "backup", 300 * 1'000'000ull});
    Report r = build_report(snap_of({iv}), env_618());
    const Finding *f = find_kind(r, "drain_wait");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->severity, Severity::Critical);
    EXPECT_EQ(ev(*f, "drain_waits"), 2u);
    EXPECT_EQ(ev(*f, "max_wait_ns"), 1200 * 1'000'000ull);
    ASSERT_EQ(f->culprits.size(), 1u);
    EXPECT_EQ(f->culprits[0].comm, "backup");
    EXPECT_EQ(f->cost_ns, 1500 * 1'000'000ull);
}

TEST(Diagnose, OnlyThePathAsked) {
    InodeView a = inode(7, "/mnt/a"), b = inode(8, "/mnt/b");
    writes(a, WriteReason::Append, 10);
    writes(b, WriteReason::Shared, 10);
    Environment e = env_618();
    e.only = InodeKey{kDev, 8};
    e.path = "/mnt/b";
    Report r = build_report(snap_of({a, b}), e);
    EXPECT_TRUE(r.healthy);
    ASSERT_TRUE(find_kind(r, "healthy"));
    EXPECT_EQ(ev(*find_kind(r, "healthy"), "files"), 1u);
}

TEST(Diagnose, KernelWithoutIoModes) {
    Environment e = env_618();
    e.kernel = "6.1.0-18-amd64";
    e.io_modes = false;
    Snapshot s = snap_of({});
    s.io_modes_available = false;
    Report r = build_report(s, e);
    const Finding *f = find_kind(r, "kernel_no_io_modes");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->severity, Severity::Info);
    EXPECT_TRUE(r.healthy); // context, not a problem by itself
}

TEST(Diagnose, KernelCacheModeBug) {
    Environment e = env_618();
    e.kernel = "6.10.5";
    Report r = build_report(snap_of({}), e);
    const Finding *f = find_kind(r, "kernel_cache_mode_bug");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->severity, Severity::Info);

    InodeView iv = inode(7, "/mnt/db");
    writes(iv, WriteReason::Shared, 5);
    iv.mode = IoMode{ModeKind::Cached, 1, 1, true};
    r = build_report(snap_of({iv}), e);
    f = find_kind(r, "kernel_cache_mode_bug");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->severity, Severity::Warning);
    EXPECT_FALSE(r.healthy);

    e.kernel = "6.10.13";
    EXPECT_FALSE(find_kind(build_report(snap_of({}), e), "kernel_cache_mode_bug"));
}

TEST(Diagnose, WeakerBackendIsNotedNotAlarming) {
    Environment e = env_618();
    e.backend = "tracepoint";
    e.roles.push_back({Role::Open, true, "syscalls", "opens by syscall only"});
    e.roles.push_back({Role::DrainWait, false, "", "no sched_switch"});
    Report r = build_report(snap_of({}), e);
    const Finding *f = find_kind(r, "backend_limits");
    ASSERT_TRUE(f);
    EXPECT_EQ(f->severity, Severity::Info);
    EXPECT_EQ(ev(*f, "roles_missing"), 1u);
    EXPECT_EQ(ev(*f, "roles_approximate"), 1u);
    EXPECT_TRUE(r.healthy);
}

TEST(Diagnose, JsonSchema) {
    InodeView db = inode(7, "/mnt/db");
    writes(db, WriteReason::CacheIoMode, 10);
    db.total.wait_ns[1] = kSec;
    db.mode = IoMode{ModeKind::Cached, 1, 1, true};
    hold(db, 4242, "indexer", HolderHow::Mmap, 99 * kSec);
    Environment e = env_618();
    e.pid = 12;
    auto j = nlohmann::json::parse(render_json(build_report(snap_of({db}), e)));
    EXPECT_EQ(j["schema_version"], 1);
    EXPECT_EQ(j["healthy"], false);
    EXPECT_EQ(j["environment"]["kernel"], "6.18.44-fc-v782");
    EXPECT_EQ(j["environment"]["backend"], "trampoline");
    EXPECT_EQ(j["environment"]["roles"].size(), 2u);
    EXPECT_EQ(j["environment"]["pid"], 12);
    EXPECT_TRUE(j["environment"]["path"].is_null());
    const auto &f = j["findings"][0];
    EXPECT_EQ(f["kind"], "cache_io_mode");
    EXPECT_EQ(f["severity"], "critical");
    EXPECT_EQ(f["inode"]["dev"], "0:45");
    EXPECT_EQ(f["inode"]["ino"], 7);
    EXPECT_EQ(f["inode"]["path"], "/mnt/db");
    EXPECT_EQ(f["culprits"][0]["pid"], 4242);
    EXPECT_EQ(f["culprits"][0]["comm"], "indexer");
    EXPECT_EQ(f["culprits"][0]["how"], "mmap");
    EXPECT_EQ(f["evidence"]["wait_ns"], kSec);
    EXPECT_TRUE(f["advice"].is_array());
    EXPECT_FALSE(f["advice"].empty());
}

TEST(Diagnose, TextFitsIn80Columns) {
    InodeView db = inode(7, "/mnt/a/rather/long/path/to/the/database/file/that/goes/on/and/on.db");
    writes(db, WriteReason::CacheIoMode, 10);
    writes(db, WriteReason::NoParallelFlag, 10);
    writes(db, WriteReason::Append, 10);
    writes(db, WriteReason::PastEof, 10);
    db.total.drain_waits = 1;
    db.total.wait_ns[1] = kSec;
    db.mode = IoMode{ModeKind::Cached, 1, 1, true};
    hold(db, 4242, "indexer", HolderHow::Mmap, 99 * kSec);
    Environment e = env_618();
    e.kernel = "6.9.3";
    e.roles.push_back({Role::Open, true, "x", "opens by syscall only (io_uring opens: census)"});
    std::string text = render_text(build_report(snap_of({db}), e));
    size_t start = 0;
    while (start < text.size()) {
        size_t nl = text.find('\n', start);
        std::string line = text.substr(start, nl - start);
        // a single unbreakable word may overflow; nothing here is that long
        EXPECT_LE(line.size(), 80u) << line;
        start = nl + 1;
    }
    EXPECT_NE(text.find("Cache IO mode"), std::string::npos);
}

} // namespace
} // namespace fusescope::diagnose
