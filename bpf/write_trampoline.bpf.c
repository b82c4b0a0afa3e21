// SPDX-License-Identifier: GPL-2.0
/*
 * Role 1, writer lock take, trampoline backend (fentry/fexit).
 *
 * The lock decision itself (fuse_dio_lock, fuse_dio_wr_exclusive_lock) is
 * inlined on stock kernels, so the write is bracketed by its out-of-line
 * frames instead:
 *   fentry fuse_file_write_iter      remember pos, size, i_size, flags, cache bit
 *   fexit  fuse_inode_uncached_io_start(fi, NULL)
 *                                    the writer took the shared lock and asked
 *                                    to stay shared: ret 0 kept it, else fallback
 *   fentry fuse_direct_io(WRITE)     the lock is held now: read the rwsem
 *   fexit  fuse_file_write_iter      classify, account, optionally emit
 * Where a kernel has fuse_dio_wr_exclusive_lock (or a patched kernel's
 * fuse_dio_wr_needs_exclusive_lock) out of line, fs_dio_decision is attached
 * to it by userspace (bpf_program__set_attach_target) and its return value
 * is the kernel's own first decision.
 */
#include "fuse_inode.bpf.h"

static __always_inline __u8 fs_classify(const struct fs_task *t)
{
	if (!t->w_exclusive)
		return FS_REASON_SHARED;
	/* went for shared first and had to give it up */
	if (t->w_tried_shared || (t->w_decision_seen && !t->w_decision_excl))
		return FS_REASON_FALLBACK;
	if (!(t->w_open_flags & FOPEN_PARALLEL_DIRECT_WRITES))
		return FS_REASON_NO_PARALLEL_FLAG;
	if (t->w_ki_flags & IOCB_APPEND)
		return FS_REASON_APPEND;
	if (t->w_cache_bit)
		return FS_REASON_CACHE_IO_MODE;
	if (t->w_pos + t->w_count > t->w_isize)
		return FS_REASON_PAST_EOF;
	return FS_REASON_FALLBACK;
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
	if (!fs_fuse_inode_key(inode, &key))
		return 0;
	ff = file->private_data;
	/* only FOPEN_DIRECT_IO files reach fuse_direct_write_iter() */
	if (!ff || !(fs_ff_open_flags(ff) & FOPEN_DIRECT_IO))
		return 0;
	t = fs_task_get();
	if (!t)
		return 0;
	t->w_active = 1;
	t->w_start_ns = bpf_ktime_get_ns();
	t->w_inode = (__u64)inode;
	t->w_pos = iocb->ki_pos;
	t->w_count = from->count;
	t->w_isize = inode->i_size;
	t->w_open_flags = fs_ff_open_flags(ff);
	t->w_ki_flags = iocb->ki_flags;
	t->w_cache_bit = fs_fi_cache_bit(inode);
	t->w_wait_ns = 0;
	t->w_mode_seen = 0;
	t->w_exclusive = 0;
	t->w_tried_shared = 0;
	t->w_decision_seen = 0;
	t->w_uncached_ret = 0;
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
	t->w_uncached_ret = ret;
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

SEC("fexit/fuse_file_write_iter")
int BPF_PROG(fs_write_exit, struct kiocb *iocb, struct iov_iter *from, long ret)
{
	struct fs_inode_stats *st;
	struct fs_inode_key key;
	struct inode *inode;
	struct fs_task *t;
	__u64 now, total, rest;
	__u8 reason, mode;
	__s32 ctr;
	__u32 bit;

	t = fs_task_find();
	if (!t || !t->w_active)
		return 0;
	t->w_active = 0;
	inode = iocb->ki_filp->f_inode;
	if (!t->w_mode_seen) {
		/* no FUSE request was built (error, zero length): nothing was written */
		if (ret > 0)
			fs_count(FS_CNT_WRITES_UNRESOLVED);
		return 0;
	}
	if (!fs_fuse_inode_key(inode, &key))
		return 0;
	now = bpf_ktime_get_ns();
	total = now - t->w_start_ns;
	rest = total > t->w_wait_ns ? total - t->w_wait_ns : 0;
	reason = fs_classify(t);
	mode = reason == FS_REASON_SHARED ? FS_LOCK_SHARED : FS_LOCK_EXCLUSIVE;

	st = fs_stats_of_inode(&key, inode);
	if (!st)
		return 0;
	__sync_fetch_and_add(&st->writes[reason % FS_REASON_COUNT], 1);
	if (ret > 0)
		__sync_fetch_and_add(&st->write_bytes[mode], ret);
	if (t->w_wait_ns)
		__sync_fetch_and_add(&st->write_wait_ns[mode], t->w_wait_ns);
	__sync_fetch_and_add(&st->write_service_ns[mode], rest);
	ctr = fs_fi_iocachectr(inode);
	bit = fs_fi_cache_bit(inode);
	if (fs_stats_observe_mode(st, ctr, bit))
		fs_emit_mode_seen(&key, st->nodeid, ctr, bit);

	if (cfg_emit_writes) {
		struct fs_event *e = fs_event_reserve(FS_EV_WRITE);

		if (e) {
			struct fuse_file *ff = iocb->ki_filp->private_data;

			e->key = key;
			e->nodeid = st->nodeid;
			e->file_id = (__u64)ff;
			e->fh = fs_ff_fh(ff);
			e->open_flags = t->w_open_flags;
			e->iocachectr = ctr;
			e->ret = (__s32)ret;
			e->lock_mode = mode;
			e->reason = reason;
			e->offset = t->w_pos;
			e->bytes = ret > 0 ? ret : 0;
			e->wait_ns = t->w_wait_ns;
			e->dur_ns = rest;
			e->flags = iocb->ki_complete ? FS_EVF_ASYNC : 0;
			bpf_ringbuf_submit(e, 0);
		}
	}
	return 0;
}
