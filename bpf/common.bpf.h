/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by every fusescope BPF program: the maps, the load-time
 * configuration, and small helpers. Each backend is one translation unit
 * (backend_*.bpf.c) that includes its concern files, so these definitions
 * exist once per BPF object. (Separate objects joined by bpftool's static
 * linker would be neater, but Debian 12's libbpf 1.1 linker fails on a kfunc
 * declared in more than one of them.)
 */
#ifndef FUSESCOPE_COMMON_BPF_H
#define FUSESCOPE_COMMON_BPF_H

#include "kernel_types.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "fusescope/abi.h"

/* ---- map definitions (bodies shared by definition and declarations) --- */

#define FS_MAP_INODE_STATS                                                                         \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_LRU_HASH);                                               \
		__uint(max_entries, FS_MAX_INODES);                                                \
		__type(key, struct fs_inode_key);                                                  \
		__type(value, struct fs_inode_stats);                                              \
	}

#define FS_MAP_EVENTS                                                                              \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                                                \
		__uint(max_entries, FS_RINGBUF_BYTES);                                             \
	}

#define FS_MAP_COUNTERS                                                                            \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                           \
		__uint(max_entries, FS_CNT_COUNT);                                                 \
		__type(key, __u32);                                                                \
		__type(value, __u64);                                                              \
	}

/*
 * The i_rwsem addresses of the FUSE inodes fusescope has seen, as a Bloom filter
 * (one hash, 2^FS_WATCH_BITS_LOG2 bits): lock:contention_begin/end fire for every
 * contended lock on the machine, and one array load tells most of them apart
 * from ours before anything else is read. Bits are only ever set.
 */
#define FS_WATCH_BITS_LOG2                                                                         \
	16 /* 8 KiB: stays in cache; at 16384 watched inodes 22 % false positives */
#define FS_MAP_WATCHED_LOCKS                                                                       \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_ARRAY);                                                  \
		__uint(max_entries, (1U << FS_WATCH_BITS_LOG2) / 64);                              \
		__type(key, __u32);                                                                \
		__type(value, __u64);                                                              \
	}

/*
 * Keys of changed inode_stats entries, for the counter reader (FS_DIRTY_RING_BYTES;
 * fs_stats_mark). No wakeups: the reader drains it at each read.
 */
#define FS_MAP_DIRTY_KEYS                                                                          \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                                                \
		__uint(max_entries, FS_DIRTY_RING_BYTES);                                          \
	}

/* Zeroed template for new fs_inode_stats: too big for the 512-byte stack. */
#define FS_MAP_ZERO_STATS                                                                          \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                           \
		__uint(max_entries, 1);                                                            \
		__type(key, __u32);                                                                \
		__type(value, struct fs_inode_stats);                                              \
	}

/*
 * Per-thread state: a direct-IO write in flight (trampoline backend), the
 * i_rwsem wait in progress, and waits not yet claimed by a write
 * (tracepoint backend, where the write is seen only after the lock).
 * Kept in task local storage: a lookup is a pointer chase from the task
 * (no hash, no per-map bound on threads), and it goes away with the thread.
 */
