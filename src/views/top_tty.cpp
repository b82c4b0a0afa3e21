// `fusescope top`: the interactive ncurses screen. The session's data loop
// runs on a second thread and hands a snapshot over after every counters
// refresh; this thread owns the terminal (keys, drawing, resize).
#include "top_internal.h"

#include "fusescope/core/exit_codes.h"

#include <curses.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <clocale>
#include <mutex>
#include <thread>
#include <utility>

namespace fusescope::top {

namespace {

constexpr int kMinCols = 60, kMinLines = 12;
constexpr int kHeaderRows = 3;

enum Pair : short { PairDrops = 1, PairCached = 2, PairParallel = 3, PairDim = 4 };

// Restores the terminal however the screen is left.
struct Curses {
    bool colors = false;
    Curses() {
        std::setlocale(LC_ALL, "");
        initscr();
        cbreak();
        noecho();
        nonl();
        keypad(stdscr, TRUE);
        set_escdelay(25);
        curs_set(0);
        timeout(100);
        if (has_colors()) {
            start_color();
            use_default_colors();
            init_pair(PairDrops, COLOR_WHITE, COLOR_RED);
            init_pair(PairCached, COLOR_YELLOW, -1);
            init_pair(PairParallel, COLOR_GREEN, -1);
            init_pair(PairDim, COLOR_CYAN, -1);
            colors = true;
        }
    }
    ~Curses() { close(); }
    void close() {
        if (!isendwin())
            endwin();
    }
    Curses(const Curses &) = delete;
    Curses &operator=(const Curses &) = delete;
};

enum class Input { None, Path, Mount };

// Rows the screen keeps to scroll through (the first in sort order); the
// header still counts every inode.
constexpr size_t kScreenRows = 1000;

// What the data thread collects by: the screen's sort, order and filter.
struct Query {
    std::mutex mu;
    HeaderInfo info;
    void set(const HeaderInfo &h) {
        std::lock_guard lk(mu);
        info = h;
    }
    HeaderInfo get() {
        std::lock_guard lk(mu);
        return info;
    }
};

struct Screen {
    Session &session;
    HeaderInfo info;
    Curses &curses;
    Query &query;

    TopData data;
    std::vector<const InodeView *> rows;
    std::optional<InodeKey> sel;
    int sel_idx = 0, scroll = 0;
    bool detail = false, help = false;
    Input input = Input::None;
    std::string buf;
    size_t detail_scroll = 0; // the detail pane's first line (J/K)

    // Until the next refresh, the rows kept for the previous sort are re-sorted.
    void rebuild() {
        query.set(info);
        rows = order_rows(data.snap, info.sort, info.reverse, info.filter);
        sel_idx = std::max(0, follow_selection(rows, &sel, sel_idx));
    }

    void move(int d) {
        if (rows.empty())
            return;
        const int was = sel_idx;
        sel_idx = std::clamp(sel_idx + d, 0, static_cast<int>(rows.size()) - 1);
        sel = rows[static_cast<size_t>(sel_idx)]->key;
        if (sel_idx != was)
            detail_scroll = 0; // another inode's detail starts at its top
    }

    int table_rows() const {
        int avail = LINES - kHeaderRows - 3; // blank, column header, status line
        return detail ? std::max(3, avail - detail_rows() - 1) : avail;
    }
    int detail_rows() const { return std::max(6, (LINES - kHeaderRows - 3) * 45 / 100); }

    void line(int y, const std::string &s, attr_t attr = A_NORMAL, bool fill = false) {
        if (y < 0 || y >= LINES)
            return;
        std::string t = s;
        if (fill && static_cast<int>(t.size()) < COLS)
            t.append(static_cast<size_t>(COLS) - t.size(), ' ');
        attron(attr);
        mvaddnstr(y, 0, t.c_str(), COLS);
        attroff(attr);
    }

    attr_t mode_attr(const InodeView &iv) const {
        if (!curses.colors)
            return iv.mode.kind == ModeKind::Cached ? A_BOLD : A_NORMAL;
        if (iv.mode.kind == ModeKind::Cached)
            return COLOR_PAIR(PairCached) | A_BOLD;
        if (iv.mode.kind == ModeKind::Parallel)
            return COLOR_PAIR(PairParallel);
        return A_NORMAL;
    }

