#!/bin/bash
# Live migration between two network namespaces as two hosts: the source
# VM runs in one, the destination listens on the other's address, joined
# by a veth pair; tcp:// with a shared secret between them.  The small
# test guest (halted once it has reported) keeps this fast.
set -u
BUILD=${BUILD:-build}
tv=$(readlink -f "$BUILD/termvisor")
g=$(readlink -f "$BUILD/guests/multiboot.elf")
[ -r "$g" ] || { echo "test guests not built (make test-guests)"; exit 77; }
[ "$(id -u)" -eq 0 ] && command -v ip >/dev/null ||
	{ echo "needs root and iproute2 for network namespaces"; exit 77; }
a=tvma$$ b=tvmb$$
ip netns add "$a" 2>/dev/null || { echo "cannot create network namespaces here"; exit 77; }
ip netns add "$b"
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$a" 2>/dev/null; ip netns del "$b" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
ip link add "va$$" netns "$a" type veth peer name "vb$$" netns "$b" || fail "veth"
ip -n "$a" addr add 10.251.0.1/24 dev "va$$"
ip -n "$b" addr add 10.251.0.2/24 dev "vb$$"
for n in "$a" "$b"; do ip -n "$n" link set lo up; done
ip -n "$a" link set "va$$" up
ip -n "$b" link set "vb$$" up
printf 'netns secret\n' >"$tmp/secret"

ip netns exec "$a" "$tv" run --accel bt -m 64M --kernel "$g" </dev/null >"$tmp/src.out" 2>&1 &
src=$!
pids+=("$src")
ip netns exec "$b" "$tv" run --accel bt -m 64M --kernel "$g" \
	--incoming tcp:10.251.0.2:4444 --secret-file "$tmp/secret" </dev/null >"$tmp/dst.out" 2>&1 &
dst=$!
pids+=("$dst")
for i in $(seq 60); do grep -q halting "$tmp/src.out" && break; sleep 0.5; done
grep -q halting "$tmp/src.out" || fail "the guest did not report"
# The destination is not reachable from this (the host's) namespace:
# only from the source's, through the veth.
ip netns exec "$a" timeout 60 "$tv" migrate -q "pid-$src" tcp://10.251.0.2:4444 \
	--secret-file "$tmp/secret" >"$tmp/m.out" 2>&1 || fail "migration failed: $(cat "$tmp/m.out")"
grep -q "^migrated" "$tmp/m.out" || fail "no migrated line"
wait "$src"
[ $? -eq 0 ] || fail "the source did not exit 0"
sleep 0.5
"$tv" vm status "pid-$dst" | grep -q running || fail "the destination does not run the VM"
cat "$tmp/m.out"
echo "PASS: migrate-netns"
