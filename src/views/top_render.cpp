// `fusescope top`: sorting, filtering, layout and text (no terminal; see top_render.h).
#include "fusescope/views/top_render.h"
#include "fusescope/model/state_model.h"

#include "fusescope/views/json_out.h"
#include "fusescope/views/text_escape.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace fusescope::top {

namespace {

int mode_rank(const IoMode &m) {
    switch (m.kind) {
    case ModeKind::Cached:
        return 4;
    case ModeKind::Parallel:
        return 3;
    case ModeKind::Passthrough:
        return 2;
    case ModeKind::None:
        return 1;
    case ModeKind::NotAvailable:
        return 0;
    }
    return 0;
}

// Row i of a table indexed by an enum has the enum's value i (so a lookup is an index).
template <auto Id, class Row, size_t N> constexpr bool in_enum_order(const std::array<Row, N> &t) {
    for (size_t i = 0; i < N; ++i)
        if (static_cast<size_t>(t[i].*Id) != i)
            return false;
    return true;
}

// <0: a before b, 0: tie, >0: b before a (in the natural order of the key).
template <class T> int cmp_desc(T a, T b) { return a > b ? -1 : (a < b ? 1 : 0); }

int cmp_path(const InodeView &a, const InodeView &b) {
    int c = display_path(a).compare(display_path(b));
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// One row per sort key, in enum order: its name (--sort, the 's' key), the column whose title
// gets the arrow, and the order (<0: a first).
struct SortDef {
    SortKey key;
    std::string_view name;
    Col column;
    int (*compare)(const InodeView &a, const InodeView &b);
};
constexpr std::array<SortDef, kSortKeys> kSorts = {{
    {SortKey::Wait, "wait", Col::WaitSs,
     [](const InodeView &a, const InodeView &b) {
         return cmp_desc(a.interval.total_wait_ns(), b.interval.total_wait_ns());
     }},
    {SortKey::Writes, "writes", Col::Wps,
     [](const InodeView &a, const InodeView &b) {
         return cmp_desc(a.interval.total_writes(), b.interval.total_writes());
     }},
    {SortKey::Excl, "excl", Col::Excl,
     [](const InodeView &a, const InodeView &b) {
         int c = cmp_desc(a.exclusive_fraction(true), b.exclusive_fraction(true));
         return c ? c : cmp_desc(a.interval.exclusive_writes(), b.interval.exclusive_writes());
     }},
    {SortKey::P99, "p99", Col::P99,
     [](const InodeView &a, const InodeView &b) {
         return cmp_desc(a.wait_p99_ns(true), b.wait_p99_ns(true));
     }},
    {SortKey::Drain, "drain", Col::Drain,
     [](const InodeView &a, const InodeView &b) {
         return cmp_desc(a.interval.drain_waits, b.interval.drain_waits);
     }},
    {SortKey::Path, "path", Col::Path, cmp_path},
    {SortKey::Mode, "mode", Col::Mode,
     [](const InodeView &a, const InodeView &b) {
         int c = cmp_desc(mode_rank(a.mode), mode_rank(b.mode));
         return c ? c : cmp_desc(a.mode.count, b.mode.count);
     }},
}};

static_assert(in_enum_order<&SortDef::key>(kSorts), "kSorts must list the sort keys in enum order");

const SortDef &sort_def(SortKey k) { return kSorts[static_cast<size_t>(k)]; }

int compare(const InodeView &a, const InodeView &b, SortKey key) {
    return sort_def(key).compare(a, b);
}

// " (/usr/bin/rg) [unit x.service]": a program's executable and where it runs, escaped.
std::string where_text(const std::string &exe, const Workload &w) {
    std::string s;
    if (!exe.empty())
        s += " (" + safe_name(exe) + ")";
    if (w.known() && w.cgroup != "/")
        s += " [" + safe_name(w.label()) + "]";
    return s;
}

std::string pad(std::string_view s, size_t width, bool left) {
    std::string f = fit(s, width);
    std::string sp(width - f.size(), ' ');
    return left ? f + sp : sp + f;
}

std::string cell_path(const InodeView &iv, size_t w) { return shorten_path(display_path(iv), w); }
std::string cell_mount(const InodeView &iv, size_t w) {
    return iv.mount_point.empty() ? dev_string(iv.key.dev)
                                  : shorten_path(safe_name(iv.mount_point), w);
}
std::string cell_mode(const InodeView &iv, size_t) { return std::string(to_string(iv.mode)); }
std::string cell_holders(const InodeView &iv, size_t w) { return format_holders(iv, w); }
std::string cell_wps(const InodeView &iv, size_t) { // "?": writes this backend cannot see go here
    return iv.writes_unseen && iv.interval.total_writes() == 0
               ? "?"
               : format_rate(iv.writes_per_second()) + (iv.writes_unseen ? "?" : "");
}
std::string cell_excl(const InodeView &iv, size_t) { // "?": some writes' lock mode is not known
    return iv.interval.total_writes() == 0
               ? "-"
               : fmt::format("{:.0f}{}", 100.0 * iv.exclusive_fraction(true),
                             iv.interval.unclassified_writes() || iv.writes_unseen ? "?" : "");
}
std::string cell_reason(const InodeView &iv, size_t w) {
    if (auto r = iv.top_exclusive_reason(true))
        return w >= 16 ? std::string(to_string(*r)) : std::string(short_reason(*r));
    return "-";
}
std::string cell_p50(const InodeView &iv, size_t) { return format_ns(iv.wait_p50_ns(true)); }
std::string cell_p99(const InodeView &iv, size_t) { return format_ns(iv.wait_p99_ns(true)); }
std::string cell_wait(const InodeView &iv, size_t) {
    return iv.interval.total_wait_ns() == 0 ? "0"
                                            : fmt::format("{:.2f}", iv.wait_seconds_per_second());
}
std::string cell_drain(const InodeView &iv, size_t) {
    return fmt::format("{}", iv.interval.drain_waits);
}

// One row per column, in enum order (and in screen order): its title, its narrowest width,
// when it goes on a narrow screen (0: never; higher goes first), alignment, and its text.
struct ColumnDef {
    Col id;
    std::string_view title;
    size_t min;
    int drop;
    bool left;
    std::string (*cell)(const InodeView &iv, size_t width);
};
constexpr std::array<ColumnDef, 11> kColumns = {{
    {Col::Path, "PATH", 9, 0, true, cell_path},
    {Col::Mount, "MOUNT", 10, 5, true, cell_mount},
    {Col::Mode, "MODE", 10, 0, true, cell_mode},
    {Col::Holders, "HOLDERS", 14, 0, true, cell_holders},
    {Col::Wps, "WR/s", 6, 0, false, cell_wps},
    {Col::Excl, "EXCL%", 6, 0, false, cell_excl},
    {Col::Reason, "REASON", 8, 2, true, cell_reason},
    {Col::P50, "P50", 6, 4, false, cell_p50},
    {Col::P99, "P99", 6, 1, false, cell_p99},
    {Col::WaitSs, "WAIT/s", 7, 0, false, cell_wait},
    {Col::Drain, "DRAIN", 6, 3, false, cell_drain},
}};

static_assert(in_enum_order<&ColumnDef::id>(kColumns),
              "kColumns must list the columns in enum order");

const ColumnDef &column_def(Col c) { return kColumns[static_cast<size_t>(c)]; }

size_t total_width(const std::vector<Column> &cols) {
    size_t w = 0;
    for (const auto &c : cols)
        w += c.width;
    return cols.empty() ? 0 : w + cols.size() - 1;
}

} // namespace

std::optional<SortKey> parse_sort_key(std::string_view s) {
    for (const auto &d : kSorts)
        if (d.name == s)
            return d.key;
    return std::nullopt;
}

std::string_view to_string(SortKey k) { return sort_def(k).name; }

SortKey next_sort_key(SortKey k, int dir) {
    int i = (static_cast<int>(k) + dir % kSortKeys + kSortKeys) % kSortKeys;
    return static_cast<SortKey>(i);
}

std::string sort_keys_list() {
    std::string out;
    for (const auto &d : kSorts)
        out += (out.empty() ? "" : " | ") + std::string(d.name);
    return out;
}

std::string display_path(const InodeView &iv) {
    if (!iv.path.empty())
        return safe_name(iv.path); // names are untrusted: text_escape.h
    return fmt::format("ino {} ({})", iv.key.ino, dev_string(iv.key.dev));
}

bool matches(const InodeView &iv, const Filter &f) {
    if (!f.path.empty() && display_path(iv).find(f.path) == std::string::npos)
        return false;
    if (!f.mount.empty() && iv.mount_point.find(f.mount) == std::string::npos)
        return false;
    return true;
}

std::string fit(std::string_view s, size_t width) {
    if (s.size() <= width)
        return std::string(s);
    if (width == 0)
        return {};
    return std::string(s.substr(0, width - 1)) + "~";
}

std::string shorten_path(std::string_view path, size_t width) {
    if (path.size() <= width)
        return std::string(path);
    constexpr std::string_view dots = "...";
    if (width <= dots.size())
        return std::string(path.substr(path.size() - width));
    // Candidate suffixes start at a '/': "/mnt/db", "/db".
    std::vector<size_t> cuts;
    for (size_t i = path.size(); i-- > 1;)
        if (path[i] == '/')
            cuts.push_back(i);
    // The longest tail of whole components that fits after "...".
    std::string_view tail;
    for (size_t cut : cuts) {
        if (dots.size() + path.size() - cut > width)
            break;
        tail = path.substr(cut);
    }
    if (!tail.empty()) {
        // Keep the first component too if there is room: "/tmp/.../mnt/db".
        size_t head_end = path.find('/', path[0] == '/' ? 1 : 0);
        if (head_end != std::string_view::npos && head_end > 0 &&
            head_end < path.size() - tail.size()) {
            std::string cand = fmt::format("{}/{}{}", path.substr(0, head_end), dots, tail);
            if (cand.size() <= width)
                return cand;
        }
        return fmt::format("{}{}", dots, tail);
    }
    return fmt::format("{}{}", dots, path.substr(path.size() - (width - dots.size())));
}

std::string format_holders(const InodeView &iv, size_t width) {
    if (iv.holders.empty())
        return iv.mode.kind == ModeKind::Cached ? "?" : "-";
    // Holders by program (comm plus executable), the first one's first: "rg:42" for one
    // process, "rg*35" for 35 of them, then "+k more" programs.
    const Holder &h = iv.holders.front();
    size_t same = 0;
    std::vector<std::pair<std::string, std::string>> programs;
    for (const auto &o : iv.holders) {
        std::pair<std::string, std::string> p{o.comm, o.exe_path};
        if (p == std::pair{h.comm, h.exe_path})
            ++same;
        if (std::find(programs.begin(), programs.end(), p) == programs.end())
            programs.push_back(std::move(p));
    }
    const std::string comm = safe_name(h.comm);
    const size_t more = programs.size() - 1;
    std::string id = same > 1 ? fmt::format("*{}", same) : fmt::format(":{}", h.pid);
    std::string tail = iv.holders_unknown ? "+?" : "";
    if (more)
        tail = fmt::format(" +{} more{}", more, iv.holders_unknown ? "?" : "");
    std::string full = comm + id + tail;
    if (width == 0 || full.size() <= width)
        return full;
    if (more)
        tail = fmt::format(" +{}", more);
    if (comm.size() + id.size() + tail.size() <= width)
        return comm + id + tail;
    size_t room = width > id.size() + tail.size() + 1 ? width - id.size() - tail.size() : 0;
    if (room == 0)
        return fit(comm + id + tail, width);
    return fit(comm, room) + id + tail;
}

std::string format_rate(double v) {
    if (!(v > 0))
        return "0";
    if (v < 10)
        return v < 0.05 ? "<0.1" : fmt::format("{:.1f}", v);
    if (v < 1e4)
        return fmt::format("{:.0f}", v);
    if (v < 1e6)
        return fmt::format("{:.1f}k", v / 1e3);
    return fmt::format("{:.1f}M", v / 1e6);
}

std::string format_age(uint64_t now_ns, uint64_t then_ns) {
    if (then_ns == 0)
        return "?";
    double s = now_ns > then_ns ? static_cast<double>(now_ns - then_ns) / 1e9 : 0.0;
    if (s < 60)
        return fmt::format("{:.1f}s ago", s);
    if (s < 3600)
        return fmt::format("{:.0f}m ago", s / 60);
    return fmt::format("{:.1f}h ago", s / 3600);
}

std::string_view short_reason(WriteReason r) { return info(r).short_name; }

bool row_before(const InodeView &a, const InodeView &b, SortKey key, bool reverse) {
    int c = compare(a, b, key);
    if (c == 0)
        c = cmp_desc(a.total.total_wait_ns(), b.total.total_wait_ns());
    if (c == 0)
        c = a.key < b.key ? -1 : (b.key < a.key ? 1 : 0);
    return reverse ? c > 0 : c < 0;
}

std::vector<const InodeView *> order_rows(const Snapshot &s, SortKey key, bool reverse,
                                          const Filter &f) {
    std::vector<const InodeView *> rows;
    rows.reserve(s.inodes.size());
    for (const auto &iv : s.inodes)
        if (matches(iv, f))
            rows.push_back(&iv);
    std::sort(rows.begin(), rows.end(), [&](const InodeView *a, const InodeView *b) {
        return row_before(*a, *b, key, reverse);
    });
    return rows;
}

int follow_selection(const std::vector<const InodeView *> &rows, std::optional<InodeKey> *sel,
                     int prev_idx) {
    if (rows.empty()) {
        sel->reset();
        return -1;
    }
    if (*sel)
        for (size_t i = 0; i < rows.size(); ++i)
            if (rows[i]->key == **sel)
                return static_cast<int>(i);
    const int idx = std::clamp(prev_idx, 0, static_cast<int>(rows.size()) - 1);
    *sel = rows[static_cast<size_t>(idx)]->key;
    return idx;
}

std::string_view column_title(Col c) { return column_def(c).title; }

std::vector<Column> layout_columns(size_t width) {
    std::vector<Column> cols;
    cols.reserve(kColumns.size());
    for (const auto &c : kColumns)
        cols.push_back({c.id, c.min});
    // Drop columns, least important first, until the minimum widths fit.
    while (total_width(cols) > width) {
        auto victim = cols.end();
        for (auto it = cols.begin(); it != cols.end(); ++it)
            if (column_def(it->id).drop > 0 &&
                (victim == cols.end() || column_def(it->id).drop > column_def(victim->id).drop))
                victim = it;
        if (victim == cols.end())
            break; // narrower than the essential columns: caller shows "too small"
        cols.erase(victim);
    }
    size_t used = total_width(cols);
    size_t spare = width > used ? width - used : 0;
    // Grow in steps: mode, holders and path first, then reason and mount.
    constexpr std::array<std::pair<Col, size_t>, 8> steps = {{{Col::Mode, 16},
                                                              {Col::Holders, 20},
                                                              {Col::Path, 30},
                                                              {Col::Reason, 16},
                                                              {Col::Mount, 16},
                                                              {Col::Holders, 28},
                                                              {Col::Mount, 24},
                                                              {Col::Path, 40}}};
    for (const auto &[id, to] : steps) {
        for (auto &c : cols)
            if (c.id == id && c.width < to) {
                size_t grow = std::min(spare, to - c.width);
                c.width += grow;
                spare -= grow;
            }
    }
    for (auto &c : cols) // the rest goes to the path
        if (c.id == Col::Path)
            c.width += spare;
    return cols;
}

std::string format_table_header(const std::vector<Column> &cols, SortKey key, bool reverse) {
    std::string out;
    for (const auto &c : cols) {
        std::string title(column_title(c.id));
        if (sort_def(key).column == c.id)
            title += reverse ? "^" : "v";
        if (!out.empty())
            out += ' ';
        out += pad(title, c.width, column_def(c.id).left);
    }
    return out;
}

std::string format_row(const InodeView &iv, const std::vector<Column> &cols) {
    std::string out;
    for (const auto &c : cols) {
        const ColumnDef &d = column_def(c.id);
        const std::string v = d.cell(iv, c.width);
        if (!out.empty())
            out += ' ';
        out += pad(v, c.width, d.left);
    }
    return out;
}

void TotalsSum::add(const InodeView &iv) {
    ++t_.inodes;
    if (iv.mode.kind == ModeKind::Cached)
        ++t_.cached;
    // Each inode's interval may differ slightly (absent = zero); use its own length.
    if (iv.interval_ns == 0) {
        shared_ += iv.interval.shared_writes();
        exclusive_ += iv.interval.exclusive_writes();
        wait_ns_ += iv.interval.total_wait_ns();
        return;
    }
    const double is = static_cast<double>(iv.interval_ns) / 1e9;
    t_.shared_wps += static_cast<double>(iv.interval.shared_writes()) / is;
    t_.exclusive_wps += static_cast<double>(iv.interval.exclusive_writes()) / is;
    t_.wait_ss += static_cast<double>(iv.interval.total_wait_ns()) / 1e9 / is;
}

Totals TotalsSum::finish(uint64_t snapshot_interval_ns) const {
    Totals t = t_;
    if (snapshot_interval_ns > 0) {
        const double secs = static_cast<double>(snapshot_interval_ns) / 1e9;
        t.shared_wps += static_cast<double>(shared_) / secs;
        t.exclusive_wps += static_cast<double>(exclusive_) / secs;
        t.wait_ss += static_cast<double>(wait_ns_) / 1e9 / secs;
    }
    return t;
}

RowCollector::RowCollector(SortKey key, bool reverse, Filter filter, size_t limit)
    : key_(key), reverse_(reverse), filter_(std::move(filter)), limit_(limit) {}

void RowCollector::add(InodeView &&iv) {
    totals_.add(iv);
    if (iv.path.empty())
        ++paths_unknown_;
    if (!matches(iv, filter_))
        return;
    ++matched_;
    auto before = [this](const InodeView &a, const InodeView &b) {
        return row_before(a, b, key_, reverse_);
    };
    if (limit_ != 0 && kept_.size() == limit_) {
        if (!before(iv, kept_.front()))
            return; // after every kept row
        std::pop_heap(kept_.begin(), kept_.end(), before);
        kept_.back() = std::move(iv);
    } else {
        kept_.push_back(std::move(iv));
    }
    std::push_heap(kept_.begin(), kept_.end(), before);
}

std::vector<InodeView *> RowCollector::kept() {
    std::vector<InodeView *> out;
    out.reserve(kept_.size());
    for (auto &iv : kept_)
        out.push_back(&iv);
    return out;
}

TopData RowCollector::finish(Snapshot head) && {
    TopData d;
    d.totals = totals_.finish(head.interval_ns);
    d.matched = matched_;
    d.paths_unknown = paths_unknown_;
    std::sort(kept_.begin(), kept_.end(),
              [](const InodeView &a, const InodeView &b) { return a.key < b.key; });
    head.inodes = std::move(kept_);
    d.snap = std::move(head);
    return d;
}

TopData collect_rows(Snapshot s, SortKey key, bool reverse, const Filter &f, size_t limit) {
    RowCollector c(key, reverse, f, limit);
    std::vector<InodeView> views = std::move(s.inodes);
    s.inodes.clear();
    for (auto &iv : views)
        c.add(std::move(iv));
    return std::move(c).finish(std::move(s));
}

TopData rank_rows(const StateModel &m, SortKey key, bool reverse, const Filter &f, size_t limit,
                  Ranking *last) {
    const bool same_query = last->valid && last->key == key && last->reverse == reverse &&
                            last->filter == f && last->limit == limit;
    if (same_query && m.generation() == last->generation) {
        Snapshot snap = m.snapshot_of(last->keys);
        if (snap.generation == last->generation) { // nothing moved in between either
            TopData d;
            d.snap = std::move(snap);
            d.totals = last->totals;
            d.matched = last->matched;
            d.paths_unknown = last->paths_unknown;
            return d;
        }
    }
    RowCollector rows(key, reverse, f, limit);
    Snapshot head = m.snapshot_ranked([&](InodeView &&iv) { rows.add(std::move(iv)); },
                                      [&] { return rows.kept(); });
    const uint64_t generation = head.generation;
    TopData d = std::move(rows).finish(std::move(head));
    *last = Ranking{true,
                    generation,
                    key,
                    reverse,
                    f,
                    limit,
                    {},
                    d.totals,
                    d.matched,
                    d.paths_unknown,
                    last->rankings + 1};
    last->keys.reserve(d.snap.inodes.size());
    for (const auto &iv : d.snap.inodes)
        last->keys.push_back(iv.key);
    return d;
}

uint64_t drops(const Health &h) {
    return h.events_lost + h.inode_map_full + h.task_map_full + h.req_map_full + h.prog_misses;
}

std::string watched_text(const HeaderInfo &h, const Snapshot &s) {
    std::string w = h.mount.empty() ? fmt::format("all FUSE ({})", s.mounts.size()) : h.mount;
    if (h.pid)
        w += fmt::format("  pid {}", h.pid);
    return w;
}

std::vector<std::string> header_lines(const TopData &d, const HeaderInfo &h, size_t width,
                                      int *drops_line) {
    std::vector<std::string> out;
    std::string first = fmt::format("fusescope top - {}  backend: {}  kernel: {}  mounts: ", h.time,
                                    h.backend, h.kernel);
    // The watched mount is the part that gives way on a narrow screen.
    const size_t room = width > first.size() + 12 ? width - first.size() : 12;
    out.push_back(fit(first + shorten_path(safe_name(watched_text(h, d.snap)), room), width));
    const Totals &t = d.totals;
    out.push_back(fit(fmt::format("writes/s: {} shared, {} excl   lock wait: {:.2f} s/s   "
                                  "inodes: {}, {} cached",
                                  format_rate(t.shared_wps), format_rate(t.exclusive_wps),
                                  t.wait_ss, t.inodes, t.cached),
                      width));
    std::string third = fmt::format("{}sort: {}{}", h.paused ? "[PAUSED]  " : "", to_string(h.sort),
                                    h.reverse ? " (reversed)" : "");
    if (!h.filter.path.empty())
        third += fmt::format("  path~ \"{}\"", safe_name(h.filter.path));
    if (!h.filter.mount.empty())
        third += fmt::format("  mount~ \"{}\"", safe_name(h.filter.mount));
    const Health &hl = d.snap.health;
    if (drops(hl)) {
        third += fmt::format("  DROPPED: {} events lost, map full {}/{}/{} (inode/task/req), "
                             "{} probe runs skipped by the kernel",
                             hl.events_lost, hl.inode_map_full, hl.task_map_full, hl.req_map_full,
                             hl.prog_misses);
        if (drops_line)
            *drops_line = static_cast<int>(out.size());
    } else {
        third += "  drops: 0";
        if (drops_line)
            *drops_line = -1;
    }
    out.push_back(fit(third, width));
    return out;
}

std::vector<std::string> detail_lines(const InodeView &iv, uint64_t now_ns, size_t width) {
    std::vector<std::string> out;
    auto add = [&](const std::string &s) { out.push_back(fit(s, width)); };
    add(fmt::format("{}  (dev {} ino {} nodeid {}) mount {}", display_path(iv),
                    dev_string(iv.key.dev), iv.key.ino, iv.nodeid,
                    iv.mount_point.empty() ? "?" : safe_name(iv.mount_point)));
    if (path_may_be_stale(iv.path_source))
        add(fmt::format("path: the kernel's name at the first open ({}); a rename since is not "
                        "seen",
                        format_age(now_ns, iv.path_captured_ns)));
    add(fmt::format(
        "mode: {} (iocachectr {}, cache bit {}){}  mmaps shared {} private {} "
        "writable {}{}",
        to_string(iv.mode), iv.mode.iocachectr, iv.mode.cache_bit ? "set" : "clear",
        iv.mode.draining() ? " draining parallel writers" : "", iv.mmaps_shared, iv.mmaps_private,
        iv.mmaps_writable,
        iv.passthrough_files ? fmt::format("  passthrough files {}", iv.passthrough_files) : ""));
    if (iv.holders.empty()) {
        add(fmt::format("holders: {}",
                        iv.mode.kind == ModeKind::Cached ? "unknown (census pending)" : "none"));
    } else {
        add(fmt::format("holders ({}){}:", iv.holders.size(),
                        iv.holders_unknown ? ", more the kernel counts but not known"
                        : iv.holders_stale ? ", stale (census pending)"
                                           : ""));
        for (const auto &h : iv.holders)
            add(fmt::format("  {}:{}  {}  since {}{}{}", safe_name(h.comm), h.pid, to_string(h.how),
                            h.since_is_lower_bound ? "before " : "", format_age(now_ns, h.since_ns),
                            where_text(h.exe_path, h.where)));
    }
    if (!iv.holder_programs.empty()) {
        add("holding programs since start (holds each to its own release):");
        for (const auto &p : iv.holder_programs)
            add(fmt::format("  {}{}: {} process{}, {} {} hold{} ({} entered cache mode), {} in "
                            "total, longest {}{}",
                            safe_name(p.program.comm), where_text(p.program.exe, p.program.where),
                            p.program.processes, p.program.processes == 1 ? "" : "es", p.holds,
                            p.how, p.holds == 1 ? "" : "s", p.entered_cache,
                            format_ns(static_cast<double>(p.total_held_ns)),
                            format_ns(static_cast<double>(p.longest_held_ns)),
                            p.cost_ns ? ", cost " + format_ns(static_cast<double>(p.cost_ns))
                                      : ""));
    }
    if (!iv.writers.empty()) {
        add("writers (opened it for writing):");
        for (const auto &w : iv.writers)
            add(fmt::format("  {}{}: {} process{}, {} open{}", safe_name(w.program.comm),
                            where_text(w.program.exe, w.program.where), w.program.processes,
                            w.program.processes == 1 ? "" : "es", w.opens,
                            w.opens == 1 ? "" : "s"));
    }
    const WriteStats &ws = iv.interval.total_writes() ? iv.interval : iv.total;
    const char *which = iv.interval.total_writes() ? "last interval" : "since start";
    std::string reasons;
    for (int r = 0; r < kWriteReasons; ++r) {
        uint64_t n = ws.writes[static_cast<size_t>(r)];
        if (!n)
            continue;
        reasons +=
            fmt::format("  {} {:.0f}%", to_string(static_cast<WriteReason>(r)),
                        100.0 * static_cast<double>(n) / static_cast<double>(ws.total_writes()));
    }
    add(fmt::format("writes ({}): {}{}", which, ws.total_writes(),
                    reasons.empty() ? "" : "  by reason:" + reasons));
    add(fmt::format("since start: {} writes, {} exclusive, wait {}, drain waits {} ({})",
                    iv.total.total_writes(), iv.total.exclusive_writes(),
                    format_ns(static_cast<double>(iv.total.total_wait_ns())), iv.total.drain_waits,
                    format_ns(static_cast<double>(iv.total.drain_wait_ns))));
    if (const uint64_t u = iv.total.unclassified_writes())
        add(fmt::format("unclassified: {} async writes sent by another task than their writer "
                        "(full background queue): lock mode not seen",
                        u));
    if (iv.writes_unseen)
        add(fmt::format("not seen here: {}",
                        iv.total.writeback_requests
                            ? fmt::format("buffered writes under the writeback cache ({} "
                                          "writeback requests)",
                                          iv.total.writeback_requests)
                            : std::string("passthrough writes (no FUSE request is sent)")));
    if (iv.transitions.empty()) {
        add("mode transitions: none seen");
    } else {
        add("mode transitions (newest first):");
        size_t shown = 0;
        for (auto it = iv.transitions.rbegin(); it != iv.transitions.rend() && shown++ < 6; ++it)
            add(fmt::format("  {:>10}  {} -> {}  ({}{})", format_age(now_ns, it->ts_ns),
                            to_string(it->from), to_string(it->to), to_string(it->cause),
                            it->pid ? fmt::format(" by {}:{}", safe_name(it->comm), it->pid) : ""));
    }
    if (!iv.last_drain_waiters.empty()) {
        add(fmt::format("drain waiters ({} events, {}):", iv.drain_events,
                        format_ns(static_cast<double>(iv.drain_events_ns))));
        size_t shown = 0;
        for (auto it = iv.last_drain_waiters.rbegin();
             it != iv.last_drain_waiters.rend() && shown++ < 4; ++it)
            add(fmt::format("  {}:{} waited {}  {}", safe_name(it->comm), it->pid,
                            format_ns(static_cast<double>(it->wait_ns)),
                            format_age(now_ns, it->ts_ns)));
    }
    Histogram hist = iv.interval.wait_hist();
    const char *hwhich = "last interval";
    if (hist.empty()) {
        hist = iv.total.wait_hist();
        hwhich = "since start";
    }
    if (hist.empty()) {
        add("lock wait histogram: no contention");
    } else {
        add(fmt::format("lock wait histogram ({}):", hwhich));
        uint64_t maxc = 0;
        for (auto c : hist.slots)
            maxc = std::max(maxc, c);
        const size_t barw = width > 40 ? std::min<size_t>(width - 34, 40) : 4;
        for (int i = 0; i < kHistSlots; ++i) {
            uint64_t c = hist.slots[static_cast<size_t>(i)];
            if (!c)
                continue;
            size_t n = static_cast<size_t>(std::ceil(
                static_cast<double>(c) * static_cast<double>(barw) / static_cast<double>(maxc)));
            add(fmt::format(
                "  {:>7} - {:<7} {:>8} {}", format_ns(static_cast<double>(Histogram::slot_low(i))),
                format_ns(static_cast<double>(Histogram::slot_high(i))), c, std::string(n, '#')));
        }
    }
    return out;
}

DetailPage detail_page(std::vector<std::string> lines, size_t rows, size_t offset) {
    DetailPage p;
    const size_t n = lines.size();
    p.offset = n > rows ? std::min(offset, n - rows) : 0;
    const size_t end = std::min(n, p.offset + rows);
    if (n > rows)
        p.position = rows ? fmt::format("lines {}-{} of {}", p.offset + 1, end, n)
                          : fmt::format("{} lines", n);
    p.lines.assign(std::make_move_iterator(lines.begin() + static_cast<std::ptrdiff_t>(p.offset)),
                   std::make_move_iterator(lines.begin() + static_cast<std::ptrdiff_t>(end)));
    return p;
}

std::vector<std::string> help_lines() {
    return {
        "fusescope top - keys",
        "",
        "  Up/Down, j/k     move the selection (it follows the inode)",
        "  PgUp/PgDn, g/G   page up/down, first/last",
        "  Enter            show/hide the detail pane of the selected inode",
        "  J/K              scroll the detail pane down/up a line",
        "  s, >             next sort column     <  previous sort column",
        "  r                reverse the sort order",
        "  /                filter by path substring (empty: clear)",
        "  m                filter by mount substring (empty: clear)",
        "  c                clear both filters",
        "  p                pause/resume (the data keeps being collected)",
        "  q                quit            h, ?  this help",
        "",
        "Columns: MODE = inode IO mode (cached n = n caching opens/maps; parallel n = n",
        "shared-lock writers), HOLDERS = who keeps it cached, EXCL% = exclusive writes",
        "in the last interval, REASON = top exclusive reason, P50/P99 = lock wait,",
        "WAIT/s = writers' lock wait seconds per second, DRAIN = drain waits.",
        "",
        "Press any key to go back.",
    };
}

std::string batch_text(const TopData &d, const HeaderInfo &h, size_t width) {
    std::string out;
    for (const auto &l : header_lines(d, h, width))
        out += l + "\n";
    out += "\n";
    auto cols = layout_columns(width);
    out += format_table_header(cols, h.sort, h.reverse) + "\n";
    const auto rows = order_rows(d.snap, h.sort, h.reverse, h.filter);
    for (const InodeView *iv : rows) {
        std::string row = format_row(*iv, cols);
        while (!row.empty() && row.back() == ' ')
            row.pop_back();
        out += row + "\n";
    }
    if (d.matched > rows.size())
        out += fmt::format("... {} more inodes (--rows N to show more, 0 for all)\n",
                           d.matched - rows.size());
    return out;
}

namespace {

template <class J> J workload_json(const Workload &w) {
    J j;
    j["cgroup"] = w.cgroup;
    j["unit"] = w.unit;
    j["container"] = w.container;
    j["container_runtime"] = w.runtime;
    return j;
}

template <class J> J program_json(const ProgramRef &p) {
    J j;
    j["comm"] = p.comm;
    j["exe"] = p.exe;
    j["processes"] = p.processes;
    j["pids"] = p.pids;
    j["where"] = workload_json<J>(p.where);
    return j;
}

template <class J> J row_json(const InodeView &iv) {
    J r;
    r["path"] = iv.path;
    r["path_source"] = to_string(iv.path_source);
    r["path_may_be_stale"] = path_may_be_stale(iv.path_source);
    r["mount"] = iv.mount_point;
    r["dev"] = dev_string(iv.key.dev);
    r["ino"] = iv.key.ino;
    r["mode"] = to_string(iv.mode.kind);
    r["mode_count"] = iv.mode.count;
    r["draining"] = iv.mode.draining();
    r["holders"] = format_holders(iv);
    J holders = J::array();
    for (const auto &h : iv.holders) {
        J hj;
        hj["pid"] = h.pid;
        hj["comm"] = h.comm;
        hj["exe"] = h.exe_path;
        hj["how"] = to_string(h.how);
        hj["since_before_start"] = h.since_is_lower_bound;
        hj["where"] = workload_json<J>(h.where);
        holders.push_back(std::move(hj));
    }
    r["holders_now"] = std::move(holders);
    r["holders_unknown"] = iv.holders_unknown;
    J programs = J::array();
    for (const auto &p : iv.holder_programs) {
        J pj = program_json<J>(p.program);
        pj["how"] = p.how;
        pj["holds"] = p.holds;
        pj["entered_cache_mode"] = p.entered_cache;
        pj["holding_now"] = p.holding_now;
        pj["total_held_ns"] = p.total_held_ns;
        pj["longest_held_ns"] = p.longest_held_ns;
        pj["cost_ns"] = p.cost_ns;
        programs.push_back(std::move(pj));
    }
    r["holder_programs"] = std::move(programs);
    J writers = J::array();
    for (const auto &w : iv.writers) {
        J wj = program_json<J>(w.program);
        wj["opens"] = w.opens;
        writers.push_back(std::move(wj));
    }
    r["writers"] = std::move(writers);
    const WriteStats &in = iv.interval;
    r["writes_per_s"] = iv.writes_per_second();
    r["writes_unseen"] = iv.writes_unseen;
    r["interval_writes"] = in.total_writes();
    r["exclusive_pct"] = in.total_writes() ? 100.0 * iv.exclusive_fraction(true) : 0.0;
    r["unclassified_writes"] = in.unclassified_writes();
    const auto reason = iv.top_exclusive_reason(true);
    r["reason"] = reason ? J(to_string(*reason)) : J(nullptr);
    r["wait_p50_ns"] = iv.wait_p50_ns(true);
    r["wait_p99_ns"] = iv.wait_p99_ns(true);
    r["wait_s_per_s"] = in.total_wait_ns() ? iv.wait_seconds_per_second() : 0.0;
    r["drain_waits"] = in.drain_waits;
    r["total_writes"] = iv.total.total_writes();
    r["total_wait_ns"] = iv.total.total_wait_ns();
    return r;
}

} // namespace

std::string batch_json(const TopData &d, const HeaderInfo &h) {
    using J = nlohmann::ordered_json;
    J j;
    j["time"] = h.time;
    j["backend"] = h.backend;
    j["kernel"] = h.kernel;
    j["watched"] = watched_text(h, d.snap);
    j["sort"] = to_string(h.sort);
    j["reverse"] = h.reverse;
    const Totals &t = d.totals;
    j["totals"] = {{"shared_writes_per_s", t.shared_wps},
                   {"exclusive_writes_per_s", t.exclusive_wps},
                   {"wait_s_per_s", t.wait_ss},
                   {"inodes", t.inodes},
                   {"cached", t.cached}};
    const Health &hl = d.snap.health;
    j["drops"] = {{"events_lost", hl.events_lost},
                  {"inode_map_full", hl.inode_map_full},
                  {"task_map_full", hl.task_map_full},
                  {"req_map_full", hl.req_map_full},
                  {"prog_misses", hl.prog_misses}};
    J rows = J::array();
    const auto ordered = order_rows(d.snap, h.sort, h.reverse, h.filter);
    for (const InodeView *iv : ordered)
        rows.push_back(row_json<J>(*iv));
    j["rows"] = std::move(rows);
    j["more"] = d.matched > ordered.size() ? d.matched - ordered.size() : 0;
    return json_text(j) + "\n";
}

} // namespace fusescope::top
