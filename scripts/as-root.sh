# shellcheck shell=bash
# as-root.sh: sourced by the scripts that install packages, load BPF or mount FUSE, so that the
# README's commands run as written both as root (a fresh Debian has no sudo) and as a user with
# sudo:   . "$(dirname "$0")/as-root.sh"; as_root "$0" "$@"
# as_root SCRIPT ARGS...: return when root; else re-run SCRIPT through sudo (keeping the
# environment, e.g. FUSESCOPE_* settings) when sudo exists; else one line and exit 2.
as_root() {
  [ "$(id -u)" -eq 0 ] && return 0
  local self
  self="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
  shift
  if command -v sudo >/dev/null 2>&1; then exec sudo -E -- "$self" "$@"; fi
  echo "$(basename "$self"): needs root and there is no sudo: run it as root (su -c '$self')" >&2
  exit 2
}
