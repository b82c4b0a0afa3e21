// `fusescope top`: the pure part (sorting, filtering, column layout, text of
// rows, header, detail pane and batch snapshots). No terminal, no session:
// unit-tested in tests/unit/test_top_render.cpp. The ncurses screen and the
// batch loop live in src/views/top.cpp and src/views/top_tty.cpp.
#pragma once

#include "fusescope/model/snapshot.h"
#include "fusescope/views/format.h" // format_ns

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fusescope {
class StateModel;
}

namespace fusescope::top {

enum class SortKey : uint8_t { Wait, Writes, Excl, P99, Drain, Path, Mode };
inline constexpr int kSortKeys = 7;

std::optional<SortKey> parse_sort_key(std::string_view s); // "wait", "writes", "excl", ...
std::string_view to_string(SortKey k);
SortKey next_sort_key(SortKey k, int dir); // dir +1 / -1, wraps
std::string sort_keys_list();              // "wait | writes | ..."

struct Filter {
    std::string path;  // substring of the displayed path ("" = any)
    std::string mount; // substring of the mount point ("" = any)
    bool empty() const { return path.empty() && mount.empty(); }
    bool operator==(const Filter &) const = default;
};

// The inode's path, or "ino N (maj:min)" while unresolved.
std::string display_path(const InodeView &iv);
bool matches(const InodeView &iv, const Filter &f);

// Fits a path into width columns, keeping the file name: "/tmp/.../mnt/db".
std::string shorten_path(std::string_view path, size_t width);
// Fits text into width columns (cut at the end with "~").
std::string fit(std::string_view s, size_t width);

// "comm:pid +k more" for the holders of cached mode, fitted into width
// (width 0: no limit). "-" if no holder, "?" if cached with holders unknown.
std::string format_holders(const InodeView &iv, size_t width = 0);
std::string format_rate(double v);                         // "0", "12", "1.2k", "3.4M"
std::string format_age(uint64_t now_ns, uint64_t then_ns); // "3.2s ago", "5m ago"
std::string_view short_reason(WriteReason r); // "cache-io", "no-flag", ... (<= 8 chars)

// Display order: by key (biggest first for numbers, A-Z for path), ties by
// total wait then key; reverse flips the order.
bool row_before(const InodeView &a, const InodeView &b, SortKey key, bool reverse);
// Rows to show: filtered, then in display order.
std::vector<const InodeView *> order_rows(const Snapshot &s, SortKey key, bool reverse,
                                          const Filter &f);

// The selection follows the inode: its index in rows; if it is gone (filtered
// out, evicted), the row at prev_idx (clamped) and *sel becomes that inode.
// -1 (and *sel reset) when rows is empty.
int follow_selection(const std::vector<const InodeView *> &rows, std::optional<InodeKey> *sel,
                     int prev_idx);

enum class Col : uint8_t { Path, Mount, Mode, Holders, Wps, Excl, Reason, P50, P99, WaitSs, Drain };
struct Column {
    Col id;
    size_t width;
};
// Columns for a screen width: drops the least important ones (mount, p50,
// drain, reason, p99) when narrow, gives spare room to path/holders/mode.
std::vector<Column> layout_columns(size_t width);
std::string_view column_title(Col c);
// The column header line, and one inode's row, exactly as wide as the columns.
std::string format_table_header(const std::vector<Column> &cols, SortKey key, bool reverse);
std::string format_row(const InodeView &iv, const std::vector<Column> &cols);

struct Totals {
    double shared_wps = 0, exclusive_wps = 0, wait_ss = 0;
    uint64_t inodes = 0, cached = 0;
};

// Totals, one inode at a time: an inode's rates use its own interval length,
// or (absent) the snapshot's, which is known only once all are added.
class TotalsSum {
  public:
    void add(const InodeView &iv);
    Totals finish(uint64_t snapshot_interval_ns) const;

