#!/usr/bin/env bash
# Installs the build dependencies (Debian 12, as root; a user with sudo is re-run through sudo)
# and builds fusescope into ./build.
set -euo pipefail
. "$(dirname "$0")/as-root.sh"
as_root "$0" "$@"
cd "$(dirname "$0")/.."
./scripts/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -Wno-dev >/dev/null
cmake --build build -j"$(nproc)"
