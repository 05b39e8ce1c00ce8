#!/bin/bash
# KVM assist: an instruction KVM's emulator cannot run is executed on the
# software CPU and the guest goes on.  On a hardware-virtualization host
# the guest runs natively and the test checks the same result.
set -u
tv=${BUILD:-build}/termvisor
[ -w /dev/kvm ] || { echo "no /dev/kvm: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -m32 -nostdlib -static -Wl,-Ttext=0x100000 -Wl,--oformat=binary \
	-o "$tmp/assist.bin" "$(dirname "$0")/kvm-assist/assist.S" || exit 1
out=$(timeout 60 "$tv" run --accel kvm --kernel "$tmp/assist.bin" --no-reboot \
	--debug-exit --memory 16M -vv </dev/null 2>&1)
rc=$?
echo "$out"
[ $rc -eq 1 ] || { echo "FAIL: exit status $rc, expected 1 (guest passed)"; exit 1; }
grep -q "assist ok" <<<"$out" || { echo "FAIL: no output from the guest"; exit 1; }
if ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
	# This host's KVM emulates ring 0: the assist must have been used.
	grep -q "KVM assist" <<<"$out" || { echo "FAIL: no assist reported"; exit 1; }
fi
