#!/usr/bin/env bash
# run-vm.sh --kernel KERNEL --cache CACHE_DIR --guest GUEST_SCRIPT --timeout SECONDS
#           [--files FILE...] [--log LOGFILE] [--results FILE] [--append "k=v ..."] [--smp N]
#           [--accel auto|kvm|tcg]
#
# Boots Debian's KERNEL (bookworm, trixie, newest, experimental, rt, ...: fetched and cached by
# fetch-kernels.sh) in QEMU with an initramfs from build-initramfs.sh that runs GUEST_SCRIPT, and
# exits 0 iff the guest printed "FUSESCOPE-VM-RESULT rc=0" within SECONDS; 77 (ctest: skipped)
# when KERNEL is an optional one Debian does not serve today. The guest's "RESULT ..." lines are
# printed on stdout (and written to --results FILE); on failure the tail of the console log goes
# to stderr. --files take every following argument up to the next --option; --append adds kernel
# command-line words (unknown key=value words become environment variables of the guest's /init).
# --accel auto (default, or $FUSESCOPE_VM_ACCEL) takes what probe-accel.sh found for this cache
# (probing first if nobody has); kvm and tcg force one.
set -euo pipefail

die() { echo "run-vm.sh: $*" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)

KERNEL="" CACHE="" GUEST="" TIMEOUT="" LOG="" RESULTS="" APPEND="" SMP=2 FILES=()
ACCEL=${FUSESCOPE_VM_ACCEL:-auto}
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) KERNEL=${2:?}; shift 2 ;;
    --cache) CACHE=${2:?}; shift 2 ;;
    --guest) GUEST=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --log) LOG=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --append) APPEND=${2:?}; shift 2 ;;
    --smp) SMP=${2:?}; shift 2 ;;
    --accel) ACCEL=${2:?}; shift 2 ;;
    --files) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do FILES+=("$1"); shift; done ;;
    *) die "unknown argument '$1'; usage: run-vm.sh --kernel KERNEL --cache DIR --guest SCRIPT --timeout SECONDS [--files F...] [--log LOG] [--results FILE] [--append ARGS] [--smp N] [--accel auto|kvm|tcg]" ;;
  esac
done
if [ -z "$KERNEL" ] || [ -z "$CACHE" ] || [ -z "$GUEST" ] || [ -z "$TIMEOUT" ]; then
  die "--kernel, --cache, --guest and --timeout are required"
fi
case "$ACCEL" in auto | kvm | tcg) ;; *) die "--accel must be auto, kvm or tcg, not '$ACCEL'" ;; esac
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: run scripts/setup-deps.sh"

"$HERE/fetch-kernels.sh" "$CACHE" "$KERNEL"
# shellcheck disable=SC1090,SC1091
. "$CACHE/$KERNEL/kernel.env"
if [ -n "${ABSENT:-}" ]; then # (caches written before ABSENT existed lack it)
  echo "run-vm.sh: $KERNEL skipped: $ABSENT"
  exit 77
fi

WORK=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
[ -n "$LOG" ] || LOG="$CACHE/$KERNEL/last-console.log"
mkdir -p "$(dirname "$LOG")"

extra=()
[ -z "$FUSE_KO" ] || extra+=("$FUSE_KO")
"$HERE/build-initramfs.sh" "$WORK/initramfs.cpio.gz" "$GUEST" "${extra[@]}" "${FILES[@]}"

retry=1 # a forced --accel kvm (the probe's boot) is not retried under TCG
[ "$ACCEL" != kvm ] || retry=0
if [ "$ACCEL" = auto ]; then
  "$HERE/probe-accel.sh" --keep "$CACHE" "$KERNEL" >&2
  # shellcheck disable=SC1091
  ACCEL=$(. "$CACHE/accel.env" && echo "$ACCEL")
fi
# accel_args KVM|TCG: QEMU's accelerator options; -cpu max gives TCG every feature it can emulate.
accel_args() {
  if [ "$1" = kvm ]; then echo "-accel kvm -cpu host"; else echo "-accel ${FUSESCOPE_VM_TCG:-tcg} -cpu max"; fi
}

# A boot can die before the guest script starts when the host is busy (seen under TCG: an int3
# Oops while the kernel patches its own code on the other vCPU), or because KVM broke after the
# probe. That is not the guest's fault: retry such a boot once, under TCG. A failure after
# "init: running /guest.sh" is never retried.
for attempt in 1 2; do
  start=$(date +%s%N)
  set +e
  # shellcheck disable=SC2046 # accel_args: several words on purpose
  timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 $(accel_args "$ACCEL") -nographic -no-reboot \
    -m 1024 -smp "$SMP" -net none -kernel "$VMLINUZ" -initrd "$WORK/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check fusescope_accel=$ACCEL fusescope_preempt_rt=${PREEMPT_RT:-} $APPEND" \
    </dev/null >"$LOG" 2>&1
  qrc=$?
  set -e
  ms=$((($(date +%s%N) - start) / 1000000))
  secs="$((ms / 1000)).$(printf %03d $((ms % 1000)))"
  if [ "$attempt" -eq 1 ] && [ $retry = 1 ] && ! grep -q 'init: running /guest.sh' <(tr -d '\r' <"$LOG"); then
    echo "run-vm.sh: $KERNEL boot under $ACCEL failed before the guest script started (qemu rc=$qrc); retrying once under tcg. First lines of the failure:" >&2
    tr -d '\r' <"$LOG" | grep -m5 -E 'Oops|panic|BUG|error|KVM' >&2 || true
    cp "$LOG" "$LOG.boot-failure"
    ACCEL=tcg
    continue
  fi
  break
done

# The serial console ends lines with \r\n.
tr -d '\r' <"$LOG" | grep -E '^RESULT ' | tee "${RESULTS:-/dev/null}" || true
marker=$(tr -d '\r' <"$LOG" | grep -oE 'FUSESCOPE-VM-RESULT rc=[0-9]+' | tail -n1 || true)
boot=$(tr -d '\r' <"$LOG" | sed -n 's/.*init: running .* after \([0-9.]*\)s$/\1/p' | head -n1)
echo "run-vm.sh: $KERNEL kernel $KVER, accel $ACCEL, boot ${boot:-?}s (guest clock), total ${secs}s, qemu rc=$qrc, ${marker:-no result marker}, log $LOG"

if [ "$marker" = "FUSESCOPE-VM-RESULT rc=0" ]; then exit 0; fi
{
  if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
    echo "run-vm.sh: $KERNEL guest timed out after ${TIMEOUT}s (raise --timeout or look for a hang)"
  fi
  echo "run-vm.sh: $KERNEL guest failed (${marker:-no FUSESCOPE-VM-RESULT marker}); last 200 console lines of $LOG:"
  tr -d '\r' <"$LOG" | tail -n 200
} >&2
exit 1
