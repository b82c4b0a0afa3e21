// The request loop: reader threads on cloned /dev/fuse fds, and the main thread that waits for
// a signal or the end of the connection and then unmounts.
#pragma once

#include "config.h"
#include "ops.h"

namespace testfs {

// Serves an already mounted connection until SIGINT/SIGTERM/SIGHUP, an external unmount or an
// aborted connection; always leaves the mountpoint unmounted. Returns the process exit status.
// SIGINT, SIGTERM and SIGHUP must already be blocked in the calling thread (main does it before
// mounting, so no signal can kill us between mount and this call).
int serve(const Config &cfg, int fuse_fd, Filesystem &fs);

} // namespace testfs
