#!/usr/bin/env bash
# fetch-kernels.sh CACHE_DIR [suite...]
#
# Downloads the current Debian cloud kernel of each suite (bookworm, trixie, sid; default: all)
# into CACHE_DIR/<suite>/ and writes CACHE_DIR/<suite>/kernel.env with
#   KVER=<uname -r>  VMLINUZ=<abs path>  FUSE_KO=<abs path or empty if FUSE is built in>
#   PKG=<package the kernel came from>  PKGVER=<linux-image-cloud-amd64 version>
# The version is resolved through the suite's linux-image-cloud-amd64 metapackage (never pinned).
# apt runs with a private sources/state/cache folder, so the machine's apt setup is untouched.
# A cached kernel is reused when it is still the current one, or when the mirror is unreachable
# (or, with FUSESCOPE_VM_OFFLINE=1, whenever it exists). FUSESCOPE_DEBIAN_MIRROR overrides the mirror.
set -euo pipefail

die() { echo "fetch-kernels.sh: $*" >&2; exit 1; }
log() { echo "fetch-kernels.sh: $*" >&2; }
# first PATH...: print the first argument that exists (unmatched globs stay literal).
first() { local f; for f in "$@"; do if [ -e "$f" ]; then echo "$f"; return; fi; done; }

[ $# -ge 1 ] || die "usage: fetch-kernels.sh CACHE_DIR [bookworm|trixie|sid ...]"
mkdir -p "$1" || die "cannot create cache dir $1"
CACHE=$(cd "$1" && pwd)
shift
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(bookworm trixie sid)

# Use the Debian mirror this machine already uses (it is the one reachable from here).
# FUSESCOPE_DEBIAN_MIRROR overrides it.
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

fetch_suite() {
  local suite=$1 dir="$CACHE/$1"
  local apt="$dir/apt"
  mkdir -p "$apt/parts" "$apt/state/lists/partial" "$apt/cache/archives/partial"
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
    "$MIRROR" "$suite" "$KEYRING" >"$apt/parts/$suite.sources"
  local A=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$apt/parts"
           -o "Dir::State=$apt/state" -o "Dir::Cache=$apt/cache"
           -o "Acquire::Languages=none" -o "APT::Architectures=amd64" -q
           -o "Acquire::Retries=1" -o "Acquire::http::Timeout=20"
           -o "APT::Sandbox::User=root")  # the cache may not be readable by _apt
  local env="$dir/kernel.env" have=""
  if [ -f "$env" ]; then have=$(sed -n 's/^PKGVER=//p' "$env"); fi

  # FUSESCOPE_VM_OFFLINE=1: trust an existing cache without asking the mirror (ctest sets it after
  # its fetch fixture ran, so each VM test does not repeat apt-get update).
  if [ "${FUSESCOPE_VM_OFFLINE:-0}" = 1 ] && [ -n "$have" ] &&
     [ -f "$(sed -n 's/^VMLINUZ=//p' "$env")" ]; then
    return 0
  fi
  if ! apt-get "${A[@]}" update >"$dir/apt-update.log" 2>&1 ||
     grep -qE '^(W|E): Failed to fetch' "$dir/apt-update.log"; then
    if [ -n "$have" ] && [ -f "$(sed -n 's/^VMLINUZ=//p' "$env")" ]; then
      log "$suite: cannot reach $MIRROR, using cached kernel $have"
      return 0
    fi
    die "$suite: apt-get update from $MIRROR failed (see $dir/apt-update.log) and no cached kernel; check network or set FUSESCOPE_DEBIAN_MIRROR"
  fi

  local meta metaver img kv
  meta=$(apt-cache "${A[@]}" show linux-image-cloud-amd64 2>/dev/null) ||
    die "$suite: no linux-image-cloud-amd64 in $MIRROR $suite"
  metaver=$(sed -n 's/^Version: //p' <<<"$meta" | head -n1)
  # The metapackage depends on linux-image-<KVER> (plus linux-base-cloud-amd64 in sid).
  img=$(sed -n 's/^Depends: //p' <<<"$meta" | head -n1 | tr ',' '\n' |
        grep -oE 'linux-image-[^ ]+-cloud-amd64' | head -n1) ||
    die "$suite: cannot find the image package in linux-image-cloud-amd64 Depends"
  kv=${img#linux-image-}

  if [ "$have" = "$metaver" ] && [ -f "$dir/vmlinuz-$kv" ]; then
    log "$suite: cached $kv ($metaver) is current"
    return 0
  fi

  # Where the kernel lives differs per suite: sid splits it into linux-binary-*, trixie keeps an
  # -unsigned image package, bookworm's signed image also works. Try in that order.
  local work="$dir/work" pkg="" cand
  rm -rf "$work"; mkdir -p "$work/x"
  for cand in "linux-binary-$kv" "linux-image-$kv-unsigned" "linux-image-$kv"; do
    apt-cache "${A[@]}" show "$cand" >/dev/null 2>&1 || continue
    log "$suite: downloading $cand ($metaver)"
    (cd "$work" && apt-get "${A[@]}" download "$cand" >/dev/null) ||
      die "$suite: apt-get download $cand failed; check network"
    dpkg-deb -x "$work"/"$cand"_*.deb "$work/x"
    rm -f "$work"/*.deb
    if [ -n "$(first "$work"/x/boot/vmlinuz-* "$work"/x/usr/lib/modules/*/vmlinuz)" ]; then
      pkg=$cand; break
    fi
  done
  [ -n "$pkg" ] || die "$suite: no vmlinuz in linux-binary/-unsigned/image packages of $kv; package layout changed, adapt fetch-kernels.sh"

  local vmlinuz ko cfg
  vmlinuz=$(first "$work"/x/boot/vmlinuz-* "$work"/x/usr/lib/modules/*/vmlinuz)
  rm -f "$dir"/vmlinuz-* "$dir"/fuse.ko
  cp "$vmlinuz" "$dir/vmlinuz-$kv"
  # FUSE is a module on bookworm (6.1); on trixie/sid it is built in.
  ko=$(find "$work/x" -name 'fuse.ko*' -path '*/fs/fuse/*' | head -n1)
  cfg=$(first "$work"/x/boot/config-* "$work"/x/usr/lib/modules/*/config)
  local fuse_ko=""
  if [ -n "$ko" ]; then
    case "$ko" in
      *.xz) xz -dc "$ko" >"$dir/fuse.ko" ;;
      *.zst) zstd -qdc "$ko" >"$dir/fuse.ko" ;;
      *.gz) gzip -dc "$ko" >"$dir/fuse.ko" ;;
      *) cp "$ko" "$dir/fuse.ko" ;;
    esac
    fuse_ko="$dir/fuse.ko"
  elif [ -n "$cfg" ] && grep -q '^CONFIG_FUSE_FS=m' "$cfg"; then
    die "$suite: FUSE is a module in $kv but fuse.ko is not in $pkg; adapt fetch-kernels.sh"
  fi
  rm -rf "$work"
  printf 'KVER=%s\nVMLINUZ=%s\nFUSE_KO=%s\nPKG=%s\nPKGVER=%s\n' \
    "$kv" "$dir/vmlinuz-$kv" "$fuse_ko" "$pkg" "$metaver" >"$env.tmp"
  mv "$env.tmp" "$env"
  log "$suite: $kv ready in $dir"
}

for s in "${SUITES[@]}"; do
  case "$s" in bookworm|trixie|sid|forky) ;; *) die "unknown suite '$s' (use bookworm, trixie or sid)";; esac
  mkdir -p "$CACHE/$s"
  # One fetch per suite at a time (ctest -j may run several VM tests of one suite).
  exec 9>"$CACHE/$s/.lock"
  flock 9
  fetch_suite "$s"
  exec 9>&-
done
