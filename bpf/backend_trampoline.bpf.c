// SPDX-License-Identifier: GPL-2.0
/*
 * The trampoline backend's BPF object: fentry/fexit on the FUSE write and
 * io-mode functions, for kernels that allow trampolines (6.1 with the fuse
 * module's BTF, 6.12, newer). Reads that cross from struct inode to struct
 * fuse_inode use BPF_CORE_READ, since 6.1 has no bpf_rdonly_cast().
 */
#include "contention.bpf.c"
#include "census.bpf.c"
#include "write_trampoline.bpf.c"
#include "iomode_trampoline.bpf.c"
