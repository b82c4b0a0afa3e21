/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel types fusescope's BPF programs read, written by hand.
 *
 * Why not a bpftool-generated vmlinux.h: the build must not depend on the
 * kernel of the machine that builds it, and Debian 12's bpftool 7.1 writes a
 * vmlinux.h for 6.18 whose layout is wrong (a 64-bit enum emitted as 4 bytes
 * shifts struct inode by 8). So every struct here carries only the fields we
 * use, in no particular order, and preserve_access_index makes clang emit a
 * CO-RE relocation for every access: libbpf patches the real offset from the
 * running kernel's (or the fuse module's) BTF at load time. Nothing here may
 * be read with a compile-time offset; container_of goes through
 * bpf_core_field_offset() (see fs_container_of in common.bpf.h).
 */
#ifndef FUSESCOPE_KERNEL_TYPES_H
#define FUSESCOPE_KERNEL_TYPES_H

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef _Bool bool;
#define true 1
#define false 0
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef long long loff_t;
typedef unsigned short umode_t;
typedef __u32 dev_t;
typedef unsigned long size_t;
#define NULL ((void *)0)

/* What bpf_helper_defs.h / bpf_tracing.h need from uapi/linux/bpf.h. */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};
enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};
enum {
	BPF_F_NO_PREALLOC = 1U << 0,
	BPF_F_MMAPABLE = 1U << 10,
};
enum {
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1ULL << 0,
};
struct bpf_map;
struct pt_regs;
struct sk_buff;
struct xdp_md;
struct __sk_buff;
struct bpf_perf_event_data;
struct bpf_perf_event_value;
struct bpf_pidns_info;
struct bpf_redir_neigh;
struct bpf_sock;
struct bpf_sock_addr;
struct bpf_sock_ops;
struct bpf_sock_tuple;
struct bpf_spin_lock;
struct bpf_sysctl;
struct bpf_tcp_sock;
struct bpf_tunnel_key;
struct bpf_xfrm_state;
struct linux_binprm;
struct sk_msg_md;
struct sk_reuseport_md;
struct sockaddr;
struct tcphdr;
struct seq_file;
struct tcp6_sock;
struct tcp_sock;
struct tcp_timewait_sock;
struct tcp_request_sock;
struct udp6_sock;
struct unix_sock;
struct task_struct;
struct cgroup;
struct path;
struct btf_ptr;
struct inode;
struct socket;
struct file;
struct bpf_timer;
struct mptcp_sock;
struct bpf_dynptr;
struct iphdr;
struct ipv6hdr;
struct user_namespace;

/* ---- locking -------------------------------------------------------- */

typedef struct {
	s64 counter;
} atomic64_t;
typedef atomic64_t atomic_long_t;

/* PREEMPT_RT: struct rw_semaphore is a struct rwbase_rt (no count, no owner) */
struct rt_mutex_base {
	struct task_struct *owner; /* | RT_MUTEX_HAS_WAITERS (bit 0) */
} __attribute__((preserve_access_index));

struct rwbase_rt {
	struct rt_mutex_base rtmutex; /* held by the writer for as long as it holds the lock */
} __attribute__((preserve_access_index));

struct rw_semaphore {
	atomic_long_t count;	 /* !PREEMPT_RT */
	atomic_long_t owner;	 /* !PREEMPT_RT */
	struct rwbase_rt rwbase; /* PREEMPT_RT */
} __attribute__((preserve_access_index));

struct list_head {
	struct list_head *next;
	struct list_head *prev;
} __attribute__((preserve_access_index));

/* ---- VFS ------------------------------------------------------------ */

struct super_block {
	dev_t s_dev;
	unsigned long s_magic;
	void *s_fs_info;
} __attribute__((preserve_access_index));

struct inode {
	umode_t i_mode;
	struct super_block *i_sb;
	unsigned long i_ino;
	loff_t i_size;
	struct rw_semaphore i_rwsem;
} __attribute__((preserve_access_index));

