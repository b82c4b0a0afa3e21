#!/usr/bin/env bash
# build-initramfs.sh OUT.cpio.gz GUEST_SCRIPT [FILE...]
#
# Builds a small initramfs for the QEMU guests: busybox-static (applet symlinks made at boot), /init,
# the guest script as /guest.sh, tests/vm/guest-lib.sh as /lib/guest-lib.sh, and each FILE:
#   *.ko      -> /lib/<basename>   (/init insmods every /lib/*.ko, e.g. fuse.ko on 6.1)
#   otherwise -> /bin/<basename>   (ELF binaries also get the shared libraries `ldd` lists)
# No python or other interpreters in the guest: guest logic is busybox sh.
set -euo pipefail

die() { echo "build-initramfs.sh: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: build-initramfs.sh OUT.cpio.gz GUEST_SCRIPT [FILE...]"
OUT=$1 GUEST=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
BUSYBOX=/bin/busybox
if ! "$BUSYBOX" --list >/dev/null 2>&1 || ldd "$BUSYBOX" >/dev/null 2>&1; then
  die "$BUSYBOX is not a static busybox: apt-get install busybox-static (scripts/setup-deps.sh)"
fi
command -v cpio >/dev/null || die "cpio missing: apt-get install cpio (scripts/setup-deps.sh)"
[ -f "$GUEST" ] || die "guest script $GUEST not found"

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/fusescope-initramfs.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,sbin,lib,dev,proc,sys,tmp,run,mnt,etc}
cp "$BUSYBOX" "$ROOT/bin/busybox"
# The applet symlinks are made by /init (busybox --install): ~400 ln forks here are slow on a busy host.
# The kernel needs /dev/console to give /init a stdout; mknod needs root, and /init re-opens
# the console from devtmpfs anyway, so a failure here is harmless.
mknod -m 600 "$ROOT/dev/console" c 5 1 2>/dev/null || true

is_elf() { [ "$(head -c4 "$1" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; }

# Copy the dynamic loader and libraries under their host path (e.g. /lib/x86_64-linux-gnu/).
copy_libs() {
  local lib
  ldd "$1" >/dev/null 2>&1 || return 0 # static binary
  for lib in $(ldd "$1" | grep -oE '/[^ ]+' | sort -u); do
    [ -e "$ROOT$lib" ] && continue
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
  done
}

for f in "$@"; do
  [ -f "$f" ] || die "file $f not found (build it first?)"
  case "$f" in
    *.ko) cp "$f" "$ROOT/lib/$(basename "$f")" ;;
    *) cp -L "$f" "$ROOT/bin/$(basename "$f")"; chmod +x "$ROOT/bin/$(basename "$f")"
       if is_elf "$f"; then copy_libs "$f"; fi ;;
  esac
done
cp "$GUEST" "$ROOT/guest.sh"
cp "$HERE/guest-lib.sh" "$ROOT/lib/guest-lib.sh"

cat >"$ROOT/init" <<'EOF'
#!/bin/busybox sh
# PID 1 of the fusescope test guest: mount the pseudo filesystems, run /guest.sh, report, power off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
# Host libraries are copied under their Debian multiarch path; there is no ld.so.cache.
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || echo "init: tracefs mount failed"
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
mount -t bpf bpf /sys/fs/bpf 2>/dev/null || echo "init: bpffs mount failed"
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null || true
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
for ko in /lib/*.ko; do
  [ -e "$ko" ] || continue
  insmod "$ko" || echo "init: insmod $ko failed"
done
ulimit -l unlimited 2>/dev/null || true
echo  # the BIOS leaves escape codes on the console line
# run-vm.sh passes fusescope_accel=kvm|tcg on the kernel command line: which accelerator ran.
echo "RESULT accel=${fusescope_accel:-unknown}"
echo "init: running /guest.sh on $(uname -r) after $(cut -d' ' -f1 /proc/uptime)s"
cd /tmp
sh /guest.sh
rc=$?
sync
echo "FUSESCOPE-VM-RESULT rc=$rc"
poweroff -f
EOF
chmod +x "$ROOT/init" "$ROOT/guest.sh"

OUT_ABS=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
(cd "$ROOT" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet | gzip -1 >"$OUT_ABS")
