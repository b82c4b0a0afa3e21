# shellcheck shell=sh
# guest-probe.sh: the tiny guest probe-accel.sh boots to see whether an accelerator works.
echo "guest-probe: booted"
