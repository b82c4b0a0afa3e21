// SPDX-License-Identifier: GPL-2.0
/*
 * Bench only: a program that does nothing, on a hook that fires often
 * (sched_switch). Under kernel.bpf_stats_enabled its run time per run is
 * what the kernel's accounting adds to every program run by itself (the
 * sched_clock() read around the program), which bench.py reports next to
 * fusescope's run times.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

SEC("tp_btf/sched_switch")
int fs_floor_empty(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
