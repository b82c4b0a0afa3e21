// SPDX-License-Identifier: GPL-2.0
/*
 * Roles 2-4 without trampolines.
 *
 * open/mmap: the syscall tracepoints. On exit the new fd (openat) or the
 * mapped fd (mmap, remembered at entry for shared file mappings only) is
 * looked up in the task's fd table; the fuse_file's iomode then says whether
 * this open or shared mapping made the file a cache-mode holder. openat needs
 * no entry hook: every thread on the machine opens files, and a per-thread
 * record for each cost 0.6-1.5 us per open in the benchmark. A syscall
 * tracepoint hands out no BTF pointers, and the fd table is a struct file **
 * array, so this path reads with BPF_CORE_READ (bpf_probe_read_kernel). Where
 * that helper is refused (confidentiality lockdown) these programs fail to
 * load and the census fills the role, which doctor reports. The cost is a few
 * reads per openat/mmap, none per write.
 *
 * drain: a caching open or shared mmap waits in fuse_file_cached_io_open(),
 * asleep until the inode's parallel direct writers have left. It is timed
 * from the opener's own hooks, not from the scheduler: a program on
 * sched_switch cost ~0.7 % of write throughput by its dispatch alone (bench,
 * 60 A/B pairs). The FUSE_OPEN/FUSE_CREATE request's send
 * (write_tracepoint.bpf.c) or the mmap entry stamps the time and the thread's
 * voluntary context switches. At the exit of an open/mmap that made its file
 * a cache-mode file, of an inode that had parallel writes, one voluntary
 * switch more than the server's answer takes (open: one, mmap: none) means
 * the thread slept for the drain, and the time since the stamp is reported.
 * The open's answer takes no switch when it came before the opener slept (a
 * server woken by the request preempts the opener and answers): then a single
 * switch whose sleep was uninterruptible was the drain's (fs_drain_wait).
 * That time includes the server's answer to the open (and for mmap, waiting
 * for mmap_lock): an upper bound, where the trampoline backend times the
 * function itself.
 */
#include "names.bpf.h"

#define FS_SYS_OPEN 1
#define FS_SYS_MMAP 2

/* tracefs formats of syscalls:sys_{enter,exit}_* (stable ABI) */
struct fs_sys_enter_mmap {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__u64 addr;
	__u64 len;
	__u64 prot;
	__u64 flags;
	__u64 fd;
	__u64 off;
};

struct fs_sys_exit {
	__u64 common;
	__s32 nr;
	__s32 pad;
	__s64 ret;
};

