#!/bin/bash
# Snapshots of a running VM: the reference guest on the software CPU runs
# a shell loop printing a counter on the serial console.  A snapshot is
# taken while it counts, it counts on, and a revert resumes the same
# process from the snapshot's count (not from 1, not from the later
# value); its disk is frozen under an overlay meanwhile.  Damaged
# snapshot files are refused and the VM is left as it was.
set -u
here=$(dirname "$0")
. "$here/linux-lib.sh"
need_guest
tv=$(realpath "$tv")
vm_sandbox sn
log=$tmp/ds/sn/sn.log

# The last "count N" in the log from byte offset $1 (0: none yet).
last_count() {
	tail -c +"$1" "$log" 2>/dev/null | tr -d '\r' |
		sed -n 's/^count \([0-9][0-9]*\)$/\1/p' | tail -n 1 | grep . || echo 0
}
first_count() {
	tail -c +"$1" "$log" 2>/dev/null | tr -d '\r' |
		sed -n 's/^count \([0-9][0-9]*\)$/\1/p' | head -n 1 | grep . || echo 0
}

cmd='i=0; while true; do i=$((i+1)); echo "count $i"; sleep 0.2; done'
"$tv" vm create sn --memory 128M --accel bt --new-disk 8M --kernel "$guest/vmlinuz" \
	--initrd "$guest/initrd.img" \
	--append "console=ttyS0 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$cmd")" \
	>/dev/null || { echo "vm create failed"; exit 1; }
"$tv" vm start sn >/dev/null || { echo "vm start failed"; tail "$log"; exit 1; }
wait_count last_count 1 3 120 || { echo "FAIL: the guest never counted"; tail -n 20 "$log"; exit 1; }

# The guest runs on while its RAM is written: the snapshot's count is
# between the ones printed before and after the take.
before=$(last_count 1)
"$tv" snapshot take sn s1 >"$tmp/out" 2>&1 &&
	grep -q "paused" "$tmp/out" && ok "take on a running VM: $(head -n 1 "$tmp/out")" ||
	{ bad "snapshot take"; cat "$tmp/out"; }
at=$(last_count 1)
disk=$(sed -n 's/^disk0.path = "\(.*\)"$/\1/p' "$tmp/ds/sn/sn.vmx")
[ "$disk" != sn-disk0.qcow2 ] && command -v qemu-img >/dev/null &&
	qemu-img info -U "$tmp/ds/sn/$disk" | grep -q "backing file: sn-disk0.qcow2" &&
	ok "the running VM's disk moved onto an overlay ($disk)" ||
	bad "disk after take: $disk"
wait_count last_count 1 $((at + 10)) 60 || bad "the guest stopped counting after the snapshot"
later=$(last_count 1)
"$tv" snapshot list sn | grep -q '^\*s1 .*running' && ok "list marks s1 current" ||
	bad "snapshot list: $("$tv" snapshot list sn)"

# Damaged copies are refused; the VM goes on counting.
mem=$tmp/ds/sn/snapshots/s1.tvsnap
cp --sparse=always "$mem" "$tmp/good"
printf 'X' | dd of="$mem" bs=1 seek=5000 conv=notrunc status=none
"$tv" snapshot revert sn s1 >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "corrupt" "$tmp/out" && "$tv" vm status sn >/dev/null 2>&1 &&
	ok "a corrupted snapshot is refused: $(head -n 1 "$tmp/out")" ||
	{ bad "corrupted snapshot: exit $rc"; cat "$tmp/out"; }
cp --sparse=always "$tmp/good" "$mem"
truncate -s 100000 "$mem"
"$tv" snapshot revert sn s1 >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "truncated" "$tmp/out" && "$tv" vm status sn >/dev/null 2>&1 &&
	ok "a truncated snapshot is refused: $(head -n 1 "$tmp/out")" ||
	{ bad "truncated snapshot: exit $rc"; cat "$tmp/out"; }
"$tv" run --restore "$mem" --memory 128M </dev/null >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "truncated" "$tmp/out" &&
	ok "run --restore refuses it too" || { bad "run --restore: exit $rc"; cat "$tmp/out"; }
cp --sparse=always "$tmp/good" "$mem"

# The revert: the same process continues from the snapshot's count.  The
# old VM is stopped first, so that nothing it prints after `from` (a
# loaded host may take a while to stop it) is read as the new count.
vm_stop_ended sn
from=$(($(stat -c %s "$log") + 1))
"$tv" snapshot revert sn s1 >"$tmp/out" 2>&1 || { bad "revert"; cat "$tmp/out"; }
wait_count last_count "$from" 1 60 || bad "no count after the revert"
first=$(first_count "$from")
if [ "$first" -gt "$before" ] && [ "$first" -le $((at + 1)) ] && [ "$first" -lt "$later" ]; then
	ok "revert resumes the counter at $first (snapshot between $before and $at, it had reached $later)"
else
	bad "after the revert the counter is at $first (snapshot between $before and $at, later $later)"
	tail -c +"$from" "$log" | head -n 20
fi
wait_count last_count "$from" $((first + 5)) 60 && ok "and it keeps counting" || bad "stopped after the revert"
"$tv" snapshot delete sn s1 >/dev/null && [ ! -e "$mem" ] &&
	ok "delete removes the memory file" || bad "snapshot delete"

[ $fails -eq 0 ] && echo "snapshot-linux: all passed" && exit 0
echo "snapshot-linux: $fails failed"
exit 1
