# shellcheck shell=sh
# guest-core.sh: fusescope's core scenarios inside a QEMU guest (busybox sh), the same
# workloads and exact counts as tests/core/test_core.py on the host:
#   the rows of tests/scenarios/core.txt, the lock/reason table both run (core_table_scenario:
#   parallel writes shared; append, past_eof and no_parallel_flag exclusive)
#   and, as code (several steps each, which a row of one load does not fit):
#   diagnose's first finding for a healthy, appending, extending and no-flag workload
#   shared mmap by "indexer"       -> 100 exclusive cache_io_mode, mmap event names the holder,
#   after unmap+close              -> 100 shared, a release that leaves cache mode   (6.9+)
#   census of a mapping made before fusescope started, diagnose names it            (6.9+)
#   a caching open / shared mmap while parallel writers are in flight waits (drain); with
#   none in flight it does not                                                      (6.9+)
#   the rows of tests/scenarios/write-paths.txt marked vm or both, with fio (guest-write-paths.sh)
# Each scenario is one function, run once per backend pass (run_scenarios): first the
# trampoline backend (every kernel here allows fentry), then the tracepoint backend -- what a
# host that refuses trampolines gets -- wherever the kernel has the fuse request tracepoints
# (6.12+); result names of that pass start with tp_, and it leaves diagnose's findings out
# (see run_scenarios). Kernels without IO modes (6.1) must say
# so in doctor and still count lock modes and reasons exactly. On PREEMPT_RT kernels the same
# counts must hold; doctor must load and name every role it cannot fill there and why (a
# scenario needing such a role is then skipped, saying so; on other kernels that is a failure),
# and the write cache must be off.
# shellcheck source=tests/vm/guest-lib.sh
. /lib/guest-lib.sh

result "uname=$(uname -r)"
if uname -v | grep -q PREEMPT_RT; then RT=1; else RT=0; fi
result "preempt_rt=$RT"
FSB="" # global fusescope options of the current pass (--backend tracepoint in the second)
P=""   # result-name prefix of the current pass
DIAGNOSE=1 # the current pass checks diagnose's findings too (run_scenarios)
B=/tmp/b M=/tmp/m
mkdir -p $B $M
PAR="--direct-io --parallel-direct-writes --write-delay-us 200"
TRACE_MOUNT=$M # trace_start's --mount (empty: every FUSE mount)
BACKEND_NAME=trampoline # the current pass's backend, as tests/scenarios/write-paths.txt names it
# shellcheck source=tests/vm/guest-write-paths.sh
. /bin/guest-write-paths.sh

mount_testfs() { # options...
  rm -f /tmp/tfs.out
  fusescope-testfs "$@" $B $M > /tmp/tfs.out 2>/tmp/tfs.err &
  TFS=$!
  i=0
  while ! grep -q ready /tmp/tfs.out 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { fail mount "$(cat /tmp/tfs.err)"; return 1; }
    sleep 0.1
  done
}
umount_testfs() { kill -TERM $TFS; wait $TFS; rm -rf ${B:?}/*; }

# The status stream (fusescope --status-fd, include/fusescope/core/status.h): one JSON object a
# line, which the guest reads instead of fusescope's human stderr (its wording is for people).
# wait_watching FILE PID: until FILE has the "watching" line (probes attached, census taken);
# fails when PID exits first or after 60 s.
wait_watching() {
  i=0
  while ! grep -q '"status":"watching"' "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 "$2" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
}
# status_field FILE KIND FIELD: FIELD (a number) of FILE's last line of KIND
status_field() {
  grep "\"status\":\"$2\"" "$1" 2>/dev/null | tail -n1 | sed -n "s/.*\"$3\":\([0-9]*\).*/\1/p"
}

