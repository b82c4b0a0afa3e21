# shellcheck shell=sh
# guest-write-paths.sh: the write-path scenarios of tests/scenarios/write-paths.txt (the rows
# marked vm or both) inside a QEMU guest, with Debian's fio: the same table and expectations as
# tests/core/test_write_paths.py on the host. Sourced by guest-core.sh, whose helpers it uses
# (mount_testfs, umount_testfs, trace_start, trace_stop, expect_writes, dev_writes, mount_dev,
# $B, $M, $P); the table and fio arrive in /bin (tests/vm/CMakeLists.txt).
# One trace watches every row (loading BPF under TCG takes seconds): each row is its own testfs
# mount, so its writes are the trace's writes on that mount's device. The mounts stay until the
# trace has stopped: an unmounted FUSE device number is the next mount's (lowest free minor).
# Each row runs with VM_IOS writes per fio job (TCG emulates every instruction).
# BACKEND_NAME: trampoline or tracepoint, the backend of the current pass.

VM_IOS=${VM_IOS:-32}
WRITE_PATHS_TABLE=/bin/write-paths.txt

# wp_count LOCK/REASON=COUNT[@BACKEND] N: the expected count of one item of a row, on the
# current pass's backend ($BACKEND_NAME): 0 when the item is another backend's only
wp_count() {
  c=${1#*=} only=""
  case "$c" in *@*) only=${c#*@} c=${c%@*} ;; esac
  if [ -n "$only" ] && [ "$only" != "$BACKEND_NAME" ]; then echo 0; return; fi
  if [ "$c" = N ]; then echo "$2"; else echo "$c"; fi
}

# write_paths_scenario: every vm/both row on its own mount, all under one trace
write_paths_scenario() {
  if [ ! -r $WRITE_PATHS_TABLE ] || ! command -v fio > /dev/null; then
    fail "${P}write_paths_inputs" "table_or_fio_missing"; return
  fi
  grep -v '^[[:space:]]*#' $WRITE_PATHS_TABLE | grep '|' > /tmp/wp-rows.txt
  : > /tmp/wp-done.txt # name dev n server-pid expect..., one line per row that ran
  TRACE_MOUNT=""
  trace_start; started=$?
  TRACE_MOUNT=$M
  [ $started = 0 ] || return
  while IFS='|' read -r name flags fio_args counts expect where; do
    name=$(echo $name) where=$(echo $where)
    case "$where" in vm | both) ;; *) continue ;; esac
    # shellcheck disable=SC2086 # word-split on purpose
    set -- $counts
    jobs=$1 n=$((jobs * VM_IOS))
    case " $flags " in # passthrough is 6.9+, where IO modes are
      *" --passthrough "*) if [ $IOMODES = 0 ]; then result "${P}wp_${name}=skipped" "reason=no_passthrough"; continue; fi ;;
    esac
    B=/tmp/wp/$name.b M=/tmp/wp/$name.m
    mkdir -p $B $M
    # shellcheck disable=SC2086
    if mount_testfs $flags; then
      dev=$(mount_dev)
      truncate -s 16M $B/f
      # shellcheck disable=SC2086
      fio --name=w --filename=$M/f --size=16M --bs=4k --rw=randwrite --norandommap \
        --randrepeat=1 --allow_file_create=0 --fallocate=none --numjobs=$jobs \
        --number_ios=$VM_IOS $fio_args > /tmp/fio.out 2>&1 || fail "${P}wp_${name}_fio" "$(tail -n1 /tmp/fio.out)"
      echo "$name $dev $n $TFS $expect" >> /tmp/wp-done.txt
    fi
  done < /tmp/wp-rows.txt
  B=/tmp/b M=/tmp/m
  trace_stop
  while read -r name dev n TFS expect; do
    umount_testfs
    want_total=0
    for item in $expect; do
      lr=${item%%=*} want=$(wp_count "$item" "$n")
      want_total=$((want_total + want))
      expect_writes "${P}wp_${name}_${lr%%/*}_${lr#*/}" "$(dev_writes "$dev" "${lr%%/*}" "${lr#*/}")" "$want"
    done
    expect_writes "${P}wp_${name}_all" "$(dev_writes "$dev")" "$want_total"
  done < /tmp/wp-done.txt
}
