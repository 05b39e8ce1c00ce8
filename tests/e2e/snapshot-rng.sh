#!/bin/bash
# A snapshot from a VM without virtio-rng (rng = off, or a termvisor
# from before the device) reverts on the same VM with the rng on: the
# reference guest, a shell loop printing a counter and rescanning PCI,
# continues from the snapshot's count; the rng is on the bus in reset
# state (`run --restore -v` says so), and the guest's rescan finds it and reads
# /dev/hwrng from it.  The other way, a snapshot with the rng does not
# revert on the VM without it (its state would be lost): refused, and the
# VM runs on.  On the software CPU, as the other reference-guest tests.
set -u
here=$(dirname "$0")
. "$here/linux-lib.sh"
need_guest
tv=$(realpath "$tv")
accel=bt
vm_sandbox rg
log=$tmp/ds/rg/rg.log

# Lines "count N pci=P hw=H" from byte offset $1: the last or first N.
counts() { tail -c +"$1" "$log" 2>/dev/null | tr -d '\r' | grep '^count [0-9]* pci='; }
last_count() { counts "$1" | tail -n 1 | cut -d' ' -f2 | grep . || echo 0; }
first_count() { counts "$1" | head -n 1 | cut -d' ' -f2 | grep . || echo 0; }
# wait_line FROM REGEX SECONDS: until a count line from FROM matches.
wait_line() {
	for ((i = 0; i < $3 * 5; i++)); do
		counts "$1" | grep -q -- "$2" && return 0
		sleep 0.2
	done
	return 1
}

# Each pass: rescan the bus, count virtio-rng functions (1af4:1044) and
# read 16 bytes of /dev/hwrng (0 while there is no rng).
cmd='i=0; while true; do i=$((i+1)); echo 1 >/sys/bus/pci/rescan;
p=$(cat /sys/bus/pci/devices/*/device | grep -c 0x1044);
h=$(head -c 16 /dev/hwrng 2>/dev/null | wc -c);
echo "count $i pci=$p hw=$h"; sleep 0.3; done'
cmd=$(tr '\n' ' ' <<<"$cmd")
"$tv" vm create rg --memory 128M --accel "$accel" --kernel "$guest/vmlinuz" \
	--initrd "$guest/initrd.img" \
	--append "console=ttyS0 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$cmd")" \
	>/dev/null && "$tv" vm set rg rng=off display=none >/dev/null ||
	{ echo "FAIL: vm create"; exit 1; }
"$tv" vm start rg >/dev/null || { echo "FAIL: vm start"; tail "$log"; exit 1; }
wait_count last_count 1 3 90 || { echo "FAIL: the guest never counted"; tail -n 20 "$log"; exit 1; }
counts 1 | tail -n 1 | grep -q 'pci=0 hw=0$' && ok "rng off: no virtio-rng, no /dev/hwrng" ||
	bad "rng off: $(counts 1 | tail -n 1)"

before=$(last_count 1)
"$tv" snapshot take rg s1 >"$tmp/out" 2>&1 || { bad "snapshot take"; cat "$tmp/out"; }
at=$(last_count 1)
wait_count last_count 1 $((at + 5)) 30 || bad "the guest stopped counting after the take"
later=$(last_count 1)

vm_stop_ended rg
"$tv" vm set rg rng=on >/dev/null || bad "vm set rng=on"
from=$(($(stat -c %s "$log") + 1))
"$tv" snapshot revert rg s1 >"$tmp/out" 2>&1 &&
	ok "a snapshot without the rng reverts with it on" ||
	{ bad "revert with the rng on"; cat "$tmp/out"; tail -n 5 "$log"; }
wait_count last_count "$from" 1 30 || bad "no count after the revert"
first=$(first_count "$from")
if [ "$first" -gt "$before" ] && [ "$first" -le $((at + 1)) ] && [ "$first" -lt "$later" ]; then
	ok "the guest resumes at $first (snapshot between $before and $at, it had reached $later)"
else
	bad "after the revert the count is at $first (snapshot between $before and $at, later $later)"
fi
# The info line naming it (-v): the same snapshot with `run --restore`.
timeout 10 "$tv" run --restore "$tmp/ds/rg/snapshots/s1.tvsnap" -v --memory 128M \
	--display none </dev/null >"$tmp/restore" 2>&1
grep -q "the saved VM had no virtio-rng0: left in reset state" "$tmp/restore" &&
	grep -q '^count [0-9]* pci=' "$tmp/restore" &&
	ok "run --restore -v: $(grep -o 'the saved VM had no.*' "$tmp/restore" | tr -d '\r')" ||
	{ bad "run --restore -v without the line, or the guest did not run"; tail -n 5 "$tmp/restore"; }
wait_line "$from" 'pci=1 hw=16$' 20 &&
	ok "a rescan finds the rng and /dev/hwrng reads from it" ||
	bad "after a rescan: $(counts "$from" | tail -n 1)"

# Now with the rng: a snapshot of it does not revert without it.
"$tv" snapshot take rg s2 >"$tmp/out" 2>&1 || { bad "snapshot take s2"; cat "$tmp/out"; }
"$tv" vm set rg rng=off >/dev/null
"$tv" snapshot revert rg s2 >"$tmp/out" 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "virtio-rng0 in the saved VM but (none) here" "$tmp/out"; then
	ok "a snapshot with the rng is refused without it: $(grep -o 'device [0-9]* is.*' "$tmp/out" | head -n 1)"
	n=$(last_count "$from")
	wait_count last_count "$from" $((n + 2)) 20 && ok "and the VM runs on" || bad "the refused revert stopped the VM"
else
	bad "revert of s2 with the rng off: exit $rc"; cat "$tmp/out"
fi

[ $fails -eq 0 ] && echo "snapshot-rng: all passed ($accel)" && exit 0
echo "snapshot-rng: $fails failed ($accel)"
exit 1
