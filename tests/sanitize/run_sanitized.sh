#!/usr/bin/env bash
# Builds the unit tests (every executable of tests/unit: target fusescope_unit_all) and
# fusescope-load with -fsanitize=address,undefined in WORK_DIR, runs the unit tests there, then
# every load driver scenario on a file in a temporary directory (the driver is only a workload:
# any file system serves).
#   run_sanitized.sh SOURCE_DIR WORK_DIR
# Exit 0: all passed with no sanitizer report; else the failing step's status.
set -euo pipefail
src=$1 work=$2
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# -O1: the sanitizers' usual trade; RelWithDebInfo's -DNDEBUG stays off so asserts run too
cmake -S "$src" -B "$work" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="$san -O1" \
  -DCMAKE_C_FLAGS="$san -O1" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -Wno-dev > "$work.configure.log" 2>&1 || { cat "$work.configure.log"; exit 1; }
cmake --build "$work" --target fusescope_unit_all fusescope-load -j"$(nproc)" > "$work.build.log" 2>&1 ||
  { tail -n 60 "$work.build.log"; exit 1; }
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# unit.metrics_reference and unit.cli_docs run the fusescope binary, which this tree does not build
ctest --test-dir "$work" -L unit -E '^unit\.(metrics_reference|cli_docs)$' --output-on-failure \
  --no-tests=error
load="$work/src/load/fusescope-load"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { echo "sanitized: fusescope-load $*"; "$load" "$@" > "$tmp/out.json"; }
run parallel --file "$tmp/parallel" --threads 4 --writes 500 --sync-start --verify
run append --file "$tmp/append" --threads 2 --writes 200 --verify
run extend --file "$tmp/extend" --threads 1 --writes 100
run mmap-holder --file "$tmp/parallel" --hold 0.2 --touch-write --comm san-holder
run cached-reader --file "$tmp/parallel" --opens 50
run db-and-indexer --file "$tmp/db" --duration 1
run mixed --file "$tmp/mixed" --duration 1 --threads 2
echo "sanitized: unit tests and load driver passed under ASan+UBSan"
