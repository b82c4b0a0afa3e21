// SPDX-License-Identifier: GPL-2.0
/*
 * Roles 2-5 with trampolines: the io-mode bookkeeping of fs/fuse/iomode.c.
 *   open     fexit  fuse_file_io_open(file, inode)         resulting ff->iomode
 *   mmap     fentry/fexit fuse_file_mmap(file, vma)        did it make the file cached
 *   drain    fentry/fexit fuse_file_cached_io_open(inode, ff)
 *                                                          time blocked for writers
 *   release  fentry/fexit fuse_file_io_release(ff, inode)  holder gone, mode left
 * All of these exist only from 6.9 on (fuse_file_mmap is older); userspace
 * leaves the programs unloaded where the kernel lacks the function.
 */
#include "names.bpf.h"

static __always_inline struct fs_event *
fs_file_event(__u32 type, struct inode *inode, struct fuse_file *ff, const struct fs_inode_key *key)
{
	struct fs_event *e = fs_event_reserve(type);

	if (!e)
		return NULL;
	e->key = *key;
	e->nodeid = fs_fi_nodeid(inode);
	e->file_id = (__u64)ff;
	e->fh = fs_ff_fh(ff);
	e->open_flags = fs_ff_open_flags(ff);
	e->iomode = fs_ff_iomode(ff);
	e->iocachectr = fs_fi_iocachectr(inode);
	e->release_id = fs_release_id_of(ff, FS_READ);
	return e;
}

static __always_inline void fs_note_mode(const struct fs_inode_key *key, struct inode *inode)
{
	struct fs_inode_stats *st = fs_stats_of_inode(key, inode);

	if (st)
		fs_stats_observe_mode(st, fs_fi_iocachectr(inode), fs_fi_cache_bit(inode));
}

/*
 * This thread's record, if it acts on a watched FUSE inode (tgid and mount
 * filters) and, with @need_writers, only while the inode has parallel writers
 * in flight (iocachectr < 0): only then can a caching open sleep for them.
 */
static __always_inline struct fs_task *fs_watched_task(struct inode *inode, bool need_writers)
{
	struct fs_inode_key key;

	if (!fs_tgid_wanted() || !fs_fuse_inode_key(inode, &key))
		return NULL;
	if (need_writers && fs_fi_iocachectr(inode) >= 0)
		return NULL;
	return fs_task_get();
}

static __always_inline void fs_drain_account(const struct fs_inode_key *key, struct inode *inode,
					     struct fuse_file *ff, __u64 dur, int ret,
					     bool via_mmap)
{
	struct fs_inode_stats *st = fs_stats_of_inode(key, inode);
	struct fs_event *e;

	if (st) {
		__sync_fetch_and_add(&st->drain_waits, 1);
		__sync_fetch_and_add(&st->drain_wait_ns, dur);
	}
	e = fs_file_event(FS_EV_DRAIN_WAIT, inode, ff, key);
	if (!e)
		return;
	e->ret = ret;
	e->wait_ns = dur;
	if (via_mmap)
		e->flags |= FS_EVF_SHARED_MAP;
	bpf_ringbuf_submit(e, 0);
}

/*
 * Where the compiler inlined fuse_file_cached_io_open() into fuse_file_io_open()
 * (keeping an out-of-line copy only for fuse_file_mmap), the fentry/fexit pair
 * below never sees opens. So the open is bracketed too: if it started with
 * writers in flight, ended cached, and no cached_io_open exit reported a wait,
 * its whole duration is the drain wait.
 */
SEC("fentry/fuse_file_io_open")
int BPF_PROG(fs_io_open_enter, struct file *file, struct inode *inode)
{
	struct fs_task *t = fs_watched_task(inode, true);

	if (!t)
		return 0;
	t->o_may_wait = 1;
	t->o_start_ns = bpf_ktime_get_ns();
	t->d_reported = 0;
	return 0;
}

