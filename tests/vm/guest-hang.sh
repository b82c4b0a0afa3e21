# shellcheck shell=sh
# guest-hang.sh: a guest that never finishes; selftest-fail.sh checks run-vm.sh's time limit.
echo "guest-hang: sleeping forever"
sleep 100000
