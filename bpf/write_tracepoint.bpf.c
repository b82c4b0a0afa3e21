// SPDX-License-Identifier: GPL-2.0
/*
 * Roles write-lock, write-cached and release without trampolines (tp_btf
 * only; kernels with the fuse:fuse_request_send/end tracepoints, 6.12+).
 *
 * Every FUSE_WRITE request passes fuse_request_send. req->args of a
 * FUSE_WRITE is &fuse_io_args.ap.args; fuse_io_args.io is set on the
 * direct-IO paths (FOPEN_DIRECT_IO files, and O_DIRECT on caching opens via
 * fuse_direct_IO()), NULL on the page-cache paths (write-through, sent by the
 * writer; writeback, sent later in the background on behalf of no writer).
 *
 * Which task sends it: a synchronous request is sent by its writer, holding
 * inode->i_rwsem. An async direct-IO request (FUSE_ASYNC_DIO: libaio,
 * io_uring, and any O_DIRECT write on a caching open) is a background
 * request: it is sent by its writer, still holding the lock, unless it had to
 * wait in the connection's background queue, in which case whoever completes
 * another request sends it later (fs_sent_by_its_writer). Only from the writer
 * does the rwsem itself say the lock mode (writer bit + owner == current);
 * the reasons that follow from the open and the call (no parallel flag,
 * append, the page-cache paths) hold whoever sends it; the others are counted
 * as unclassified (write_core.h).
 *
 * A write split into several requests is counted once: a direct-IO write's
 * first request is the one whose offset is still iocb->ki_pos; a write-through
 * write's requests are told apart by the writer's task_io_accounting, which
 * fuse_cache_write_iter() bumps once per write call. Past EOF is tested with
 * the i_size the writer saw before it waited for the lock (kept at
 * contention_begin), else the current one, against the first request's range:
 * a write longer than one request that starts inside EOF and ends past it is
 * reported as fallback here (the trampoline backend sees the whole write).
 *
 * Release: FUSE_RELEASE is sent after fuse_file_io_release() dropped the
 * file's io-mode reference, so iocachectr already shows what is left.
 */
#include "fuse_inode.bpf.h"

/* kfuncs (6.2+): the writer of a request another task sends */
extern struct task_struct *bpf_task_from_pid(__s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;

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
	__uint(max_entries, FS_REQ_SLOTS); /* userspace sets it before load */
	__type(key, __u32);
	__type(value, struct fs_req_slot);
} req_slots SEC(".maps");

/* req_slots' entries less one (a power of two less one), set with the map's size */
const volatile __u32 cfg_req_slot_mask = FS_REQ_SLOTS - 1;

static __always_inline struct fs_req_slot *fs_req_slot_of(const struct fuse_req *req)
{
	/* slab objects: drop the alignment bits, then a multiplicative hash */
	__u64 bits = fs_addr_bits(req) >> 6;
	__u32 idx = (__u32)((bits * 0x9E3779B97F4A7C15ULL) >> 40) & cfg_req_slot_mask;

	return bpf_map_lookup_elem(&req_slots, &idx);
}

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

/* Did the current task write @req? Its pid in the connection's pid namespace is req->in.h.pid. */
static __always_inline bool fs_current_wrote(struct fuse_req *req, struct fuse_conn *fc)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pid_namespace *ns = fc->pid_ns;
	struct pid *pid = task->thread_pid;
	unsigned int level;
	struct upid *up;

	if (!pid || !ns)
		return false;
	level = ns->level;
	if (level > pid->level)
		return false;
	up = fs_cast((__u64)pid + bpf_core_field_offset(struct pid, numbers) +
			     (__u64)level * bpf_core_type_size(struct upid),
		     struct upid);
	return fs_addr_bits(up->ns) == fs_addr_bits(ns) && (__u32)up->nr == req->in.h.pid;
}

/* Background requests queued on the connection and not sent yet (the caller sends one). */
static __always_inline __u32 fs_bg_queued(struct fuse_conn *fc)
{
	if (bpf_core_field_exists(fc->num_background))
		return fc->num_background - fc->active_background;
	if (bpf_core_field_exists(fc->chan)) {
		struct fuse_chan *ch = fc->chan;

		return ch ? ch->num_background - ch->active_background : ~0U;
	}
	return ~0U;
}

/*
 * Is @req sent by its writer while the writer holds the lock it took for it?
 * A synchronous request always is. A background request that never sat in a
 * queue (its list_head still points at itself: FUSE over io_uring fires the
 * tracepoint before queueing) is sent from fuse_simple_background() in its
 * writer. Over /dev/fuse it comes off the background queue: when its writer
 * sends it as the newest queued request (none left behind it), it is the one
 * the writer has just queued; an older one is being flushed.
 */
