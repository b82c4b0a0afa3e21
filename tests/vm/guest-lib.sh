# shellcheck shell=sh
# guest-lib.sh: helpers for guest scripts (busybox sh). In the guest: . /lib/guest-lib.sh
#
# The host (run-vm.sh) collects every console line of the form
#   RESULT key=value [key=value ...]
# Values contain no spaces (result() turns spaces into '_'). Checks use
#   RESULT check=<name> status=pass|fail [detail=<text>]
# and guest_finish returns 1 if any check failed, so /init reports rc=1.

GUEST_FAILED=0

# result key=value ...: print one machine-readable line.
result() {
  line="RESULT"
  for kv in "$@"; do line="$line $(echo "$kv" | tr ' \t' '__')"; done
  echo "$line"
}

# check NAME CMD...: run CMD quietly, report pass/fail, remember failures.
check() {
  name=$1
  shift
  if out=$("$@" 2>&1); then
    result "check=$name" status=pass
  else
    result "check=$name" status=fail "detail=$(echo "$out" | tail -n1)"
    GUEST_FAILED=1
  fi
}

# fail NAME DETAIL: report a failed check computed by the script itself.
fail() { result "check=$1" status=fail "detail=$2"; GUEST_FAILED=1; }
pass() { result "check=$1" status=pass; }

guest_finish() { return "$GUEST_FAILED"; }

# fuse_mount_bare DIR: mount a FUSE filesystem with mount(2) and no server (fd 3 on /dev/fuse),
# the way fusescope-testfs mounts itself. Proves the kernel side works; umount with umount -l DIR.
fuse_mount_bare() {
  mkdir -p "$1"
  exec 3<>/dev/fuse
  mount -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 fusescope-bare "$1"
}
