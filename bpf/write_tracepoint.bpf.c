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

struct fs_req_info {
	struct fs_inode_key key;
	__u64 start_ns;
	__u32 mode;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FS_MAX_REQS);
	__type(key, __u64); /* struct fuse_req * */
	__type(value, struct fs_req_info);
} reqs SEC(".maps");

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

static __always_inline void fs_tp_write(struct fuse_req *req, struct fuse_args *args)
{
	struct fuse_io_args *ia;
	struct fs_inode_stats *st;
	struct fs_req_info info;
	struct fs_inode_key key;
	struct fuse_io_priv *io;
	struct fuse_file *ff;
	struct kiocb *iocb;
	struct inode *inode;
	struct file *file;
	struct fs_task *t;
	__u64 offset, size, wait = 0, reqp = (__u64)req;
	__u32 tid = fs_tid(), bit;
	bool exclusive, first;
	__u8 reason, mode;
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

	st = fs_stats_get(&key, fs_fi_nodeid(inode));
	if (!st)
		return;
	__sync_fetch_and_add(&st->write_bytes[mode], size);
	info.key = key;
	info.start_ns = bpf_ktime_get_ns();
	info.mode = mode;
	info.pad = 0;
	if (bpf_map_update_elem(&reqs, &reqp, &info, BPF_ANY))
		fs_count(FS_CNT_REQ_MAP_FULL);
	if (!first)
		return;

	reason = fs_tp_reason(exclusive, ff, iocb, inode, offset, size);
	__sync_fetch_and_add(&st->writes[reason % FS_REASON_COUNT], 1);
	/* waits on this inode's i_rwsem that this thread finished before sending */
	t = bpf_map_lookup_elem(&tasks, &tid);
	if (t && t->p_lock == (__u64)inode + bpf_core_field_offset(struct inode, i_rwsem))
		wait = t->p_wait_ns;
	if (t) {
		t->p_lock = 0;
		t->p_wait_ns = 0;
	}
	__sync_fetch_and_add(&st->write_wait_ns[mode], wait);
	ctr = fs_fi_iocachectr(inode);
	bit = fs_fi_cache_bit(inode);
	if (fs_stats_observe_mode(st, ctr, bit))
		fs_emit_mode_seen(&key, st->nodeid, ctr, bit);

	if (cfg_emit_writes) {
		struct fs_event *e = fs_event_reserve(FS_EV_WRITE);

		if (e) {
			e->key = key;
			e->nodeid = st->nodeid;
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
	}
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
	return 0;
}

SEC("tp_btf/fuse_request_end")
int BPF_PROG(fs_request_end, struct fuse_req *req)
{
	struct fs_inode_stats *st;
	struct fs_req_info *info;
	__u64 reqp = (__u64)req;

	info = bpf_map_lookup_elem(&reqs, &reqp);
	if (!info)
		return 0;
	st = bpf_map_lookup_elem(&inode_stats, &info->key);
	if (st)
		__sync_fetch_and_add(&st->write_service_ns[info->mode & 1],
				     bpf_ktime_get_ns() - info->start_ns);
	bpf_map_delete_elem(&reqs, &reqp);
	return 0;
}
