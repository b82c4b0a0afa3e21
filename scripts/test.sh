#!/usr/bin/env bash
# The README's test command (and CI's): set up, build, and run every test: unit tests,
# the host-kernel integration tests (real FUSE mounts, real BPF, tmux, Prometheus) and the
# kernel matrix in QEMU (Debian 6.1, 6.12 and newest). Extra arguments go to ctest (e.g. -L unit, -LE vm).
# Runs as root; a user with sudo is re-run through sudo.
set -euo pipefail
. "$(dirname "$0")/as-root.sh"
as_root "$0" "$@"
cd "$(dirname "$0")/.."
./scripts/build.sh
cd build
ctest --output-on-failure --no-tests=error "$@"
