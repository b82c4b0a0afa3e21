# shellcheck shell=sh
# guest-smoke.sh: runs inside the QEMU guest (busybox sh) and proves the test environment:
# BTF, /dev/fuse, FUSE registered, lockdown, tracefs with lock:contention_begin, a bare FUSE mount.
# shellcheck source=tests/vm/guest-lib.sh
. /lib/guest-lib.sh

kver=$(uname -r)
result "uname=$kver"
# PREEMPT_RT: uname -v says so; run-vm.sh passes what the kernel's config said
# (fusescope_preempt_rt=y|n), so the rt guest cannot silently boot another kernel.
if uname -v | grep -q PREEMPT_RT; then rt=y; else rt=n; fi
result "preempt_rt=$rt" "sys_kernel_realtime=$(cat /sys/kernel/realtime 2>/dev/null || echo absent)"
if [ -n "${fusescope_preempt_rt:-}" ]; then
  if [ "$rt" = "$fusescope_preempt_rt" ]; then pass preempt_rt_as_configured
  else fail preempt_rt_as_configured "uname_says_${rt}_config_says_$fusescope_preempt_rt"; fi
fi

check btf_vmlinux test -r /sys/kernel/btf/vmlinux
# On 6.1 FUSE is a module (insmod'ed by /init); its BTF is then a separate object.
if [ -e /lib/fuse.ko ]; then
  check btf_fuse_module test -r /sys/kernel/btf/fuse
fi
check dev_fuse test -c /dev/fuse
check fuse_filesystem grep -qw fuse /proc/filesystems

lockdown=$(sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/security/lockdown 2>/dev/null)
result "lockdown=${lockdown:-absent}"
case "${lockdown:-none}" in none) pass lockdown_none ;; *) fail lockdown_none "$lockdown" ;; esac

check tracefs_mounted grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts
check tp_lock_contention_begin test -d /sys/kernel/tracing/events/lock/contention_begin
check bpffs_mounted grep -q ' /sys/fs/bpf bpf ' /proc/mounts
# Informational: which fuse tracepoints this kernel has (none on 6.1, fuse_request_* from 6.12).
tps=""
for d in /sys/kernel/tracing/events/fuse/*/; do
  [ -d "$d" ] && tps="$tps$(basename "$d"),"
done
result "fuse_tracepoints=${tps:-none}"

# A real FUSE mount through mount(2), as fusescope-testfs does it (no fusermount, no server).
if fuse_mount_bare /mnt/fuse 2>/tmp/mnt.err; then
  check fuse_mount grep -q ' /mnt/fuse fuse ' /proc/mounts
  umount -l /mnt/fuse
  exec 3>&-
else
  fail fuse_mount "$(cat /tmp/mnt.err)"
fi

guest_finish
