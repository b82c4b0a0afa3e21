// The status stream's lines (fusescope/core/status.h): each is one JSON object on one line,
// with "status" first and then exactly its kind's fields from the table, in the table's
// order; and the stream writes them to a descriptor, surviving a reader that went away.
#include "fusescope/core/status.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fcntl.h>
#include <set>
#include <unistd.h>

using namespace fusescope;
using nlohmann::ordered_json;

namespace {

std::vector<std::string> table_keys(status::Kind k) {
    std::vector<std::string> keys = {"status"};
    for (const auto &f : status::kFields)
        if (f.kind == k)
            keys.emplace_back(f.name);
    return keys;
}

// One line: ends in its only newline, parses, and has the table's keys in the table's order.
ordered_json parse_line(const std::string &line, status::Kind k) {
    EXPECT_FALSE(line.empty());
    EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
    ordered_json j = ordered_json::parse(line);
    std::vector<std::string> keys;
    for (const auto &[key, v] : j.items())
        keys.push_back(key);
    EXPECT_EQ(keys, table_keys(k)) << line;
    EXPECT_EQ(j["status"], std::string(status::name(k)));
    return j;
}

TEST(Status, KindsHaveDistinctNamesAndFields) {
    std::set<std::string_view> names;
    for (const auto &k : status::kKinds) {
        EXPECT_TRUE(names.insert(k.name).second) << k.name;
        EXPECT_EQ(status::name(k.kind), k.name);
        EXPECT_FALSE(k.when.empty());
        std::set<std::string_view> fields;
        for (const auto &f : status::kFields)
            if (f.kind == k.kind) {
                EXPECT_TRUE(fields.insert(f.name).second) << k.name << "." << f.name;
                EXPECT_NE(f.name, "status");
                EXPECT_FALSE(f.doc.empty()) << f.name;
            }
        EXPECT_FALSE(fields.empty()) << k.name;
    }
}

TEST(Status, WatchingLine) {
    auto j = parse_line(status::watching_line("trace", "tracepoint", 4242), status::Kind::Watching);
    EXPECT_EQ(j["view"], "trace");
    EXPECT_EQ(j["backend"], "tracepoint");
    EXPECT_EQ(j["pid"], 4242);
    EXPECT_EQ(status::watching_line("top", "trampoline", 1),
              "{\"status\":\"watching\",\"view\":\"top\",\"backend\":\"trampoline\",\"pid\":1}\n");
}

TEST(Status, HealthLineCarriesEveryCounter) {
    Health h;
    uint64_t v = 1;
#define FS_X(c, field, doc) h.field = v++;
    FS_COUNTER_TABLE(FS_X)
#undef FS_X
    h.events_received = 100;
    h.census_runs = 7;
    h.prog_misses = 3;
    h.programs.push_back({"fs_x", 5, 6}); // not on the line
    auto j = parse_line(status::health_line("export", h), status::Kind::Health);
    EXPECT_EQ(j["view"], "export");
    EXPECT_EQ(j["events_lost"], h.events_lost);
    EXPECT_EQ(j["inode_map_full"], h.inode_map_full);
    EXPECT_EQ(j["task_map_full"], h.task_map_full);
    EXPECT_EQ(j["req_map_full"], h.req_map_full);
    EXPECT_EQ(j["writes_unresolved"], h.writes_unresolved);
    EXPECT_EQ(j["events_received"], 100);
    EXPECT_EQ(j["census_runs"], 7);
    EXPECT_EQ(j["prog_misses"], 3);
    // counters past 2^53 stay exact integers
    h.events_lost = UINT64_MAX;
    EXPECT_EQ(parse_line(status::health_line("top", h), status::Kind::Health)["events_lost"]
                  .get<uint64_t>(),
              UINT64_MAX);
}

TEST(Status, ExitLine) {
    EXPECT_EQ(status::exit_line(0), "{\"status\":\"exit\",\"code\":0}\n");
    auto j = parse_line(status::exit_line(5), status::Kind::Exit);
    EXPECT_EQ(j["code"], 5);
}

TEST(Status, StringsAreEscaped) {
    auto j = parse_line(status::watching_line("a\"b\n\\c", "\xff", 1), status::Kind::Watching);
    EXPECT_EQ(j["view"], "a\"b\n\\c");
    EXPECT_EQ(j["backend"], "\xEF\xBF\xBD"); // not UTF-8: U+FFFD, still one valid line
}

TEST(Status, OpenRefusesWhatCannotBeWritten) {
    status::Stream s;
    EXPECT_NE(s.open(-1), "");
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    ::close(p[1]);
    EXPECT_NE(s.open(p[1]).find("not an open file descriptor"), std::string::npos);
    EXPECT_NE(s.open(p[0]).find("reading only"), std::string::npos);
    EXPECT_FALSE(s.is_open());
    ::close(p[0]);
}

TEST(Status, WritesLinesAndSurvivesAGoneReader) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    status::Stream s;
    ASSERT_EQ(s.open(p[1]), "");
    EXPECT_TRUE(s.is_open());
    EXPECT_NE(::fcntl(p[1], F_GETFD) & FD_CLOEXEC, 0);
    s.write(status::exit_line(0));
    s.write(status::exit_line(2));
    char buf[256] = {};
    const ssize_t n = ::read(p[0], buf, sizeof buf - 1);
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)),
              status::exit_line(0) + status::exit_line(2));
    ::close(p[0]); // the reader goes away: no SIGPIPE, the stream gives up
    s.write(status::exit_line(1));
    EXPECT_FALSE(s.is_open());
    sigset_t pending;
    sigpending(&pending);
    EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
    ::close(p[1]);
}

} // namespace