    void draw() {
        erase();
        if (COLS < kMinCols || LINES < kMinLines) {
            std::string msg = fmt::format("terminal too small ({}x{}), need {}x{}", COLS, LINES,
                                          kMinCols, kMinLines);
            std::string msg2 = "enlarge it, or q to quit";
            mvaddnstr(LINES / 2, std::max(0, (COLS - static_cast<int>(msg.size())) / 2),
                      msg.c_str(), COLS);
            if (LINES > 1)
                mvaddnstr(LINES / 2 + 1, std::max(0, (COLS - static_cast<int>(msg2.size())) / 2),
                          msg2.c_str(), COLS);
            refresh();
            return;
        }
        const size_t width = static_cast<size_t>(COLS);
        info.time = wall_clock();
        int drops_line = -1;
        auto head = header_lines(data, info, width, &drops_line);
        for (size_t i = 0; i < head.size(); ++i) {
            attr_t a = static_cast<int>(i) == drops_line
                           ? (curses.colors ? COLOR_PAIR(PairDrops) | A_BOLD : A_REVERSE)
                           : (i == 0 ? A_BOLD : A_NORMAL);
            line(static_cast<int>(i), head[i], a);
        }
        if (help) {
            auto h = help_lines();
            for (size_t i = 0; i < h.size() && kHeaderRows + 1 + static_cast<int>(i) < LINES - 1;
                 ++i)
                line(kHeaderRows + 1 + static_cast<int>(i), h[i]);
            refresh();
            return;
        }
        auto cols = layout_columns(width);
        const int top_y = kHeaderRows + 1;
        line(top_y, format_table_header(cols, info.sort, info.reverse), A_REVERSE, true);
        const int n = table_rows();
        if (sel_idx < scroll)
            scroll = sel_idx;
        if (sel_idx >= scroll + n)
            scroll = sel_idx - n + 1;
        scroll = std::clamp(scroll, 0, std::max(0, static_cast<int>(rows.size()) - n));
        if (rows.empty())
            line(top_y + 1, info.filter.empty() ? "  (no FUSE inode seen yet)"
                                                : "  (no inode matches the filter)");
        for (int i = 0; i < n && scroll + i < static_cast<int>(rows.size()); ++i) {
            const InodeView &iv = *rows[static_cast<size_t>(scroll) + static_cast<size_t>(i)];
            attr_t a = mode_attr(iv);
            if (scroll + i == sel_idx)
                a |= A_REVERSE;
            line(top_y + 1 + i, format_row(iv, cols), a, true);
        }
        if (detail && !rows.empty()) {
            const InodeView &iv = *rows[static_cast<size_t>(sel_idx)];
            int y = top_y + 1 + n;
            DetailPage page = detail_page(detail_lines(iv, data.snap.now_ns, width),
                                          static_cast<size_t>(detail_rows()), detail_scroll);
            detail_scroll = page.offset; // clamped: J past the end stays on the last page
            line(y,
                 fmt::format("-- detail: {} {}", shorten_path(display_path(iv), width / 2),
                             page.position.empty() ? "" : "(" + page.position + ", J/K) "),
                 A_BOLD, false);
            for (size_t i = 0; i < page.lines.size(); ++i)
                line(y + 1 + static_cast<int>(i), page.lines[i]);
        }
        std::string status;
        if (input != Input::None)
            status = fmt::format("filter {}: {}_", input == Input::Path ? "path" : "mount", buf);
        else
            status = fmt::format("{} inodes  q quit  h help  Enter detail  s/</> sort  r reverse  "
                                 "/ path  m mount  p pause",
                                 rows.size());
        line(LINES - 1, status, input != Input::None ? A_BOLD : A_DIM);
        refresh();
    }

