#!/bin/bash
# The same freestanding test guests on KVM: the guest-*.sh
# scripts run on the default accelerator (the software CPU on a host
# without VMX/SVM); KVM must pass them too, on any host with /dev/kvm.
set -u
[ -w /dev/kvm ] || { echo "no /dev/kvm: skipped"; exit 77; }
here=$(dirname "$0")
fails=0
for g in bzimage64 multiboot pvh realmode; do
	if GUEST_ACCEL=kvm bash "$here/guest-$g.sh" >"${TMPDIR:-/tmp}/tv-guest-kvm.$$" 2>&1; then
		echo "ok $g: $(tail -n 1 "${TMPDIR:-/tmp}/tv-guest-kvm.$$")"
	else
		echo "FAIL $g on kvm:"; tail -n 20 "${TMPDIR:-/tmp}/tv-guest-kvm.$$"
		fails=$((fails + 1))
	fi
done
rm -f "${TMPDIR:-/tmp}/tv-guest-kvm.$$"
[ $fails -eq 0 ]