static __always_inline struct file *fs_fd_file(__u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;

	if (fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

/* What fs_fuse_inode_key() and friends read, through BPF_CORE_READ. */
struct fs_file_info {
	struct fs_inode_key key;
	__u64 nodeid;
	__u64 file_id;
	__u64 fh;
	__s32 iocachectr;
	__u64 release_id; /* fs_release_id_of */
	__u32 open_flags;
	__u8 iomode;
	__u8 writable; /* opened for writing (FMODE_WRITE) */
};

static __always_inline bool fs_file_info_read(struct file *file, struct fs_file_info *fi)
{
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);
	struct fuse_inode *fui = (struct fuse_inode *)inode;
	struct fuse_file *ff;

	if (!sb || BPF_CORE_READ(sb, s_magic) != FUSE_SUPER_MAGIC)
		return false;
	if (!S_ISREG(BPF_CORE_READ(inode, i_mode)))
		return false;
	fi->key.dev = BPF_CORE_READ(sb, s_dev);
	fi->key.ino = BPF_CORE_READ(inode, i_ino);
	fi->key.pad = 0;
	if (!fs_dev_wanted(fi->key.dev))
		return false;
	fs_watch_inode((__u64)inode);
	fi->nodeid = BPF_CORE_READ(fui, nodeid);
	fi->iocachectr = fs_have_iomodes() ? BPF_CORE_READ(fui, iocachectr) : 0;
	ff = BPF_CORE_READ(file, private_data);
	fi->file_id = (__u64)ff;
	fi->fh = ff ? BPF_CORE_READ(ff, fh) : 0;
	fi->open_flags = ff ? BPF_CORE_READ(ff, open_flags) : 0;
	fi->release_id = fs_release_id_of(ff, FS_CORE_READ_AS);
	fi->writable = (BPF_CORE_READ(file, f_mode) & FMODE_WRITE) != 0;
	if (!bpf_core_field_exists(struct fuse_file, iomode))
		fi->iomode = FS_IOM_NA;
	else
		fi->iomode = ff ? (__u8)BPF_CORE_READ(ff, iomode) : FS_IOM_NONE;
	return true;
}

/*
 * Was the opener's one voluntary switch since FUSE_OPEN's send the drain's,
 * not the answer's? The answer costs that switch only when the opener went to
 * sleep before the server answered; a server that the request's wakeup lets
 * preempt the opener answers first (seen on one vCPU in the VM drain test: in
 * about half of the drains the answer took no switch, and the drain's sleep
 * was the only one). request_wait_answer() sleeps interruptibly, unless the
 * connection has no_interrupt; the drain's wait_event() in
 * fuse_file_cached_io_open() uninterruptibly, and the scheduler notes at
 * every blocking sleep whether it was uninterruptible
 * (sched_contributes_to_load). Without that field, without fuse_conn's
 * no_interrupt (7.3+) or with it set, the answer's sleep cannot be told
 * apart: the drain is not claimed.
 */
static __always_inline bool fs_one_switch_was_drain(struct task_struct *task,
						    const struct fs_file_info *fi)
{
	struct fuse_file *ff = (struct fuse_file *)fi->file_id;
	struct fuse_conn *fc;

	/* 7.3's fuse_conn has no no_interrupt (its CO-RE relocation fails there) */
	if (!bpf_core_field_exists(struct task_struct, sched_contributes_to_load) ||
	    !bpf_core_field_exists(struct fuse_conn, no_interrupt) || !ff)
		return false;
	fc = BPF_CORE_READ(ff, fm, fc);
	if (!fc || BPF_CORE_READ_BITFIELD_PROBED(fc, no_interrupt))
		return false;
	return BPF_CORE_READ_BITFIELD_PROBED(task, sched_contributes_to_load) != 0;
}

/*
 * The drain wait of the open (@sleeps_answering = 1: FUSE_OPEN's answer) or
 * mmap (0) stamped at @start_ns with @nvcsw voluntary switches, which has just
 * made @fi a cache-mode file; 0 if it did not sleep or the inode never had
 * parallel writes (nothing to wait for). One switch after an open's send is
 * the drain's only when fs_one_switch_was_drain() says so.
 */
static __always_inline __u64 fs_drain_wait(const struct fs_file_info *fi, __u64 start_ns,
					   __u64 nvcsw, __u64 sleeps_answering)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_inode_stats *st;
	__u64 slept;

	if (!start_ns)
		return 0;
	slept = BPF_CORE_READ(task, nvcsw) - nvcsw;
	if (slept < sleeps_answering)
		return 0;
	if (slept == sleeps_answering && (!sleeps_answering || !fs_one_switch_was_drain(task, fi)))
		return 0;
	st = bpf_map_lookup_elem(&inode_stats, &fi->key);
	if (!st || (!st->writes[FS_REASON_SHARED] && !st->write_bytes[FS_LOCK_SHARED]))
		return 0;
	return bpf_ktime_get_ns() - start_ns;
}

/* A drain wait, reported against the file it opened or mapped. */
static __always_inline void fs_report_drain(const struct fs_file_info *fi, __u64 wait,
					    bool via_mmap)
{
	struct fs_inode_stats *st;
	struct fs_event *e;

	st = fs_stats_get(&fi->key, fi->nodeid);
	if (st) {
		__sync_fetch_and_add(&st->drain_waits, 1);
		__sync_fetch_and_add(&st->drain_wait_ns, wait);
	}
	e = fs_event_reserve(FS_EV_DRAIN_WAIT);
	if (!e)
		return;
	e->key = fi->key;
	e->nodeid = fi->nodeid;
	e->file_id = fi->file_id;
	e->fh = fi->fh;
	e->iomode = fi->iomode;
	e->iocachectr = fi->iocachectr;
	e->wait_ns = wait;
	e->flags = via_mmap ? FS_EVF_SHARED_MAP : 0;
	bpf_ringbuf_submit(e, 0);
}

/* only mmap: openat's exit has all it needs (the fd it returns) */
static __always_inline int fs_sys_enter_mmap_file(__u64 fd, __u64 prot)
{
	struct fs_file_info fi = {};
	struct file *file;
	struct fs_task *t;

	if (!fs_tgid_wanted())
		return 0;
	t = fs_task_get();
	if (!t)
		return 0;
	t->s_nr = FS_SYS_MMAP;
	t->s_arg_fd = fd;
	t->s_arg_prot = prot;
	t->s_start_ns = 0;
	if (!cfg_time_drains)
		return 0;
	/* a drain can only delay the mmap that turns a FUSE file's mode to cached */
	file = fs_fd_file(fd);
	if (!file || !fs_file_info_read(file, &fi) || fi.iomode != FS_IOM_NONE)
		return 0;
	t->s_nvcsw = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), nvcsw);
	t->s_start_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int fs_sys_enter_mmap(struct fs_sys_enter_mmap *ctx)
{
	if (ctx->fd > 0x7fffffffULL || !(ctx->flags & MAP_SHARED))
		return 0; /* anonymous or private: cannot change a FUSE io mode */
	return fs_sys_enter_mmap_file(ctx->fd, ctx->prot);
}

