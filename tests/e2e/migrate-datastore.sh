#!/bin/bash
# Live migration of a datastore VM (the multiboot test guest, halted once
# it has reported) over tcp:// on this host, where the lock moves with
# it.  A source with a lock commits without waiting for the destination's
# ready (termvisor.migrate(7)): a destination that then refuses the state
# (another device list: --display none) must leave the source running
# with its lock taken back.  A good destination gets the lock and runs
# the VM, the source exits 0, and migrate -v says where the downtime went.
# The VM's writable qcow2 disk is in the datastore too: its image locks
# go back to the source after the refusal and over to the destination
# after the good migration (qemu-img info, which wants them, fails).
set -u
. "$(dirname "$0")/sandbox-lib.sh"
need_test_guest multiboot.elf
pids=()
vm_sandbox g
sandbox_hook() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
fail() { echo "FAIL: $*"; exit 1; }
printf 'datastore migration secret\n' >"$tmp/s"
lease=$tmp/ds/g/lease
# The pid in the VM's lease file: who holds the lock.
holder() { grep -ao 'pid[^0-9]*[0-9]*' "$lease" 2>/dev/null | grep -o '[0-9]*$'; }

"$tv" vm create g --memory 64M --kernel "$kernel" --accel bt --new-disk 8M >/dev/null ||
	fail "vm create"
img=$tmp/ds/g/g-disk0.qcow2
[ -f "$img" ] || fail "no disk image $img"
locked() { ! qemu-img info "$img" >/dev/null 2>&1; }
locked && fail "qemu-img info cannot read the image of a VM that is not running"
"$tv" vm start g >/dev/null || fail "vm start"
wait_until 60 grep -q "checks [0-9]* passed, 0 failed" "$tmp/ds/g/g.log" ||
	fail "the guest did not report: $(tail -n 5 "$tmp/ds/g/g.log")"
src=$(holder)
[ -n "$src" ] && kill -0 "$src" || fail "no lock holder in $lease: $(cat "$lease")"

# 1. The destination refuses the state after the early commit.
p=$(port)
"$tv" run --display none --incoming "tcp:$p" --secret-file "$tmp/s" g \
	</dev/null >"$tmp/d1.out" 2>&1 &
pids+=($!)
sleep 1
"$tv" migrate -q g "tcp://127.0.0.1:$p" --secret-file "$tmp/s" >"$tmp/m1.out" 2>&1
[ $? -eq 1 ] || fail "a refused migration did not fail: $(cat "$tmp/m1.out")"
grep -q "refused.*device" "$tmp/m1.out" || fail "no reason: $(cat "$tmp/m1.out")"
"$tv" vm status g | grep -q "state: *running" || fail "the source is not running after the refusal"
[ "$(holder)" = "$src" ] || fail "the source does not hold the lock again (lease: $(cat "$lease"))"
locked || fail "the source does not hold its disk's image locks again"
echo "ok refused at load: the source runs on with its lock"

# 2. A good destination.
p=$(port)
"$tv" run --incoming "tcp:$p" --secret-file "$tmp/s" g </dev/null >"$tmp/d2.out" 2>&1 &
dst=$!
pids+=("$dst")
sleep 1
"$tv" migrate -q -v g "tcp://127.0.0.1:$p" --secret-file "$tmp/s" >"$tmp/m2.out" 2>&1 ||
	fail "the migration failed: $(cat "$tmp/m2.out")"
grep -q "^migrated g" "$tmp/m2.out" || fail "no migrated line: $(cat "$tmp/m2.out")"
grep -q "^downtime parts (ms): .*destination lock" "$tmp/m2.out" ||
	fail "migrate -v gave no breakdown: $(cat "$tmp/m2.out")"
wait_until 10 bash -c "! kill -0 $src 2>/dev/null" || fail "the source did not end"
wait_until 10 bash -c "[ \"\$(grep -ao 'pid[^0-9]*[0-9]*' '$lease' | grep -o '[0-9]*$')\" = $dst ]" ||
	fail "the destination does not hold the lock (lease: $(cat "$lease"))"
wait_until 10 bash -c "'$tv' vm status g | grep -q 'state: *running'" ||
	fail "the VM does not answer as running at the destination"
locked || fail "the destination does not hold the disk's image locks"
grep "^downtime parts" "$tmp/m2.out"
echo "PASS: migrate-datastore"
