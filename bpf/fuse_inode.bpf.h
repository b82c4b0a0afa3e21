/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading FUSE inodes and files. VFS pointers handed to our hooks are
 * BTF-typed, so their fields are plain CO-RE loads. Two steps are not:
 * struct inode -> the struct fuse_inode around it, and file->private_data
 * (a void *) -> struct fuse_file. FS_READ() does those: with
 * bpf_rdonly_cast() (kfunc, 6.2+; no helper call, allowed under any
 * lockdown) in the tracepoint backend, which needs 6.12+ anyway; with
 * BPF_CORE_READ (bpf_probe_read_kernel) in the trampoline backend, which
 * must also load on 6.1.
 */
#ifndef FUSESCOPE_FUSE_INODE_BPF_H
#define FUSESCOPE_FUSE_INODE_BPF_H

#include "common.bpf.h"

#ifdef FS_HAVE_RDONLY_CAST
extern void *bpf_rdonly_cast(void *obj, __u32 btf_id) __ksym;
#define fs_cast(ptr, type) ((type *)bpf_rdonly_cast((void *)(ptr), bpf_core_type_id_kernel(type)))
#define FS_READ(ptr, type, field) (fs_cast(ptr, type)->field)
#else
#define FS_READ(ptr, type, field) BPF_CORE_READ((type *)(ptr), field)
#endif

/* container_of() with the running kernel's offset, never a compile-time one. */
#define fs_container_of_addr(addr, type, member) ((__u64)(addr)-bpf_core_field_offset(type, member))

/*
 * From now on lock:contention_* on @inode's i_rwsem is looked at (contention.bpf.c).
 * PREEMPT_RT: a writer's first wait is on the rwsem's rtmutex, another address.
 */
static __always_inline void fs_watch_inode(__u64 inode)
{
	__u64 rwsem = inode + bpf_core_field_offset(struct inode, i_rwsem);

	if (!bpf_core_field_exists(struct rw_semaphore, rwbase)) {
		fs_watch_lock(rwsem);
		return;
	}
	rwsem += bpf_core_field_offset(struct rw_semaphore, rwbase);
	fs_watch_lock(rwsem);
	fs_watch_lock(rwsem + bpf_core_field_offset(struct rwbase_rt, rtmutex));
}

/* A regular file on a FUSE mount, and (if filters allow) its key. */
static __always_inline bool fs_fuse_inode_key(struct inode *inode, struct fs_inode_key *key)
{
	struct super_block *sb;

	if (!inode)
		return false;
	sb = inode->i_sb;
	if (!sb || sb->s_magic != FUSE_SUPER_MAGIC)
		return false;
	if (!S_ISREG(inode->i_mode))
		return false;
	key->dev = sb->s_dev;
	key->ino = inode->i_ino;
	key->pad = 0;
	return fs_dev_wanted(key->dev);
}

/* fs_fuse_inode_key(), and from now on contention on the inode's lock is looked at. */
static __always_inline bool fs_fuse_inode_key_watch(struct inode *inode, struct fs_inode_key *key)
{
	if (!fs_fuse_inode_key(inode, key))
		return false;
	fs_watch_inode(fs_addr_bits(inode));
	return true;
}

static __always_inline __u64 fs_fi_nodeid(struct inode *inode)
{
	/* struct inode is the first member of struct fuse_inode */
	return FS_READ(inode, struct fuse_inode, nodeid);
}

/*
 * fs_stats_get() for a hook that has the inode: the nodeid (in struct
 * fuse_inode, another cache line) is read only when the entry is created.
 */
static __always_inline struct fs_inode_stats *fs_stats_of_inode(const struct fs_inode_key *key,
								struct inode *inode)
{
	struct fs_inode_stats *st = bpf_map_lookup_elem(&inode_stats, key);

	if (!st)
		return fs_stats_get(key, fs_fi_nodeid(inode));
	fs_stats_mark(st, key);
	return st;
}

