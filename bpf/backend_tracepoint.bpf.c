// SPDX-License-Identifier: GPL-2.0
/*
 * The tracepoint backend's BPF object: tp_btf, syscall tracepoints and
 * iterators only, for kernels that refuse trampolines. Needs the
 * fuse:fuse_request_send/end tracepoints (6.12+), so bpf_rdonly_cast()
 * (6.2+) is always there.
 */
#define FS_HAVE_RDONLY_CAST 1
/* the write is seen after the lock: a finished wait waits in the thread's state for it */
#define FS_WAITS_CLAIMED_AT_SEND 1
#include "contention.bpf.c"
#include "census.bpf.c"
#include "write_tracepoint.bpf.c"
#include "iomode_tracepoint.bpf.c"
