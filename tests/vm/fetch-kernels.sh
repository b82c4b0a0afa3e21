#!/usr/bin/env bash
# fetch-kernels.sh CACHE_DIR KERNEL...
#
# Downloads the Debian kernel of each KERNEL into CACHE_DIR/<KERNEL>/ and writes
# CACHE_DIR/<KERNEL>/kernel.env with
#   KVER=<uname -r>  VMLINUZ=<abs path>  FUSE_KO=<abs path, empty if FUSE is built in>
#   PKG=<package the kernel came from>  PKGVER=<metapackage version>  SUITE=<suite>  FLAVOUR=<flavour>
#   PREEMPT_RT=y|n  ABSENT=<why there is no kernel (optional kernels only), else empty>
# KERNEL is one of (kernel_source below is the one table of them):
#   bookworm, trixie, sid, ...  that suite's cloud kernel (linux-image-cloud-amd64)
#   newest        the highest cloud kernel any of NEWEST_SUITES serves (experimental excluded)
#   rt            the highest PREEMPT_RT kernel (linux-image-rt-amd64; no cloud variant) of those
#   experimental  experimental's cloud kernel, a release candidate; optional: when experimental
#                 serves none, kernel.env says ABSENT=... and run-vm.sh skips it
# Versions are resolved through each suite's metapackage, never pinned. apt runs with a private
# sources/state/cache folder (CACHE_DIR/apt/<suite>), so the machine's apt setup is untouched.
# A cached kernel is reused when it is still the current one, or when the mirror is unreachable
# (or, with FUSESCOPE_VM_OFFLINE=1, whenever it exists). FUSESCOPE_DEBIAN_MIRROR overrides the
# mirror, FUSESCOPE_VM_NEWEST_SUITES the suites that "newest" and "rt" choose from.
set -euo pipefail

die() { echo "fetch-kernels.sh: $*" >&2; exit 1; }
log() { echo "fetch-kernels.sh: $*" >&2; }
# first PATH...: print the first argument that exists (unmatched globs stay literal).
first() { local f; for f in "$@"; do if [ -e "$f" ]; then echo "$f"; return; fi; done; }

# kernel_source KERNEL: "SUITE FLAVOUR OPTIONAL" for a kernel name, or fail for an unknown one.
# SUITE "newest" means the highest version any of NEWEST_SUITES serves.
kernel_source() {
  case "$1" in
    newest) echo "newest cloud no" ;;
    rt) echo "newest rt no" ;;
    experimental) echo "experimental cloud yes" ;;
    bookworm | bookworm-backports | trixie | trixie-backports | forky | forky-backports | sid)
      echo "$1 cloud no" ;;
    *) return 1 ;;
  esac
}
# Where newer kernels than the stable releases' appear (trixie-backports carries what sid had).
read -r -a NEWEST_SUITES <<<"${FUSESCOPE_VM_NEWEST_SUITES:-trixie-backports forky sid}"

[ $# -ge 2 ] || die "usage: fetch-kernels.sh CACHE_DIR KERNEL... (bookworm, trixie, newest, experimental, rt, or a Debian suite)"
mkdir -p "$1" || die "cannot create cache dir $1"
CACHE=$(cd "$1" && pwd)
shift
for k in "$@"; do
  kernel_source "$k" >/dev/null ||
    die "unknown kernel '$k' (use bookworm, trixie, newest, experimental, rt, or a Debian suite name)"
done

# Use the Debian mirror this machine already uses (it is the one reachable from here).
mirror() {
  if [ -n "${FUSESCOPE_DEBIAN_MIRROR:-}" ]; then echo "$FUSESCOPE_DEBIAN_MIRROR"; return; fi
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
      grep -v '^[[:space:]]*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ' || true)
  echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=$(mirror)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$KEYRING" ] || die "$KEYRING missing: apt-get install debian-archive-keyring"

# apt_opts SUITE: sets A to the apt options of SUITE's private config.
apt_opts() {
  local apt="$CACHE/apt/$1"
  A=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/parts"
     -o "Dir::State=$apt/state" -o "Dir::Cache=$apt/cache"
     -o "Acquire::Languages=none" -o "APT::Architectures=amd64" -q
     -o "Acquire::Retries=1" -o "Acquire::http::Timeout=20"
     -o "APT::Sandbox::User=root") # the cache may not be readable by _apt
}

