// SPDX-License-Identifier: GPL-2.0
/*
 * Roles write-lock, write-cached and write-passthrough, trampoline backend
 * (fentry/fexit). Every write to a FUSE regular file passes
 * fuse_file_write_iter() in its writer, so this backend classifies every
 * write path, sync or async, in the writer's own context:
 *   fentry fuse_file_write_iter      which path (direct IO, passthrough, page
 *                                    cache with or without O_DIRECT); pos,
 *                                    size, i_size, flags, cache mode
 *   fexit  fuse_inode_uncached_io_start(fi, NULL)
 *                                    a direct-IO writer took the shared lock and
 *                                    asked to stay shared: ret 0 kept it, else fallback
 *   fentry fuse_direct_io(WRITE)     the lock is held now: read the rwsem
 *   fexit  fuse_file_write_iter      classify (write_core.h), account, emit
 * The lock decision itself (fuse_dio_lock, fuse_dio_wr_exclusive_lock) is
 * inlined on stock kernels; where a kernel has fuse_dio_wr_exclusive_lock
 * (or a patched kernel's fuse_dio_wr_needs_exclusive_lock) out of line,
 * fs_dio_decision is attached to it by userspace
 * (bpf_program__set_attach_target) and its return value is the kernel's own
 * first decision.
 *
 * Async writes (libaio, io_uring) return -EIOCBQUEUED once their requests are
 * queued: their bytes are what was queued (the iov_iter's progress), and their
 * service time, which runs to a completion this backend does not see, is left
 * out rather than replaced by the queueing time.
 */
#include "fuse_inode.bpf.h"

#define FS_EIOCBQUEUED 529 /* the kernel's internal "queued, completes later" */

/* Which of fuse_file_write_iter()'s paths this write takes (FOPEN_DIRECT_IO wins). */
static __always_inline __u8 fs_write_path_of(struct fuse_file *ff, struct kiocb *iocb)
{
	if (fs_ff_open_flags(ff) & FS_FOPEN_DIRECT_IO)
		return FS_PATH_DIRECT;
	if (fs_ff_passthrough(ff))
		return FS_PATH_PASSTHROUGH;
	return (iocb->ki_flags & FS_IOCB_DIRECT) ? FS_PATH_CACHED_DIRECT : FS_PATH_BUFFERED;
}

SEC("fentry/fuse_file_write_iter")
int BPF_PROG(fs_write_enter, struct kiocb *iocb, struct iov_iter *from)
{
	struct fs_inode_key key;
	struct fuse_file *ff;
	struct inode *inode;
	struct file *file;
	struct fs_task *t;

	if (!fs_tgid_wanted())
		return 0;
	file = iocb->ki_filp;
	inode = file->f_inode;
	if (!fs_fuse_inode_key_watch(inode, &key)) /* before the lock: its waits are looked at */
		return 0;
	ff = file->private_data;
	if (!ff)
		return 0;
	t = fs_task_get();
	if (!t)
		return 0;
	t->w_active = 1;
	t->w_path = fs_write_path_of(ff, iocb);
	t->w_start_ns = bpf_ktime_get_ns();
	t->w_inode = (__u64)inode;
	t->w_pos = iocb->ki_pos;
	t->w_count = from->count;
	t->w_isize = inode->i_size;
	t->w_open_flags = fs_ff_open_flags(ff);
	t->w_ki_flags = iocb->ki_flags;
	t->w_cache_bit = fs_fi_cache_bit(inode) || fs_fi_iocachectr(inode) > 0;
	t->w_wait_ns = 0;
	t->w_mode_seen = 0;
	t->w_exclusive = 0;
	t->w_tried_shared = 0;
	t->w_decision_seen = 0;
	return 0;
}

SEC("fexit/fuse_inode_uncached_io_start")
int BPF_PROG(fs_uncached_io_start_exit, struct fuse_inode *fi, struct fuse_backing *fb, int ret)
{
	struct fs_task *t;

	if (fb) /* a passthrough open, not a direct-IO writer */
		return 0;
	t = fs_task_find();
	if (!t || !t->w_active)
		return 0;
	if (ret == 0)
		return 0; /* kept the shared lock */
	t->w_tried_shared = 1;
	return 0;
}

