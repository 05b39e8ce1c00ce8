#!/bin/bash
# Live migration of a small test guest (the multiboot guest, halted once
# it has reported) over tcp://, on the software CPU and, where /dev/kvm
# works, on KVM: the source exits 0 after "migrated", the destination
# runs the VM (its control socket says so) and refuses nothing; the CLI's
# usage errors and a destination without a secret are refused clearly.
# The guest that keeps counting is slow-migrate-tcp.sh.
set -u
BUILD=${BUILD:-build}
tv=$BUILD/termvisor
g=$BUILD/guests/multiboot.elf
[ -r "$g" ] || { echo "test guests not built (make test-guests)"; exit 77; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
printf 'halted guest secret\n' >"$tmp/secret"

# Usage errors.
"$tv" migrate >/dev/null 2>&1; [ $? -eq 2 ] || fail "no arguments: not a usage error"
"$tv" migrate --help | grep -q "ssh://" || fail "--help says nothing of ssh://"
"$tv" migrate some-vm tcp://127.0.0.1:1 2>"$tmp/e" ; [ $? -eq 2 ] || fail "tcp:// without a secret accepted"
grep -q "secret-file" "$tmp/e" || fail "no hint at --secret-file: $(cat "$tmp/e")"
"$tv" migrate some-vm http://x --secret-file "$tmp/secret" 2>"$tmp/e"; [ $? -eq 2 ] || fail "http:// accepted"
"$tv" migrate no-such-vm-here tcp://127.0.0.1:1 --secret-file "$tmp/secret" 2>/dev/null
[ $? -eq 1 ] || fail "a VM that does not run: not status 1"
"$tv" run --kernel "$g" --incoming tcp:1 </dev/null >"$tmp/e" 2>&1
grep -q "secret-file" "$tmp/e" || fail "--incoming tcp: without a secret: $(cat "$tmp/e")"

accels=(bt)
# A halted guest costs little even where KVM itself emulates (no VMX).
if [ -w /dev/kvm ]; then accels+=(kvm); fi
for accel in "${accels[@]}"; do
	p=$(port)
	"$tv" run --accel "$accel" -m 64M --kernel "$g" </dev/null >"$tmp/src.out" 2>&1 &
	src=$!
	pids+=("$src")
	"$tv" run --accel "$accel" -m 64M --kernel "$g" --incoming "tcp:$p" \
		--secret-file "$tmp/secret" </dev/null >"$tmp/dst.out" 2>&1 &
	dst=$!
	pids+=("$dst")
	for i in $(seq 60); do grep -q halting "$tmp/src.out" && break; sleep 0.5; done
	grep -q halting "$tmp/src.out" || fail "[$accel] the guest did not report"
	timeout 60 "$tv" migrate -q "pid-$src" "tcp://127.0.0.1:$p" \
		--secret-file "$tmp/secret" >"$tmp/m.out" 2>&1 ||
		fail "[$accel] migration failed: $(cat "$tmp/m.out")"
	grep -q "^migrated pid-$src" "$tmp/m.out" || fail "[$accel] no migrated line"
	wait "$src"
	[ $? -eq 0 ] || fail "[$accel] the source did not exit 0"
	sleep 0.5
	"$tv" vm status "pid-$dst" >"$tmp/st" 2>&1 || fail "[$accel] the destination does not answer: $(cat "$tmp/st")"
	grep -q "running" "$tmp/st" || fail "[$accel] destination: $(cat "$tmp/st")"
	grep -q "accel:  *$accel" "$tmp/st" || fail "[$accel] destination: $(cat "$tmp/st")"
	kill "$dst"
	echo "ok $accel: $(cat "$tmp/m.out")"
done
echo "PASS: migrate-halted"
