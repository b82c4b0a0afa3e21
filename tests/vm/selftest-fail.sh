#!/usr/bin/env bash
# selftest-fail.sh KERNEL CACHE_DIR: run-vm.sh must fail (and show the guest's output on stderr)
# when the guest script fails, and when it hangs past --timeout.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: selftest-fail.sh KERNEL CACHE_DIR" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT

expect_failure() { # NAME GUEST TIMEOUT NEEDLE
  if "$HERE/run-vm.sh" --kernel "$1" --cache "$2" --guest "$HERE/$3" --timeout "$4" \
       --log "$2/selftest-$3.log" 2>"$ERR"; then
    echo "selftest-fail: run-vm.sh exited 0 for $3" >&2; exit 1
  fi
  if ! grep -q "$5" "$ERR"; then
    echo "selftest-fail: run-vm.sh stderr for $3 lacks '$5':" >&2; cat "$ERR" >&2; exit 1
  fi
  echo "selftest-fail: $3 ok (run-vm.sh failed and printed the guest log)"
}
expect_failure "$1" "$2" guest-fail.sh 120 "guest-fail: this line must appear"
expect_failure "$1" "$2" guest-hang.sh 20 "timed out after 20s"
