# shellcheck shell=sh
# guest-bench.sh: the overhead benchmark's throughput and BPF-cost parts inside a QEMU guest
# (busybox sh, trampoline backend). Run by bench/vm-bench.sh; the guest is emulated, so only
# ratios mean anything. Prints RESULT lines; kernel command-line words BENCH_PAIRS,
# BENCH_WRITES and BENCH_APPEND_WRITES (per thread) override the defaults.
# shellcheck source=tests/vm/guest-lib.sh
. /lib/guest-lib.sh

result "uname=$(uname -r)"
PAIRS=${BENCH_PAIRS:-5}
WRITES=${BENCH_WRITES:-2000}
AWRITES=${BENCH_APPEND_WRITES:-500}
B=/tmp/b M=/tmp/m
mkdir -p $B $M
fusescope-testfs --direct-io --parallel-direct-writes $B $M > /tmp/tfs.out 2>/tmp/tfs.err &
TFS=$!
i=0
while ! grep -q ready /tmp/tfs.out 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && { fail mount "$(cat /tmp/tfs.err)"; guest_finish; exit 1; }
  sleep 0.1
done
fusescope doctor > /tmp/doctor.txt 2>&1
result "backend=$(sed -n 's/^backend  *\([a-z]*\):.*/\1/p' /tmp/doctor.txt)"

load() { # scenario writes_per_thread -> writes/s on stdout
  fusescope-load "$1" --file "$M/bench-$1" --threads 4 --writes "$2" --size 4096 --sync-start \
    > /tmp/load.json 2>/tmp/load.err || { fail "load_$1" "$(cat /tmp/load.err)"; echo 0; return; }
  sed -n 's/.*"writes_per_s": *\([0-9.]*\).*/\1/p' /tmp/load.json
}
exp_start() {
  fusescope export --mount $M --listen 127.0.0.1:9464 > /dev/null 2>/tmp/exp.err &
  EXP=$!
  i=0
  while ! grep -q serving /tmp/exp.err 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 600 ] && { fail export_start "$(tail -n1 /tmp/exp.err)"; return 1; }
    sleep 0.1
  done
  result "export_serving_ds=$i"
}
exp_stop() { kill -INT $EXP; wait $EXP; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# run_time_ns/run_cnt of the fs_* programs as "name ns cnt" lines
progstats() {
  bpftool prog show | awk '/ name fs_/ {n=""; t=0; c=0;
    for (i = 1; i <= NF; i++) { if ($i == "name") n = $(i+1); if ($i == "run_time_ns") t = $(i+1);
      if ($i == "run_cnt") c = $(i+1) } print n, t, c }'
}

for sc in parallel append; do
  n=$WRITES; [ $sc = append ] && n=$AWRITES
  load $sc $((n / 10)) > /dev/null # warm-up
  : > /tmp/ratios
  p=0
  while [ $p -lt "$PAIRS" ]; do
    if [ $((p % 2)) = 0 ]; then
      a=$(load $sc $n); exp_start; b=$(load $sc $n); exp_stop
    else
      exp_start; b=$(load $sc $n); exp_stop; a=$(load $sc $n)
    fi
    r=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.4f", (a > 0 ? b / a : 0)}')
    result "${sc}_pair=$p A=$a B=$b ratio=$r"
    echo "$r" >> /tmp/ratios
    p=$((p + 1))
  done
  result "${sc}_ratio=$(median < /tmp/ratios)" "${sc}_ratios=$(tr '\n' ',' < /tmp/ratios)"

  exp_start
  echo 1 > /proc/sys/kernel/bpf_stats_enabled
  progstats > /tmp/before
  load $sc $n > /dev/null
  progstats > /tmp/after
  echo 0 > /proc/sys/kernel/bpf_stats_enabled
  exp_stop
  total=$((4 * n))
  # write-path programs (fs_write_*, fs_uncached_io_start_exit, fs_dio_decision,
  # fs_direct_io_enter, fs_contention_*): their run time summed per write
  awk -v w=$total 'NR == FNR {t[$1] = $2; c[$1] = $3; next}
    { dt = $2 - t[$1]; dc = $3 - c[$1]; if (dc <= 0) next;
      list = list $1 ":" int(dt / dc) "nsx" sprintf("%.2f", dc / w) ",";
      if ($1 ~ /^fs_(write_|uncached_io_start_exit|dio_decision|direct_io_enter|contention_)/) s += dt }
    END { printf "%s_bpf_ns_per_write=%.1f %s_bpf_progs=%s\n", sc, s / w, sc, list }' \
    sc=$sc /tmp/before /tmp/after > /tmp/bpf.line
  result $(cat /tmp/bpf.line)
done

kill -TERM $TFS
wait $TFS
guest_finish
