/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The concepts the BPF programs and userspace share, each defined once as a
 * table (X-macro): the C enums of abi.h, the C++ enums and names of
 * model/types.h, and the checks that keep the two in step are all generated
 * from these rows. Pure macros, no types: the state model includes this file
 * without seeing the ABI structs.
 *
 * To add a row: append it here; the BPF side, the decoder, the model's
 * names, the views that iterate the tables and the exporter's label values
 * follow. Rows are indices of kernel arrays: the BPF objects and userspace are
 * built together, so order may change between builds, never within one.
 */
#ifndef FUSESCOPE_ABI_TABLES_H
#define FUSESCOPE_ABI_TABLES_H

/*
 * The mode in which a writer held inode->i_rwsem.
 * X(C suffix, C++ name, user name)
 */
#define FS_LOCK_MODE_TABLE(X)                                                                      \
	X(SHARED, Shared, "shared")                                                                \
	X(EXCLUSIVE, Exclusive, "exclusive")                                                       \
	X(UNKNOWN, Unknown, "unknown")

/*
 * Why a write took the lock it took. Order: the shared lock first; then the
 * kernel's reasons for the exclusive lock on a FOPEN_DIRECT_IO file in the
 * order fuse_dio_wr_exclusive_lock() tests them; then the write paths that
 * always lock exclusively; then writes seen but not classified.
 * X(C suffix, C++ name, user name, short name (narrow columns), lock mode
 *   (FS_LOCK_MODE_TABLE suffix), meaning)
 */
#define FS_WRITE_REASON_TABLE(X)                                                                   \
	X(SHARED, Shared, "shared", "shared", SHARED,                                              \
	  "took i_rwsem shared: ran in parallel with the file's other writers")                    \
	X(NO_PARALLEL_FLAG, NoParallelFlag, "no_parallel_flag", "no-flag", EXCLUSIVE,              \
	  "the server did not give the open FOPEN_PARALLEL_DIRECT_WRITES")                         \
	X(APPEND, Append, "append", "append", EXCLUSIVE,                                           \
	  "O_APPEND or RWF_APPEND: the write needs the final end of file")                         \
	X(CACHE_IO_MODE, CacheIoMode, "cache_io_mode", "cache-io", EXCLUSIVE,                      \
	  "the inode is in cache IO mode: a caching open or a shared mmap holds it")               \
	X(PAST_EOF, PastEof, "past_eof", "past-eof", EXCLUSIVE,                                    \
	  "the write ends past the kernel's i_size")                                               \
	X(FALLBACK, Fallback, "fallback", "fallback", EXCLUSIVE,                                   \
	  "tried the shared lock, the re-check under it failed (no other cause was visible)")      \
	X(NO_DIRECT_IO_OPEN, NoDirectIoOpen, "no_direct_io_open", "no-dio-open", EXCLUSIVE,        \
	  "O_DIRECT on an open without FOPEN_DIRECT_IO: the page-cache write path locks "          \
	  "exclusively")                                                                           \
	X(BUFFERED, Buffered, "buffered", "buffered", EXCLUSIVE, "a buffered (page cache) write")  \
	X(PASSTHROUGH, Passthrough, "passthrough", "passthru", EXCLUSIVE,                          \
	  "a write to a passthrough file: the backing file is written under the lock")             \
	X(UNCLASSIFIED_EXCLUSIVE, UnclassifiedExclusive, "unclassified_exclusive", "unclass-x",    \
	  EXCLUSIVE,                                                                               \
	  "an async write that extends the file, sent from another context: exclusive, but "       \
	  "whether for cache IO mode or past EOF is not visible")                                  \
	X(UNCLASSIFIED, Unclassified, "unclassified", "unclass", UNKNOWN,                          \
	  "an async write sent from a context that does not hold the lock: its lock mode is not "  \
	  "visible")

/*
 * Ring-buffer event types. X(C suffix, C++ name, value, user name)
 */
#define FS_EVENT_TYPE_TABLE(X)                                                                     \
	X(WRITE, Write, 1, "write")		  /* one write; only while trace asks */           \
	X(OPEN, Open, 2, "open")		  /* an open's resulting io mode */                \
	X(MMAP, Mmap, 3, "mmap")		  /* an mmap of a FUSE file */                     \
	X(RELEASE, Release, 4, "release")	  /* the last reference to an open file went */    \
	X(DRAIN_WAIT, DrainWait, 5, "drain_wait") /* a caching open/mmap waited for writers */     \
	X(MODE_SEEN, ModeSeen, 6, "mode_seen")	  /* cache io mode flipped, seen on a write/lock */ \
	X(OPEN_SENT, OpenSent, 7, "open_sent")	  /* FUSE_OPEN/CREATE sent by its opener: census it */

/*
 * Event flag bits. X(C suffix, C++ name, bit, meaning)
 */
#define FS_EVENT_FLAG_TABLE(X)                                                                     \
	X(SHARED_MAP, SharedMap, 0, "mmap: VM_SHARED")                                             \
	X(WRITABLE_MAP, WritableMap, 1, "mmap: VM_WRITE")                                          \
	X(ENTERED_CACHE, EnteredCache, 2, "inode entered cache io mode")                           \
	X(LEFT_CACHE, LeftCache, 3, "inode left cache io mode")                                    \
	X(HOLDER, Holder, 4, "this file now holds cache mode")                                     \
	X(WAS_HOLDER, WasHolder, 5, "release: this file held cache mode")                          \
	X(PASSTHROUGH, Passthrough, 6, "the file is a passthrough (uncached) open")                \
	X(CENSUS_HINT, CensusHint, 7, "holders unknown here: userspace should re-run the census")  \
	X(ASYNC, Async, 8, "write: not a synchronous kiocb (libaio, io_uring)")                    \
	X(OTHER_CONTEXT, OtherContext, 9,                                                          \
	  "write: sent by another task than its writer (pid/comm are the writer's when known)")    \
	X(IO_WORKER, IoWorker, 10,                                                                 \
	  "write: done by an io_uring worker of the process (comm: the "                           \
	  "process's)")                                                                            \
	X(WRITE_OPEN, WriteOpen, 11, "open: the file was opened for writing (its opener is a writer)") \
	X(CREATE, Create, 12, "open_sent: a FUSE_CREATE (nodeid is the parent directory's)")

/*
 * Per-CPU health counters. X(C suffix, Health field, meaning)
 */
#define FS_COUNTER_TABLE(X)                                                                        \
	X(EVENTS_LOST, events_lost, "ring buffer full: an event was dropped")                      \
	X(INODE_MAP_FULL, inode_map_full, "a per-inode stats entry could not be created")          \
	X(TASK_MAP_FULL, task_map_full, "per-thread task storage could not be created")            \
	X(REQ_MAP_FULL, req_map_full,                                                              \
	  "a request timing slot was busy: a service-time sample lost")                            \
	X(WRITES_UNRESOLVED, writes_unresolved, "a write was seen but its lock mode not read")

#endif /* FUSESCOPE_ABI_TABLES_H */
