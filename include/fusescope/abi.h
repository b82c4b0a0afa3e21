/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ABI between fusescope's BPF programs and its userspace: map keys and
 * values, ring-buffer event records, census records, counter indices.
 * Included by every BPF program (bpf/) and by the C++ backends; nothing else in
 * userspace should need it (views read the state model, not these structs).
 *
 * Layout rules: fixed-size fields only, naturally aligned, explicit padding,
 * so that clang -target bpf and g++ on x86_64 agree byte for byte
 * (static_asserts in src/backend/decode.cpp).
 */
#ifndef FUSESCOPE_ABI_H
#define FUSESCOPE_ABI_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define FS_COMM_LEN 16
/* log2 histogram of nanoseconds: slot 0 holds [0, 2), slot i holds [2^i, 2^(i+1)). */
#define FS_HIST_SLOTS 36
#define FS_MAX_INODES 16384
/* direct-mapped in-flight FUSE_WRITE starts, until userspace sizes them (kRequestSlotsDefault) */
#define FS_REQ_SLOTS 4096
#define FS_RINGBUF_BYTES (1 << 20)
/*
 * Ring of the inode keys whose entries changed (bpf/common.bpf.h
 * fs_stats_mark): each entry is posted once per counter read, so the reader
 * looks up what changed instead of copying the whole map. A record is 24
 * bytes (8 of header): 5461 keys per read; more and the reader walks the map.
 */
#define FS_DIRTY_RING_BYTES (1 << 17)

#include "fusescope/abi_tables.h"

/*
 * Kernel constants the write classifier (bpf/write_core.h, also compiled for
 * the host) and userspace need. #defines in the kernel, so not in BTF; stable
 * uapi values (include/uapi/linux/fuse.h; IOCB_* alias RWF_* since v5.10).
 */
#define FS_FOPEN_DIRECT_IO (1U << 0)
#define FS_FOPEN_PARALLEL_DIRECT_WRITES (1U << 6)
#define FS_FOPEN_PASSTHROUGH (1U << 7)
#define FS_IOCB_APPEND 0x10
#define FS_IOCB_DIRECT (1U << 17)

/* The mode in which a writer held inode->i_rwsem (abi_tables.h). Lock waits
 * (contention_*) are by the waiter's mode, shared or exclusive only. */
enum fs_lock_mode {
#define FS_X(c, cpp, name) FS_LOCK_##c,
	FS_LOCK_MODE_TABLE(FS_X)
#undef FS_X
	FS_WRITE_LOCK_MODES,
	FS_LOCK_MODES = FS_LOCK_UNKNOWN, /* modes a waiter can wait in */
};

/* Why a write took the lock it took (abi_tables.h). */
enum fs_write_reason {
#define FS_X(c, cpp, name, short_name, mode, doc) FS_REASON_##c,
	FS_WRITE_REASON_TABLE(FS_X)
#undef FS_X
	FS_REASON_COUNT,
};

/* struct fuse_file::iomode, mirrored (kernel IOM_*), plus "kernel has none". */
enum fs_file_iomode {
	FS_IOM_NONE = 0,
	FS_IOM_CACHED = 1,
	FS_IOM_UNCACHED = 2,
	FS_IOM_NA = 255,
};

struct fs_inode_key {
	__u64 ino;
	__u32 dev; /* super_block::s_dev, kernel encoding (major << 20 | minor) */
	__u32 pad;
};

/*
 * Per-inode aggregates, kept in the kernel (LRU hash keyed by fs_inode_key).
 * What every write touches comes first, right after the hash element's key:
 * the write path's cost is mostly cache misses (the FUSE round trip between
 * two writes evicts the map), so it should touch as few lines as possible.
 */