  private:
    Totals t_;
    uint64_t shared_ = 0, exclusive_ = 0, wait_ns_ = 0; // of inodes without their own interval
};

// What one refresh of top shows: the model's snapshot holding only the rows
// that can be shown, and what the header says about all inodes.
struct TopData {
    Snapshot snap;            // inodes: the first rows in display order, at most the limit
    Totals totals;            // over every inode
    size_t matched = 0;       // inodes that pass the filter, shown or not
    size_t paths_unknown = 0; // inodes whose path is not known yet (a census may tell)
};

// Builds TopData from one pass over the model's views (StateModel::snapshot_ranked)
// keeping at most @limit rows (0: all): top's memory does not grow with the
// number of inodes tracked.
class RowCollector {
  public:
    RowCollector(SortKey key, bool reverse, Filter filter, size_t limit);
    void add(InodeView &&iv);
    // The rows kept so far, for the model to make full in place (their order stays).
    std::vector<InodeView *> kept();
    // @head: the snapshot's other fields; its inodes become the kept rows.
    TopData finish(Snapshot head) &&;

  private:
    SortKey key_;
    bool reverse_;
    Filter filter_;
    size_t limit_;
    std::vector<InodeView> kept_; // a heap whose front is the last kept row in display order
    TotalsSum totals_;
    size_t matched_ = 0;
    size_t paths_unknown_ = 0;
};
// The same from a snapshot already taken (tests, one-shot callers).
TopData collect_rows(Snapshot s, SortKey key, bool reverse, const Filter &f, size_t limit);

// The last ranking rank_rows made, and what it was made for.
struct Ranking {
    bool valid = false;
    uint64_t generation = 0; // the model's (StateModel::generation) when ranked
    SortKey key = SortKey::Wait;
    bool reverse = false;
    Filter filter;
    size_t limit = 0;
    std::vector<InodeKey> keys; // the rows kept, by key
    Totals totals;
    size_t matched = 0, paths_unknown = 0;
    uint64_t rankings = 0; // times every inode was ranked (the rest reused the last)
};
// TopData of the model now, like collect_rows over its snapshot. Every inode is ranked
// again only when something a row's rank or the totals depend on changed (the model's
// generation moved) or the query did; else the rows @last kept are read again (their
// holds age). Idle, a refresh over 16k inodes then reads only the rows it shows.
TopData rank_rows(const StateModel &m, SortKey key, bool reverse, const Filter &f, size_t limit,
                  Ranking *last);

uint64_t drops(const Health &h); // events lost + map-full counts

struct HeaderInfo {
    std::string time;    // wall clock "HH:MM:SS"
    std::string backend; // session.plan().backend
    std::string kernel;  // session.facts().release
    std::string mount;   // --mount PATH, "" for every FUSE mount
    uint32_t pid = 0;    // --pid, 0 for none
    bool paused = false;
    SortKey sort = SortKey::Wait;
    bool reverse = false;
    Filter filter;
};
// What top watches, at this refresh: the --mount path, or "all FUSE (N)" with N the FUSE
// mounts in @s's table (mounts come and go while top runs), and "  pid P" with --pid.
std::string watched_text(const HeaderInfo &h, const Snapshot &s);
// Two or three lines: identity, totals per second, drops (line index of the
// drops text in *drops_line if any, for highlighting).
std::vector<std::string> header_lines(const TopData &d, const HeaderInfo &h, size_t width,
                                      int *drops_line = nullptr);

// The detail pane of one inode: holders (how, since when), reasons, wait
// histogram, drain waiters, recent mode transitions.
std::vector<std::string> detail_lines(const InodeView &iv, uint64_t now_ns, size_t width);
// The part of the detail pane that fits @rows rows, from line @offset (clamped: the last
// page is full, never past the end).
struct DetailPage {
    size_t offset = 0;              // the first line shown, after clamping
    std::vector<std::string> lines; // at most @rows
    std::string position;           // "lines 3-12 of 40", or "" when every line fits
};
DetailPage detail_page(std::vector<std::string> lines, size_t rows, size_t offset);
std::vector<std::string> help_lines();

// One batch (-b) snapshot: header lines, a blank line, the table, and how many
// matching inodes did not fit in the row limit. Ends with "\n".
std::string batch_text(const TopData &d, const HeaderInfo &h, size_t width);
// The same snapshot as one line of JSON (top -b --json): the header's fields, then per row
// what each column shows as numbers and names (not cut to a width, not escaped for a
// terminal: JSON escapes), and the holder and writer programs of the detail pane.
std::string batch_json(const TopData &d, const HeaderInfo &h);

} // namespace fusescope::top