SEC("fexit/fuse_file_io_open")
int BPF_PROG(fs_io_open_exit, struct file *file, struct inode *inode, int ret)
{
	struct fs_inode_key key;
	struct fuse_file *ff;
	struct fs_event *e;
	struct fs_task *t;
	bool writable;
	__u8 iomode;

	if (!fs_tgid_wanted() || !fs_fuse_inode_key_watch(inode, &key))
		return 0;
	ff = file->private_data;
	iomode = fs_ff_iomode(ff);
	fs_note_mode(&key, inode);
	t = fs_task_find();
	if (t && t->o_may_wait) {
		t->o_may_wait = 0;
		if (!t->d_reported && iomode == FS_IOM_CACHED)
			fs_drain_account(&key, inode, ff, bpf_ktime_get_ns() - t->o_start_ns, ret,
					 false);
		t->d_reported = 0;
	}
	if (ret == 0)
		fs_name_note_file(&key, file);
	writable = (file->f_mode & FMODE_WRITE) != 0;
	/* plain direct-io opens change nothing: only writers' and trace's opens are reported */
	if (ret == 0 && iomode == FS_IOM_NONE && !writable && !cfg_emit_all_opens)
		return 0;
	e = fs_file_event(FS_EV_OPEN, inode, ff, &key);
	if (!e)
		return 0;
	e->ret = ret;
	if (ret == 0 && iomode == FS_IOM_CACHED) {
		e->flags |= FS_EVF_HOLDER;
		if (e->iocachectr == 1)
			e->flags |= FS_EVF_ENTERED_CACHE;
	}
	if (iomode == FS_IOM_UNCACHED)
		e->flags |= FS_EVF_PASSTHROUGH;
	if (ret == 0 && writable)
		e->flags |= FS_EVF_WRITE_OPEN;
	if (e->flags & (FS_EVF_HOLDER | FS_EVF_WRITE_OPEN))
		fs_event_note_exe(e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("fentry/fuse_file_mmap")
int BPF_PROG(fs_mmap_enter, struct file *file, struct vm_area_struct *vma)
{
	struct fs_task *t = fs_watched_task(file->f_inode, false);

	if (!t)
		return 0;
	t->d_in_mmap = 1;
	t->m_iomode_before = fs_ff_iomode(file->private_data);
	return 0;
}

SEC("fexit/fuse_file_mmap")
int BPF_PROG(fs_mmap_exit, struct file *file, struct vm_area_struct *vma, int ret)
{
	struct fs_inode_key key;
	struct fuse_file *ff;
	struct fs_event *e;
	struct fs_task *t;
	unsigned long vmf;
	__u8 before;

	t = fs_task_find();
	if (!t || !t->d_in_mmap)
		return 0;
	t->d_in_mmap = 0;
	before = t->m_iomode_before;
	if (!fs_fuse_inode_key(file->f_inode, &key))
		return 0;
	ff = file->private_data;
	fs_note_mode(&key, file->f_inode);
	if (ret == 0)
		fs_name_note_file(&key, file);
	e = fs_file_event(FS_EV_MMAP, file->f_inode, ff, &key);
	if (!e)
		return 0;
	e->ret = ret;
	vmf = bpf_core_field_exists(vma->vm_flags) ? vma->vm_flags : 0;
	if (vmf & VM_MAYSHARE)
		e->flags |= FS_EVF_SHARED_MAP;
	if (vmf & VM_WRITE)
		e->flags |= FS_EVF_WRITABLE_MAP;
	if (ret == 0 && before != FS_IOM_CACHED && e->iomode == FS_IOM_CACHED) {
		e->flags |= FS_EVF_HOLDER;
		if (e->iocachectr == 1)
			e->flags |= FS_EVF_ENTERED_CACHE;
		fs_event_note_exe(e);
	}
	e->offset = vma->vm_start;
	e->bytes = vma->vm_end - vma->vm_start;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("fentry/fuse_file_cached_io_open")
int BPF_PROG(fs_cached_io_open_enter, struct inode *inode, struct fuse_file *ff)
{
	struct fs_task *t = fs_watched_task(inode, true);

	if (!t)
		return 0;
	t->d_start_ns = bpf_ktime_get_ns();
	t->d_may_wait = 1;
	return 0;
}

SEC("fexit/fuse_file_cached_io_open")
int BPF_PROG(fs_cached_io_open_exit, struct inode *inode, struct fuse_file *ff, int ret)
{
	struct fs_inode_key key;
	struct fs_task *t;

	t = fs_task_find();
	if (!t || !t->d_may_wait)
		return 0;
	t->d_may_wait = 0;
	if (!fs_fuse_inode_key(inode, &key))
		return 0;
	t->d_reported = 1;
	fs_drain_account(&key, inode, ff, bpf_ktime_get_ns() - t->d_start_ns, ret, t->d_in_mmap);
	return 0;
}

SEC("fentry/fuse_file_io_release")
int BPF_PROG(fs_io_release_enter, struct fuse_file *ff, struct inode *inode)
{
	struct fs_inode_key key;
	struct fs_task *t;

	if (!fs_fuse_inode_key(inode, &key))
		return 0;
	t = fs_task_get();
	if (!t)
		return 0;
	t->m_iomode_before = fs_ff_iomode(ff);
	return 0;
}

SEC("fexit/fuse_file_io_release")
int BPF_PROG(fs_io_release_exit, struct fuse_file *ff, struct inode *inode)
{
	struct fs_inode_key key;
	struct fs_task *t;
	struct fs_event *e;
	__u8 before;

	t = fs_task_find();
	if (!t)
		return 0;
	before = t->m_iomode_before;
	t->m_iomode_before = 0;
	if (!fs_fuse_inode_key(inode, &key))
		return 0;
	fs_note_mode(&key, inode);
	if (before == FS_IOM_NONE && !cfg_emit_all_opens)
		return 0;
	e = fs_file_event(FS_EV_RELEASE, inode, ff, &key);
	if (!e)
		return 0;
	e->iomode = before;
	if (before == FS_IOM_CACHED) {
		e->flags |= FS_EVF_WAS_HOLDER;
		if (e->iocachectr == 0)
			e->flags |= FS_EVF_LEFT_CACHE;
	}
	if (before == FS_IOM_UNCACHED)
		e->flags |= FS_EVF_PASSTHROUGH;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