struct fs_task {
	/* write in flight (fentry fuse_file_write_iter .. fexit) */
	__u64 w_start_ns;
	__u64 w_inode; /* struct inode *, as a number */
	__u64 w_pos;
	__u64 w_count;
	__u64 w_isize;
	__u64 w_wait_ns;
	__u32 w_open_flags;
	__u32 w_ki_flags;
	__u8 w_active;
	__u8 w_cache_bit;
	__u8 w_mode_seen;
	__u8 w_exclusive;
	__u8 w_tried_shared;  /* fuse_inode_uncached_io_start(fi, NULL) was called */
	__u8 w_decision_seen; /* fuse_dio_wr_exclusive_lock() returned */
	__u8 w_decision_excl;
	__u8 w_path; /* enum fs_write_path */
	__u32 pad1;
	/* lock:contention in progress */
	__u64 c_lock;  /* as the tracepoint names it */
	__u64 c_inode; /* the struct inode whose i_rwsem it is */
	__u64 c_start_ns;
	__u32 c_flags;
	__u32 pad2;
	/* of c_lock's inode: not read again from a cold inode at the end */
	struct fs_inode_key c_key;
	__u64 c_isize; /* i_size when it began waiting (a writer's lock decision was just made) */
	/* finished waits on one i_rwsem (its address), not yet claimed by a write */
	__u64 p_lock;
	__u64 p_wait_ns;
	__u64 p_isize; /* c_isize of the first of these waits */
	/* buffered write-through (tracepoint backend): the write its requests belong to */
	__u64 b_inode;
	__u64 b_write_bytes; /* task_io_accounting.write_bytes then: changes once per write call */
	/* drain wait (trampoline): inside fuse_file_cached_io_open() */
	__u64 d_start_ns; /* trampoline: fentry of fuse_file_cached_io_open */
	__u8 d_may_wait;  /* iocachectr < 0 when it started */
	__u8 d_in_mmap;	  /* inside fuse_file_mmap() */
	__u8 m_iomode_before;
	__u8 d_reported; /* fexit fuse_file_cached_io_open reported this open's wait */
	__u8 o_may_wait; /* fentry fuse_file_io_open saw iocachectr < 0 */
	__u8 pad3[3];
	/* trampoline: fentry fuse_file_io_open; tracepoint: FUSE_OPEN/FUSE_CREATE sent */
	__u64 o_start_ns;
	/* drain wait (tracepoint backend): the open's request and voluntary switches then */
	__u64 o_nodeid;
	__u64 o_nvcsw;
	/* shared file mmap in flight (tracepoint backend) */
	__u64 s_arg_fd;
	__u64 s_arg_prot;
	__u64 s_start_ns;
	__u64 s_nvcsw;
	__u32 s_nr;
	__u32 pad4;
};

#define FS_MAP_TASKS                                                                               \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_TASK_STORAGE);                                           \
		__uint(map_flags, BPF_F_NO_PREALLOC);                                              \
		__type(key, int);                                                                  \
		__type(value, struct fs_task);                                                     \
	}

FS_MAP_INODE_STATS inode_stats SEC(".maps");
FS_MAP_EVENTS events SEC(".maps");
FS_MAP_COUNTERS counters SEC(".maps");
FS_MAP_ZERO_STATS zero_stats SEC(".maps");
FS_MAP_TASKS tasks SEC(".maps");
FS_MAP_WATCHED_LOCKS watched_locks SEC(".maps");
FS_MAP_DIRTY_KEYS dirty_keys SEC(".maps");

/* ---- configuration, set by userspace before load ----------------------- */

const volatile __u32 cfg_filter_tgid = 0; /* 0: every process */
const volatile __u32 cfg_filter_dev = 0;  /* 0: every FUSE mount (kernel s_dev) */
const volatile __u8 cfg_emit_writes = 0;  /* per-write events, for `trace` only */
const volatile __u8 cfg_emit_all_opens = 0;
const volatile __u8 cfg_time_requests = 0; /* tracepoint backend: fs_request_end is attached */
const volatile __u8 cfg_time_drains = 0;   /* tracepoint backend: open/mmap exits are attached */
/* tracepoint backend without the syscall hooks: FUSE_OPEN/CREATE sends become OPEN_SENT hints */
const volatile __u8 cfg_open_hints = 0;
/* FUSE_I_CACHE_IO_MODE, read by userspace from the kernel's BTF (an anonymous enum) */
const volatile __u8 cfg_cache_io_mode_bit = 5;

char LICENSE[] SEC("license") = "GPL";

/* ---- helpers ------------------------------------------------------------- */

/* Per-CPU scratch word: see fs_addr_bits(). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} addr_scratch SEC(".maps");

/*
 * A kernel pointer's value as a number the program may shift and multiply
 * (the verifier allows only add/sub on pointers). Going through a map value
 * needs the privileges fusescope loads with anyway (CAP_PERFMON: pointer
 * values may be stored).
 */