static __always_inline bool fs_sent_by_its_writer(struct fuse_req *req, struct fuse_file *ff)
{
	struct fuse_conn *fc;

	if (!(req->flags & (1UL << bpf_core_enum_value(enum fuse_req_flag, FR_BACKGROUND))))
		return true;
	fc = fs_ff_conn(ff);
	if (!fc || !fs_current_wrote(req, fc))
		return false;
	if (fs_addr_bits(req->list.next) == fs_addr_bits(&req->list))
		return true;
	return fs_bg_queued(fc) == 0;
}

/* A request another task sends: name its writer (req->in.h.pid) where its pid namespace allows. */
static __always_inline void fs_event_name_sender(struct fs_event *e, struct fuse_req *req,
						 struct fuse_file *ff)
{
	struct fuse_conn *fc = fs_ff_conn(ff);
	struct task_struct *w;

	e->flags |= FS_EVF_OTHER_CONTEXT;
	e->tid = req->in.h.pid;
	e->pid = 0;
	__builtin_memset(e->comm, 0, sizeof(e->comm));
	if (!fc || !fc->pid_ns || fc->pid_ns->level != 0)
		return; /* bpf_task_from_pid() takes a pid of the initial namespace */
	w = bpf_task_from_pid((__s32)req->in.h.pid);
	if (!w)
		return;
	e->pid = w->tgid;
	__builtin_memcpy(e->comm, w->group_leader->comm, sizeof(e->comm));
	bpf_task_release(w);
}

static __always_inline void fs_tp_emit_write(const struct fs_inode_key *key, __u64 nodeid,
					     const struct fs_write_obs *o, __u8 reason, __u64 bytes,
					     __u64 wait, struct fuse_file *ff, struct fuse_req *req,
					     bool by_writer, bool async)
{
	struct fs_event *e = fs_event_reserve(FS_EV_WRITE);

	if (!e)
		return;
	fs_write_event_fill(e, key, nodeid, o, reason, bytes, wait, 0);
	e->file_id = (__u64)ff;
	e->fh = fs_ff_fh(ff);
	if (async)
		e->flags |= FS_EVF_ASYNC;
	if (by_writer)
		fs_event_name_writer(e);
	else
		fs_event_name_sender(e, req, ff);
	bpf_ringbuf_submit(e, 0);
}

/*
 * The i_size a writer that took the exclusive lock for no earlier reason saw
 * when it decided: the one kept when it began waiting for the lock (the
 * writer it waited for may have extended the file), else the current one.
 */
static __always_inline __u64 fs_isize_at_decision(struct inode *inode)
{
	struct fs_task *t = fs_task_find();
	__u64 isize = inode->i_size;

	/* a load of one of two pointers, map value or BTF, is refused: keep them apart */
	asm volatile("" : "+r"(isize));
	if (t && t->p_lock == fs_inode_lock_addr(inode))
		isize = t->p_isize;
	return isize;
}

/* A direct-IO write's request (fuse_io_args.io set): FOPEN_DIRECT_IO, or O_DIRECT on a caching
 * open. */
static __always_inline void fs_tp_dio_write(struct fuse_req *req, struct fuse_io_args *ia,
					    struct fuse_io_priv *io)
{
	struct fs_write_obs o = {};
	struct fs_write_cache *cache;
	struct fs_inode_stats *st;
	struct fs_req_slot *slot;
	struct fs_inode_key key;
	struct fuse_file *ff;
	struct kiocb *iocb;
	struct inode *inode;
	struct file *file;
	__u64 size, epoch = 0, wait = 0;
	bool first, by_writer, async;
	__u8 reason;
	__s32 ctr;
	__u32 bit;

	iocb = io->iocb;
	if (!iocb)
		return;
	file = iocb->ki_filp;
	inode = file->f_inode;
	if (!fs_fuse_inode_key(inode, &key))
		return;
	ff = fs_cast(file->private_data, struct fuse_file);
	if (!ff)
		return;
	by_writer = fs_sent_by_its_writer(req, ff);
	if (by_writer && !fs_tgid_wanted())
		return;
	async = iocb->ki_complete != NULL;
	size = ia->write.in.size;
	o.pos = ia->write.in.offset;
	o.count = size;
	first = o.pos == (__u64)iocb->ki_pos;
	o.open_flags = ff->open_flags;
	o.ki_flags = iocb->ki_flags;
	o.path = (o.open_flags & FS_FOPEN_DIRECT_IO) ? FS_PATH_DIRECT : FS_PATH_CACHED_DIRECT;
	ctr = fs_fi_iocachectr(inode);
	bit = fs_fi_cache_bit(inode);
	if (by_writer) {
		o.lock_seen = 1;
		o.exclusive = fs_rwsem_held_exclusive_by_current(&inode->i_rwsem);
		o.cache_mode = bit || ctr > 0;
	} else {
		/* the kernel makes an async write blocking when it extends the file */
		o.extending = io->async && io->blocking && async;
	}
	reason = fs_classify_without_isize(&o);
	if (reason == FS_REASON_COUNT) { /* an exclusive writer that no earlier reason explains */
		o.isize = fs_isize_at_decision(inode);
		reason = fs_classify_by_isize(&o);
	}

