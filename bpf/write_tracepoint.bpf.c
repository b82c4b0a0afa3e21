// SPDX-License-Identifier: GPL-2.0
/*
 * Roles 1 and 5 without trampolines (tp_btf only; kernels with the
 * fuse:fuse_request_send/end tracepoints, 6.12+).
 *
 * Write: fuse_request_send fires for each FUSE_WRITE request, in the
 * submitting task for synchronous requests, i.e. while the writer holds
 * inode->i_rwsem. req->args of a FUSE_WRITE is &fuse_io_args.ap.args;
 * fuse_io_args.io is set only on the direct-IO path. The lock mode comes
 * from the rwsem itself (writer bit + owner == current); the reason is
 * inferred from the state visible under the lock, in the kernel's order.
 * Unlike the trampoline backend, a fallback whose cause persists cannot be
 * told from that cause, so it is reported as the cause (documented).
 * A write split into several requests is counted once: its first request
 * is the one whose offset is still iocb->ki_pos.
 *
 * Release: FUSE_RELEASE is sent after fuse_file_io_release() dropped the
 * file's io-mode reference, so iocachectr already shows what is left.
 */
#include "fuse_inode.bpf.h"

/*
 * Service time of a FUSE_WRITE: from fuse_request_send (writer's thread) to
 * fuse_request_end (usually the server's thread, on another CPU). The start
 * is kept in a direct-mapped slot chosen by the request's address: an array
 * slot is a computed address (no hash, no insert, no delete; the verifier
 * inlines the lookup), and a fuse_req is in flight only briefly. Two
 * requests in flight on one slot lose the first one's sample (counted as
 * FS_CNT_REQ_MAP_FULL). (req->in.h.unique cannot be the index: it is still
 * 0 at this tracepoint on 6.12-6.17.)
 */
struct fs_req_slot {
	__u64 req; /* struct fuse_req *, 0: free */
	__u64 start_ns;
	struct fs_inode_key key;
	__u32 mode;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FS_REQ_SLOTS);
	__type(key, __u32);
	__type(value, struct fs_req_slot);
} req_slots SEC(".maps");

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

static __always_inline struct fs_req_slot *fs_req_slot_of(const struct fuse_req *req)
{
	/* slab objects: drop the alignment bits, then a multiplicative hash */
	__u64 bits = fs_addr_bits(req) >> 6;
	__u32 idx = (__u32)((bits * 0x9E3779B97F4A7C15ULL) >> 40) & (FS_REQ_SLOTS - 1);

	return bpf_map_lookup_elem(&req_slots, &idx);
}

#define fs_barrier() asm volatile("" ::: "memory")

/*
 * Per-CPU write cache (struct fs_write_cache in abi.h): userspace sizes the
 * array to the possible CPUs before load and maps it to read what has not
 * moved to the inode map yet. Userspace leaves it off when request timing is
 * on (a cached write would not fill its request slot) and on PREEMPT_RT
 * (programs preemptible there).
 */
const volatile __u8 cfg_write_cache = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* userspace: libbpf_num_possible_cpus() */
	__type(key, __u32);
	__type(value, struct fs_write_cache);
} write_cache SEC(".maps");

static __always_inline struct fs_write_cache *fs_wcache_this_cpu(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&write_cache, &cpu);
}

/* May this write count in the slot? Same inode, same io mode, no new unclaimed wait. */
static __always_inline bool fs_wcache_hit(const struct fs_write_cache *c,
					  const struct fs_inode_key *key, __s32 ctr, __u32 bit)
{
	return c->key.ino == key->ino && c->key.dev == key->dev &&
	       c->iocachectr_class == fs_iocachectr_class(ctr) && c->cache_io_mode == bit &&
	       c->waits_epoch == *(volatile __u64 *)&fs_waits_epoch;
}

/* seq odd: the slot's counts or key are changing (readers retry or look again) */
static __always_inline void fs_wcache_seq_bump(struct fs_write_cache *c)
{
	fs_barrier();
	*(volatile __u64 *)&c->seq = c->seq + 1;
	fs_barrier();
}