static __always_inline __u64 fs_addr_bits(const void *p)
{
	__u32 zero = 0;
	__u64 *v = bpf_map_lookup_elem(&addr_scratch, &zero);

	if (!v)
		return 0;
	*v = (__u64)p;
	return *(volatile __u64 *)v;
}

static __always_inline void fs_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

static __always_inline __u32 fs_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

static __always_inline __u32 fs_tgid(void)
{
	return (__u32)(bpf_get_current_pid_tgid() >> 32);
}

static __always_inline bool fs_tgid_wanted(void)
{
	return !cfg_filter_tgid || cfg_filter_tgid == fs_tgid();
}

static __always_inline bool fs_dev_wanted(__u32 dev)
{
	return !cfg_filter_dev || cfg_filter_dev == dev;
}

/* The word and bit of @lock's address (a number) in watched_locks. */
static __always_inline __u64 *fs_watch_word(__u64 lock, __u64 *mask)
{
	__u32 bit = (__u32)(((lock >> 3) * 0x9E3779B97F4A7C15ULL) >> (64 - FS_WATCH_BITS_LOG2));
	__u32 word = bit / 64;

	*mask = 1ULL << (bit % 64);
	return bpf_map_lookup_elem(&watched_locks, &word);
}

/* Might @lock be the i_rwsem of a FUSE inode we watch? (false: certainly not) */
static __always_inline bool fs_lock_watched(__u64 lock)
{
	__u64 mask, *w = fs_watch_word(lock, &mask);

	return w && (*w & mask);
}

/* From now on contention on @lock is looked at (read first: a set bit stays clean in cache). */
static __always_inline void fs_watch_lock(__u64 lock)
{
	__u64 mask, *w = fs_watch_word(lock, &mask);

	if (w && !(*w & mask))
		__sync_fetch_and_or(w, mask);
}

static __always_inline __u32 fs_log2(__u64 v)
{
	__u32 r = 0;

	/* branch-free enough and bounded: the verifier sees 6 steps */
	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1) {
		r += 1;
	}
	return r;
}

static __always_inline __u32 fs_hist_slot(__u64 ns)
{
	__u32 s = fs_log2(ns);

	return s < FS_HIST_SLOTS ? s : FS_HIST_SLOTS - 1;
}

/*
 * Shared with the counter reader: its generation, which it bumps as each read
 * begins, and the keys that could not be posted (dirty_keys full), after which
 * it walks the whole map.
 */
#define FS_RB_NO_WAKEUP 1ULL /* BPF_RB_NO_WAKEUP, uapi linux/bpf.h (not in kernel_types.h) */

__u64 fs_read_gen = 1; /* .data: entries start at 0, so a fresh one is posted */
__u64 fs_dirty_lost = 0;

/*
 * @st (@key's entry) is about to change: post its key once per read. Before the
 * change, so a reader that looks the key up too early sees the change at its
 * next read, when it looks the keys of this one up again (src/backend/dirty_keys.h).
 * Two CPUs may both post a key: harmless.
 */
static __always_inline void fs_stats_mark(struct fs_inode_stats *st, const struct fs_inode_key *key)
{
	__u64 gen = *(volatile __u64 *)&fs_read_gen;

	if (st->dirty_gen == gen)
		return;
	/* marked even if the ring is full: the reader then walks the map, and a reader that
	 * does not read (trace) leaves the ring full without every write paying for it */
	if (bpf_ringbuf_output(&dirty_keys, (void *)key, sizeof(*key), FS_RB_NO_WAKEUP))
		__sync_fetch_and_add(&fs_dirty_lost, 1);
	st->dirty_gen = gen;
}

