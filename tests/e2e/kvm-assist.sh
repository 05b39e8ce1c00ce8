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

# Stints (experimental, TERMVISOR_KVM_STINT): ring-0 work long enough
# for the stint timer to move it to the software CPU (where KVM runs
# kernel code natively, it stays in KVM).  Its result must be the one the
# software CPU alone computes.
gcc -m32 -nostdlib -static -Wl,-Ttext=0x100000 -Wl,--oformat=binary \
	-o "$tmp/stint.bin" "$(dirname "$0")/kvm-assist/stint.S" || exit 1
want=$(timeout 60 "$tv" run --accel bt --kernel "$tmp/stint.bin" --no-reboot \
	--debug-exit --memory 16M </dev/null 2>/dev/null | grep '^stint ')
[ -n "$want" ] || { echo "FAIL: the stint guest printed nothing on bt"; exit 1; }
out=$(TERMVISOR_KVM_STINT=20000 timeout 120 "$tv" run --accel kvm \
	--kernel "$tmp/stint.bin" --no-reboot \
	--debug-exit --memory 16M -v </dev/null 2>&1)
rc=$?
echo "$out" | tail -n 3
[ $rc -eq 1 ] || { echo "FAIL: stint guest: exit status $rc, expected 1"; exit 1; }
got=$(grep '^stint ' <<<"$out")
[ "$got" = "$want" ] || { echo "FAIL: stint guest printed '$got', bt printed '$want'"; exit 1; }
if ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
	grep -q "KVM assist stints: [1-9]" <<<"$out" ||
		{ echo "FAIL: no stints on a host whose KVM emulates ring 0"; exit 1; }
fi
echo "PASS: KVM assist, and stints agree with the software CPU ($want)"
