#!/usr/bin/env bash
# Installs the build dependencies (Debian 12, as root) and builds fusescope into ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -Wno-dev >/dev/null
cmake --build build -j"$(nproc)"