trace_start() {
  # removed first: the background child truncates its redirections only once it runs, and
  # until then wait_watching would read the last run's "watching" line
  rm -f /tmp/trace.json /tmp/trace.err /tmp/trace.status
  # shellcheck disable=SC2086 # FSB: global options, word-split on purpose
  fusescope $FSB --status-fd 3 trace --json ${TRACE_MOUNT:+--mount "$TRACE_MOUNT"} \
    > /tmp/trace.json 2>/tmp/trace.err 3>/tmp/trace.status &
  TR=$!
  if ! wait_watching /tmp/trace.status $TR; then
    fail "${P}trace_start" "$(tail -n1 /tmp/trace.err)"; return 1
  fi
}
# status_exit NAME FILE RC: the stream's last line must be "exit" with the status the process
# exited with (as tests/lib/fusescope_run.py checks on the host); a failed check NAME if not
status_exit() {
  got=$(tail -n1 "$2" | sed -n 's/^{"status":"exit","code":\([0-9]*\)}$/\1/p')
  [ "$got" = "$3" ] || fail "$1" "exited_$3_status_stream_says_${got:-nothing}"
}
trace_stop() {
  sleep 0.3; kill -INT $TR; wait $TR; trc=$?
  status_exit "${P}trace_exit" /tmp/trace.status $trc
  return $trc
}
count() { grep -c "$1" /tmp/trace.json; }
expect() { # name got want
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got_$2_want_$3"; fi
  result "$1=$2"
}
W='"event":"write"'
writes() { grep "$W" /tmp/trace.json | grep -c "\"lock\":\"$1\",\"reason\":\"$2\""; }
all_writes() { count "$W"; }
# dev_writes DEV [LOCK REASON]: the trace's writes on device DEV (of that lock and reason)
dev_writes() {
  if [ $# = 1 ]; then grep "$W" /tmp/trace.json | grep -c "\"dev\":\"$1\""
  else grep "$W" /tmp/trace.json | grep "\"dev\":\"$1\"" | grep -c "\"lock\":\"$2\",\"reason\":\"$3\""; fi
}
# mount_dev: the major:minor of the FUSE mount at $M, as trace's "dev" names it
mount_dev() { awk -v m="$M" '$5 == m { d = $3 } END { print d }' /proc/self/mountinfo; }
# diag_start: `fusescope $FSB diagnose` in the background (pid DG), once it watches. It watches
# until diag_stop (SIGINT: diagnose reports early), so a workload is never cut short by a clock.
diag_start() {
  rm -f /tmp/diag.json /tmp/diag.err /tmp/diag.status # as in trace_start: no stale "watching"
  # shellcheck disable=SC2086 # FSB: global options, word-split on purpose
  fusescope $FSB --status-fd 3 diagnose --mount $M --duration 600 --json \
    > /tmp/diag.json 2>/tmp/diag.err 3>/tmp/diag.status &
  DG=$!
  wait_watching /tmp/diag.status $DG || true # diag_stop's status and the report then tell why
}
diag_stop() { # returns diagnose's exit status
  sleep 0.3; kill -INT $DG; wait $DG; drc=$?
  status_exit "${P}diag_exit" /tmp/diag.status $drc
  return $drc
}
first_kind() { grep -m1 '"kind":' /tmp/diag.json | sed 's/.*"kind": *"\([a-z_]*\)".*/\1/'; }
# diag_during NAME KIND RC SCENARIO ARGS...: `diagnose` watches while a 1.5 s workload runs
# (started once diagnose is attached, ended before it reports); the first finding must be
# KIND, the exit status RC (0 healthy, 5 findings), and the report must have seen writes.
diag_during() {
  name=$1 kind=$2 want_rc=$3; shift 3
  diag_start
  fusescope-load "$@" --writes 100000000 --duration 1.5 > /dev/null
  diag_stop; drc=$?
  expect "${name}_rc" "$drc" "$want_rc"
  expect "${name}_kind" "$(first_kind)" "$kind"
  expect "${name}_saw_writes" "$(grep -m1 '"writes": ' /tmp/diag.json | grep -c '"writes": [1-9]')" 1
}
# diag_exact NAME WANT SCENARIO ARGS...: `fusescope $FSB diagnose` counts exactly WANT writes of
# a fixed workload (healthy: the first "writes" of the report is the healthy finding's total)
diag_exact() {
  name=$1 want=$2; shift 2
  diag_start
  fusescope-load "$@" > /dev/null
  diag_stop
  expect "$name" "$(grep -m1 '"writes": ' /tmp/diag.json | sed 's/.*"writes": *\([0-9]*\).*/\1/')" "$want"
}
# Runs the kernel skipped (bpf_prog_info.recursion_misses: the last trace's last health line,
# written when its session ends). On a preemptible kernel (7.2+, RT) a writer preempted inside
# an fentry program makes the next one on that CPU miss; fusescope counts these, so a count
# may fall short by at most that many.
misses() { status_field /tmp/trace.status health prog_misses; }
expect_writes() { # name got want
  m=$(misses); m=${m:-0}
  result "$1=$2" "prog_misses=$m"
  if [ "$2" = "$3" ]; then pass "$1"
  elif [ "$m" -gt 0 ] && [ "$2" -lt "$3" ] && [ $(($2 + m)) -ge "$3" ]; then
    pass "$1"; result "check=$1" "accounted_by_prog_misses=$(($3 - $2))"
  else fail "$1" "got_$2_want_$3_prog_misses_$m"; fi
}

# --- doctor and the roles of the current pass ---

# role_of NAME: yes|no from the ROLE table of /tmp/doctor.txt (empty if doctor has no such row)
role_of() { awk -v r="$1" '/^ROLE /{t=1; next} t && NF==0{exit} t && $1==r{print $2}' /tmp/doctor.txt; }

# doctor_report BACKEND: `fusescope $FSB doctor` must pick BACKEND, load and attach (LOADED=1);
# every role it cannot fill is a RESULT line with doctor's reason, and must have one. When the
# programs fail to load, the log gets the verifier's account of the failing program.
doctor_report() {
  # shellcheck disable=SC2086 # FSB: global options, word-split on purpose
  fusescope $FSB doctor > /tmp/doctor.txt 2>&1; rc=$?
  cat /tmp/doctor.txt
  expect "${P}doctor_rc" $rc 0
  expect "${P}backend" "$(sed -n 's/^backend  *\([a-z]*\):.*/\1/p' /tmp/doctor.txt)" "$1"
  awk '/^ROLE /{t=1; next} t && NF==0{exit} t && $2=="no"{$1=$1; print}' /tmp/doctor.txt > /tmp/roles-no.txt
  while read -r role _ _ note; do
    result "${P}role=$role" available=no "reason=$note"
    if [ -n "$note" ]; then pass "${P}role_${role}_reason"; else fail "${P}role_${role}_reason" no_reason_given; fi
  done < /tmp/roles-no.txt
  LOADED=1
  if [ $rc != 0 ]; then
    LOADED=0
    result "${P}load_error=$(sed -n 's/^load\/attach FAILED: //p' /tmp/doctor.txt | head -n1)"
    echo "--- fusescope $FSB -v doctor: what failed to load, and the verifier's log of it ---"
    # shellcheck disable=SC2086
    fusescope $FSB -v doctor > /tmp/doctor-v.txt 2>&1
    grep -E 'failed to (load|resolve)|invalid insn|no matching targets' /tmp/doctor-v.txt | head -n 20
    sed -n '/BEGIN PROG LOAD LOG/,/END PROG LOAD LOG/p' /tmp/doctor-v.txt | tail -n 25
    result "${P}failed_program=$(sed -n "s/^libbpf: prog '\([a-z_0-9]*\)': failed to load.*/\1/p" /tmp/doctor-v.txt | head -n1)"
    # the verifier's verdict: the last line of its log before "processed N insns", or (7.x,
    # which explains itself after the verdict) before "Verification failed"
    result "${P}verifier=$(sed -n '/BEGIN PROG LOAD LOG/,/END PROG LOAD LOG/p' /tmp/doctor-v.txt |
      awk '/^(Verification failed|processed )/ {print prev; exit} NF {prev = $0}')"
  fi
}

