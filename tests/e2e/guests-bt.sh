#!/bin/bash
# The same freestanding test guests on the software CPU: the guest-*.sh
# scripts run on the default accelerator (KVM where there is one); the
# software CPU must pass them too.
set -u
here=$(dirname "$0")
fails=0
for g in bzimage64 multiboot pvh realmode; do
	if GUEST_ACCEL=bt bash "$here/guest-$g.sh" >"${TMPDIR:-/tmp}/tv-guest-bt.$$" 2>&1; then
		echo "ok $g: $(tail -n 1 "${TMPDIR:-/tmp}/tv-guest-bt.$$")"
	else
		echo "FAIL $g on bt:"; tail -n 20 "${TMPDIR:-/tmp}/tv-guest-bt.$$"
		fails=$((fails + 1))
	fi
done
rm -f "${TMPDIR:-/tmp}/tv-guest-bt.$$"
[ $fails -eq 0 ]
