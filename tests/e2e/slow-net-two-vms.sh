#!/bin/bash
# Two reference guests on the real switch (`termvisor switch`, started on
# demand by the first VM's NIC), on the software CPU:
#   - A and B share port group "lan": A pings B and sends it a file with
#     busybox nc; B's checksum of what arrived must equal A's;
#   - A's second NIC is on "pga", B's on "pgb", same subnet: A's pings
#     to B there must all go unanswered (port groups never mix);
#   - `termvisor switch capture lan` records the exchange, and tshark
#     (Wireshark's reader) finds the ICMP echoes and the TCP transfer in
#     the pcap, and nothing of the 10.9.0.0/24 traffic;
#   - the VM's stats count the frames;
#   - the switch is stopped and started again: both NICs reconnect, and
#     A reaches B once more (a second nc).
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
for t in python3 tshark; do
	command -v "$t" >/dev/null || { echo "$t is missing"; exit 77; }
done
tv=$(realpath "$tv")
pids=()
vm_sandbox	# the VMs run under `tv run`, in pids
export TERMVISOR_BIN=$tv
mkdir -m 700 "$XDG_RUNTIME_DIR/termvisor"
LOG=$tmp/a.console
# The VMs, then the switch their NICs started (by its lock file's pid).
sandbox_hook() {
	local f

	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	"$tv" switch stop >/dev/null 2>&1
	for f in "$XDG_RUNTIME_DIR"/termvisor/*.vswitch.lock; do
		[ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	wait 2>/dev/null
}
# wait_for FILE PATTERN SECONDS: a line of FILE starts with PATTERN (the
# kernel echoes its command line, which holds the patterns too).
wait_for() {
	for ((i = 0; i < $3 * 5; i++)); do
		grep -q -- "^$2" "$1" && return 0
		sleep 0.2
	done
	LOG=$1 fail "no '$2' from the guest in $3 s"
}
vm() {	# vm CONSOLE COMMAND NIC...
	local out=$1 cmd=$2 nics=()
	shift 2
	for n in "$@"; do nics+=(--nic "$n"); done
	"$tv" run --accel bt --kernel "$guest/vmlinuz" \
		--initrd "$guest/initrd.img" --memory 256M \
		--append "console=ttyS0 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$cmd")" \
		"${nics[@]}" </dev/null >"$out" 2>&1 &
	pids+=($!)
}

up='ip link set eth0 up; ip link set eth1 up;'
# B: serve one file, then a word after the switch's restart.
b="$up ip addr add 10.0.0.2/24 dev eth0; ip addr add 10.9.0.2/24 dev eth1;"
b="$b echo B-READY; nc -l -p 5000 >/tmp/f; echo B-SUM \$(md5sum </tmp/f);"
b="$b nc -l -p 5001 >/tmp/g; echo B-BYE \$(cat /tmp/g)"
# A: ping B (until B is up), send the file, then try B's other address.
a="$up ip addr add 10.0.0.1/24 dev eth0; ip addr add 10.9.0.1/24 dev eth1;"
a="$a for i in \$(seq 120); do ping -c 1 -W 1 10.0.0.2 >/dev/null && break; done;"
a="$a ping -c 3 -W 2 10.0.0.2 >/dev/null && echo PING-OK;"
a="$a dd if=/dev/urandom of=/tmp/f bs=1024 count=300 2>/dev/null;"
a="$a echo A-SUM \$(md5sum </tmp/f); nc 10.0.0.2 5000 </tmp/f; echo NC-DONE;"
a="$a ping -c 3 -W 1 10.9.0.2 >/dev/null && echo LEAKED || echo ISOLATED;"
# ... then, across the switch's restart, say bye on port 5001.
a="$a c() { cat /sys/class/net/eth0/carrier; };"
a="$a for i in \$(seq 300); do [ \$(c) = 0 ] && break; sleep 0.2; done; echo SW-DOWN=\$(c);"
a="$a for i in \$(seq 300); do [ \$(c) = 1 ] && break; sleep 0.2; done; echo SW-UP=\$(c);"
a="$a for i in \$(seq 60); do echo bye-after-restart | nc 10.0.0.2 5001 && break; sleep 1; done;"
a="$a echo A-DONE"

vm "$tmp/b.console" "$b" lan,mac=52:54:00:00:00:0b pgb,mac=52:54:00:00:01:0b
bpid=${pids[0]}
# B's NIC started the switch: capture "lan" before A talks.
sock=$XDG_RUNTIME_DIR/termvisor/vswitch0.vswitch
for ((i = 0; i < 100; i++)); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || LOG=$tmp/b.console fail "the NIC did not start the switch"
for ((i = 0; i < 50; i++)); do
	"$tv" switch show --json 2>/dev/null | grep -q '"lan"' && break
	sleep 0.2
done
"$tv" switch capture lan -w "$tmp/lan.pcap" >"$tmp/capture.log" 2>&1 &
cpid=$!
pids+=($cpid)
vm "$LOG" "$a" lan,mac=52:54:00:00:00:0a pga,mac=52:54:00:00:01:0a
apid=${pids[2]}

wait_for "$tmp/b.console" B-READY 300
wait_for "$LOG" PING-OK 300
wait_for "$LOG" NC-DONE 120
wait_for "$tmp/b.console" B-SUM 60
asum=$(grep '^A-SUM' "$LOG" | cut -d' ' -f2)
bsum=$(grep '^B-SUM' "$tmp/b.console" | cut -d' ' -f2)
[ -n "$asum" ] && [ "$asum" = "$bsum" ] ||
	fail "file differs: sent $asum, received $bsum"
wait_for "$LOG" ISOLATED 60

"$tv" vm stats --json "pid-$bpid" >"$tmp/stats" || fail "vm stats"
python3 - "$tmp/stats" <<'EOF' || fail "B's NIC counters"
import json, sys
d = {x["name"]: x for x in json.load(open(sys.argv[1]))["devices"]
     if x["kind"] == "net"}
assert set(d) == {"net0", "net1"}, d
assert d["net0"]["rx_bytes"] >= 300 * 1024, d	# the file came in on lan
assert d["net1"]["rx_ops"] < 20, d		# pga's pings did not
EOF

# End the capture (SIGINT: the switch completes the file) and read it.
kill -INT "$cpid"
for ((i = 0; i < 50; i++)); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.2; done
[ -s "$tmp/lan.pcap" ] || { cat "$tmp/capture.log"; fail "no capture file"; }
echo_req=$(tshark -r "$tmp/lan.pcap" -Y 'icmp.type == 8 && ip.src == 10.0.0.1 && ip.dst == 10.0.0.2' 2>/dev/null | wc -l)
echo_rep=$(tshark -r "$tmp/lan.pcap" -Y 'icmp.type == 0 && ip.src == 10.0.0.2' 2>/dev/null | wc -l)
tcp=$(tshark -r "$tmp/lan.pcap" -Y 'tcp.dstport == 5000 && ip.dst == 10.0.0.2' -T fields -e tcp.len 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
other=$(tshark -r "$tmp/lan.pcap" -Y 'ip.addr == 10.9.0.0/24' 2>/dev/null | wc -l)
[ "$echo_req" -ge 3 ] && [ "$echo_rep" -ge 3 ] ||
	fail "pcap: $echo_req echo requests, $echo_rep replies"
[ "$tcp" -ge $((300 * 1024)) ] || fail "pcap: $tcp TCP payload bytes to port 5000"
[ "$other" -eq 0 ] || fail "pcap: $other frames of the other port groups on lan"
biggest=$(tshark -r "$tmp/lan.pcap" -T fields -e frame.len 2>/dev/null | sort -n | tail -1)
echo "ok: file $asum through the switch; pcap: $echo_req echo requests," \
	"$echo_rep replies, $tcp TCP bytes, none of the other port groups;" \
	"largest frame $biggest bytes"

# The switch goes away and comes back: the NICs find it again.
"$tv" switch stop >/dev/null || fail "switch stop"
wait_for "$LOG" SW-DOWN=0 60
"$tv" switch run --daemon || fail "switch run"
wait_for "$LOG" SW-UP=1 60
wait_for "$tmp/b.console" "B-BYE bye-after-restart" 120
wait "$apid" || LOG=$LOG fail "A exited with $?"
wait "$bpid" || LOG=$tmp/b.console fail "B exited with $?"
pids=()
exit 0
