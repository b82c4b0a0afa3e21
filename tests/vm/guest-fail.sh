# shellcheck shell=sh
# guest-fail.sh: a guest that fails on purpose; selftest-fail.sh checks that run-vm.sh reports it.
echo "guest-fail: this line must appear in run-vm.sh's stderr"
exit 3