# needs SCENARIO ROLE...: true when doctor fills every ROLE. Else on PREEMPT_RT (where doctor
# may name roles it cannot fill) the scenario is skipped with a RESULT line; elsewhere that fails.
needs() {
  sc=$1; shift
  for role in "$@"; do
    [ "$(role_of "$role")" = yes ] && continue
    if [ $RT = 1 ]; then result "${P}scenario=$sc" "skipped=role_${role}_not_filled"
    else fail "${P}${sc}_needs_$role" "doctor_says_$(role_of "$role")"; fi
    return 1
  done
}

# --- scenarios (each runs in both passes; results prefixed with $P) ---

# core_table_scenario: every row of tests/scenarios/core.txt (the host's tests/core/test_core.py
# runs the same table) on its own testfs mount, all under one trace (each fusescope start costs
# seconds under TCG): the row's mount must see exactly the row's writes (NAME per lock/reason,
# NAME_all for all of them), and fusescope-load must report issuing their sum (NAME_issued).
# The mounts stay until the trace has stopped: an unmounted FUSE device number is the next
# mount's. Counts are plain numbers (no N, no @BACKEND: scenarios.py refuses them).
CORE_TABLE=/bin/core.txt
core_table_scenario() {
  if [ ! -r $CORE_TABLE ]; then fail "${P}core_table_input" table_missing; return; fi
  grep -v '^[[:space:]]*#' $CORE_TABLE | grep '|' > /tmp/core-rows.txt
  : > /tmp/core-done.txt # name dev server-pid expect..., one line per row that ran
  TRACE_MOUNT=""
  trace_start; started=$?
  TRACE_MOUNT=$M
  [ $started = 0 ] || return
  while IFS='|' read -r name flags load expect; do
    name=$(echo "$name" | tr -d ' \t')
    B=/tmp/core/$name.b M=/tmp/core/$name.m
    mkdir -p "$B" "$M"
    # shellcheck disable=SC2086 # flags and load: word-split on purpose
    if mount_testfs $flags; then
      fusescope-load $load --file $M/$name < /dev/null > /tmp/core-load.json 2>/tmp/core-load.err ||
        fail "${P}${name}_load" "$(tail -n1 /tmp/core-load.err)"
      want_total=0
      for item in $expect; do want_total=$((want_total + ${item#*=})); done
      expect "${P}${name}_issued" \
        "$(sed -n 's/.*"total_writes": *\([0-9]*\).*/\1/p' /tmp/core-load.json)" $want_total
      echo "$name $(mount_dev) $TFS $expect" >> /tmp/core-done.txt
    fi
  done < /tmp/core-rows.txt
  B=/tmp/b M=/tmp/m
  trace_stop
  while read -r name dev TFS expect; do
    B=/tmp/core/$name.b
    umount_testfs
    # shellcheck disable=SC2086 # the expected items: one word each
    set -- $expect
    want_total=0
    for item in "$@"; do
      lr=${item%%=*} want=${item#*=}
      want_total=$((want_total + want))
      # one expected lock/reason: the result is the row's name; several: NAME_LOCK_REASON
      rn=$name; [ $# = 1 ] || rn=${name}_${lr%%/*}_${lr#*/}
      expect_writes "${P}$rn" "$(dev_writes "$dev" "${lr%%/*}" "${lr#*/}")" "$want"
    done
    expect_writes "${P}${name}_all" "$(dev_writes "$dev")" "$want_total"
  done < /tmp/core-done.txt
  B=/tmp/b
}

# diag_kinds_scenario: diagnose's first finding for a healthy, an appending and an extending
# workload (and, on kernels without IO modes, that it says so). Needs a mount made with $PAR.
diag_kinds_scenario() {
  diag_during "${P}diag_healthy" healthy 0 parallel --file $M/db2 --threads 4 --size 4096
  [ $IOMODES = 0 ] && expect "${P}diag_no_iomodes" "$(grep -c '"kind": "kernel_no_io_modes"' /tmp/diag.json)" 1
  diag_during "${P}diag_append" append 5 append --file $M/log2 --threads 2 --size 4096
  diag_during "${P}diag_extend" past_eof 5 extend --file $M/grow2 --threads 1 --size 4096
}

# write_cache_scenario (tracepoint backend): doctor says the per-CPU write cache is on (off on
# PREEMPT_RT, where tracepoint programs can be preempted), and diagnose counts exactly anyway.
write_cache_scenario() {
  expect "${P}write_cache" "$(grep -c '^write cache' /tmp/doctor.txt)" $((1 - RT))
  diag_exact "${P}diag_exact" 2000 parallel --file $M/db4 --threads 4 --writes 500 --size 4096
}

# start_holder COMM: a process named COMM maps $M/db shared and holds it until SIGUSR1 (pid: H)
start_holder() {
  rm -f /tmp/holder.err
  fusescope-load mmap-holder --file $M/db --size 65536 --hold-until-signal --comm "$1" \
    > /dev/null 2>/tmp/holder.err &
  H=$!
  while ! grep -q holding /tmp/holder.err; do sleep 0.1; done
}

# mmap_holder_scenario: writes while "indexer" maps the file are cache_io_mode, the mmap
# event names the holder, its exit leaves cache mode and the next writes are shared again.
mmap_holder_scenario() {
  fusescope-load parallel --file $M/db --threads 1 --writes 1 --size 65536 > /dev/null
  trace_start || return
  start_holder indexer
  fusescope-load parallel --file $M/db --threads 4 --writes 25 --size 65536 --sync-start > /dev/null
  kill -USR1 $H; wait $H
  sleep 0.5
  fusescope-load parallel --file $M/db --threads 4 --writes 25 --size 65536 --sync-start > /dev/null
  trace_stop
  expect_writes "${P}mmap_cache_io_mode" "$(writes exclusive cache_io_mode)" 100
  expect "${P}mmap_holder" "$(grep '"event":"mmap"' /tmp/trace.json | grep -c "\"holder\":{\"pid\":$H,\"comm\":\"indexer\",\"how\":\"mmap\"}")" 1
  expect "${P}release_left_cache" "$(grep '"event":"release"' /tmp/trace.json | grep -c '"left_cache":true')" 1
  expect_writes "${P}mmap_then_shared" "$(writes shared shared)" 100
}

# census_culprit_scenario: a mapping made before fusescope started is found by the census, and
# diagnose, started while the scanner still holds it, sees writers serialized by cache io mode
# first and names the scanner as the culprit (the issue-7 scenario).
census_culprit_scenario() {
  start_holder scanner
  if trace_start; then
    fusescope-load parallel --file $M/db --threads 2 --writes 10 --size 65536 > /dev/null
    trace_stop
    expect "${P}census_holder" "$(grep '"event":"census"' /tmp/trace.json | grep -c "\"holder\":{\"pid\":$H,\"comm\":\"scanner\",\"how\":\"mmap\"}")" 1
    expect_writes "${P}census_cache_io_mode" "$(writes exclusive cache_io_mode)" 20
  fi
  if [ $DIAGNOSE = 1 ]; then
    diag_during "${P}diagnose" cache_io_mode 5 parallel --file $M/db --threads 4 --size 4096
    expect "${P}diagnose_culprit" "$(grep -c "\"pid\": $H," /tmp/diag.json)" 1
  fi
  kill -USR1 $H; wait $H
}

# drain_scenario: a caching open while parallel writers are in flight waits for them to
# drain; whether an open lands while writers are in flight is timing: up to three tries.
drain_scenario() {
  mount_testfs --direct-io --parallel-direct-writes --cache-readonly-opens --write-delay-us 2000
  fusescope-load parallel --file $M/db --threads 1 --writes 1 > /dev/null
  n=0 try=0 RP=""
  while [ "$n" -lt 1 ] && [ $try -lt 3 ]; do
    try=$((try + 1))
    trace_start || break
    fusescope-load parallel --file $M/db --threads 4 --writes 300 --size 4096 > /dev/null &
    LW=$!
    sleep 0.3
    fusescope-load cached-reader --file $M/db --opens 20 > /tmp/reader.json
    wait $LW
    trace_stop
    RP=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' /tmp/reader.json | head -n1)
    n=$(grep '"event":"drain_wait"' /tmp/trace.json | grep -c "\"pid\":$RP,")
  done
  result "${P}drain_wait_named=$n" "tries=$try" "prog_misses=$(misses)"
  if [ "$n" -ge 1 ]; then pass "${P}drain_wait_named"; else fail "${P}drain_wait_named" "none_for_pid_$RP"; fi
  umount_testfs
}

# no_drain_scenario: the same inode, written in parallel, then opened cached 20 times and
# mapped shared once no writer is in flight: both are seen as holders, no drain wait (the
# tracepoint backend infers drains from the opener's sleeps; the open's answer is not one).
no_drain_scenario() {
  mount_testfs --direct-io --parallel-direct-writes --cache-readonly-opens \
    --direct-io-allow-mmap --write-delay-us 2000
  fusescope-load parallel --file $M/db --threads 1 --writes 1 > /dev/null
  if trace_start; then
    fusescope-load parallel --file $M/db --threads 4 --writes 25 --size 4096 > /dev/null
    fusescope-load cached-reader --file $M/db --opens 20 > /tmp/reader.json
    fusescope-load mmap-holder --file $M/db --size 4096 --hold 0.1 > /tmp/mapper.json
    trace_stop
    RP=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' /tmp/reader.json | head -n1)
    MP=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' /tmp/mapper.json | head -n1)
    expect "${P}no_drain_wait_opens_seen" "$(grep '"event":"open"' /tmp/trace.json | grep -c "\"holder\":{\"pid\":$RP,")" 20
    expect "${P}no_drain_wait_mmap_seen" "$(grep '"event":"mmap"' /tmp/trace.json | grep -c "\"holder\":{\"pid\":$MP,")" 1
    expect "${P}no_drain_wait" "$(count '"event":"drain_wait"')" 0
  fi
  umount_testfs
}

