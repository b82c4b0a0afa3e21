// The "indexer" child process of db-and-indexer: it mmaps the database file MAP_SHARED partway
// through the run, which puts a direct-io inode into cached io mode for a while.
#pragma once

#include "common.h"

#include <sys/types.h>

namespace load {

// What the child reports back through a pipe when it is done.
struct IndexerReport {
    double mapped_at = 0; // CLOCK_MONOTONIC seconds (comparable with the parent's now_s())
    double unmapped_at = 0;
    uint64_t length = 0;
    uint64_t pages = 0;
    int err = 0;         // errno of the failing step, 0 if all went well
    int exit_status = 0; // filled by wait_indexer
};

// Forks the child. It waits until a byte is written to go_fd, then sleeps --indexer-delay,
// maps, holds for --indexer-hold, unmaps, reports on report_fd and exits.
pid_t spawn_indexer(const Options &o, int &go_fd, int &report_fd);

// Reads the report and reaps the child.
IndexerReport wait_indexer(pid_t pid, int report_fd);

} // namespace load
