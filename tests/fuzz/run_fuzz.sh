#!/usr/bin/env bash
# Builds one libFuzzer target with clang++ (-fsanitize=fuzzer,address,undefined) from the
# few sources it needs, seeds its corpus from real /proc text, and fuzzes for a bounded time.
#   run_fuzz.sh TARGET SOURCE_DIR WORK_DIR SECONDS
# TARGET: mounts | cli. Exit 0: no crash found; else libFuzzer's status, with the
# crashing input left in WORK_DIR/TARGET/ (crash-*).
set -euo pipefail
target=$1 src=$2 work=$3 secs=${4:-60}
CXX=${FUZZ_CXX:-clang++}
out="$work/$target"
mkdir -p "$out/corpus"
flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$src/include" -Wall -Wextra)
case $target in
  mounts)
    srcs=("$src/tests/fuzz/fuzz_mounts.cpp" "$src/src/model/mounts.cpp") libs=()
    cp /proc/self/mountinfo "$out/corpus/self-mountinfo"
    cp /proc/1/mountinfo "$out/corpus/init-mountinfo" 2>/dev/null || true
    # a FUSE mount with escapes in its path and source, optional fields, and a bad line
    printf '%s\n' \
      '36 35 0:52 / /tmp/a\040b rw,nosuid,nodev,relatime shared:1 master:2 - fuse.sshfs us\134er@h:/x rw,user_id=0' \
      '37 35 0:53 /sub /mnt/v rw - virtiofs tag rw' '38 35 0:54 / /mnt/blk rw - fuseblk /dev/sdb1 rw' \
      'garbage' > "$out/corpus/fuse-mounts"
    ;;
  cli)
    srcs=("$src/tests/fuzz/fuzz_cli.cpp" "$src/src/cli/main.cpp" "$src/src/backend/hook_plan.cpp")
    libs=(-lfmt)
    flags+=(-Dmain=fusescope_cli_main)
    i=0
    for a in "trace --duration 5 --mount /mnt --pid 1" "top -b -n 3 --interval 0.5 --sort excl" \
             "export --listen 127.0.0.1:10100 --per-inode-top 5" "--backend tracepoint doctor --json" \
             "export --web.listen-address [::1]:10100 --web.config.file /w.yml --bpf-stats" "--version" \
             "diagnose --duration 10 --path /x --json" "demo --duration 1 -b" "--help" "trace --duration nan" \
             "--status-fd 3 trace --json" "--status-fd 4 top -b"; do
      printf '%s' "$a" | tr ' ' '\0' > "$out/corpus/args-$i"; i=$((i + 1))
    done
    ;;
  *) echo "run_fuzz.sh: unknown target $target" >&2; exit 2 ;;
esac
"$CXX" "${flags[@]}" "${srcs[@]}" "${libs[@]}" -o "$out/fuzz-$target"
cd "$out"
# -close_fd_mask=3: the CLI target prints usage errors; keep the log readable
exec "./fuzz-$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -close_fd_mask=3 -print_final_stats=1 corpus