# update_suite SUITE: apt-get update of SUITE's private config, once per run; fails when the
# mirror cannot be reached (the reason is in CACHE_DIR/apt/SUITE/update.log).
declare -A UPDATED=()
update_suite() {
  local suite=$1 apt="$CACHE/apt/$1"
  [ -z "${UPDATED[$suite]:-}" ] || return "${UPDATED[$suite]}"
  mkdir -p "$apt/parts" "$apt/state/lists/partial" "$apt/cache/archives/partial"
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
    "$MIRROR" "$suite" "$KEYRING" >"$apt/parts/$suite.sources"
  apt_opts "$suite"
  UPDATED[$suite]=0
  if ! apt-get "${A[@]}" update >"$apt/update.log" 2>&1 ||
     grep -qE '^(W|E): Failed to fetch' "$apt/update.log"; then
    UPDATED[$suite]=1
  fi
  return "${UPDATED[$suite]}"
}

# resolve SUITE FLAVOUR: print "METAVER KVER" of SUITE's linux-image-FLAVOUR-amd64, nothing if
# SUITE serves none. The metapackage depends on linux-image-<KVER> (plus linux-base-*,
# linux-modules-* where the kernel is split).
resolve() {
  local meta ver img
  apt_opts "$1"
  meta=$(apt-cache "${A[@]}" show --no-all-versions "linux-image-$2-amd64" 2>/dev/null) || return 0
  ver=$(sed -n 's/^Version: //p' <<<"$meta" | head -n1)
  img=$(sed -n 's/^Depends: //p' <<<"$meta" | head -n1 | tr ',' '\n' |
        grep -oE "linux-image-[^ ]+-$2-amd64" | head -n1 || true)
  if [ -z "$ver" ] || [ -z "$img" ]; then die "$1: cannot find the image package in linux-image-$2-amd64's Depends"; fi
  echo "$ver ${img#linux-image-}"
}

