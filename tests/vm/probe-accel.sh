#!/usr/bin/env bash
# probe-accel.sh [--keep] CACHE_DIR KERNEL
#
# Decides which accelerator the VM tests of this cache use and writes CACHE_DIR/accel.env
# (ACCEL=kvm|tcg, ACCEL_NOTE=<why, one line>); the ctest fixture vm-accel runs it once per test
# run, run-vm.sh reads the result. KVM only when /dev/kvm is writable and a tiny guest
# (guest-probe.sh) on KERNEL boots under it within PROBE_TIMEOUT seconds: some hosts offer a
# /dev/kvm that qemu opens but cannot run (guests hang in the BIOS, die with "KVM internal
# error" or an MSR assertion); a timeout or crash there means "broken", and everything runs
# under TCG instead. FUSESCOPE_VM_ACCEL=kvm|tcg forces one without probing.
# --keep: keep an existing accel.env (run-vm.sh outside ctest probes only when none is there).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KEEP=0
if [ "${1:-}" = --keep ]; then KEEP=1; shift; fi
[ $# -eq 2 ] || { echo "usage: probe-accel.sh [--keep] CACHE_DIR KERNEL" >&2; exit 2; }
CACHE=$1 KERNEL=$2
ENV="$CACHE/accel.env" PROBE_LOG="$CACHE/logs/accel-probe.log"
# A working KVM reaches the guest script in 1-3 s, even on a loaded host; TCG needs ~6 s.
PROBE_TIMEOUT=15
mkdir -p "$CACHE/logs"

exec 9>"$CACHE/.accel.lock" # several run-vm.sh may start at once
flock 9
if [ $KEEP = 1 ] && [ -f "$ENV" ]; then exit 0; fi

decide() { # ACCEL NOTE
  printf 'ACCEL=%s\nACCEL_NOTE=%q\n' "$1" "$2" >"$ENV.tmp"
  mv "$ENV.tmp" "$ENV"
  echo "probe-accel.sh: VM tests run under $1: $2"
  exit 0
}

case "${FUSESCOPE_VM_ACCEL:-auto}" in
  kvm | tcg) decide "$FUSESCOPE_VM_ACCEL" "forced by FUSESCOPE_VM_ACCEL" ;;
esac
[ -w /dev/kvm ] || decide tcg "no usable /dev/kvm (software emulation, slower)"
t0=$(date +%s)
if "$HERE/run-vm.sh" --accel kvm --kernel "$KERNEL" --cache "$CACHE" --guest "$HERE/guest-probe.sh" \
     --timeout "$PROBE_TIMEOUT" --smp 1 --log "$PROBE_LOG" >/dev/null 2>&1; then
  decide kvm "a guest booted under KVM"
fi
if [ $(($(date +%s) - t0)) -ge $PROBE_TIMEOUT ]; then
  why="no boot within ${PROBE_TIMEOUT}s"
else
  why=$(tr -d '\r' <"$PROBE_LOG" | grep -i -m1 -E 'kvm|assertion|error|fail' | cut -c1-160 || true)
fi
decide tcg "/dev/kvm is there but a guest under KVM failed (${why:-see the log}; $PROBE_LOG); falling back to TCG"
