// FUSE over io_uring (--io-uring): the kernel hands requests to ring entries the server
// registered instead of to read(2) on /dev/fuse.
//
// Design: the kernel keeps one queue per possible CPU and puts a request on the queue of the CPU
// its sender runs on; the connection switches to the rings once every queue has an entry. Each
// queue gets `threads_per_queue` threads (pinned to that CPU where the affinity mask allows);
// each thread owns one io_uring and one ring entry, and loops COMMIT_AND_FETCH: reply to the
// request it holds, take the next. The request handlers are the same as on /dev/fuse
// (Filesystem::handle); only where a request comes from and where its reply goes differ.
// FORGET and INTERRUPT still come through /dev/fuse (the kernel sends them there), and so does
// everything before the rings are registered, so the /dev/fuse reader keeps running.
#pragma once

#include "config.h"
#include "ops.h"

#include <functional>
#include <string>

namespace testfs {

// "" if this kernel can serve FUSE over io_uring right now, else a one-line reason (the kernel
// lacks CONFIG_FUSE_IO_URING, or /sys/module/fuse/parameters/enable_uring is off).
std::string uring_unavailable_reason();

// The number of queues the kernel will expect: its num_possible_cpus().
unsigned uring_queue_count();

// Starts the ring threads on an initialized connection and waits until every entry is
// registered. Returns "" on success, else why not (the caller unmounts and exits).
// on_fatal is called (from a ring thread) if a ring fails later while the connection is alive;
// requests queued on that ring would never be answered, so the caller must give up the mount.
std::string start_uring(const Config &cfg, int fuse_fd, Filesystem &fs,
                        std::function<void(const std::string &)> on_fatal);

} // namespace testfs
