#!/usr/bin/env bash
# The README's first command: set up, build, and run fusescope's main job (top) on the
# built-in demo: fusescope's own FUSE filesystem with a database-like writer pool and an
# indexer that mmaps the database file for a while. Extra arguments go to `fusescope demo`
# (e.g. --duration 60, -b for plain-text snapshots). Runs as root; a user with sudo is
# re-run through sudo.
set -euo pipefail
. "$(dirname "$0")/as-root.sh"
as_root "$0" "$@"
cd "$(dirname "$0")/.."
./scripts/build.sh
exec ./build/src/cli/fusescope demo "$@"