	/* classified by its writer, same inode and mode as this CPU's last write: the slot */
	cache = cfg_write_cache && by_writer && reason < FS_DIO_REASONS ? fs_wcache_this_cpu()
									: NULL;
	if (cache) {
		st = fs_count_dio_request(cache, &key, 0, reason, first, size, ctr, bit, &epoch);
		if (!st) {
			if (first && cfg_emit_writes)
				fs_tp_emit_write(&key, cache->nodeid, &o, reason, size, 0, ff, req,
						 true, async);
			return;
		}
	} else {
		epoch = fs_core_waits_epoch(); /* before the entry's unclaimed count is read */
		st = fs_stats_of_inode(&key, inode);
		if (!st)
			return;
		fs_account_write(st, reason, first, size, 0, 0);
	}
	/* not a slot hit: the inode may be new here; its later lock waits are looked at */
	fs_watch_inode(fs_addr_bits(inode));
	slot = cfg_time_requests && by_writer ? fs_req_slot_of(req) : NULL;
	if (slot) {
		if (slot->req)
			fs_count(FS_CNT_REQ_MAP_FULL); /* the other request's sample is lost */
		/* claim first, then fill: fs_request_end re-checks the claim after reading */
		slot->req = (__u64)req;
		fs_barrier();
		slot->start_ns = bpf_ktime_get_ns();
		slot->key = key;
		slot->mode = fs_reason_lock_mode(reason);
	}
	if (first) {
		/* waits on this inode's i_rwsem that its writer finished before sending */
		wait = by_writer ? fs_claim_wait(st, inode) : 0;
		if (wait)
			__sync_fetch_and_add(&st->write_wait_ns[fs_reason_lock_mode(reason) %
								FS_WRITE_LOCK_MODES],
					     wait);
		fs_observe_mode(st, &key, ctr, bit);
		if (cfg_emit_writes)
			fs_tp_emit_write(&key, st->nodeid, &o, reason, size, wait, ff, req,
					 by_writer, async);
	}
	if (cache && first)
		fs_wcache_take(cache, &key, st, epoch, ctr, bit);
}

/*
 * The pointer stored at @addr. A struct X ** loaded from a BTF-typed struct is a
 * plain number to the verifier, which refuses to dereference it; read it as the
 * first member of a kernel struct that starts with a pointer (struct list_head),
 * through bpf_rdonly_cast(): fault-safe, and allowed under any lockdown.
 */
static __always_inline __u64 fs_load_ptr(__u64 addr)
{
	return addr ? (__u64)fs_cast(addr, struct list_head)->next : 0;
}

/* The inode a page-cache write's request is for: its first folio's (page's) mapping's host. */
static __always_inline struct inode *fs_page_args_inode(struct fuse_io_args *ia)
{
	struct address_space *m;
	__u64 first;

	if (bpf_core_field_exists(ia->ap.folios)) {
		first = fs_load_ptr((__u64)ia->ap.folios);
		m = first ? fs_cast(first, struct folio)->mapping : NULL;
	} else {
		first = fs_load_ptr((__u64)ia->ap.pages);
		m = first ? fs_cast(first, struct page)->mapping : NULL;
	}
	return m ? fs_cast(m, struct address_space)->host : NULL;
}

/*
 * Is this write-through request the first of its write call? The writer's
 * task_io_accounting.write_bytes goes up once per fuse_cache_write_iter()
 * call (task_io_account_write()), before its requests are sent. Without
 * CONFIG_TASK_IO_ACCOUNTING each request counts as a write.
 */
static __always_inline bool fs_first_of_write_call(struct inode *inode)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fs_task *t;
	__u64 wb;

	if (!bpf_core_field_exists(struct task_io_accounting, write_bytes))
		return true;
	t = fs_task_get();
	if (!t)
		return true;
	wb = task->ioac.write_bytes;
	if (t->b_inode == (__u64)inode && t->b_write_bytes == wb)
		return false;
	t->b_inode = (__u64)inode;
	t->b_write_bytes = wb;
	return true;
}