struct fs_inode_stats {
	/* read by every write, written when they change */
	__u64 mode_seen_ns;  /* when the two below last changed (0: never seen) */
	__s32 iocachectr;    /* value seen then (6.9+), 0 elsewhere */
	__u32 cache_io_mode; /* FUSE_I_CACHE_IO_MODE bit seen then */
	__s64 unclaimed_waits; /* tracepoint backend: threads whose i_rwsem wait no write took yet */
	__u64 dirty_gen;       /* fs_read_gen when the key was last posted to dirty_keys */
	__u64 writes[FS_REASON_COUNT];
	__u64 write_bytes[FS_WRITE_LOCK_MODES];      /* sent to the server (or written) */
	__u64 write_wait_ns[FS_WRITE_LOCK_MODES];    /* queued i_rwsem wait of writers */
	__u64 write_service_ns[FS_WRITE_LOCK_MODES]; /* the rest of a synchronous write's time */
	/* rarely written */
	__u64 writeback_requests; /* FUSE_WRITEs from page writeback: no writer to see */
	__u64 writeback_bytes;
	__u64 nodeid;
	__u64 first_seen_ns; /* bpf_ktime_get_ns() == CLOCK_MONOTONIC */
	__u64 mode_changes;  /* times the BPF side saw cache mode flip */
	__u64 drain_waits;
	__u64 drain_wait_ns;
	/* written on lock contention */
	__u64 contentions[FS_LOCK_MODES]; /* lock:contention_* on i_rwsem */
	__u64 contention_ns[FS_LOCK_MODES];
	__u32 contention_hist[FS_LOCK_MODES][FS_HIST_SLOTS];
};

/*
 * Per-CPU write cache (tracepoint backend): the write counts of the inode this
 * CPU last wrote, kept in an mmap-able array slot (index: CPU number) so that a
 * write to the same inode in the same io mode touches one line of this CPU's
 * own instead of the shared hash map (bench/: the map lookup was most of the
 * write path's cost). The counts move into the inode's fs_inode_stats when the
 * CPU writes another inode, and every FS_WCACHE_FLUSH_WRITES writes.
 * Userspace adds what is still here to the map's entry (src/backend/write_cache.h).
 *
 * Protocol (one writer per slot: the owning CPU, with preemption disabled; the
 * BPF object is built for x86-64, whose stores are seen in program order):
 * seq is odd while counts move into the map and while key changes; a reader
 * copies the slot between two reads of an even, equal seq.
 */
#define FS_WCACHE_FLUSH_WRITES 1024
/*
 * Only direct-IO writes on FOPEN_DIRECT_IO files classified in the writer's
 * own context use the cache: their reasons are the first rows of the reason
 * table, up to fallback, and their lock mode is known.
 */
#define FS_DIO_REASONS (FS_REASON_FALLBACK + 1)

struct fs_write_cache {
	__u64 seq;
	struct fs_inode_key key; /* ino 0: empty */
	__u64 writes[FS_DIO_REASONS];
	__u64 write_bytes[FS_LOCK_MODES];
	/* BPF side only: when a write may stay in the slot */
	__u64 nodeid;
	__u64 waits_epoch;	 /* fs_waits_epoch when the entry had no unclaimed wait */
	__s32 iocachectr_class;	 /* io mode the entry was last seen in (fs_iocachectr_class) */
	__u32 cache_io_mode;
	__u32 pending;		 /* writes since the last flush */
	__u32 pad0;
	__u64 pad1;		 /* one slot = two cache lines, never shared with another CPU's */
};

enum fs_event_type {
#define FS_X(c, cpp, value, name) FS_EV_##c = value,
	FS_EVENT_TYPE_TABLE(FS_X)
#undef FS_X
};

enum fs_event_flags {
#define FS_X(c, cpp, bit, doc) FS_EVF_##c = 1 << bit,
	FS_EVENT_FLAG_TABLE(FS_X)
#undef FS_X
};

