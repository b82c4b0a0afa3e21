/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Who and where: what the views need to name a file, a program and a
 * workload after the fact, captured when the kernel still has them.
 *
 * - A FUSE file's name: walked up its dentries when its inode is first
 *   opened or mapped (map file_names), so a file written and closed before
 *   userspace looked still has a path. Up to the filesystem's root, not the
 *   mount's: userspace puts it on a mount of that filesystem. A rename after
 *   the capture is not seen (the views say the path may be stale).
 * - A holder's or writer's executable: its identity (dev, ino) on the event,
 *   its name once per executable (map exe_names), so 35 short-lived processes
 *   of one program are one program even after they exited.
 * - The task's cgroup v2 id on every event (bpf_get_current_cgroup_id()):
 *   userspace turns it into a path, a systemd unit, a container id.
 * - A release identity that the open and the release share on both
 *   backends: the address of the fuse_file's release arguments, which the
 *   tracepoint backend's FUSE_RELEASE request is built from.
 *
 * The walk reads names with bpf_probe_read_kernel_str: it runs only in the
 * programs that already read through bpf_probe_read_kernel (the tracepoint
 * backend's syscall exits, the trampoline backend's hooks), never in the
 * census iterators, which must load under confidentiality lockdown; they
 * record the identities with BTF-typed loads and userspace names them from
 * /proc while the process lives.
 */
#ifndef FUSESCOPE_NAMES_BPF_H
#define FUSESCOPE_NAMES_BPF_H

#include "fuse_inode.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FS_NAME_FILES);
	__type(key, struct fs_inode_key);
	__type(value, struct fs_name);
} file_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FS_NAME_EXES);
	__type(key, struct fs_inode_key);
	__type(value, struct fs_name);
} exe_names SEC(".maps");

/* An fs_name is built here (too big for the stack), then copied into its map. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fs_name);
} name_scratch SEC(".maps");

/*
 * Components of @d's path, leaf first, each NUL-terminated, into @n. A
 * component starts in the first half of the buffer and reads at most half of
 * it, which is what lets the verifier see every read in bounds.
 */
static __always_inline void fs_name_walk(struct dentry *d, struct fs_name *n)
{
	__u32 off = 0;
	int i;

	n->len = 0;
	n->depth = 0;
	n->flags = 0;
	for (i = 0; i < FS_NAME_DEPTH; i++) {
		struct dentry *parent;
		const unsigned char *name;
		long r;

		if (!d)
			break;
		parent = BPF_CORE_READ(d, d_parent);
		if (parent == d) {
			n->flags |=
				FS_NAME_COMPLETE; /* the root's own name ("/") is not a component */
			break;
		}
		if (off >= FS_NAME_BUF / 2)
			break;
		name = BPF_CORE_READ(d, d_name.name);
		r = bpf_probe_read_kernel_str(&n->buf[off & (FS_NAME_BUF / 2 - 1)], FS_NAME_BUF / 2,
					      name);
		if (r <= 0)
			break;
		off += (__u32)r;
		n->depth++;
		d = parent;
	}
	n->len = off;
	n->ts_ns = bpf_ktime_get_ns();
}

/* @d's name into @map under @key, unless it is there already. */
static __always_inline void fs_name_capture(void *map, const struct fs_inode_key *key,
					    struct dentry *d)
{
	__u32 zero = 0;
	struct fs_name *n;

	if (bpf_map_lookup_elem(map, key))
		return;
	n = bpf_map_lookup_elem(&name_scratch, &zero);
	if (!n)
		return;
	fs_name_walk(d, n);
	bpf_map_update_elem(map, key, n, BPF_NOEXIST);
}

/* The name of a FUSE file (@file: any struct file pointer) the first time its inode is seen. */
static __always_inline void fs_name_note_file(const struct fs_inode_key *key, struct file *file)
{
	fs_name_capture(&file_names, key, BPF_CORE_READ(file, f_path.dentry));
}

/*
 * The current task's executable into @e->exe, and its name into exe_names the
 * first time that executable is seen: for the events that name a holder or a
 * writer (a handful per process), not for every event.
 */
static __always_inline void fs_event_note_exe(struct fs_event *e)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct fs_inode_key key = {};
	struct inode *inode;

	if (!exe)
		return; /* a kernel thread */
	inode = BPF_CORE_READ(exe, f_inode);
	key.ino = BPF_CORE_READ(inode, i_ino);
	key.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->exe = key;
	/* the map key from the stack: 6.1's verifier takes no ring-buffer memory as a key */
	fs_name_capture(&exe_names, &key, BPF_CORE_READ(exe, f_path.dentry));
}

/*
 * The identity an open file's release shares with its open on both backends:
 * the address of its FUSE_RELEASE arguments (struct fuse_release_args, first
 * in union fuse_file_args since 6.6, its own allocation before). @ff: a
 * struct fuse_file pointer, read with @READ (FS_READ or BPF_CORE_READ).
 */
#define fs_release_id_of(ff, READ)                                                                 \
	((ff) == NULL ? 0                                                                          \
	 : bpf_core_field_exists(struct fuse_file, args)                                           \
		 ? (__u64)READ(ff, struct fuse_file, args)                                         \
		 : (__u64)READ(ff, struct fuse_file, release_args))

#define FS_CORE_READ_AS(ptr, type, field) BPF_CORE_READ((type *)(ptr), field)

/* For the census iterators: identities by BTF-typed loads only (no probe_read there). */
static __always_inline void fs_census_note_task(struct fs_census_rec *r, struct task_struct *task)
{
	struct css_set *cgroups = task->cgroups;
	struct mm_struct *mm = task->mm;
	struct file *exe;

	if (cgroups && cgroups->dfl_cgrp && cgroups->dfl_cgrp->kn)
		r->cgroup_id = cgroups->dfl_cgrp->kn->id;
	exe = mm ? mm->exe_file : NULL;
	if (exe && exe->f_inode) {
		r->exe.ino = exe->f_inode->i_ino;
		r->exe.dev = exe->f_inode->i_sb->s_dev;
	}
}

#endif /* FUSESCOPE_NAMES_BPF_H */
