// SPDX-License-Identifier: GPL-2.0
/*
 * Role 7, census: what was already open or mapped when fusescope started
 * (and, in the tracepoint backend, periodically): every open FUSE regular
 * file and every shared mapping of one, with the io mode its fuse_file is in.
 * Userspace runs these iterators on demand and reads fs_census_rec records.
 */
#include "names.bpf.h"

static __always_inline bool fs_census_fill(struct fs_census_rec *r, struct task_struct *task,
					   struct file *file)
{
	struct fuse_file *ff;
	struct inode *inode;

	if (!file)
		return false;
	inode = file->f_inode;
	if (!fs_fuse_inode_key_watch(inode, &r->key))
		return false;
	if (cfg_filter_tgid && cfg_filter_tgid != (__u32)task->tgid)
		return false;
	ff = file->private_data;
	r->pid = task->tgid;
	__builtin_memcpy(r->comm, task->comm, sizeof(r->comm)); /* plain BTF loads */
	r->nodeid = fs_fi_nodeid(inode);
	r->file_id = (__u64)ff;
	r->iocachectr = fs_fi_iocachectr(inode);
	r->cache_io_mode = fs_fi_cache_bit(inode);
	r->inode_state = FS_READ(inode, struct fuse_inode, state);
	r->fh = fs_ff_fh(ff);
	r->open_flags = fs_ff_open_flags(ff);
	r->iomode = fs_ff_iomode(ff);
	r->release_id = fs_release_id_of(ff, FS_READ);
	fs_census_note_task(r, task);
	r->uring = fs_ff_uring(ff);
	r->writable = (file->f_mode & FMODE_WRITE) != 0;
	return true;
}

SEC("iter/task_file")
int fs_census_files(struct bpf_iter__task_file *ctx)
{
	struct fs_census_rec r = {};
	struct task_struct *task = ctx->task;

	if (!task || !fs_census_fill(&r, task, ctx->file))
		return 0;
	r.kind = FS_CENSUS_FILE;
	r.fd = ctx->fd;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

SEC("iter/task_vma")
int fs_census_vmas(struct bpf_iter__task_vma *ctx)
{
	struct fs_census_rec r = {};
	struct task_struct *task = ctx->task;
	struct vm_area_struct *vma = ctx->vma;
	unsigned long flags;

	if (!task || !vma)
		return 0;
	/* a private mapping never changes the io mode; only shared ones matter */
	flags = bpf_core_field_exists(vma->vm_flags) ? vma->vm_flags : VM_MAYSHARE;
	if (!(flags & VM_MAYSHARE))
		return 0;
	if (!fs_census_fill(&r, task, vma->vm_file))
		return 0;
	r.kind = FS_CENSUS_VMA;
	r.vm_start = vma->vm_start;
	r.vm_end = vma->vm_end;
	r.vm_flags_shared_write = ((flags & VM_SHARED) ? 1 : 0) | ((flags & VM_WRITE) ? 2 : 0);
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
