// The exporter's families from a hand-made Summary: table-driven names and labels, the
// holder info series (one per comm and how, earliest since, bounded), BPF run time only
// while the kernel accounts it, build info; and the family table's own rules.
#include <gtest/gtest.h>

#include "export_collector.h"
#include "export_families.h"

#include <prometheus/text_serializer.h>

#include <map>
#include <set>

using namespace fusescope;
using prometheus::MetricFamily;

namespace {

constexpr uint32_t kDev = 45;

ExporterSelfInfo self_info() {
    ExporterSelfInfo s;
    s.version = "9.9.9";
    s.revision = "abc123";
    s.backend = "tracepoint";
    s.kernel = "6.18.0-test";
    s.roles = {{"write-lock", true}, {"service-time", false}, {"lock-wait", true}};
    s.programs_attached = 3;
    return s;
}

Holder holder(uint32_t pid, std::string comm, HolderHow how, uint64_t since) {
    Holder h;
    h.pid = pid;
    h.comm = std::move(comm);
    h.how = how;
    h.since_ns = since;
    return h;
}

Summary summary() {
    Summary s;
    DeviceSummary d;
    d.dev = kDev;
    d.mount_point = "/mnt/db";
    d.total.writes[0] = 10;
    d.total.writes[static_cast<size_t>(WriteReason::CacheIoMode)] = 7;
    d.inodes_by_mode[static_cast<size_t>(ModeKind::Cached)] = 1;
    d.holders_mmap = 3;
    s.devices.push_back(d);
    InodeView iv;
    iv.key = {kDev, 77};
    iv.path = "/mnt/db/data";
    iv.mode.kind = ModeKind::Cached;
    // two indexer processes mapping it, and one caching open by backup
    iv.holders = {holder(1, "indexer", HolderHow::Mmap, 5'000'000'000),
                  holder(2, "indexer", HolderHow::Mmap, 3'000'000'000),
                  holder(3, "backup", HolderHow::Open, 8'000'000'000)};
    s.top.push_back(iv);
    s.health.programs = {{"fs_request_send", 2'000'000'000, 400}, {"fs_census_files", 1000, 2}};
    return s;
}

const ScrapeClock kClock{10'000'000'000, 1'700'000'000.0}; // monotonic 10 s = Unix 1.7e9

const MetricFamily *find(const std::vector<MetricFamily> &fams, std::string_view name) {
    for (const auto &f : fams)
        if (f.name == name)
            return &f;
    return nullptr;
}

std::map<std::string, std::string> labels(const prometheus::ClientMetric &m) {
    std::map<std::string, std::string> out;
    for (const auto &l : m.label)
        out[l.name] = l.value;
    return out;
}

} // namespace

TEST(ExportFamilies, TableFollowsPrometheusNaming) {
    std::set<std::string_view> names;
    for (const FamilyDef &f : family_defs()) {
        EXPECT_TRUE(names.insert(f.name).second) << f.name << " twice";
        EXPECT_TRUE(f.name.starts_with("fusescope_") || f.name.starts_with("process_")) << f.name;
        EXPECT_EQ(f.type == prometheus::MetricType::Counter, f.name.ends_with("_total")) << f.name;
        EXPECT_FALSE(f.help.empty()) << f.name;
        if (f.name.ends_with("_info")) {
            EXPECT_EQ(f.type, prometheus::MetricType::Gauge) << f.name;
        }
    }
}

TEST(ExportFamilies, ReferenceListsEveryFamilyAndLabel) {
    const std::string md = metrics_reference_markdown();
    for (const FamilyDef &f : family_defs())
        EXPECT_NE(md.find("| `" + std::string(f.name) + "` |"), std::string::npos) << f.name;
    // label values come from the model's enums
    EXPECT_NE(md.find("`cache_io_mode`"), std::string::npos);
    EXPECT_NE(md.find("`not_available`"), std::string::npos);
    EXPECT_NE(md.find("`write_seen`"), std::string::npos);
}

TEST(ExportCollector, EveryFamilyComesFromTheTableWithItsLabels) {
    ExportCollector c([](size_t) { return summary(); }, self_info(), 5);
    auto fams = c.families(summary(), kClock);
    ASSERT_FALSE(fams.empty());
    for (const auto &f : fams) {
        const FamilyDef *def = nullptr;
        for (const FamilyDef &d : family_defs())
            if (d.name == f.name)
                def = &d;
        ASSERT_NE(def, nullptr) << f.name << " not in the family table";
        EXPECT_EQ(f.type, def->type) << f.name;
        for (const auto &m : f.metric) {
            std::string got;
            for (const auto &l : m.label)
                got += (got.empty() ? "" : " ") + l.name;
            EXPECT_EQ(got, def->labels) << f.name;
        }
    }
    // and the text format serializes them
    EXPECT_NE(prometheus::TextSerializer().Serialize(fams).find("fusescope_writes_total{"),
              std::string::npos);
}

TEST(ExportCollector, WritesCarryLockAndReasonFromTheModel) {
    ExportCollector c([](size_t) { return summary(); }, self_info(), 5);
    auto fams = c.families(summary(), kClock);
    const MetricFamily *w = find(fams, "fusescope_writes_total");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->metric.size(), static_cast<size_t>(kWriteReasons));
    std::map<std::string, double> by_reason;
    for (const auto &m : w->metric) {
        auto l = labels(m);
        EXPECT_EQ(l["mount"], "/mnt/db");
        const auto r = write_reason_from_string(l["reason"]);
        ASSERT_TRUE(r) << l["reason"];
        EXPECT_EQ(l["lock"], to_string(lock_mode_of(*r))) << l["reason"];
        by_reason[l["reason"]] = m.counter.value;
    }
    EXPECT_EQ(by_reason["shared"], 10);
    EXPECT_EQ(by_reason["cache_io_mode"], 7);
    EXPECT_EQ(labels(w->metric[static_cast<size_t>(WriteReason::Unclassified)])["lock"], "unknown");
}

TEST(ExportCollector, HolderInfoIsOnePerCommAndHowWithTheEarliestSince) {
    ExportCollector c([](size_t) { return summary(); }, self_info(), 5);
    auto fams = c.families(summary(), kClock);
    const MetricFamily *info = find(fams, "fusescope_inode_cache_mode_holder_info");
    const MetricFamily *since =
        find(fams, "fusescope_inode_cache_mode_holder_since_timestamp_seconds");
    ASSERT_NE(info, nullptr);
    ASSERT_NE(since, nullptr);
    ASSERT_EQ(info->metric.size(), 2u);
    ASSERT_EQ(since->metric.size(), 2u);
    std::map<std::string, double> since_by;
    for (const auto &m : since->metric) {
        auto l = labels(m);
        EXPECT_EQ(l["path"], "/mnt/db/data");
        EXPECT_EQ(l["ino"], "77");
        since_by[l["comm"] + "/" + l["how"]] = m.gauge.value;
    }
    for (const auto &m : info->metric)
        EXPECT_EQ(m.gauge.value, 1);
    // earliest indexer mapping at monotonic 3 s: 7 s before the scrape
    EXPECT_DOUBLE_EQ(since_by["indexer/mmap"], 1'700'000'000.0 - 7);
    EXPECT_DOUBLE_EQ(since_by["backup/open"], 1'700'000'000.0 - 2);
    const MetricFamily *count = find(fams, "fusescope_inode_cache_mode_holders");
    ASSERT_NE(count, nullptr);
    EXPECT_EQ(count->metric[0].gauge.value, 3); // the count still counts every holder
}

// Who holds and who writes, with the program and where it runs, for the top-K inodes.
TEST(ExportCollector, HoldersAndWritersCarryProgramAndWorkload) {
    Summary s = summary();
    s.top[0].holders[0].exe_path = "/usr/bin/indexer";
    s.top[0].holders[0].where = workload_of_cgroup("/system.slice/indexer.service");
    WriterProgram w;
    w.program.comm = "mariadbd";
    w.program.exe = "/usr/sbin/mariadbd";
    w.program.processes = 3;
    w.program.where = workload_of_cgroup(
        "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        ".scope");
    s.top[0].writers.push_back(w);
    ExportCollector c([](size_t) { return Summary{}; }, self_info(), 5);
    auto fams = c.families(s, kClock);
    const MetricFamily *info = find(fams, "fusescope_inode_cache_mode_holder_info");
    ASSERT_NE(info, nullptr);
    ASSERT_EQ(info->metric.size(), 3u); // the indexer with an exe is another program
    bool seen = false;
    for (const auto &m : info->metric) {
        auto l = labels(m);
        if (l["exe"] == "/usr/bin/indexer") {
            seen = true;
            EXPECT_EQ(l["unit"], "indexer.service");
            EXPECT_EQ(l["cgroup"], "/system.slice/indexer.service");
            EXPECT_EQ(l["container"], "");
        }
    }
    EXPECT_TRUE(seen);
    const MetricFamily *wr = find(fams, "fusescope_inode_writer_processes");
    ASSERT_NE(wr, nullptr);
    ASSERT_EQ(wr->metric.size(), 1u);
    auto l = labels(wr->metric[0]);
    EXPECT_EQ(l["comm"], "mariadbd");
    EXPECT_EQ(l["exe"], "/usr/sbin/mariadbd");
    EXPECT_EQ(l["container"], "0123456789ab");
    EXPECT_EQ(l["path"], "/mnt/db/data");
    EXPECT_EQ(wr->metric[0].gauge.value, 3);
}

TEST(ExportCollector, HolderSeriesAreBoundedPerInode) {
    Summary s = summary();
    s.top[0].holders.clear();
    for (uint32_t i = 0; i < 50; ++i)
        s.top[0].holders.push_back(
            holder(100 + i, "worker" + std::to_string(i), HolderHow::Open, 1000 + i));
    ExportCollector c([](size_t) { return Summary{}; }, self_info(), 5);
    auto fams = c.families(s, kClock);
    const MetricFamily *info = find(fams, "fusescope_inode_cache_mode_holder_info");
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->metric.size(), kHoldersPerInode);
    EXPECT_EQ(labels(info->metric[0])["comm"], "worker0"); // the earliest first
}

TEST(ExportCollector, PerInodeSeriesOnlyForTheTopK) {
    Summary s = summary();
    s.top.push_back(s.top[0]);
    s.top[1].key.ino = 78;
    ExportCollector c([](size_t) { return Summary{}; }, self_info(), 1);
    auto fams = c.families(s, kClock);
    for (const auto &f : fams)
        for (const auto &m : f.metric)
            if (labels(m).count("ino")) {
                EXPECT_EQ(labels(m)["ino"], "77") << f.name;
            }
}

TEST(ExportCollector, BpfRunTimeOnlyWhileTheKernelAccountsIt) {
    ExportCollector c([](size_t) { return Summary{}; }, self_info(), 5);
    Summary s = summary();
    auto off = c.families(s, kClock);
    EXPECT_EQ(find(off, "fusescope_bpf_program_run_seconds_total"), nullptr);
    EXPECT_EQ(find(off, "fusescope_bpf_program_runs_total"), nullptr);
    ASSERT_NE(find(off, "fusescope_bpf_stats_enabled"), nullptr);
    EXPECT_EQ(find(off, "fusescope_bpf_stats_enabled")->metric[0].gauge.value, 0);

    s.health.bpf_stats_enabled = true;
    auto on = c.families(s, kClock);
    const MetricFamily *secs = find(on, "fusescope_bpf_program_run_seconds_total");
    const MetricFamily *runs = find(on, "fusescope_bpf_program_runs_total");
    ASSERT_NE(secs, nullptr);
    ASSERT_NE(runs, nullptr);
    ASSERT_EQ(secs->metric.size(), 2u);
    EXPECT_EQ(labels(secs->metric[0])["program"], "fs_request_send");
    EXPECT_DOUBLE_EQ(secs->metric[0].counter.value, 2.0);
    EXPECT_EQ(runs->metric[0].counter.value, 400);
    EXPECT_EQ(find(on, "fusescope_bpf_stats_enabled")->metric[0].gauge.value, 1);
}

TEST(ExportCollector, BuildInfoAndRoles) {
    ExportCollector c([](size_t) { return Summary{}; }, self_info(), 5);
    auto fams = c.families(summary(), kClock);
    const MetricFamily *bi = find(fams, "fusescope_build_info");
    ASSERT_NE(bi, nullptr);
    ASSERT_EQ(bi->metric.size(), 1u);
    auto l = labels(bi->metric[0]);
    EXPECT_EQ(l["version"], "9.9.9");
    EXPECT_EQ(l["revision"], "abc123");
    EXPECT_EQ(l["backend"], "tracepoint");
    EXPECT_EQ(l["kernel"], "6.18.0-test");
    const MetricFamily *roles = find(fams, "fusescope_probes_attached");
    ASSERT_NE(roles, nullptr);
    std::map<std::string, double> r;
    for (const auto &m : roles->metric)
        r[labels(m)["role"]] = m.gauge.value;
    EXPECT_EQ(r["write_lock"], 1);
    EXPECT_EQ(r["service_time"], 0);
    // service time not measured: absent, not zero
    EXPECT_EQ(find(fams, "fusescope_write_service_seconds_total"), nullptr);
}

TEST(ExportCollector, ProcessFamiliesDescribeThisProcess) {
    auto fams = process_families();
    const MetricFamily *rss = find(fams, "process_resident_memory_bytes");
    const MetricFamily *fds = find(fams, "process_open_fds");
    const MetricFamily *start = find(fams, "process_start_time_seconds");
    ASSERT_TRUE(rss && fds && start);
    EXPECT_GT(rss->metric[0].gauge.value, 1e5);
    EXPECT_GE(fds->metric[0].gauge.value, 3); // stdin, stdout, stderr at least
    EXPECT_GT(start->metric[0].gauge.value, 1.5e9);
    EXPECT_LE(start->metric[0].gauge.value, ScrapeClock::now().unix_s + 1);
}
