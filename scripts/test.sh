#!/usr/bin/env bash
# The README's test command (and CI's): set up, build, and run every test: unit tests,
# the host-kernel integration tests (real FUSE mounts, real BPF, tmux, Prometheus) and the
# kernel matrix in QEMU (Debian 6.1, 6.12, the newest stable, experimental's release candidate
# and PREEMPT_RT; tests/vm/README.md). Extra arguments go to ctest (e.g. -L unit, -LE vm).
# Runs as root; a user with sudo is re-run through sudo.
set -euo pipefail
. "$(dirname "$0")/as-root.sh"
as_root "$0" "$@"
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
started=$(mktemp)
trap 'rm -f "$started"' EXIT
status=0
ctest --output-on-failure --no-tests=error "$@" || status=$?
# Which accelerator the QEMU guests ran under, and why (tests/vm/probe-accel.sh), when this run
# probed it: a machine whose /dev/kvm is broken passes under TCG, and should say so.
if [ vm-cache/accel.env -nt "$started" ]; then
  (. vm-cache/accel.env && echo "test.sh: the VM tests ran under $ACCEL: $ACCEL_NOTE")
fi
exit "$status"