# download SUITE PKG DIR: download PKG and unpack it into DIR; fails if SUITE does not have PKG.
download() {
  apt_opts "$1"
  apt-cache "${A[@]}" show "$2" >/dev/null 2>&1 || return 1
  log "downloading $2 from $1"
  local tmp
  tmp=$(mktemp -d "$3.dl.XXXXXX")
  (cd "$tmp" && apt-get "${A[@]}" download "$2" >/dev/null) || { rm -rf "$tmp"; die "$1: apt-get download $2 failed; check network"; }
  dpkg-deb -x "$tmp"/*.deb "$3"
  rm -rf "$tmp"
}

# unpack_ko KO OUT: a kernel module, decompressed.
unpack_ko() {
  case "$1" in
    *.xz) xz -dc "$1" >"$2" ;;
    *.gz) gzip -dc "$1" >"$2" ;;
    *.zst) die "$1 is zstd-compressed: add zstd to scripts/setup-deps.sh and here" ;;
    *) cp "$1" "$2" ;;
  esac
}

# write_env FILE KEY=VALUE...: kernel.env, replaced atomically.
write_env() {
  local f=$1; shift
  printf '%s\n' "$@" >"$f.tmp"
  mv "$f.tmp" "$f"
}

fetch_kernel() {
  local name=$1 dir="$CACHE/$1" suite flavour optional
  read -r suite flavour optional < <(kernel_source "$name")
  local env="$dir/kernel.env" have="" have_vmlinuz="" have_absent=""
  if [ -f "$env" ]; then
    have="$(sed -n 's/^SUITE=//p' "$env") $(sed -n 's/^PKGVER=//p' "$env")"
    have_vmlinuz=$(sed -n 's/^VMLINUZ=//p' "$env")
    have_absent=$(sed -n 's/^ABSENT=//p' "$env")
  fi
  local cached=0
  if [ -n "$have_absent" ] || { [ -n "$have_vmlinuz" ] && [ -f "$have_vmlinuz" ]; }; then cached=1; fi

  # FUSESCOPE_VM_OFFLINE=1: trust an existing cache without asking the mirror (ctest sets it after
  # its fetch fixture ran, so each VM test does not repeat apt-get update).
  if [ "${FUSESCOPE_VM_OFFLINE:-0}" = 1 ] && [ $cached = 1 ]; then return 0; fi

  local candidates=("$suite") s best="" best_suite="" r
  [ "$suite" != newest ] || candidates=("${NEWEST_SUITES[@]}")
  # Every candidate must answer: "newest" from the suites that happen to be reachable could be
  # an older kernel than the one cached.
  for s in "${candidates[@]}"; do
    if update_suite "$s"; then continue; fi
    if [ $cached = 1 ]; then log "$name: cannot reach $MIRROR for $s, using the cached kernel ($have)"; return 0; fi
    die "$name: apt-get update of $s from $MIRROR failed (see $CACHE/apt/$s/update.log) and no cached kernel; check network or set FUSESCOPE_DEBIAN_MIRROR"
  done
  for s in "${candidates[@]}"; do
    r=$(resolve "$s" "$flavour")
    [ -n "$r" ] || continue
    if [ -z "$best" ] || dpkg --compare-versions "${r% *}" gt "${best% *}"; then
      best=$r best_suite=$s
    fi
  done
  mkdir -p "$dir"
  if [ -z "$best" ]; then
    local why="no linux-image-$flavour-amd64 in ${candidates[*]}"
    [ "$optional" = yes ] || die "$name: $why (at $MIRROR)"
    log "$name: $why; the $name tests will be skipped"
    rm -f "$dir"/vmlinuz-* "$dir"/fuse.ko
    write_env "$env" "ABSENT=$why" KVER= VMLINUZ= FUSE_KO= PKG= PKGVER= "SUITE=$suite" "FLAVOUR=$flavour" PREEMPT_RT=
    return 0
  fi
  local metaver=${best% *} kv=${best#* }
  if [ "$have" = "$best_suite $metaver" ] && [ -f "$dir/vmlinuz-$kv" ]; then
    log "$name: cached $kv ($best_suite $metaver) is current"
    return 0
  fi

  # Where the kernel lives differs per suite: sid, trixie-backports and experimental split it into
  # linux-binary-* (vmlinuz), linux-base-* (config) and linux-modules-*; trixie keeps an -unsigned
  # image package with all three; bookworm's signed image also works. Try in that order.
  local x="$dir/work" pkg="" cand
  rm -rf "$x"; mkdir -p "$x"
  for cand in "linux-binary-$kv" "linux-image-$kv-unsigned" "linux-image-$kv"; do
    download "$best_suite" "$cand" "$x" || continue
    if [ -n "$(first "$x"/boot/vmlinuz-* "$x"/usr/lib/modules/*/vmlinuz)" ]; then pkg=$cand; break; fi
  done
  [ -n "$pkg" ] || die "$name: no vmlinuz in linux-binary/-unsigned/image packages of $kv; package layout changed, adapt fetch-kernels.sh"
  local cfg
  cfg=$(first "$x"/boot/config-* "$x"/usr/lib/modules/*/config)
  if [ -z "$cfg" ] && download "$best_suite" "linux-base-$kv" "$x"; then
    cfg=$(first "$x"/usr/lib/modules/*/config)
  fi
  [ -n "$cfg" ] || die "$name: no kernel config in $pkg or linux-base-$kv; package layout changed, adapt fetch-kernels.sh"

  # FUSE is a module on bookworm (6.1), built in on trixie and later (cloud and rt): ship fuse.ko
  # whenever the config says =m, from the image package or the split linux-modules-*.
  local ko="" fuse_ko=""
  if grep -q '^CONFIG_FUSE_FS=m' "$cfg"; then
    ko=$(find "$x" -name 'fuse.ko*' -path '*/fs/fuse/*' | head -n1)
    if [ -z "$ko" ] && download "$best_suite" "linux-modules-$kv" "$x"; then
      ko=$(find "$x" -name 'fuse.ko*' -path '*/fs/fuse/*' | head -n1)
    fi
    [ -n "$ko" ] || die "$name: FUSE is a module in $kv but fuse.ko is in neither $pkg nor linux-modules-$kv; adapt fetch-kernels.sh"
  elif ! grep -q '^CONFIG_FUSE_FS=y' "$cfg"; then
    die "$name: $kv has no FUSE (CONFIG_FUSE_FS unset)"
  fi
  local rt=n
  if grep -q '^CONFIG_PREEMPT_RT=y' "$cfg"; then rt=y; fi

  rm -f "$dir"/vmlinuz-* "$dir"/fuse.ko
  cp "$(first "$x"/boot/vmlinuz-* "$x"/usr/lib/modules/*/vmlinuz)" "$dir/vmlinuz-$kv"
  if [ -n "$ko" ]; then unpack_ko "$ko" "$dir/fuse.ko"; fuse_ko="$dir/fuse.ko"; fi
  rm -rf "$x"
  write_env "$env" ABSENT= "KVER=$kv" "VMLINUZ=$dir/vmlinuz-$kv" "FUSE_KO=$fuse_ko" "PKG=$pkg" \
    "PKGVER=$metaver" "SUITE=$best_suite" "FLAVOUR=$flavour" "PREEMPT_RT=$rt"
  log "$name: $kv from $best_suite ready in $dir"
}

# One fetch at a time (ctest -j may run several VM tests, each of which checks its kernel).
exec 9>"$CACHE/.fetch.lock"
flock 9
for k in "$@"; do fetch_kernel "$k"; done
