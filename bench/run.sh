#!/usr/bin/env bash
# fusescope overhead benchmark (issue 8): prints a Markdown table, writes bench/results.json.
#   ./bench/run.sh [bench.py options, e.g. --pairs 7 --only throughput,bpf]
# Builds fusescope, fusescope-testfs and fusescope-load into $BUILD (default build-bench,
# RelWithDebInfo like scripts/build.sh). Not part of ctest: timing on a shared machine is noisy.
# With FUSESCOPE_BENCH_VM=1 it also runs bench/guest-bench.sh in the newest Debian kernel in
# QEMU (trampoline backend) and appends that table.
# Runs as root; a user with sudo is re-run through sudo.
set -euo pipefail
. "$(dirname "$0")/../scripts/as-root.sh"
as_root "$0" "$@"
cd "$(dirname "$0")/.."
ROOT=$PWD
./scripts/setup-deps.sh # fio, stress-ng and the build's packages, on a fresh machine too
BUILD=${BUILD:-$ROOT/build-bench}
if [ -z "${FUSESCOPE_BENCH_NOBUILD:-}" ]; then
  [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -Wno-dev >/dev/null
  cmake --build "$BUILD" --target fusescope fusescope-testfs fusescope-load fusescope-bench-floor \
    fusescope-bench-syscalls \
    -j"$(nproc)" >/dev/null
fi
FS=$BUILD/src/cli/fusescope
TESTFS=$BUILD/src/testfs/fusescope-testfs
LOAD=$BUILD/src/load/fusescope-load
FLOOR=$BUILD/bench/floor/fusescope-bench-floor
SYSCALLS=$BUILD/bench/floor/fusescope-bench-syscalls
# never leave stats on (they cost two clock reads per program run)
export PYTHONDONTWRITEBYTECODE=1
export FUSESCOPE_BENCH_COMMAND="./bench/run.sh${*:+ $*}"
trap 'echo 0 > /proc/sys/kernel/bpf_stats_enabled' EXIT
python3 "$ROOT/bench/bench.py" --fusescope "$FS" --testfs "$TESTFS" --load "$LOAD" --floor "$FLOOR" \
  --syscalls "$SYSCALLS" "$@" \
  > "$ROOT/bench/results.md"
if [ -n "${FUSESCOPE_BENCH_VM:-}" ]; then
  "$ROOT/bench/vm-bench.sh" "$BUILD" "$ROOT/bench/vm-results.txt" >&2
  python3 "$ROOT/bench/report.py" "$ROOT/bench/results.json" --vm "$ROOT/bench/vm-results.txt" \
    > "$ROOT/bench/results.md"
fi
cat "$ROOT/bench/results.md"
