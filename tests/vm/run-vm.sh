#!/usr/bin/env bash
# run-vm.sh --suite SUITE --cache CACHE_DIR --guest GUEST_SCRIPT --timeout SECONDS
#           [--files FILE...] [--log LOGFILE] [--results FILE] [--append "k=v ..."] [--smp N]
#
# Boots Debian's SUITE cloud kernel (fetched/cached by fetch-kernels.sh) in QEMU (TCG, no KVM) with
# an initramfs from build-initramfs.sh that runs GUEST_SCRIPT, and exits 0 iff the guest printed
# "FUSESCOPE-VM-RESULT rc=0" within SECONDS. The guest's "RESULT ..." lines are printed on stdout
# (and written to --results FILE); on failure the tail of the console log goes to stderr.
# --files take every following argument up to the next --option; --append adds kernel
# command-line words (unknown key=value words become environment variables of the guest's /init).
set -euo pipefail

die() { echo "run-vm.sh: $*" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)

SUITE="" CACHE="" GUEST="" TIMEOUT="" LOG="" RESULTS="" APPEND="" SMP=2 FILES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) SUITE=${2:?}; shift 2 ;;
    --cache) CACHE=${2:?}; shift 2 ;;
    --guest) GUEST=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --log) LOG=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --append) APPEND=${2:?}; shift 2 ;;
    --smp) SMP=${2:?}; shift 2 ;;
    --files) shift; while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do FILES+=("$1"); shift; done ;;
    *) die "unknown argument '$1'; usage: run-vm.sh --suite SUITE --cache DIR --guest SCRIPT --timeout SECONDS [--files F...] [--log LOG] [--results FILE] [--append ARGS] [--smp N]" ;;
  esac
done
if [ -z "$SUITE" ] || [ -z "$CACHE" ] || [ -z "$GUEST" ] || [ -z "$TIMEOUT" ]; then
  die "--suite, --cache, --guest and --timeout are required"
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: run scripts/setup-deps.sh"

"$HERE/fetch-kernels.sh" "$CACHE" "$SUITE"
# shellcheck disable=SC1090,SC1091
. "$CACHE/$SUITE/kernel.env"

WORK=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
[ -n "$LOG" ] || LOG="$CACHE/$SUITE/last-console.log"
mkdir -p "$(dirname "$LOG")"

extra=()
[ -z "$FUSE_KO" ] || extra+=("$FUSE_KO")
"$HERE/build-initramfs.sh" "$WORK/initramfs.cpio.gz" "$GUEST" "${extra[@]}" "${FILES[@]}"

# KVM when the host offers it, else TCG; -cpu max gives TCG every feature it can emulate.
accel=(-accel "${FUSESCOPE_VM_TCG:-tcg}" -cpu max)
if [ -w /dev/kvm ]; then accel=(-accel kvm -cpu host); fi

# A boot can die under TCG before the guest script starts when the host is busy (seen: an int3
# Oops while the kernel patches its own code on the other vCPU). That is not the guest's fault:
# retry such a boot once. A failure after "init: running /guest.sh" is never retried.
for attempt in 1 2; do
  start=$(date +%s%N)
  set +e
  timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 "${accel[@]}" -nographic -no-reboot \
    -m 1024 -smp "$SMP" -net none -kernel "$VMLINUZ" -initrd "$WORK/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 no_timer_check $APPEND" </dev/null >"$LOG" 2>&1
  qrc=$?
  set -e
  ms=$((($(date +%s%N) - start) / 1000000))
  secs="$((ms / 1000)).$(printf %03d $((ms % 1000)))"
  if [ "$attempt" -eq 1 ] && ! grep -q 'init: running /guest.sh' <(tr -d '\r' <"$LOG"); then
    echo "run-vm.sh: $SUITE boot failed before the guest script started (qemu rc=$qrc); retrying once. First lines of the failure:" >&2
    tr -d '\r' <"$LOG" | grep -m5 -E 'Oops|panic|BUG|error' >&2 || true
    cp "$LOG" "$LOG.boot-failure"
    continue
  fi
  break
done

# The serial console ends lines with \r\n.
tr -d '\r' <"$LOG" | grep -E '^RESULT ' | tee "${RESULTS:-/dev/null}" || true
marker=$(tr -d '\r' <"$LOG" | grep -oE 'FUSESCOPE-VM-RESULT rc=[0-9]+' | tail -n1 || true)
boot=$(tr -d '\r' <"$LOG" | sed -n 's/.*init: running .* after \([0-9.]*\)s$/\1/p' | head -n1)
echo "run-vm.sh: $SUITE kernel $KVER, boot ${boot:-?}s (guest clock), total ${secs}s, qemu rc=$qrc, ${marker:-no result marker}, log $LOG"

if [ "$marker" = "FUSESCOPE-VM-RESULT rc=0" ]; then exit 0; fi
{
  if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
    echo "run-vm.sh: $SUITE guest timed out after ${TIMEOUT}s (raise --timeout or look for a hang)"
  fi
  echo "run-vm.sh: $SUITE guest failed (${marker:-no FUSESCOPE-VM-RESULT marker}); last 200 console lines of $LOG:"
  tr -d '\r' <"$LOG" | tail -n 200
} >&2
exit 1
