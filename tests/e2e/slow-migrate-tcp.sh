#!/bin/bash
# Live migration over tcp:// between two termvisor processes on the
# software CPU, with the reference guest counting and dirtying memory:
# a destination with the wrong secret is refused and one killed mid-way
# leaves the source running; then a migration to a third one goes
# through, the counter continues with no gap or repeat, the guest's
# buffer checksum is unchanged and the source exits 0.
set -u
. "$(dirname "$0")/migrate-lib.sh"
need_guest

tmp=$(mktemp -d)
trap mig_cleanup EXIT
printf 'a secret for this test only\n' >"$tmp/secret"
printf 'another secret\n' >"$tmp/wrong"
vmargs=(--accel bt -m 128M --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" --append "$mig_append")

"$tv" run "${vmargs[@]}" </dev/null >"$tmp/src.out" 2>"$tmp/src.err" &
src=$!
mig_pids+=("$src")
LOG=$tmp/src.out
wait_file "$tmp/src.out" "count 5" 120 || fail "the guest did not start counting"

# 1. The destination knows another secret: refused, source untouched.
p=$(port)
"$tv" run "${vmargs[@]}" --incoming "tcp:$p" --secret-file "$tmp/wrong" \
	</dev/null >"$tmp/d1.out" 2>&1 &
mig_pids+=($!)
sleep 1
timeout 60 "$tv" migrate -q "pid-$src" "tcp://127.0.0.1:$p" --secret-file "$tmp/secret" \
	>"$tmp/m1.out" 2>&1
[ $? -eq 1 ] || fail "a migration with the wrong secret did not fail: $(cat "$tmp/m1.out")"
grep -q "secret" "$tmp/m1.out" || fail "no word about the secret: $(cat "$tmp/m1.out")"
kill -0 "$src" || fail "the source died"

# 2. The destination dies in the middle: the source keeps running.
p=$(port)
"$tv" run "${vmargs[@]}" --incoming "tcp:$p" --secret-file "$tmp/secret" \
	</dev/null >"$tmp/d2.out" 2>&1 &
d2=$!
mig_pids+=("$d2")
sleep 1
timeout 60 "$tv" migrate "pid-$src" "tcp://127.0.0.1:$p" --secret-file "$tmp/secret" \
	--bandwidth 4M >"$tmp/m2.out" 2>&1 &
m2=$!
wait_file "$tmp/m2.out" "MiB sent, round 1" 30 || fail "no progress: $(cat "$tmp/m2.out")"
kill -9 "$d2"
wait "$m2"
[ $? -eq 1 ] || fail "the migration did not fail when the destination died: $(cat "$tmp/m2.out")"
n=$(mig_counts "$tmp/src.out" | tail -n 1)
wait_file "$tmp/src.out" "count $((n + 3))" 60 || fail "the source stopped counting after the failure"
kill -0 "$src" || fail "the source died"

# 3. A good destination: the VM moves.
p=$(port)
"$tv" run "${vmargs[@]}" --incoming "tcp:$p" --secret-file "$tmp/secret" \
	</dev/null >"$tmp/dst.out" 2>"$tmp/dst.err" &
mig_pids+=($!)
sleep 1
timeout 120 "$tv" migrate "pid-$src" "tcp://127.0.0.1:$p" --secret-file "$tmp/secret" \
	--max-downtime 300 >"$tmp/m3.out" 2>&1 || fail "migration failed: $(cat "$tmp/m3.out")"
cat "$tmp/m3.out"
grep -q "^migrated pid-$src" "$tmp/m3.out" || fail "no migrated line"
timeout 30 tail --pid="$src" -f /dev/null || fail "the source did not end"
wait "$src"
[ $? -eq 0 ] || fail "the source's exit status is not 0"
LOG=$tmp/dst.out
first=$(mig_counts "$tmp/dst.out" | head -n 1)
wait_file "$tmp/dst.out" "count $((${first:-0} + 25))" 90 || fail "the destination does not count on"
mig_check "$tmp/src.out" "$tmp/dst.out"
echo "PASS: slow-migrate-tcp"
