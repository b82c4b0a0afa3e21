// Shared by top.cpp (options, batch mode) and top_tty.cpp (the ncurses screen).
#pragma once

#include "fusescope/core/session.h"
#include "fusescope/views/top_render.h"
#include "fusescope/views/views.h"

#include <cstdint>

namespace fusescope::top {

// What take_rows remembers from one refresh to the next.
struct Refresh {
    uint64_t last_census_ns = 0;
    size_t paths_unknown_after = 0; // TopData::paths_unknown right after that census
    uint64_t drops_reported = 0;    // drops() of the last health line on the status stream
    Ranking ranking;                // rank_rows' last
};

// The rows to display (sort, filter, reverse from @h; at most @limit, 0: all);
// runs a census first (on the session's thread) when some inode's path is
// still unknown and the last such census is old enough. A health line goes to the
// status stream whenever the header's DROPPED count changed.
TopData take_rows(Session &s, const HeaderInfo &h, size_t limit, Refresh *r);
std::string wall_clock(); // "HH:MM:SS"

// The interactive screen; returns an exit status.
int run_tty(Session &s, const TopOptions &t, const HeaderInfo &base);

} // namespace fusescope::top
