// SPDX-License-Identifier: GPL-2.0
/*
 * Role 6, lock waits: lock:contention_begin/end on FUSE inodes' i_rwsem.
 *
 * The tracepoints fire for every contended lock in the system, so the
 * first test keeps only rwsem waits (LCB_F_READ/WRITE without the spin,
 * mutex, rt or percpu bits), then the "inode" behind lock_addr is checked
 * to be a FUSE regular file before anything is stored.
 *
 * lock_addr is a plain number to the verifier. In the tracepoint backend
 * (6.12+) bpf_rdonly_cast() turns the inode around it into a BTF pointer
 * whose loads are fault-safe; the trampoline backend must also load on 6.1,
 * which lacks that kfunc, so it reads with BPF_CORE_READ. This is the slow
 * path (the task is about to sleep): the reads cost nothing that matters.
 */
#include "fuse_inode.bpf.h"

#ifdef FS_HAVE_RDONLY_CAST
static __always_inline bool fs_lock_inode_key(__u64 lock, struct fs_inode_key *key)
{
	return fs_fuse_inode_key(
		fs_cast(fs_container_of_addr(lock, struct inode, i_rwsem), struct inode), key);
}
#else
static __always_inline bool fs_lock_inode_key(__u64 lock, struct fs_inode_key *key)
{
	struct inode *inode = (struct inode *)fs_container_of_addr(lock, struct inode, i_rwsem);
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);

	if (!sb || BPF_CORE_READ(sb, s_magic) != FUSE_SUPER_MAGIC)
		return false;
	if (!S_ISREG(BPF_CORE_READ(inode, i_mode)))
		return false;
	key->dev = BPF_CORE_READ(sb, s_dev);
	key->ino = BPF_CORE_READ(inode, i_ino);
	key->pad = 0;
	return fs_dev_wanted(key->dev);
}
#endif

#ifdef FS_WAITS_CLAIMED_AT_SEND
/*
 * Bumped after an inode's count of unclaimed waits went up: a per-CPU write
 * cache slot that saw its inode without unclaimed waits at epoch E may let
 * writes skip the inode's entry while the epoch is still E (write_tracepoint).
 * A thread's own wait is always seen by its own later write.
 */
__u64 fs_waits_epoch = 0;

/*
 * A thread's finished wait on @lock will not be taken by a write (it waited on
 * another lock since, or wrote another file): the inode's count of unclaimed
 * waits, which lets writes skip the thread-state lookup while it is 0, drops.
 */
static __always_inline void fs_unclaim(__u64 lock)
{
	struct fs_inode_stats *st;
	struct fs_inode_key key;

	if (!fs_lock_inode_key(lock, &key))
		return;
	st = bpf_map_lookup_elem(&inode_stats, &key);
	if (st && st->unclaimed_waits > 0)
		__sync_fetch_and_add(&st->unclaimed_waits, -1);
}
#endif

SEC("tp_btf/contention_begin")
int BPF_PROG(fs_contention_begin, void *lock, unsigned int flags)
{
	struct fs_inode_key key;
	struct fs_task *t;

	if (!(flags & (LCB_F_READ | LCB_F_WRITE)) ||
	    (flags & (LCB_F_SPIN | LCB_F_MUTEX | LCB_F_RT | LCB_F_PERCPU)))
		return 0;
	if (!fs_tgid_wanted())
		return 0;
	if (!fs_lock_inode_key((__u64)lock, &key))
		return 0;
	t = fs_task_get();
	if (!t)
		return 0;
	t->c_lock = (__u64)lock;
	t->c_key = key;
	t->c_flags = flags;
	t->c_start_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/contention_end")
int BPF_PROG(fs_contention_end, void *lock, int ret)
{
	struct fs_inode_stats *st;
	struct fs_inode_key key;
	struct fs_task *t;
	__u64 now, dur, old;
	int mode;

	t = fs_task_find();
	if (!t || !t->c_start_ns || t->c_lock != (__u64)lock)
		return 0;
	now = bpf_ktime_get_ns();
	dur = now - t->c_start_ns;
	mode = (t->c_flags & LCB_F_WRITE) ? FS_LOCK_EXCLUSIVE : FS_LOCK_SHARED;
	t->c_start_ns = 0;

	/* hand the wait to the write this thread is doing (or about to report) */
	if (t->w_active && t->w_inode == fs_container_of_addr(lock, struct inode, i_rwsem))
		t->w_wait_ns += dur;
	old = t->p_lock;
	if (old != (__u64)lock) {
		t->p_lock = (__u64)lock;
		t->p_wait_ns = 0;
	}
	t->p_wait_ns += dur;

	key = t->c_key; /* fs_contention_begin checked that it is a FUSE file we watch */
	st = fs_stats_get(&key, 0);
	if (!st)
		return 0;
	__sync_fetch_and_add(&st->contentions[mode & 1], 1);
	__sync_fetch_and_add(&st->contention_ns[mode & 1], dur);
	__sync_fetch_and_add(&st->contention_hist[mode & 1][fs_hist_slot(dur)], 1);
#ifdef FS_WAITS_CLAIMED_AT_SEND
	if (old != (__u64)lock) {
		__sync_fetch_and_add(&st->unclaimed_waits, 1);
		__sync_fetch_and_add(&fs_waits_epoch, 1); /* after the count: see fs_waits_epoch */
		if (old)
			fs_unclaim(old);
	}
#endif
	return 0;
}