/* The open's or mmap's drain wait, if it made @fi a cache-mode file after one (0: none). */
static __always_inline __u64 fs_exit_drain_wait(struct fs_task *t, const struct fs_file_info *fi,
						__u32 nr)
{
	__u64 wait;

	if (!cfg_time_drains || fi->iomode != FS_IOM_CACHED)
		return 0;
	if (nr == FS_SYS_MMAP)
		return t ? fs_drain_wait(fi, t->s_start_ns, t->s_nvcsw, 0) : 0;
	t = fs_task_find(); /* only here: every openat on the machine passes this exit */
	if (!t || !t->o_start_ns || t->o_nodeid != fi->nodeid)
		return 0;
	wait = fs_drain_wait(fi, t->o_start_ns, t->o_nvcsw, 1);
	t->o_start_ns = 0;
	return wait;
}

static __always_inline int fs_sys_exit(struct fs_sys_exit *ctx, __u32 nr)
{
	struct fs_file_info fi = {};
	struct fs_task *t = NULL;
	struct file *file;
	struct fs_event *e;
	__u64 fd, prot = 0, wait;

	if (nr == FS_SYS_MMAP) {
		t = fs_task_find();
		if (!t || t->s_nr != nr)
			return 0;
		t->s_nr = 0;
		fd = t->s_arg_fd;
		prot = t->s_arg_prot;
	} else {
		if (!fs_tgid_wanted())
			return 0;
		fd = (__u64)ctx->ret;
	}
	if (ctx->ret < 0)
		return 0; /* a failed open's stamp is overwritten by the next FUSE_OPEN */
	file = fs_fd_file(fd);
	if (!file || !fs_file_info_read(file, &fi))
		return 0;
	wait = fs_exit_drain_wait(t, &fi, nr);
	if (wait)
		fs_report_drain(&fi, wait, nr == FS_SYS_MMAP);
	fs_name_note_file(&fi.key, file);
	/* plain direct-io opens change nothing: only writers' and trace's opens are reported */
	if (nr == FS_SYS_OPEN && fi.iomode == FS_IOM_NONE && !fi.writable && !cfg_emit_all_opens)
		return 0;
	e = fs_event_reserve(nr == FS_SYS_OPEN ? FS_EV_OPEN : FS_EV_MMAP);
	if (!e)
		return 0;
	e->key = fi.key;
	e->nodeid = fi.nodeid;
	e->file_id = fi.file_id;
	e->fh = fi.fh;
	e->open_flags = fi.open_flags;
	e->iomode = fi.iomode;
	e->iocachectr = fi.iocachectr;
	e->release_id = fi.release_id;
	if (fi.iomode == FS_IOM_UNCACHED)
		e->flags |= FS_EVF_PASSTHROUGH;
	if (nr == FS_SYS_OPEN && fi.writable)
		e->flags |= FS_EVF_WRITE_OPEN;
	if (nr == FS_SYS_MMAP) {
		e->flags |= FS_EVF_SHARED_MAP;
		if (prot & PROT_WRITE)
			e->flags |= FS_EVF_WRITABLE_MAP;
		e->offset = ctx->ret; /* the mapped address */
		/* a shared mapping of a direct-io file is what makes it cached */
		if (fi.iomode == FS_IOM_CACHED && (fi.open_flags & FS_FOPEN_DIRECT_IO))
			e->flags |= FS_EVF_HOLDER;
	} else if (fi.iomode == FS_IOM_CACHED) {
		e->flags |= FS_EVF_HOLDER;
	}
	if ((e->flags & FS_EVF_HOLDER) && fi.iocachectr == 1)
		e->flags |= FS_EVF_ENTERED_CACHE;
	if (e->flags & FS_EVF_HOLDER) {
		/* the inode is cached now: its holders' releases must know (fs_tp_release) */
		struct fs_inode_stats *st = fs_stats_get(&fi.key, fi.nodeid);

		if (st)
			fs_stats_observe_mode(st, fi.iocachectr, 1);
	}
	if (e->flags & (FS_EVF_HOLDER | FS_EVF_WRITE_OPEN))
		fs_event_note_exe(e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int fs_sys_exit_openat(struct fs_sys_exit *ctx)
{
	return fs_sys_exit(ctx, FS_SYS_OPEN);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int fs_sys_exit_openat2(struct fs_sys_exit *ctx)
{
	return fs_sys_exit(ctx, FS_SYS_OPEN);
}

/* open(2) and creat(2): x86-64 still has them (glibc calls openat, static or old binaries do not)
 */
SEC("tracepoint/syscalls/sys_exit_open")
int fs_sys_exit_open(struct fs_sys_exit *ctx)
{
	return fs_sys_exit(ctx, FS_SYS_OPEN);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int fs_sys_exit_creat(struct fs_sys_exit *ctx)
{
	return fs_sys_exit(ctx, FS_SYS_OPEN);
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int fs_sys_exit_mmap(struct fs_sys_exit *ctx)
{
	return fs_sys_exit(ctx, FS_SYS_MMAP);
}