/* names.bpf.h: dentry names, the file's path, the task's executable and cgroup */
struct qstr {
	u32 len; /* in an anonymous struct in the kernel: CO-RE finds it */
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent; /* itself at the filesystem's root */
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct vfsmount;

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data;
	unsigned int f_flags;
	unsigned int f_mode; /* fmode_t: FMODE_WRITE */
	struct path f_path;
} __attribute__((preserve_access_index));

struct mm_struct {
	struct file *exe_file;
} __attribute__((preserve_access_index));

struct kernfs_node {
	u64 id; /* the cgroup directory's inode number (5.5+) */
} __attribute__((preserve_access_index));

struct cgroup {
	struct kernfs_node *kn;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp; /* the task's cgroup in the v2 hierarchy */
} __attribute__((preserve_access_index));

struct kiocb {
	struct file *ki_filp;
	loff_t ki_pos;
	void *ki_complete; /* a function pointer: NULL means a sync kiocb */
	int ki_flags;
} __attribute__((preserve_access_index));

struct iov_iter {
	size_t count;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct pid_namespace {
	unsigned int level;
} __attribute__((preserve_access_index));

struct upid {
	int nr;
	struct pid_namespace *ns;
} __attribute__((preserve_access_index));

struct pid {
	unsigned int level;
	struct upid numbers[]; /* level + 1 of them */
} __attribute__((preserve_access_index));

struct task_io_accounting {
	u64 write_bytes; /* CONFIG_TASK_IO_ACCOUNTING */
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	unsigned int flags; /* PF_* */
	char comm[16];
	struct task_struct *group_leader;
	struct files_struct *files;
	unsigned long nvcsw; /* voluntary context switches */
	/* set at every blocking sleep: was it uninterruptible (counts in the load average)? */
	unsigned sched_contributes_to_load : 1;
	struct pid *thread_pid;
	struct task_io_accounting ioac;
	struct mm_struct *mm;
	struct css_set *cgroups;
} __attribute__((preserve_access_index));

struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_end;
	unsigned long vm_flags;
	struct file *vm_file;
} __attribute__((preserve_access_index));

/* ---- FUSE (fs/fuse/fuse_i.h; built in, or module BTF on 6.1) -------- */

struct fuse_backing;

/* 7.3+: the transport's request counters moved from fuse_conn to a fuse_chan */
struct fuse_chan {
	unsigned int num_background;
	unsigned int active_background;
} __attribute__((preserve_access_index));

struct fuse_ring;

struct fuse_conn {
	struct pid_namespace *pid_ns;
	/* the server refused FUSE_INTERRUPT: answers are awaited uninterruptibly */
	unsigned no_interrupt : 1;
	struct fuse_ring *ring; /* 6.14+, CONFIG_FUSE_IO_URING: set once the server registers */
	unsigned int num_background;	/* <= 7.2 */
	unsigned int active_background; /* <= 7.2 */
	struct fuse_chan *chan;		/* 7.3+ */
} __attribute__((preserve_access_index));

struct fuse_mount {
	struct fuse_conn *fc;
	struct super_block *sb;
} __attribute__((preserve_access_index));

struct fuse_inode {
	struct inode inode;
	u64 nodeid;
	int iocachectr; /* 6.9+; in a union the readdir cache also uses */
	unsigned long state;
	struct fuse_backing *fb; /* 6.9+, CONFIG_FUSE_PASSTHROUGH */
} __attribute__((preserve_access_index));

struct fuse_file {
	struct fuse_mount *fm;
	u64 fh;
	u64 nodeid;
	u32 open_flags;
	void *args;	    /* 6.6+: union fuse_file_args *, its release arguments first */
	void *release_args; /* older: struct fuse_release_args * */
	enum {
		FS_LOCAL_IOM_NONE = 0, /* anonymous in the kernel too: CO-RE matches it */
	} iomode;		       /* 6.9+ */
	struct file *passthrough;      /* 6.9+, CONFIG_FUSE_PASSTHROUGH */
} __attribute__((preserve_access_index));

struct fuse_in_header {
	u32 len;
	u32 opcode;
	u64 unique;
	u64 nodeid;
	u32 uid;
	u32 gid;
	u32 pid;
} __attribute__((preserve_access_index));

