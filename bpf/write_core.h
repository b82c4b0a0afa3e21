/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The write accounting core, shared by both backends: each backend's hooks
 * are thin observers that fill a struct fs_write_obs; this file classifies
 * it, counts it (in the inode's entry, or on the tracepoint backend in this
 * CPU's write-cache slot) and fills the trace event. It is plain C over the
 * ABI structs, compiled into both BPF objects and, unchanged, into the host's
 * unit tests (tests/unit/test_write_core.cpp), so the classifier and the
 * per-CPU write-cache protocol are tested as the kernel runs them.
 *
 * The includer provides:
 *   struct fs_inode_stats *fs_core_stats_get(const struct fs_inode_key *, __u64 nodeid)
 *                        the inode's entry, created on first use; NULL if the map is full
 *   __u64 fs_core_now_ns(void)          CLOCK_MONOTONIC
 *   __u64 fs_core_waits_epoch(void)     see fs_waits_epoch (contention.bpf.c)
 *   void fs_core_mode_flipped(const struct fs_inode_key *, __u64 nodeid, __s32, __u32)
 *                        cache io mode flipped on a write path: tell userspace
 *   FS_CORE_STEP()       a point between two stores where another CPU or the
 *                        counter reader may run (nothing in BPF; the host
 *                        tests switch threads there)
 */
#ifndef FUSESCOPE_WRITE_CORE_H
#define FUSESCOPE_WRITE_CORE_H

#include "fusescope/abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Which kernel write path a write took (fuse_file_write_iter's dispatch). */
enum fs_write_path {
	FS_PATH_DIRECT = 0,    /* FOPEN_DIRECT_IO: fuse_direct_write_iter(), fuse_dio_lock() */
	FS_PATH_CACHED_DIRECT, /* O_DIRECT, open without FOPEN_DIRECT_IO: fuse_cache_write_iter() */
	FS_PATH_BUFFERED,      /* page cache, fuse_cache_write_iter(): write-through or writeback */
	FS_PATH_PASSTHROUGH,   /* fuse_passthrough_write_iter() */
};

/* What a backend's hooks saw of one write. */
struct fs_write_obs {
	__u8 path;	    /* enum fs_write_path */
	__u8 lock_seen;	    /* seen from a task known to hold i_rwsem for this write */
	__u8 exclusive;	    /* ... and it held it exclusively (valid with lock_seen) */
	__u8 tried_shared;  /* went for shared, then fell back (trampoline: uncached_io_start != 0)
			     */
	__u8 decision_seen; /* the kernel's own first decision was seen (out-of-line helper) */
	__u8 decision_excl; /* ... and it said exclusive */
	__u8 cache_mode;    /* FUSE_I_CACHE_IO_MODE set or iocachectr > 0 at the decision */
	__u8 extending;	    /* async write the kernel made blocking: it extends the file */
	__u32 open_flags;   /* FOPEN_* of the file */
	__u32 ki_flags;	    /* IOCB_* of the write */
	__u32 pad;
	__u64 pos;   /* where the write starts */
	__u64 count; /* its length as far as seen (tracepoint backend: its first request's) */
	__u64 isize; /* i_size when the kernel decided (before it waited for the lock) */
};

/* The lock mode a reason implies (abi_tables.h). */
static __always_inline __u8 fs_reason_lock_mode(__u8 reason)
{
	switch (reason) {
#define FS_X(c, cpp, name, short_name, mode, doc)                                                  \
	case FS_REASON_##c:                                                                        \
		return FS_LOCK_##mode;
		FS_WRITE_REASON_TABLE(FS_X)
#undef FS_X
	}
	return FS_LOCK_UNKNOWN;
}

/*
 * Why the write took the lock it took. The kernel's order (fs/fuse/file.c):
 * fuse_file_write_iter() dispatches on the open (direct IO, passthrough, page
 * cache); on the direct path fuse_dio_wr_exclusive_lock() tests the open's
 * FOPEN_PARALLEL_DIRECT_WRITES, IOCB_APPEND, the cache io mode bit, then
 * whether the write ends past i_size, and fuse_dio_lock() re-checks under the
 * shared lock. The first reasons follow from the open and the call alone, so
 * they hold whichever task the write was seen from; the rest need the lock
 * itself to have been seen.
 *
 * In two steps: i_size at the decision costs the tracepoint backend a lookup of
 * the writer's state, so it is read only when every other reason is ruled out
 * (fs_classify_without_isize() returns FS_REASON_COUNT; not for an append).
 */
static __always_inline __u8 fs_classify_without_isize(const struct fs_write_obs *o)
{
	if (o->path == FS_PATH_PASSTHROUGH)
		return FS_REASON_PASSTHROUGH;
	if (o->path == FS_PATH_BUFFERED)
		return FS_REASON_BUFFERED;
	if (o->path == FS_PATH_CACHED_DIRECT)
		return FS_REASON_NO_DIRECT_IO_OPEN;
	if (!(o->open_flags & FS_FOPEN_PARALLEL_DIRECT_WRITES))
		return FS_REASON_NO_PARALLEL_FLAG;
	if (o->ki_flags & FS_IOCB_APPEND)
		return FS_REASON_APPEND;
	if (!o->lock_seen)
		return o->extending ? FS_REASON_UNCLASSIFIED_EXCLUSIVE : FS_REASON_UNCLASSIFIED;
	if (!o->exclusive)
		return FS_REASON_SHARED;
	if (o->tried_shared || (o->decision_seen && !o->decision_excl))
		return FS_REASON_FALLBACK;
	if (o->cache_mode)
		return FS_REASON_CACHE_IO_MODE;
	return FS_REASON_COUNT;
}

/* The last step: past EOF by o->isize, else the kernel's re-check under the shared lock. */
static __always_inline __u8 fs_classify_by_isize(const struct fs_write_obs *o)
{
	return o->pos + o->count > o->isize ? FS_REASON_PAST_EOF : FS_REASON_FALLBACK;
}

static __always_inline __u8 fs_classify_write(const struct fs_write_obs *o)
{
	__u8 reason = fs_classify_without_isize(o);

	return reason != FS_REASON_COUNT ? reason : fs_classify_by_isize(o);
}

/*
 * Count a write (@first: its first FUSE request, or the write as a whole) and
 * its bytes, lock wait and service time in the inode's entry.
 */
static __always_inline void fs_account_write(struct fs_inode_stats *st, __u8 reason, bool first,
					     __u64 bytes, __u64 wait_ns, __u64 service_ns)
{
	__u32 mode = fs_reason_lock_mode(reason);

	/* explicit bounds: the verifier loses them through a modulo */
	if (reason >= FS_REASON_COUNT || mode >= FS_WRITE_LOCK_MODES)
		return;
	if (first)
		__sync_fetch_and_add(&st->writes[reason], 1);
	FS_CORE_STEP();
	if (bytes)
		__sync_fetch_and_add(&st->write_bytes[mode], bytes);
	if (wait_ns)
		__sync_fetch_and_add(&st->write_wait_ns[mode], wait_ns);
	if (service_ns)
		__sync_fetch_and_add(&st->write_service_ns[mode], service_ns);
	FS_CORE_STEP();
}

/*
 * What of an iocachectr value the model needs: the number of caching files,
 * or just "uncached IO in flight" (its count changes with every parallel
 * write, and no view makes use of that count between two refreshes).
 */
static __always_inline __s32 fs_iocachectr_class(__s32 iocachectr)
{
	return iocachectr < 0 ? -1 : iocachectr;
}

/*
 * Record the io-mode state a hook saw on an inode; returns true when cache
 * io mode flipped compared with the last observation (a state transition
 * the userspace model should hear about). Stamped only when it changed: a
 * clock read on every write was ~60 ns of a ~400 ns write path (bench/).
 */
static __always_inline bool fs_stats_observe_mode(struct fs_inode_stats *st, __s32 iocachectr,
						  __u32 cache_bit)
{
	bool flipped = st->cache_io_mode != cache_bit;

	if (!flipped && fs_iocachectr_class(st->iocachectr) == fs_iocachectr_class(iocachectr))
		return false;
	st->iocachectr = iocachectr;
	st->cache_io_mode = cache_bit;
	st->mode_seen_ns = fs_core_now_ns();
	if (flipped)
		__sync_fetch_and_add(&st->mode_changes, 1);
	return flipped;
}

/* fs_stats_observe_mode(), telling userspace when cache io mode flipped. */
static __always_inline void fs_observe_mode(struct fs_inode_stats *st,
					    const struct fs_inode_key *key, __s32 iocachectr,
					    __u32 cache_bit)
{
	if (fs_stats_observe_mode(st, iocachectr, cache_bit))
		fs_core_mode_flipped(key, st->nodeid, iocachectr, cache_bit);
}

/* ---- per-CPU write cache (struct fs_write_cache in abi.h) ---------------- */

#define fs_barrier() asm volatile("" ::: "memory")

/* May a write count in the slot? Same inode, same io mode, no new unclaimed wait. */
static __always_inline bool fs_wcache_hit(const struct fs_write_cache *c,
					  const struct fs_inode_key *key, __s32 ctr, __u32 bit)
{
	return c->key.ino == key->ino && c->key.dev == key->dev &&
	       c->iocachectr_class == fs_iocachectr_class(ctr) && c->cache_io_mode == bit &&
	       c->waits_epoch == fs_core_waits_epoch();
}

/* seq odd: the slot's counts or key are changing (readers retry or look again) */
static __always_inline void fs_wcache_seq_bump(struct fs_write_cache *c)
{
	fs_barrier();
	*(volatile __u64 *)&c->seq = c->seq + 1;
	fs_barrier();
	FS_CORE_STEP();
}

/* Add the slot's counts to its inode's entry and zero them. Inside an odd seq. */
static __always_inline void fs_wcache_move_counts(struct fs_write_cache *c,
						  struct fs_inode_stats *st)
{
	int i;

	for (i = 0; i < FS_DIO_REASONS; i++) {
		if (st && c->writes[i])
			__sync_fetch_and_add(&st->writes[i], c->writes[i]);
		c->writes[i] = 0;
		FS_CORE_STEP();
	}
	for (i = 0; i < FS_LOCK_MODES; i++) {
		if (st && c->write_bytes[i])
			__sync_fetch_and_add(&st->write_bytes[i], c->write_bytes[i]);
		c->write_bytes[i] = 0;
		FS_CORE_STEP();
	}
	c->pending = 0;
}

/*
 * Every FS_WCACHE_FLUSH_WRITES writes: the counts reach the map (the LRU map
 * sees the inode in use; a hit alone does not touch the entry) and the
 * entry's io mode is observed again (other hooks may have written it).
 */
static __always_inline void fs_wcache_flush(struct fs_write_cache *c, __s32 ctr, __u32 bit)
{
	struct fs_inode_stats *st = fs_core_stats_get(&c->key, c->nodeid);

	fs_wcache_seq_bump(c);
	fs_wcache_move_counts(c, st);
	fs_wcache_seq_bump(c);
	if (st)
		fs_observe_mode(st, &c->key, ctr, bit);
}

/*
 * After a write went to the map: let this CPU's next writes to @key stay in
 * the slot, as long as the entry's io mode stays as just observed and no wait
 * is waiting for a write on it (@epoch: read before the entry's count was).
 */
static __always_inline void fs_wcache_take(struct fs_write_cache *c, const struct fs_inode_key *key,
					   struct fs_inode_stats *st, __u64 epoch, __s32 ctr,
					   __u32 bit)
{
	if (c->key.ino != key->ino || c->key.dev != key->dev) {
		struct fs_inode_stats *old = c->key.ino ? fs_core_stats_get(&c->key, c->nodeid)
							: (struct fs_inode_stats *)0;

		fs_wcache_seq_bump(c);
		fs_wcache_move_counts(c, old);
		c->key = *key;
		c->nodeid = st->nodeid;
		fs_wcache_seq_bump(c);
	}
	c->iocachectr_class = fs_iocachectr_class(ctr);
	c->cache_io_mode = bit;
	c->waits_epoch = st->unclaimed_waits > 0 ? ~0ULL : epoch;
}

/*
 * One request of a direct-IO write classified in its writer's context (@reason
 * < FS_DIO_REASONS), tracepoint backend: counted in this CPU's slot @c when
 * the write may stay there (returns NULL), else in the inode's entry, which
 * is returned (NULL too if the map is full). @epoch gets fs_waits_epoch as
 * read before the entry: the caller claims the writer's lock wait on the
 * entry and then lets the slot take the inode over (fs_wcache_take).
 */
static __always_inline struct fs_inode_stats *
fs_count_dio_request(struct fs_write_cache *c, const struct fs_inode_key *key, __u64 nodeid,
		     __u8 reason, bool first, __u64 bytes, __s32 ctr, __u32 bit, __u64 *epoch)
{
	struct fs_inode_stats *st;
	__u32 mode = fs_reason_lock_mode(reason);

	if (c && reason < FS_DIO_REASONS && mode < FS_LOCK_MODES &&
	    fs_wcache_hit(c, key, ctr, bit)) {
		c->write_bytes[mode] += bytes;
		if (first)
			c->writes[reason] += 1;
		FS_CORE_STEP();
		if (++c->pending >= FS_WCACHE_FLUSH_WRITES)
			fs_wcache_flush(c, ctr, bit);
		return (struct fs_inode_stats *)0;
	}
	*epoch = fs_core_waits_epoch();
	st = fs_core_stats_get(key, nodeid);
	if (st)
		fs_account_write(st, reason, first, bytes, 0, 0);
	return st;
}

/* ---- the trace event ----------------------------------------------------- */

/* Fill a write event's write-specific fields (the caller reserved it and set who). */
static __always_inline void fs_write_event_fill(struct fs_event *e, const struct fs_inode_key *key,
						__u64 nodeid, const struct fs_write_obs *o,
						__u8 reason, __u64 bytes, __u64 wait_ns,
						__u64 service_ns)
{
	e->key = *key;
	e->nodeid = nodeid;
	e->open_flags = o->open_flags;
	e->lock_mode = fs_reason_lock_mode(reason);
	e->reason = reason;
	e->offset = o->pos;
	e->bytes = bytes;
	e->wait_ns = wait_ns;
	e->dur_ns = service_ns;
}

#endif /* FUSESCOPE_WRITE_CORE_H */