# diag_no_flag_scenario: without FOPEN_PARALLEL_DIRECT_WRITES diagnose's first finding is
# no_parallel_flag (the exact counts of such writes are core.txt's no_flag_exclusive).
diag_no_flag_scenario() {
  mount_testfs --direct-io --write-delay-us 200
  diag_during "${P}diag_no_flag" no_parallel_flag 5 parallel --file $M/db3 --threads 4 --size 4096
  umount_testfs
}

# timed NAME CMD...: run CMD, then RESULT ${P}secs_NAME=<seconds it took> (where the time goes)
uptime_s() { cut -d' ' -f1 /proc/uptime; }
timed() {
  timed_t0=$(uptime_s) timed_name=$1; shift
  "$@"
  result "${P}secs_$timed_name=$(awk -v a="$timed_t0" -v b="$(uptime_s)" 'BEGIN{printf "%.1f", b - a}')"
}

# run_scenarios: every scenario with the current pass's backend ($FSB, results prefixed $P).
# DIAGNOSE=0 leaves out diagnose's findings: they come from the state model, whatever backend
# fed it, and the host's tests/views/diagnose checks them on the tracepoint backend already.
run_scenarios() {
  needs core_table write-lock && timed core_table core_table_scenario
  mount_testfs $PAR
  [ $DIAGNOSE = 1 ] && needs diag_kinds write-lock && timed diag_kinds diag_kinds_scenario
  [ "$P" = tp_ ] && needs write_cache write-lock && timed write_cache write_cache_scenario
  if [ $IOMODES = 1 ]; then
    needs mmap_holder write-lock mmap release && timed mmap_holder mmap_holder_scenario
    needs census_culprit write-lock census && timed census_culprit census_culprit_scenario
  fi
  umount_testfs
  if [ $IOMODES = 1 ]; then
    needs drain drain-wait open && timed drain drain_scenario
    needs no_drain drain-wait open mmap && timed no_drain no_drain_scenario
  fi
  [ $DIAGNOSE = 1 ] && needs diag_no_flag write-lock && timed diag_no_flag diag_no_flag_scenario
  needs write_paths write-lock && timed write_paths write_paths_scenario
}