struct fuse_args {
	u64 nodeid;
	u32 opcode;
} __attribute__((preserve_access_index));

struct address_space {
	struct inode *host;
} __attribute__((preserve_access_index));

struct page {
	struct address_space *mapping;
} __attribute__((preserve_access_index));

struct folio {
	struct address_space *mapping;
} __attribute__((preserve_access_index));

struct fuse_args_pages {
	struct fuse_args args;
	struct folio **folios; /* 6.13+ */
	struct page **pages;   /* <= 6.12 */
} __attribute__((preserve_access_index));

struct fuse_write_in {
	u64 fh;
	u64 offset;
	u32 size;
	u32 write_flags;
} __attribute__((preserve_access_index));

struct fuse_io_priv {
	int async;
	bool write;
	struct kiocb *iocb;
	bool blocking;
} __attribute__((preserve_access_index));

struct fuse_io_args {
	union {
		struct {
			struct fuse_write_in in;
		} write;
	};
	struct fuse_args_pages ap;
	struct fuse_io_priv *io;
	struct fuse_file *ff;
} __attribute__((preserve_access_index));

struct fuse_release_in {
	u64 fh;
	u32 flags;
	u32 release_flags;
} __attribute__((preserve_access_index));

struct fuse_release_args {
	struct fuse_args args;
	struct fuse_release_in inarg;
	struct inode *inode;
} __attribute__((preserve_access_index));

struct fuse_req {
	struct list_head list;
	struct fuse_args *args;
	unsigned long flags;
	struct {
		struct fuse_in_header h;
	} in;
	struct fuse_mount *fm;
} __attribute__((preserve_access_index));

enum fuse_req_flag {
	FR_BACKGROUND = 2,
};

/* ---- BPF iterator contexts ------------------------------------------ */

struct bpf_iter_meta {
	struct seq_file *seq;
	u64 session_id;
	u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

struct bpf_iter__task_vma {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	struct vm_area_struct *vma;
} __attribute__((preserve_access_index));

/* ---- constants that are #defines (not in BTF) ----------------------- */

#define FUSE_SUPER_MAGIC 0x65735546UL
#define S_IFMT 00170000
#define S_IFREG 0100000
#define S_ISREG(m) (((m)&S_IFMT) == S_IFREG)

/* FOPEN_* and IOCB_* bits: FS_FOPEN_*, FS_IOCB_* in fusescope/abi.h */

#define PF_IO_WORKER 0x00000010 /* an io_uring (or io-wq) worker thread */

#define FUSE_OPEN 14
#define FUSE_READ 15
#define FUSE_WRITE 16
#define FUSE_RELEASE 18
#define FUSE_CREATE 35

#define FUSE_DIO_WRITE (1 << 0)
#define FUSE_DIO_CUSE (1 << 1)

/* fuse_inode::state's FUSE_I_CACHE_IO_MODE bit: cfg_cache_io_mode_bit (from BTF) */
/* fuse_file::iomode values (also an anonymous enum): IOM_NONE/CACHED/UNCACHED */
#define IOM_NONE 0
#define IOM_CACHED 1
#define IOM_UNCACHED 2

#define VM_WRITE 0x00000002UL
#define VM_SHARED 0x00000008UL
#define VM_MAYSHARE 0x00000080UL

/* lock:contention_begin flags (include/trace/events/lock.h) */
#define LCB_F_SPIN (1U << 0)
#define LCB_F_READ (1U << 1)
#define LCB_F_WRITE (1U << 2)
#define LCB_F_RT (1U << 3)
#define LCB_F_PERCPU (1U << 4)
#define LCB_F_MUTEX (1U << 5)

#define RWSEM_WRITER_LOCKED (1UL << 0)
#define RWSEM_OWNER_FLAGS_MASK 7UL
#define RT_MUTEX_HAS_WAITERS 1UL

#define FMODE_WRITE 0x2

#define MAP_SHARED 0x01
#define MAP_SHARED_VALIDATE 0x03
#define PROT_WRITE 0x2

#endif /* FUSESCOPE_KERNEL_TYPES_H */