/* Add the slot's counts to its inode's entry and zero them. Inside an odd seq. */
static __always_inline void fs_wcache_move_counts(struct fs_write_cache *c,
						  struct fs_inode_stats *st)
{
	int i;

	for (i = 0; i < FS_REASON_COUNT; i++) {
		if (st && c->writes[i])
			__sync_fetch_and_add(&st->writes[i], c->writes[i]);
		c->writes[i] = 0;
	}
	for (i = 0; i < FS_LOCK_MODES; i++) {
		if (st && c->write_bytes[i])
			__sync_fetch_and_add(&st->write_bytes[i], c->write_bytes[i]);
		c->write_bytes[i] = 0;
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
	struct fs_inode_stats *st = fs_stats_get(&c->key, c->nodeid);

	fs_wcache_seq_bump(c);
	fs_wcache_move_counts(c, st);
	fs_wcache_seq_bump(c);
	if (st && fs_stats_observe_mode(st, ctr, bit))
		fs_emit_mode_seen(&c->key, st->nodeid, ctr, bit);
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
		struct fs_inode_stats *old = c->key.ino ? fs_stats_get(&c->key, c->nodeid) : NULL;

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

static __always_inline __u8 fs_tp_reason(bool exclusive, struct fuse_file *ff, struct kiocb *iocb,
					 struct inode *inode, __u64 offset, __u64 size)
{
	if (!exclusive)
		return FS_REASON_SHARED;
	if (!(fs_ff_open_flags(ff) & FOPEN_PARALLEL_DIRECT_WRITES))
		return FS_REASON_NO_PARALLEL_FLAG;
	if (iocb->ki_flags & IOCB_APPEND)
		return FS_REASON_APPEND;
	if (fs_fi_cache_bit(inode) || fs_fi_iocachectr(inode) > 0)
		return FS_REASON_CACHE_IO_MODE;
	if (offset + size > (__u64)inode->i_size)
		return FS_REASON_PAST_EOF;
	return FS_REASON_FALLBACK;
}

static __always_inline void fs_emit_write(const struct fs_inode_key *key, __u64 nodeid,
					  struct fuse_file *ff, struct kiocb *iocb, __s32 ctr,
					  __u8 mode, __u8 reason, __u64 offset, __u64 size,
					  __u64 wait)
{
	struct fs_event *e = fs_event_reserve(FS_EV_WRITE);

	if (!e)
		return;
	e->key = *key;
	e->nodeid = nodeid;
	e->file_id = (__u64)ff;
	e->fh = fs_ff_fh(ff);
	e->open_flags = fs_ff_open_flags(ff);
	e->iocachectr = ctr;
	e->lock_mode = mode;
	e->reason = reason;
	e->offset = offset;
	e->bytes = size;
	e->wait_ns = wait;
	e->flags = iocb->ki_complete ? FS_EVF_ASYNC : 0;
	bpf_ringbuf_submit(e, 0);
}

/*
 * Claim a finished i_rwsem wait of this thread on @inode for the write being
 * sent; returns its duration (0: none). Only looked for while some thread has
 * one unclaimed on this inode: the thread-state lookup cost 40-140 ns per
 * write (bench/compare_bpf.py).
 */
static __always_inline __u64 fs_claim_wait(struct fs_inode_stats *st, struct inode *inode)
{
	struct fs_task *t = st->unclaimed_waits > 0 ? fs_task_find() : NULL;
	__u64 wait = 0;

	if (!t || !t->p_lock)
		return 0;
	if (t->p_lock == (__u64)inode + bpf_core_field_offset(struct inode, i_rwsem)) {
		wait = t->p_wait_ns;
		__sync_fetch_and_add(&st->unclaimed_waits, -1);
	} else {
		fs_unclaim(t->p_lock); /* an older wait on another file: dropped */
	}
	t->p_lock = 0;
	t->p_wait_ns = 0;
	return wait;
}

static __always_inline void fs_tp_write(struct fuse_req *req, struct fuse_args *args)
{
	struct fs_write_cache *cache;
	struct fuse_io_args *ia;
	struct fs_inode_stats *st;
	struct fs_inode_key key;
	struct fuse_io_priv *io;
	struct fuse_file *ff;
	struct kiocb *iocb;
	struct inode *inode;
	struct file *file;
	struct fs_req_slot *slot;
	__u64 offset, size, epoch, wait = 0;
	__u32 bit;
	bool exclusive, first;
	__u8 reason = 0, mode;
	__s32 ctr;

	if (req->flags & (1UL << bpf_core_enum_value(enum fuse_req_flag, FR_BACKGROUND)))
		return; /* may run in another task's context: the lock is not ours */
	ia = fs_cast(fs_container_of_addr(args, struct fuse_io_args, ap), struct fuse_io_args);
	io = ia->io;
	if (!io)
		return; /* buffered write-through or writeback, not direct IO */
	iocb = io->iocb;
	if (!iocb)
		return;
	file = iocb->ki_filp;
	inode = file->f_inode;
	if (!fs_fuse_inode_key(inode, &key) || !fs_tgid_wanted())
		return;
	ff = file->private_data;
	if (!ff)
		return;
	offset = ia->write.in.offset;
	size = ia->write.in.size;
	first = offset == (__u64)iocb->ki_pos;
	exclusive = fs_rwsem_held_exclusive_by_current(&inode->i_rwsem);
	mode = exclusive ? FS_LOCK_EXCLUSIVE : FS_LOCK_SHARED;
	if (first)
		reason = fs_tp_reason(exclusive, ff, iocb, inode, offset, size);
	ctr = fs_fi_iocachectr(inode);
	bit = fs_fi_cache_bit(inode);

	/* the same inode as this CPU's last write, nothing to observe: counts stay on this CPU */
	cache = cfg_write_cache ? fs_wcache_this_cpu() : NULL;
	if (cache && fs_wcache_hit(cache, &key, ctr, bit)) {
		cache->write_bytes[mode] += size;
		if (first)
			cache->writes[reason % FS_REASON_COUNT] += 1;
		if (++cache->pending >= FS_WCACHE_FLUSH_WRITES)
			fs_wcache_flush(cache, ctr, bit);
		if (first && cfg_emit_writes)
			fs_emit_write(&key, cache->nodeid, ff, iocb, ctr, mode, reason, offset,
				      size, 0);
		return;
	}

	epoch = fs_waits_epoch; /* before the entry's unclaimed count is read */
	st = fs_stats_of_inode(&key, inode);
	if (!st)
		return;
	__sync_fetch_and_add(&st->write_bytes[mode], size);
	slot = cfg_time_requests ? fs_req_slot_of(req) : NULL;
	if (slot) {
		if (slot->req)
			fs_count(FS_CNT_REQ_MAP_FULL); /* the other request's sample is lost */
		/* claim first, then fill: fs_request_end re-checks the claim after reading */
		slot->req = (__u64)req;
		fs_barrier();
		slot->start_ns = bpf_ktime_get_ns();
		slot->key = key;
		slot->mode = mode;
	}
	if (first) {
		__sync_fetch_and_add(&st->writes[reason % FS_REASON_COUNT], 1);
		/* waits on this inode's i_rwsem that this thread finished before sending */
		wait = fs_claim_wait(st, inode);
		if (wait)
			__sync_fetch_and_add(&st->write_wait_ns[mode], wait);
		if (fs_stats_observe_mode(st, ctr, bit))
			fs_emit_mode_seen(&key, st->nodeid, ctr, bit);
		if (cfg_emit_writes)
			fs_emit_write(&key, st->nodeid, ff, iocb, ctr, mode, reason, offset, size,
				      wait);
	}
	if (cache && first)
		fs_wcache_take(cache, &key, st, epoch, ctr, bit);
}

static __always_inline void fs_tp_release(struct fuse_args *args)
{
	struct fuse_release_args *ra;
	struct fs_inode_key key;
	struct inode *inode;
	struct fs_event *e;
	struct fs_inode_stats *st;
	bool was_cached;
	__s32 ctr;
	__u32 bit;

	ra = fs_cast(fs_container_of_addr(args, struct fuse_release_args, args),
		     struct fuse_release_args);
	inode = ra->inode;
	if (!fs_fuse_inode_key(inode, &key))
		return;
	ctr = fs_fi_iocachectr(inode);
	bit = fs_fi_cache_bit(inode);
	st = bpf_map_lookup_elem(&inode_stats, &key);
	was_cached = st && (st->cache_io_mode || st->iocachectr > 0);
	/* only releases that can matter to io mode, unless trace asks for all */
	if (!cfg_emit_all_opens && !was_cached && ctr <= 0 && !bit)
		return;
	if (st)
		fs_stats_observe_mode(st, ctr, bit);
	e = fs_event_reserve(FS_EV_RELEASE);
	if (!e)
		return;
	e->key = key;
	e->nodeid = fs_fi_nodeid(inode);
	e->fh = ra->inarg.fh;
	e->iocachectr = ctr;
	e->iomode = FS_IOM_NA; /* the file's mode is gone by now */
	/*
	 * Which file held cache mode is not visible here: while the inode was
	 * cached, any release may have been a holder's; userspace matches the
	 * server's fh against the holders it knows.
	 */
	if (was_cached) {
		e->flags |= FS_EVF_WAS_HOLDER;
		if (ctr <= 0 && !bit)
			e->flags |= FS_EVF_LEFT_CACHE;
	}
	bpf_ringbuf_submit(e, 0);
}

/*
 * An open's request, sent by the opening thread: after the answer the open may
 * wait in fuse_file_cached_io_open() for parallel writers to drain. The time
 * and the thread's voluntary context switches so far let the open's syscall
 * exit tell whether it slept again (iomode_tracepoint.bpf.c).
 */
static __always_inline void fs_tp_open_sent(struct fuse_args *args)
{
	struct fs_task *t;

	if (!cfg_time_drains || !fs_tgid_wanted())
		return;
	t = fs_task_get();
	if (!t)
		return;
	t->o_start_ns = bpf_ktime_get_ns();
	t->o_nodeid = args->nodeid;
	t->o_nvcsw = bpf_get_current_task_btf()->nvcsw;
}

SEC("tp_btf/fuse_request_send")
int BPF_PROG(fs_request_send, struct fuse_req *req)
{
	struct fuse_args *args = req->args;
	__u32 opcode;

	if (!args)
		return 0;
	opcode = args->opcode;
	if (opcode == FUSE_WRITE)
		fs_tp_write(req, args);
	else if (opcode == FUSE_RELEASE)
		fs_tp_release(args);
	else if (opcode == FUSE_OPEN || opcode == FUSE_CREATE)
		fs_tp_open_sent(args);
	return 0;
}

SEC("tp_btf/fuse_request_end")
int BPF_PROG(fs_request_end, struct fuse_req *req)
{
	struct fs_req_slot *slot = fs_req_slot_of(req);
	struct fs_inode_stats *st;
	struct fs_inode_key key;
	__u64 start;
	__u32 mode;

	if (!slot || slot->req != (__u64)req)
		return 0; /* not a timed write, or its slot was taken over */
	fs_barrier();
	start = slot->start_ns;
	key = slot->key;
	mode = slot->mode;
	fs_barrier();
	if (slot->req != (__u64)req)
		return 0; /* overwritten while we read */
	slot->req = 0;
	st = bpf_map_lookup_elem(&inode_stats, &key);
	if (st)
		__sync_fetch_and_add(&st->write_service_ns[mode & 1], bpf_ktime_get_ns() - start);
	return 0;
}
