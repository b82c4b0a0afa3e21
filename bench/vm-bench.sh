#!/usr/bin/env bash
# Runs bench/guest-bench.sh in the newest Debian kernel in QEMU: trampoline backend.
#   bench/vm-bench.sh BUILD_DIR RESULTS_FILE [KERNEL]   (KERNEL: see tests/vm/fetch-kernels.sh)
# Kernels are cached in BUILD_DIR/vm-cache (tests/vm/fetch-kernels.sh). Only ratios matter:
# the guest's CPU is emulated (TCG) unless KVM works here (tests/vm/probe-accel.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:?build dir}
RESULTS=${2:?results file}
KERNEL=${3:-newest}
exec "$ROOT/tests/vm/run-vm.sh" --kernel "$KERNEL" --cache "$BUILD/vm-cache" \
  --guest "$ROOT/bench/guest-bench.sh" --timeout "${FUSESCOPE_BENCH_VM_TIMEOUT:-1500}" \
  --log "$BUILD/vm-cache/bench-$KERNEL.log" --results "$RESULTS" \
  --files "$BUILD/src/cli/fusescope" "$BUILD/src/testfs/fusescope-testfs" \
  "$BUILD/src/load/fusescope-load" "$(command -v bpftool)"
