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
 * drain: a caching open waits in fuse_file_cached_io_open() with an
 * uninterruptible sleep. sched_switch spots such sleeps by looking for the
 * function's text range (from kallsyms, set before load; its caller's where
 * it is inlined) in the sleeping task's kernel stack -- only for a thread
 * inside open/openat/mmap (its syscall number in pt_regs), as this runs on
 * every context switch -- and times them until the task runs again; the
 * open/mmap exit then knows the inode and reports the wait.
 */
#include "fuse_inode.bpf.h"

#define FS_STACK_DEPTH 12
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

/* x86_64 syscall numbers during which a drain wait can happen */
#define FS_NR_OPEN 2
#define FS_NR_MMAP 9
#define FS_NR_CREAT 85
#define FS_NR_OPENAT 257
#define FS_NR_OPENAT2 437

/*
 * Drain sleeps by thread: in progress (sleep_start_ns) and finished but not
 * yet reported by the open/mmap exit (wait_ns). Rare, so a small hash; it is
 * preallocated, as sched_switch must not allocate (runqueue lock held).
 */
struct fs_drain {
	__u64 sleep_start_ns;
	__u64 wait_ns;
	__u64 woke_ns;
};

/*
 * A wait not claimed by an open/mmap exit this long after it ended was not one
 * of theirs (an open by a syscall we do not hook): it must not be pinned on the
 * thread's next open.
 */
#define FS_DRAIN_CLAIM_NS 1000000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct fs_drain);
} drain_sleeps SEC(".maps");

__u64 fs_drain_sleepers = 0; /* threads asleep in fuse_file_cached_io_open() */
__u64 fs_drain_entries = 0;  /* entries in drain_sleeps (exits skip the lookup at 0) */

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
	__u32 open_flags;
	__u8 iomode;
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
	fi->nodeid = BPF_CORE_READ(fui, nodeid);
	fi->iocachectr = fs_have_iomodes() ? BPF_CORE_READ(fui, iocachectr) : 0;
	ff = BPF_CORE_READ(file, private_data);
	fi->file_id = (__u64)ff;
	fi->fh = ff ? BPF_CORE_READ(ff, fh) : 0;
	fi->open_flags = ff ? BPF_CORE_READ(ff, open_flags) : 0;
	if (!bpf_core_field_exists(struct fuse_file, iomode))
		fi->iomode = FS_IOM_NA;
	else
		fi->iomode = ff ? (__u8)BPF_CORE_READ(ff, iomode) : FS_IOM_NONE;
	return true;
}

/* This thread's finished drain wait, if any; forgets it. */
static __always_inline __u64 fs_take_drain_wait(void)
{
	__u32 tid = fs_tid();
	struct fs_drain *d;
	__u64 wait;

	if (!fs_drain_entries)
		return 0;
	d = bpf_map_lookup_elem(&drain_sleeps, &tid);
	if (!d)
		return 0;
	wait = d->wait_ns;
	if (wait && bpf_ktime_get_ns() - d->woke_ns > FS_DRAIN_CLAIM_NS)
		wait = 0;
	if (!bpf_map_delete_elem(&drain_sleeps, &tid))
		__sync_fetch_and_add(&fs_drain_entries, -1);
	return wait;
}