# --- the trampoline pass ---
timed doctor doctor_report trampoline
if grep -q '^IO modes *yes' /tmp/doctor.txt; then IOMODES=1; else IOMODES=0; fi
result "iomodes=$IOMODES"
# FUSE_DIRECT_IO_ALLOW_MMAP (6.6+) is needed for shared mmaps of direct-io files
[ $IOMODES = 1 ] && PAR="$PAR --direct-io-allow-mmap"
case "$(uname -r)" in
  6.1.*) expect no_iomodes_reported "$(grep -c 'n/a (kernel has no IO modes)' /tmp/doctor.txt | grep -qv '^0$' && echo yes)" yes ;;
esac
[ $LOADED = 1 ] && run_scenarios

# --- the tracepoint pass, where the kernel has the fuse request tracepoints (6.12+) ---
if [ -d /sys/kernel/tracing/events/fuse/fuse_request_send ]; then
  FSB="--backend tracepoint" P=tp_ DIAGNOSE=0 BACKEND_NAME=tracepoint
  result "tracepoint_backend=yes"
  timed doctor doctor_report tracepoint
  [ $LOADED = 1 ] && run_scenarios
  FSB="" P="" DIAGNOSE=1 BACKEND_NAME=trampoline
else
  result "tracepoint_backend=no" "reason=no_fuse:fuse_request_send_tracepoint"
fi

expect mounts_left "$(grep -c ' fuse' /proc/mounts)" 0
if [ $GUEST_FAILED != 0 ] && [ -f /tmp/trace.json ]; then
  echo "--- last trace ---"; tail -n 20 /tmp/trace.json; cat /tmp/trace.err /tmp/trace.status
fi
guest_finish