static __always_inline bool fs_have_iomodes(void)
{
	return bpf_core_field_exists(struct fuse_inode, iocachectr);
}

static __always_inline __s32 fs_fi_iocachectr(struct inode *inode)
{
	if (!bpf_core_field_exists(struct fuse_inode, iocachectr))
		return 0;
	return FS_READ(inode, struct fuse_inode, iocachectr);
}

static __always_inline __u32 fs_fi_cache_bit(struct inode *inode)
{
	if (!bpf_core_field_exists(struct fuse_inode, iocachectr))
		return 0;
	return (FS_READ(inode, struct fuse_inode, state) >> (cfg_cache_io_mode_bit & 63)) & 1;
}

static __always_inline __u8 fs_ff_iomode(struct fuse_file *ff)
{
	if (!ff)
		return FS_IOM_NONE;
	if (!bpf_core_field_exists(struct fuse_file, iomode))
		return FS_IOM_NA;
	return (__u8)FS_READ(ff, struct fuse_file, iomode);
}

static __always_inline __u32 fs_ff_open_flags(struct fuse_file *ff)
{
	return ff ? FS_READ(ff, struct fuse_file, open_flags) : 0;
}

static __always_inline __u64 fs_ff_fh(struct fuse_file *ff)
{
	return ff ? FS_READ(ff, struct fuse_file, fh) : 0;
}

/* @ff's connection. */
static __always_inline struct fuse_conn *fs_ff_conn(struct fuse_file *ff)
{
	struct fuse_mount *fm = ff ? FS_READ(ff, struct fuse_file, fm) : NULL;

	return fm ? FS_READ(fm, struct fuse_mount, fc) : NULL;
}

/* Does @ff's connection serve requests over FUSE io_uring (6.14+)? */
static __always_inline __u8 fs_ff_uring(struct fuse_file *ff)
{
	struct fuse_conn *fc;

	if (!bpf_core_field_exists(struct fuse_conn, ring))
		return 0;
	fc = fs_ff_conn(ff);
	return fc && FS_READ(fc, struct fuse_conn, ring) != NULL;
}

/* A passthrough open (6.9+, CONFIG_FUSE_PASSTHROUGH): writes go to the backing file. */
static __always_inline bool fs_ff_passthrough(struct fuse_file *ff)
{
	if (!ff || !bpf_core_field_exists(struct fuse_file, passthrough))
		return false;
	return FS_READ(ff, struct fuse_file, passthrough) != NULL;
}

/*
 * Does the current task, known to hold @sem, hold it for writing?
 * kernel/locking/rwsem.c: the writer bit, and the owner is the writer (readers
 * only leave a hint there). PREEMPT_RT (rwbase_rt.c): a writer holds the
 * rwsem's rtmutex for as long as it holds the lock; readers never keep it.
 */
static __always_inline bool fs_rwsem_held_exclusive_by_current(struct rw_semaphore *sem)
{
	__u64 cur = (__u64)bpf_get_current_task();

	if (bpf_core_field_exists(sem->count)) {
		__u64 count = sem->count.counter;
		__u64 owner = sem->owner.counter;

		return (count & RWSEM_WRITER_LOCKED) && ((owner & ~RWSEM_OWNER_FLAGS_MASK) == cur);
	}
	if (bpf_core_field_exists(sem->rwbase)) {
		/* a BTF pointer: compared, since no bit operation may touch it */
		__u64 owner = (__u64)sem->rwbase.rtmutex.owner;

		return owner == cur || owner == (cur | RT_MUTEX_HAS_WAITERS);
	}
	return false;
}

/* The inode's i_rwsem, as the number lock:contention_* and the task state use. */
static __always_inline __u64 fs_inode_lock_addr(struct inode *inode)
{
	return (__u64)inode + bpf_core_field_offset(struct inode, i_rwsem);
}

#endif /* FUSESCOPE_FUSE_INODE_BPF_H */