/* The per-inode stats entry, created on first use. NULL if the map is full. */
static __always_inline struct fs_inode_stats *fs_stats_get(const struct fs_inode_key *key,
							   __u64 nodeid)
{
	struct fs_inode_stats *st = bpf_map_lookup_elem(&inode_stats, key);
	__u32 zero = 0;
	void *tmpl;

	if (st) {
		fs_stats_mark(st, key);
		return st;
	}
	tmpl = bpf_map_lookup_elem(&zero_stats, &zero);
	if (!tmpl)
		return NULL;
	/* -EEXIST from a racing CPU is fine: the lookup below finds its entry */
	bpf_map_update_elem(&inode_stats, key, tmpl, BPF_NOEXIST);
	st = bpf_map_lookup_elem(&inode_stats, key);
	if (!st) {
		fs_count(FS_CNT_INODE_MAP_FULL);
		return NULL;
	}
	if (!st->first_seen_ns) {
		st->nodeid = nodeid;
		st->first_seen_ns = bpf_ktime_get_ns();
	}
	fs_stats_mark(st, key);
	return st;
}

/* The current thread's state, created on first use. NULL if that failed. */
static __always_inline struct fs_task *fs_task_get(void)
{
	struct fs_task *t = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!t)
		fs_count(FS_CNT_TASK_MAP_FULL);
	return t;
}

/* The current thread's state if it has any: hooks that only continue what another began. */
static __always_inline struct fs_task *fs_task_find(void)
{
	return bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, 0);
}

static __always_inline void fs_event_fill_task(struct fs_event *e, __u32 type)
{
	__u64 id = bpf_get_current_pid_tgid();

	e->ts_ns = bpf_ktime_get_ns();
	e->type = type;
	e->pid = (__u32)(id >> 32);
	e->tid = (__u32)id;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->cgroup_id = bpf_get_current_cgroup_id(); /* where the task runs (names.bpf.h) */
}

/*
 * A write event names its writer, the current task; an io_uring worker
 * (io-wq thread, comm "iou-wrk-N") by its process's name, the program the
 * user knows. BTF-typed task: for tp_btf and fentry/fexit programs.
 */
static __always_inline void fs_event_name_writer(struct fs_event *e)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (task->flags & PF_IO_WORKER) {
		__builtin_memcpy(e->comm, task->group_leader->comm, sizeof(e->comm));
		e->flags |= FS_EVF_IO_WORKER;
	}
}

/* Reserve a zeroed event; counts the drop when the ring buffer is full. */
static __always_inline struct fs_event *fs_event_reserve(__u32 type)
{
	struct fs_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		fs_count(FS_CNT_EVENTS_LOST);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fs_event_fill_task(e, type);
	return e;
}

static __always_inline void fs_emit_mode_seen(const struct fs_inode_key *key, __u64 nodeid,
					      __s32 iocachectr, __u32 cache_bit)
{
	struct fs_event *e = fs_event_reserve(FS_EV_MODE_SEEN);

	if (!e)
		return;
	e->key = *key;
	e->nodeid = nodeid;
	e->iocachectr = iocachectr;
	e->flags = cache_bit ? (FS_EVF_ENTERED_CACHE | FS_EVF_CENSUS_HINT) : FS_EVF_LEFT_CACHE;
	bpf_ringbuf_submit(e, 0);
}

/* ---- the write accounting core (write_core.h) and what it needs ------------ */

#ifdef FS_WAITS_CLAIMED_AT_SEND
/*
 * Bumped after an inode's count of unclaimed waits went up: a per-CPU write
 * cache slot that saw its inode without unclaimed waits at epoch E may let
 * writes skip the inode's entry while the epoch is still E (write_tracepoint).
 * A thread's own wait is always seen by its own later write.
 */
__u64 fs_waits_epoch = 0;

static __always_inline __u64 fs_core_waits_epoch(void)
{
	return *(volatile __u64 *)&fs_waits_epoch;
}
#else
static __always_inline __u64 fs_core_waits_epoch(void)
{
	return 0;
}
#endif

#define FS_CORE_STEP()                                                                             \
	do {                                                                                       \
	} while (0)
#define fs_core_stats_get fs_stats_get
#define fs_core_now_ns bpf_ktime_get_ns
#define fs_core_mode_flipped fs_emit_mode_seen

#include "write_core.h"

#endif /* FUSESCOPE_COMMON_BPF_H */