SEC("fexit")
int BPF_PROG(fs_dio_decision, struct kiocb *iocb, struct iov_iter *from, bool ret)
{
	struct fs_task *t = fs_task_find();

	if (!t || !t->w_active)
		return 0;
	t->w_decision_seen = 1;
	t->w_decision_excl = ret;
	return 0;
}

SEC("fentry/fuse_direct_io")
int BPF_PROG(fs_direct_io_enter, struct fuse_io_priv *io, struct iov_iter *iter, loff_t *ppos,
	     int flags)
{
	struct fs_task *t;
	struct inode *inode;

	if (!(flags & FUSE_DIO_WRITE) || (flags & FUSE_DIO_CUSE))
		return 0;
	t = fs_task_find();
	if (!t || !t->w_active || t->w_mode_seen)
		return 0;
	inode = io->iocb->ki_filp->f_inode;
	if ((__u64)inode != t->w_inode)
		return 0;
	t->w_mode_seen = 1;
	t->w_exclusive = fs_rwsem_held_exclusive_by_current(&inode->i_rwsem);
	return 0;
}

/* What the hooks saw of the thread's write, for the classifier. */
static __always_inline void fs_write_obs_of(const struct fs_task *t, struct fs_write_obs *o)
{
	o->path = t->w_path;
	/* the page-cache and passthrough paths always lock exclusively */
	o->lock_seen = t->w_path != FS_PATH_DIRECT || t->w_mode_seen;
	o->exclusive = t->w_path != FS_PATH_DIRECT || t->w_exclusive;
	o->tried_shared = t->w_tried_shared;
	o->decision_seen = t->w_decision_seen;
	o->decision_excl = t->w_decision_excl;
	o->cache_mode = t->w_cache_bit;
	o->open_flags = t->w_open_flags;
	o->ki_flags = t->w_ki_flags;
	o->pos = t->w_pos;
	o->count = t->w_count;
	o->isize = t->w_isize;
}

SEC("fexit/fuse_file_write_iter")
int BPF_PROG(fs_write_exit, struct kiocb *iocb, struct iov_iter *from, long ret)
{
	struct fs_write_obs o = {};
	struct fs_inode_stats *st;
	struct fs_inode_key key;
	struct inode *inode;
	struct fs_task *t;
	__u64 total, rest, bytes;
	bool queued;
	__u8 reason;

	t = fs_task_find();
	if (!t || !t->w_active)
		return 0;
	t->w_active = 0;
	inode = iocb->ki_filp->f_inode;
	queued = ret == -FS_EIOCBQUEUED;
	if (t->w_path == FS_PATH_DIRECT && !t->w_mode_seen) {
		/* no FUSE request was built (error, zero length): nothing was written */
		if (ret > 0 || queued)
			fs_count(FS_CNT_WRITES_UNRESOLVED);
		return 0;
	}
	if (t->w_path != FS_PATH_DIRECT && ret <= 0 && !queued)
		return 0; /* refused or empty: nothing written, no lock decision to explain */
	if (!fs_fuse_inode_key(inode, &key))
		return 0;
	total = bpf_ktime_get_ns() - t->w_start_ns;
	rest = total > t->w_wait_ns ? total - t->w_wait_ns : 0;
	fs_write_obs_of(t, &o);
	reason = fs_classify_write(&o);
	/* queued async: what the requests took from the iov_iter */
	bytes = ret > 0 ? ret : queued && t->w_count > from->count ? t->w_count - from->count : 0;

	st = fs_stats_of_inode(&key, inode);
	if (!st)
		return 0;
	fs_account_write(st, reason, true, bytes, t->w_wait_ns, queued ? 0 : rest);
	fs_observe_mode(st, &key, fs_fi_iocachectr(inode), fs_fi_cache_bit(inode));

	if (cfg_emit_writes) {
		struct fs_event *e = fs_event_reserve(FS_EV_WRITE);

		if (e) {
			struct fuse_file *ff = iocb->ki_filp->private_data;

			fs_write_event_fill(e, &key, st->nodeid, &o, reason, bytes, t->w_wait_ns,
					    queued ? 0 : rest);
			e->file_id = (__u64)ff;
			e->fh = fs_ff_fh(ff);
			e->iocachectr = fs_fi_iocachectr(inode);
			e->ret = (__s32)ret;
			if (iocb->ki_complete)
				e->flags |= FS_EVF_ASYNC;
			fs_event_name_writer(e);
			bpf_ringbuf_submit(e, 0);
		}
	}
	return 0;
}