struct fs_event {
	__u64 ts_ns;
	__u32 type;  /* enum fs_event_type */
	__u32 flags; /* enum fs_event_flags */
	__u32 pid;   /* tgid */
	__u32 tid;
	char comm[FS_COMM_LEN];
	struct fs_inode_key key;
	__u64 nodeid;
	__u64 file_id; /* address of struct fuse_file: identity of an open file */
	__u64 fh;      /* server's file handle */
	__s32 iocachectr;
	__u32 open_flags; /* FOPEN_* of the file */
	__s32 ret;        /* return value of the hooked function, when any */
	__u8 iomode;      /* enum fs_file_iomode of the file after the event */
	__u8 lock_mode;   /* enum fs_lock_mode (writes) */
	__u8 reason;      /* enum fs_write_reason (writes) */
	__u8 pad;
	__u64 offset;
	__u64 bytes;
	__u64 wait_ns; /* lock wait (writes), drain wait (drain events) */
	__u64 dur_ns;  /* the rest of the write's time */
	/* who and where (bpf/names.bpf.h) */
	__u64 cgroup_id;	 /* the task's cgroup v2 id: its directory's inode number */
	struct fs_inode_key exe; /* the task's executable file; ino 0: not captured */
	__u64 release_id;	 /* the open file's FUSE_RELEASE arguments (fs_release_id) */
};

enum fs_census_kind {
	FS_CENSUS_FILE = 1, /* an open file descriptor on a FUSE regular file */
	FS_CENSUS_VMA = 2,  /* a shared mapping of a FUSE regular file */
};

/* Written by the iter/task_file and iter/task_vma programs with bpf_seq_write(). */
struct fs_census_rec {
	__u32 kind; /* enum fs_census_kind */
	__u32 pid;  /* tgid */
	char comm[FS_COMM_LEN];
	struct fs_inode_key key;
	__u64 nodeid;
	__u64 file_id;
	__u64 fh;
	__u64 inode_state; /* fuse_inode::state */
	__u64 vm_start;
	__u64 vm_end;
	__s32 iocachectr;
	__u32 open_flags;
	__u32 fd;
	__u32 vm_flags_shared_write; /* bit0 VM_SHARED, bit1 VM_WRITE */
	__u8 iomode;
	__u8 cache_io_mode; /* FUSE_I_CACHE_IO_MODE bit */
	__u8 uring;	    /* the file's connection serves requests over FUSE io_uring */
	__u8 writable;	    /* FMODE_WRITE: opened for writing */
	__u8 pad[4];
	/* who and where, as in struct fs_event */
	__u64 cgroup_id;
	struct fs_inode_key exe;
	__u64 release_id;
};

/*
 * A name as the kernel's dentries spell it (bpf/names.bpf.h): of a FUSE file
 * when its inode is first opened or mapped (map file_names, key: the inode),
 * and of an executable when a process running it is first named as a holder
 * or writer (map exe_names, key: the executable's inode). Components leaf
 * first, each NUL-terminated, up to the filesystem's root (not the mount's):
 * userspace turns them into a path on a mount of that filesystem
 * (src/model/kernel_names.cpp). A rename after the capture is not seen.
 */
#define FS_NAME_BUF 512	  /* two halves: a component starts in the first */
#define FS_NAME_DEPTH 24  /* components walked at most */
#define FS_NAME_FILES 8192 /* file_names entries (LRU): userspace reads them within a second */
#define FS_NAME_EXES 1024

enum fs_name_flags {
	FS_NAME_COMPLETE = 1, /* the walk reached the filesystem's root */
};

struct fs_name {
	__u64 ts_ns; /* when captured (CLOCK_MONOTONIC) */
	__u32 len;   /* bytes of buf used */
	__u16 depth; /* components in buf */
	__u16 flags; /* enum fs_name_flags */
	char buf[FS_NAME_BUF];
};

/* Indices of the per-CPU health counters array. */
enum fs_counter {
#define FS_X(c, field, doc) FS_CNT_##c,
	FS_COUNTER_TABLE(FS_X)
#undef FS_X
	FS_CNT_COUNT,
};

#endif /* FUSESCOPE_ABI_H */
