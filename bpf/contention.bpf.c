// SPDX-License-Identifier: GPL-2.0
/*
 * Role 6, lock waits: lock:contention_begin/end on FUSE inodes' i_rwsem.
 *
 * The tracepoints fire for every contended lock in the system, so the
 * first tests keep only rwsem waits (LCB_F_READ/WRITE without the spin,
 * mutex or percpu bits) on an address in watched_locks (the i_rwsem of every
 * FUSE inode a hook or the census has seen: one array load), then the
 * "inode" behind lock_addr is checked to be a FUSE regular file before
 * anything is stored. A lock first contended before any hook saw its inode
 * (a file opened through io_uring, not yet written or censused) is missed.
 *
 * PREEMPT_RT (rwbase_rt.c, rtmutex.c): a waiting reader reports the rwsem
 * with LCB_F_RT | LCB_F_READ; a writer first takes the rwsem's rtmutex
 * (LCB_F_RT alone, at the rtmutex's address: a wait behind another writer),
 * then waits for readers to leave (LCB_F_RT | LCB_F_WRITE). Both of a writer's
 * waits count, so on RT one exclusive acquisition can be two waits. A reader's
 * own rtmutex wait happens inside its rwsem wait and is not counted again.
 *
 * lock_addr is a plain number to the verifier. In the tracepoint backend
 * (6.12+) bpf_rdonly_cast() turns the inode around it into a BTF pointer
 * whose loads are fault-safe; the trampoline backend must also load on 6.1,
 * which lacks that kfunc, so it reads with BPF_CORE_READ. This is the slow
 * path (the task is about to sleep): the reads cost nothing that matters.
 */
#include "fuse_inode.bpf.h"

/* The struct inode whose i_rwsem @lock would be (@rtmutex: the address is its rtmutex). */
static __always_inline __u64 fs_lock_inode_addr(__u64 lock, bool rtmutex)
{
	if (rtmutex) {
		if (!bpf_core_field_exists(struct rw_semaphore, rwbase))
			return 0;
		lock -= bpf_core_field_offset(struct rw_semaphore, rwbase) +
			bpf_core_field_offset(struct rwbase_rt, rtmutex);
	} else if (bpf_core_field_exists(struct rw_semaphore, rwbase)) {
		lock -= bpf_core_field_offset(struct rw_semaphore, rwbase);
	}
	return fs_container_of_addr(lock, struct inode, i_rwsem);
}

#ifdef FS_HAVE_RDONLY_CAST
/* The key of the FUSE regular file whose lock @lock is, and its i_size. */
static __always_inline bool fs_lock_inode_key(__u64 lock, bool rtmutex, struct fs_inode_key *key,
					      __u64 *isize)
{
	struct inode *inode = fs_cast(fs_lock_inode_addr(lock, rtmutex), struct inode);

	if (!fs_fuse_inode_key(inode, key))
		return false;
	*isize = inode->i_size;
	return true;
}
#else
static __always_inline bool fs_lock_inode_key(__u64 lock, bool rtmutex, struct fs_inode_key *key,
					      __u64 *isize)
{
	struct inode *inode = (struct inode *)fs_lock_inode_addr(lock, rtmutex);
	struct super_block *sb = BPF_CORE_READ(inode, i_sb);

	if (!sb || BPF_CORE_READ(sb, s_magic) != FUSE_SUPER_MAGIC)
		return false;
	if (!S_ISREG(BPF_CORE_READ(inode, i_mode)))
		return false;
	key->dev = BPF_CORE_READ(sb, s_dev);
	key->ino = BPF_CORE_READ(inode, i_ino);
	key->pad = 0;
	*isize = BPF_CORE_READ(inode, i_size);
	return fs_dev_wanted(key->dev);
}
#endif

#ifdef FS_WAITS_CLAIMED_AT_SEND
/*
 * A thread's finished wait on @lock (an i_rwsem) will not be taken by a write (it waited on
 * another lock since, or wrote another file): the inode's count of unclaimed
 * waits, which lets writes skip the thread-state lookup while it is 0, drops.
 */
static __always_inline void fs_unclaim(__u64 lock)
{
	struct fs_inode_stats *st;
	struct fs_inode_key key;
	__u64 isize;

	if (!fs_lock_inode_key(lock, false, &key, &isize))
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
	bool rtmutex;
	__u64 isize;

	if (flags & (LCB_F_SPIN | LCB_F_MUTEX | LCB_F_PERCPU))
		return 0;
	/* RT: a bare LCB_F_RT is an rtmutex, maybe an rwsem's (its writer's first wait) */
	rtmutex = flags == LCB_F_RT;
	if (!(flags & (LCB_F_READ | LCB_F_WRITE)) && !rtmutex)
		return 0;
	if (rtmutex && !bpf_core_field_exists(struct rw_semaphore, rwbase))
		return 0;
	if (!fs_lock_watched((__u64)lock))
		return 0; /* most of the machine's contended locks end here */
	if (!fs_tgid_wanted())
		return 0;
	if (rtmutex) {
		t = fs_task_find();
		if (t && t->c_start_ns)
			return 0; /* a reader's rtmutex wait inside its rwsem wait */
	}
	if (!fs_lock_inode_key((__u64)lock, rtmutex, &key, &isize))
		return 0;
	t = fs_task_get();
	if (!t)
		return 0;
	t->c_lock = (__u64)lock;
	t->c_inode = fs_lock_inode_addr((__u64)lock, rtmutex);
	t->c_key = key;
	t->c_flags = rtmutex ? LCB_F_RT | LCB_F_WRITE : flags;
	t->c_isize = isize;
	t->c_start_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/contention_end")
int BPF_PROG(fs_contention_end, void *lock, int ret)
{
	struct fs_inode_stats *st;
	struct fs_inode_key key;
	struct fs_task *t;
	__u64 now, dur, old, rwsem;
	int mode;

	if (!fs_lock_watched((__u64)lock))
		return 0; /* before the thread's state is looked up: every contended lock ends here */
	t = fs_task_find();
	if (!t || !t->c_start_ns || t->c_lock != (__u64)lock)
		return 0;
	now = bpf_ktime_get_ns();
	dur = now - t->c_start_ns;
	mode = (t->c_flags & LCB_F_WRITE) ? FS_LOCK_EXCLUSIVE : FS_LOCK_SHARED;
	t->c_start_ns = 0;

	/* hand the wait to the write this thread is doing (or about to report) */
	if (t->w_active && t->w_inode == t->c_inode)
		t->w_wait_ns += dur;
	rwsem = t->c_inode + bpf_core_field_offset(struct inode, i_rwsem);
	old = t->p_lock;
	if (old != rwsem) {
		t->p_lock = rwsem;
		t->p_wait_ns = 0;
		t->p_isize = t->c_isize;
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
	if (old != rwsem) {
		__sync_fetch_and_add(&st->unclaimed_waits, 1);
		__sync_fetch_and_add(&fs_waits_epoch, 1); /* after the count: see fs_waits_epoch */
		if (old)
			fs_unclaim(old);
	}
#endif
	return 0;
}