/* The drain wait this thread just came out of, reported against the file it opened. */
static __always_inline void fs_report_drain(const struct fs_file_info *fi, bool via_mmap)
{
	struct fs_inode_stats *st;
	struct fs_event *e;
	__u64 wait = fs_take_drain_wait();

	if (!wait)
		return;
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

static __always_inline int fs_sys_enter(__u32 nr, __u64 fd, __u64 flags, __u64 prot)
{
	/* only mmap: openat's exit has all it needs (the fd it returns) */
	struct fs_task *t;

	if (!fs_tgid_wanted())
		return 0;
	t = fs_task_get();
	if (!t)
		return 0;
	t->s_nr = nr;
	t->s_arg_fd = fd;
	t->s_arg_flags = flags;
	t->s_arg_prot = prot;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int fs_sys_enter_mmap(struct fs_sys_enter_mmap *ctx)
{
	if (ctx->fd > 0x7fffffffULL || !(ctx->flags & MAP_SHARED))
		return 0; /* anonymous or private: cannot change a FUSE io mode */
	return fs_sys_enter(FS_SYS_MMAP, ctx->fd, ctx->flags, ctx->prot);
}

static __always_inline int fs_sys_exit(struct fs_sys_exit *ctx, __u32 nr)
{
	struct fs_file_info fi = {};
	struct file *file;
	struct fs_event *e;
	__u64 fd, prot = 0;

	if (nr == FS_SYS_MMAP) {
		struct fs_task *t = fs_task_find();

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
	if (ctx->ret < 0) {
		fs_take_drain_wait(); /* a failed open's wait is nobody's */
		return 0;
	}
	file = fs_fd_file(fd);
	if (!file || !fs_file_info_read(file, &fi))
		return 0;
	fs_report_drain(&fi, nr == FS_SYS_MMAP);
	if (nr == FS_SYS_OPEN && fi.iomode == FS_IOM_NONE && !cfg_emit_all_opens)
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
	if (fi.iomode == FS_IOM_UNCACHED)
		e->flags |= FS_EVF_PASSTHROUGH;
	if (nr == FS_SYS_MMAP) {
		e->flags |= FS_EVF_SHARED_MAP;
		if (prot & PROT_WRITE)
			e->flags |= FS_EVF_WRITABLE_MAP;
		e->offset = ctx->ret; /* the mapped address */
		/* a shared mapping of a direct-io file is what makes it cached */
		if (fi.iomode == FS_IOM_CACHED && (fi.open_flags & FOPEN_DIRECT_IO))
			e->flags |= FS_EVF_HOLDER;
	} else if (fi.iomode == FS_IOM_CACHED) {
		e->flags |= FS_EVF_HOLDER;
	}
	if ((e->flags & FS_EVF_HOLDER) && fi.iocachectr == 1)
		e->flags |= FS_EVF_ENTERED_CACHE;
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

SEC("tracepoint/syscalls/sys_exit_mmap")
int fs_sys_exit_mmap(struct fs_sys_exit *ctx)
{
	return fs_sys_exit(ctx, FS_SYS_MMAP);
}

static __always_inline bool fs_in_open_or_mmap(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long nr;

	if (!regs)
		return false;
	nr = regs->orig_ax;
	return nr == FS_NR_OPENAT || nr == FS_NR_OPEN || nr == FS_NR_OPENAT2 || nr == FS_NR_CREAT ||
	       nr == FS_NR_MMAP;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(fs_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u64 stack[FS_STACK_DEPTH];
	struct fs_drain *d;
	__u32 tid;
	long n;
	int i;

	if (!cfg_cached_io_open_start && !cfg_io_open_start)
		return 0;
	/* the thread coming back from a drain sleep */
	if (fs_drain_sleepers) {
		tid = next->pid;
		d = bpf_map_lookup_elem(&drain_sleeps, &tid);
		if (d && d->sleep_start_ns) {
			d->woke_ns = bpf_ktime_get_ns();
			d->wait_ns += d->woke_ns - d->sleep_start_ns;
			d->sleep_start_ns = 0;
			__sync_fetch_and_add(&fs_drain_sleepers, -1);
		}
	}
	/* this runs on every context switch of the machine: the cheap tests first */
	if (!(prev_state & TASK_UNINTERRUPTIBLE) || !fs_in_open_or_mmap(prev))
		return 0;
	n = bpf_get_stack(ctx, stack, sizeof(stack), 0);
	if (n <= 0)
		return 0;
	for (i = 0; i < FS_STACK_DEPTH; i++) {
		if (i * sizeof(__u64) >= n)
			break;
		if ((stack[i] >= cfg_cached_io_open_start && stack[i] < cfg_cached_io_open_end) ||
		    (stack[i] >= cfg_io_open_start && stack[i] < cfg_io_open_end)) {
			struct fs_drain zero = {};

			tid = prev->pid;
			d = bpf_map_lookup_elem(&drain_sleeps, &tid);
			if (!d && !bpf_map_update_elem(&drain_sleeps, &tid, &zero, BPF_NOEXIST)) {
				__sync_fetch_and_add(&fs_drain_entries, 1);
				d = bpf_map_lookup_elem(&drain_sleeps, &tid);
			}
			if (d && !d->sleep_start_ns) {
				d->sleep_start_ns = bpf_ktime_get_ns();
				__sync_fetch_and_add(&fs_drain_sleepers, 1);
			}
			break;
		}
	}
	return 0;
}
