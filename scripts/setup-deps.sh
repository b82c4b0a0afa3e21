#!/usr/bin/env bash
# Installs every Debian 12 package fusescope needs to build and test, with apt-get: as root
# (a user with sudo is re-run through sudo).
set -euo pipefail
. "$(dirname "$0")/as-root.sh"
as_root "$0" "$@"
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  # build
  build-essential cmake pkg-config clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev prometheus-cpp-dev libncurses-dev
  libmicrohttpd-dev libgnutls28-dev libyaml-cpp-dev libcrypt-dev # the exporter's HTTP(S) server
  libgtest-dev linux-libc-dev clang-format clang-tidy
  liburing-dev # fusescope-testfs --io-uring (FUSE over io_uring: 128-byte SQEs, URING_CMD)
  # tests
  python3 tmux prometheus curl openssl qemu-system-x86 busybox-static cpio xz-utils kmod procps psmisc
  libclang-rt-14-dev # libFuzzer runtime (tests/fuzz)
  # tests: real programs living on fusescope-testfs (tests/testfs/test_realapps.py)
  mariadb-server mariadb-client git rsync sqlite3 tar
  # tests: writers, mappers and FUSE servers written by others (tests/core/test_write_paths.py,
  # the database story in tests/views/diagnose)
  fio vmtouch fuse-overlayfs fuse3 bindfs
  # tests: the man pages render without warnings (tests/whowhere/test_cli_docs.py)
  groff-base
  # benchmark: a workload that contends on non-FUSE kernel locks (bench/bench.py contention)
  stress-ng
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  # mariadb-server's maintainer scripts would start a system-wide server: tests start their
  # own. A policy-rc.d that says no (101) keeps installs from starting services.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
