#!/bin/bash
# The freestanding test guests on each accelerator by name: guest-*.sh run
# on the default one (auto: KVM on a VMX/SVM host, the software CPU
# elsewhere); both must pass them wherever they exist.
set -u
here=$(dirname "$0")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fails=0
for accel in bt kvm; do
	if [ $accel = kvm ] && [ ! -w /dev/kvm ]; then
		echo "skip kvm: no /dev/kvm"; continue
	fi
	for g in bzimage64 multiboot pvh realmode; do
		if GUEST_ACCEL=$accel bash "$here/guest-$g.sh" >"$log" 2>&1; then
			echo "ok $g on $accel: $(tail -n 1 "$log")"
		else
			echo "FAIL $g on $accel:"; tail -n 20 "$log"
			fails=$((fails + 1))
		fi
	done
done
[ $fails -eq 0 ]
