// `fusescope top`: options, the shared data helpers and batch mode (-b).
// The interactive screen is in top_tty.cpp, the text in top_render.cpp.
#include "top_internal.h"

#include "fusescope/core/exit_codes.h"
#include "fusescope/core/status.h"
#include "fusescope/views/text_escape.h"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace fusescope {

namespace top {

TopData take_rows(Session &s, const HeaderInfo &h, size_t limit, Refresh *r) {
    auto collect = [&] {
        return rank_rows(s.model(), h.sort, h.reverse, h.filter, limit, &r->ranking);
    };
    TopData d = collect();
    const uint64_t now = monotonic_ns();
    // A census resolves the paths of open files (readlink of their fds). One that left N
    // paths unknown is asked again soon only once that count moved: the files of the rest
    // are closed (a census walks every task's files; each second, that was top's idle cost).
    constexpr uint64_t kCensusEvery = 2'000'000'000ull, kCensusUnchangedEvery = 30'000'000'000ull;
    const uint64_t since = now - r->last_census_ns;
    if (d.paths_unknown > 0 &&
        (since >= kCensusUnchangedEvery ||
         (since >= kCensusEvery && d.paths_unknown != r->paths_unknown_after))) {
        r->last_census_ns = now;
        s.census();
        d = collect();
        r->paths_unknown_after = d.paths_unknown;
    }
    if (const uint64_t n = drops(d.snap.health); n != r->drops_reported) {
        r->drops_reported = n;
        status::health("top", d.snap.health);
    }
    return d;
}

std::string wall_clock() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

} // namespace top

namespace {

constexpr size_t kBatchWidth = 160;

int run_batch(Session &s, const TopOptions &t, const top::HeaderInfo &base) {
    int printed = 0;
    top::Refresh refresh;
    refresh.last_census_ns = monotonic_ns();
    s.run([&] { return t.iterations <= 0 || printed < t.iterations; }, {},
          [&] {
              top::HeaderInfo h = base;
              h.time = top::wall_clock();
              top::TopData d =
                  top::take_rows(s, h, static_cast<size_t>(std::max(t.rows, 0)), &refresh);
              if (t.json) {
                  fmt::print("{}", top::batch_json(d, h));
              } else {
                  std::string text = top::batch_text(d, h, kBatchWidth);
                  fmt::print("{}", escape_text(std::string(printed ? "\n" : "") + text,
                                               EscapeScope::Output));
              }
              std::fflush(stdout);
              ++printed;
          });
    return exit_code::kOk;
}

} // namespace

int run_top(const SessionOptions &so_in, const TopOptions &t) {
    auto key = top::parse_sort_key(t.sort);
    if (!key) {
        fmt::print(stderr, "fusescope top: unknown sort key '{}' (use {})\n", t.sort,
                   top::sort_keys_list());
        return exit_code::kUsage;
    }
    SessionOptions so = so_in;
    so.interval_s = t.interval_s;
    int code = exit_code::kFailure;
    auto s = Session::open_for_view(so, "top", &code);
    if (!s)
        return code;
    top::HeaderInfo base;
    base.backend = std::string(to_string(s->plan().backend));
    base.kernel = s->facts().release;
    base.mount = so.mount.value_or(""); // "all FUSE (N)" is counted at every refresh
    base.pid = so.pid.value_or(0);
    base.sort = *key;
    const bool batch = t.batch || t.json || !isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO);
    s->watching();
    if (batch)
        return run_batch(*s, t, base);
    return top::run_tty(*s, t, base);
}

} // namespace fusescope
