#!/bin/bash
# virtio-net judged by Debian's kernel (virtio_pci, virtio_net), one VM on
# a small test switch (net-test-switch.py, the NIC protocol of
# vswitch_proto.h) that has a host at 10.0.0.254 answering ARP and ping:
#   - the guest sees the configured MAC, its link up, two queue pairs;
#   - it pings the host;
#   - the switch is killed and started again: the guest sees its link go
#     down and come back, and pings again (the NIC reconnected);
#   - `termvisor vm nic-link` sets the link down and up (carrier follows);
#   - the control socket's stats count the NIC's frames.
# KVM when the host has it (auto), else the software CPU.
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
command -v python3 >/dev/null || { echo "python3 is missing"; exit 77; }
swpid=
vmpid=
vm_sandbox	# the VM runs under `tv run`: vmpid
mkdir -m 700 "$XDG_RUNTIME_DIR/termvisor"
LOG=$tmp/console
sock=$XDG_RUNTIME_DIR/termvisor/vswitch0.vswitch
sandbox_hook() {
	[ -n "$vmpid" ] && kill "$vmpid" 2>/dev/null
	[ -n "$swpid" ] && kill "$swpid" 2>/dev/null
	wait 2>/dev/null
}
switch_up() {
	python3 "$(dirname "$0")/net-test-switch.py" "$sock" \
		--host lan:10.0.0.254 &
	swpid=$!
	for ((i = 0; i < 50; i++)); do [ -S "$sock" ] && return; sleep 0.1; done
	fail "the test switch did not start"
}
# wait_for PATTERN SECONDS: a line that starts with PATTERN (the kernel
# echoes its command line, which holds the patterns too).
wait_for() {
	[ -n "${NET_DEBUG:-}" ] && echo "$SECONDS: waiting for $1" >&2
	for ((i = 0; i < $2 * 10; i++)); do
		grep -q -- "^$1" "$LOG" && return 0
		kill -0 "$vmpid" 2>/dev/null || break
		sleep 0.1
	done
	fail "no '$1' from the guest"
}

# w V NAME: wait (20 s at most) for the carrier to be V, say NAME=carrier.
cmd='c() { cat /sys/class/net/eth0/carrier; };'
cmd="$cmd w() { for i in \$(seq 100); do [ \$(c) = \$1 ] && break; sleep 0.2; done; echo \$2=\$(c); };"
cmd="$cmd p() { ping -c \$1 -W 5 10.0.0.254 >/dev/null && echo \$2; };"
cmd="$cmd ip link set eth0 up; ip addr add 10.0.0.1/24 dev eth0;"
cmd="$cmd echo MAC=\$(cat /sys/class/net/eth0/address) Q=\$(ls /sys/class/net/eth0/queues);"
cmd="$cmd w 1 CARRIER; p 2 PING1-OK; w 0 RESTART-DOWN; w 1 RESTART-UP;"
cmd="$cmd p 2 PING2-OK; w 0 ADMIN-DOWN; w 1 ADMIN-UP; p 1 PING3-OK;"
cmd="$cmd w 0 BYE"

switch_up
: >"$LOG"
"$tv" run --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" \
	--append "console=ttyS0 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$cmd")" \
	--cpus 2 --memory 256M --nic lan,mac=52:54:00:12:34:56 \
	</dev/null >"$LOG" 2>&1 &
vmpid=$!

wait_for PING1-OK 120
grep -q '^MAC=52:54:00:12:34:56 Q=rx-0 rx-1 tx-0 tx-1' "$LOG" ||
	fail "MAC or queue pairs"
grep -q '^CARRIER=1' "$LOG" || fail "link not up"
kill "$swpid"; wait "$swpid" 2>/dev/null
wait_for RESTART-DOWN=0 30
switch_up
wait_for PING2-OK 60
grep -q '^RESTART-UP=1' "$LOG" || fail "link not back after the restart"

"$tv" vm nic-link "pid-$vmpid" 0 down | grep -q 'nic0 link down' ||
	fail "vm nic-link down"
wait_for ADMIN-DOWN=0 30
"$tv" vm nic-link "pid-$vmpid" 0 up | grep -q 'nic0 link up' ||
	fail "vm nic-link up"
wait_for PING3-OK 60
"$tv" vm nic-link "pid-$vmpid" 3 down >/dev/null 2>&1 && fail "nic-link of a NIC the VM lacks"

"$tv" vm stats --json "pid-$vmpid" >"$tmp/stats" || fail "vm stats"
python3 - "$tmp/stats" <<'EOF' || fail "NIC counters in stats"
import json, sys
d = [x for x in json.load(open(sys.argv[1]))["devices"] if x["kind"] == "net"]
assert len(d) == 1 and d[0]["name"] == "net0", d
# at least the five pings and their answers
assert d[0]["tx_ops"] >= 5 and d[0]["rx_ops"] >= 5, d
assert d[0]["tx_bytes"] > 5 * 98 and d[0]["rx_bytes"] > 5 * 98, d
EOF
# The guest leaves when its link goes down once more.
"$tv" vm nic-link "pid-$vmpid" 0 down >/dev/null || fail "last nic-link"
wait "$vmpid"
RC=$?
vmpid=
[ $RC -eq 0 ] || fail "exit status $RC"
exit 0