/* A page-cache write's request (fuse_io_args.io NULL): write-through or writeback. */
static __always_inline void fs_tp_page_write(struct fuse_req *req, struct fuse_io_args *ia)
{
	struct fs_write_obs o = {};
	struct fs_inode_stats *st;
	struct fs_inode_key key;
	struct inode *inode = fs_page_args_inode(ia);
	__u64 size = ia->write.in.size, wait = 0;
	bool first;

	if (!inode || !fs_fuse_inode_key_watch(inode, &key))
		return;
	if (req->flags & (1UL << bpf_core_enum_value(enum fuse_req_flag, FR_BACKGROUND))) {
		/* writeback: the writer only dirtied pages, whenever that was */
		st = fs_stats_of_inode(&key, inode);
		if (st) {
			__sync_fetch_and_add(&st->writeback_requests, 1);
			__sync_fetch_and_add(&st->writeback_bytes, size);
		}
		return;
	}
	/* write-through: sent by its writer from fuse_cache_write_iter(), under inode_lock() */
	if (!fs_tgid_wanted())
		return;
	o.path = FS_PATH_BUFFERED;
	o.pos = ia->write.in.offset;
	o.count = size;
	first = fs_first_of_write_call(inode);
	st = fs_stats_of_inode(&key, inode);
	if (!st)
		return;
	if (first)
		wait = fs_claim_wait(st, inode);
	fs_account_write(st, FS_REASON_BUFFERED, first, size, wait, 0);
	if (first && cfg_emit_writes)
		fs_tp_emit_write(&key, st->nodeid, &o, FS_REASON_BUFFERED, size, wait, NULL, req,
				 true, false);
}

static __always_inline void fs_tp_write(struct fuse_req *req, struct fuse_args *args)
{
	struct fuse_io_args *ia =
		fs_cast(fs_container_of_addr(args, struct fuse_io_args, ap), struct fuse_io_args);
	struct fuse_io_priv *io = ia->io;

	if (io)
		fs_tp_dio_write(req, ia, io);
	else
		fs_tp_page_write(req, ia);
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
	if (st) {
		fs_stats_mark(st, &key);
		fs_stats_observe_mode(st, ctr, bit);
	}
	e = fs_event_reserve(FS_EV_RELEASE);
	if (!e)
		return;
	e->key = key;
	e->nodeid = fs_fi_nodeid(inode);
	e->fh = ra->inarg.fh;
	e->release_id = (__u64)ra; /* the open's fs_release_id_of: names.bpf.h */
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
 * Without the syscall hooks (cfg_open_hints) nothing sees the open's outcome:
 * the opener's FUSE_OPEN/FUSE_CREATE, sent from its own thread, tells
 * userspace which process to take a census of (fusescope/model/open_hints.h). The
 * new inode is not known yet: FUSE_OPEN carries the file's nodeid, FUSE_CREATE
 * its parent's. Opens are rare next to writes; the machine's other syscalls
 * pay nothing.
 */
static __always_inline void fs_tp_emit_open_sent(struct fuse_req *req, struct fuse_args *args)
{
	struct fuse_mount *fm = req->fm;
	struct fs_event *e;
	__u32 dev;

	if (!fm || !fm->sb)
		return;
	dev = fm->sb->s_dev;
	if (!fs_dev_wanted(dev))
		return;
	e = fs_event_reserve(FS_EV_OPEN_SENT);
	if (!e)
		return;
	e->key.dev = dev;
	e->nodeid = args->nodeid;
	if (args->opcode == FUSE_CREATE)
		e->flags |= FS_EVF_CREATE;
	bpf_ringbuf_submit(e, 0);
}

/*
 * An open's request, sent by the opening thread: after the answer the open may
 * wait in fuse_file_cached_io_open() for parallel writers to drain. The time
 * and the thread's voluntary context switches so far let the open's syscall
 * exit tell whether it slept again (iomode_tracepoint.bpf.c).
 */
static __always_inline void fs_tp_open_sent(struct fuse_req *req, struct fuse_args *args)
{
	struct fs_task *t;

	if (!fs_tgid_wanted())
		return;
	if (cfg_open_hints)
		fs_tp_emit_open_sent(req, args);
	if (!cfg_time_drains)
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
		fs_tp_open_sent(req, args);
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
	if (st) {
		fs_stats_mark(st, &key);
		__sync_fetch_and_add(&st->write_service_ns[mode & 1], bpf_ktime_get_ns() - start);
	}
	return 0;
}