    // Returns false to quit.
    bool key(int ch) {
        if (help) {
            help = false;
            return ch != 'q';
        }
        if (input != Input::None) {
            if (ch == 27) {
                input = Input::None;
            } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
                (input == Input::Path ? info.filter.path : info.filter.mount) = buf;
                input = Input::None;
                rebuild();
            } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
                if (!buf.empty())
                    buf.pop_back();
            } else if (ch == 21) { // ^U
                buf.clear();
            } else if (ch >= 32 && ch < 127) {
                buf.push_back(static_cast<char>(ch));
            }
            return true;
        }
        const int page = std::max(1, table_rows() - 1);
        switch (ch) {
        case 'q':
        case 'Q':
            return false;
        case KEY_UP:
        case 'k':
            move(-1);
            break;
        case KEY_DOWN:
        case 'j':
            move(1);
            break;
        case KEY_PPAGE:
            move(-page);
            break;
        case KEY_NPAGE:
        case ' ':
            move(page);
            break;
        case KEY_HOME:
        case 'g':
            move(-static_cast<int>(rows.size()));
            break;
        case KEY_END:
        case 'G':
            move(static_cast<int>(rows.size()));
            break;
        case '\n':
        case '\r':
        case KEY_ENTER:
            detail = !detail;
            detail_scroll = 0;
            break;
        case 'J':
            ++detail_scroll; // draw() clamps it to the pane's last page
            break;
        case 'K':
            detail_scroll -= detail_scroll > 0;
            break;
        case 's':
        case '>':
            info.sort = next_sort_key(info.sort, 1);
            rebuild();
            break;
        case '<':
            info.sort = next_sort_key(info.sort, -1);
            rebuild();
            break;
        case 'r':
            info.reverse = !info.reverse;
            rebuild();
            break;
        case '/':
            input = Input::Path;
            buf = info.filter.path;
            break;
        case 'm':
            input = Input::Mount;
            buf = info.filter.mount;
            break;
        case 'c':
            info.filter = {};
            rebuild();
            break;
        case 'p':
            info.paused = !info.paused;
            break;
        case 'h':
        case '?':
            help = true;
            break;
        case 27:
            detail = false;
            break;
        default:
            break;
        }
        return true;
    }
};

} // namespace

int run_tty(Session &s, const TopOptions &, const HeaderInfo &base) {
    std::mutex mu;
    TopData latest;
    uint64_t gen = 0;
    std::atomic<bool> quit{false}, data_done{false};
    Refresh refresh;
    refresh.last_census_ns = monotonic_ns();
    Query query;
    query.set(base);
    TopData first = take_rows(s, base, kScreenRows, &refresh); // holders from the census at open

    std::thread data([&] {
        s.run([&] { return !quit.load(); }, {},
              [&] {
                  TopData d = take_rows(s, query.get(), kScreenRows, &refresh);
                  std::lock_guard lk(mu);
                  latest = std::move(d);
                  ++gen;
              });
        data_done = true;
    });

    int rc = exit_code::kOk;
    {
        Curses curses;
        Screen scr{s, base, curses, query, std::move(first), {}, {},
                   0, 0,    false,  false, Input::None,      {}, 0};
        scr.rebuild();
        uint64_t seen = 0;
        uint64_t last_draw = 0;
        bool dirty = true;
        while (!g_stop_requested && !data_done) {
            if (dirty || monotonic_ns() - last_draw >= 1'000'000'000ull) {
                scr.draw(); // also once a second for the clock
                last_draw = monotonic_ns();
                dirty = false;
            }
            int ch = getch(); // waits up to 100 ms; ERR on timeout or signal
            if (ch == KEY_RESIZE) {
                dirty = true;
            } else if (ch != ERR) {
                if (!scr.key(ch))
                    break;
                dirty = true;
            }
            if (!scr.info.paused) {
                std::lock_guard lk(mu);
                if (gen != seen) {
                    seen = gen;
                    scr.data = std::exchange(latest, {}); // the data thread fills it anew
                    scr.rebuild();
                    dirty = true;
                }
            }
        }
        curses.close(); // the terminal first, then wait for the data thread
    }
    const bool data_failed = data_done && !g_stop_requested;
    quit = true;
    data.join();
    if (data_failed) {
        fmt::print(stderr, "fusescope top: the data loop stopped (backend poll failed)\n");
        rc = exit_code::kFailure;
    }
    return rc;
}

} // namespace fusescope::top
