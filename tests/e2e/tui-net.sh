#!/bin/bash
# The dashboard's network keys, in tmux at 80x24 with TERM=vt100 and
# NO_COLOR, against a real switch and a real VM (the multiboot test guest
# with a NIC: no guest driver needed for what is checked here):
#   - l toggles the VM's NIC link: the detail view shows it DOWN then up,
#     and the VM's control socket (nic-link) agrees;
#   - w shows the switch, its port group and the ports of two "VMs"
#     (synthetic NICs sending traffic) with their MACs and moving rates;
#     a switch that never answers shows as unresponsive, the keys work;
#   - C on the port group captures to a pcap file with a BPF filter, C
#     stops it, and tshark reads the frames back (only those filtered);
#   - m with tcp:// asks the secret, X cancels the migration (the
#     destination never answers): the row says "cancelled", the VM runs;
#   - a VM whose guest panicked shows "panicked", one in a state this
#     version does not know shows that state (both fake control sockets).
set -u
cd "$(dirname "$0")/../.."
. tests/e2e/vswitch-lib.sh
. tests/e2e/tui-lib.sh
guest=$(realpath "${BUILD:-build}/guests/multiboot.elf" 2>/dev/null)
command -v tmux >/dev/null || { echo "tmux not installed"; exit 77; }
command -v tshark >/dev/null || { echo "tshark not installed"; exit 77; }
[ -r "$guest" ] || { echo "multiboot test guest not built"; exit 77; }
export TERMVISOR_BIN=$tv
pids=()
vsw_cleanup_hooks+=('"$tv" vm stop --force t1 >/dev/null 2>&1'
	'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done'
	't kill-server 2>/dev/null')
# nic_link: what the VM's control socket says of nic0's link
nic_link() {
	python3 - "$XDG_RUNTIME_DIR/termvisor/t1.sock" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.readline()	# the greeting
f.write(json.dumps({"id": 1, "cmd": "nic-link", "args": {"nic": 0}}) + "\n")
f.flush()
while True:
    r = json.loads(f.readline())
    if r.get("id") == 1:
        print("up" if r["result"]["link"] else "down")
        break
EOF
}

"$tv" switch run --daemon || bad "switch run"
"$tv" vm create t1 --memory 64M --kernel "$guest" \
	--nic lan,mac=52:54:00:12:34:56 >/dev/null || { echo "FAIL vm create"; exit 1; }
# Two "VMs" on lan talking to each other: UDP both ways, ~50 frames/s.
python3 - <<'EOF' &
from vswitch_nic import *
import time
a, b = Nic("lan", 1, vm="vma"), Nic("lan", 2, vm="vmb")
i = 0
while True:
    a.send(b.mac, ipv4_udp("10.0.0.1", "10.0.0.2", 4000, 53, b"q%d" % i))
    b.send(a.mac, ipv4_udp("10.0.0.2", "10.0.0.1", 53, 4000, b"r%d" % i))
    a.send(b.mac, ipv4_udp("10.0.0.1", "10.0.0.2", 4001, 9999, b"x%d" % i))
    a.drain(0.005); b.drain(0.005)
    i += 1
    time.sleep(0.02)
EOF
pids+=($!)
# A switch whose control socket accepts and never answers.
hung_socket "$XDG_RUNTIME_DIR/termvisor/zzhung.vswitch.ctl"
pids+=($!)

# Two VMs whose control sockets are fakes: one says its guest panicked
# (state and event, as a pvpanic device makes it), one a state this
# dashboard does not know.
for v in zz-panic zz-new zz-late; do
	"$tv" vm create $v --memory 64M --kernel "$guest" >/dev/null ||
		{ echo "FAIL vm create $v"; exit 1; }
done
fake_vm() {	# fake_vm NAME STATE
	exec python3 - "$XDG_RUNTIME_DIR/termvisor/$1.sock" "$1" "$2" <<'EOF'
import json, select, socket, sys
path, name, state = sys.argv[1:]
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(4)
conns = {}
def send(c, o):
    c.sendall((json.dumps(o) + "\n").encode())
while True:
    r, _, _ = select.select([s] + list(conns), [], [])
    for c in r:
        if c is s:
            n, _ = s.accept()
            conns[n] = b""
            send(n, {"termvisor": {"version": "9.9", "protocol": 1},
                     "vm": name, "state": state})
            if state == "panicked":
                send(n, {"event": "guest-panic", "kind": "panicked",
                         "action": "pause", "paused": True})
            continue
        d = c.recv(65536)
        if not d:
            del conns[c]; c.close(); continue
        conns[c] += d
        while b"\n" in conns[c]:
            l, conns[c] = conns[c].split(b"\n", 1)
            q = json.loads(l)
            send(c, {"id": q.get("id"), "ok": True, "result": {
                "name": name, "state": state, "memory": 64 << 20,
                "uptime": 5.0, "vcpus": [], "devices": []}})
EOF
}
fake_vm zz-panic panicked &
pids+=($!)
fake_vm zz-new hibernating &
pids+=($!)

t new-session -d -s tui -x 80 -y 24 -c "$tmp" \
	"env TERM=vt100 NO_COLOR=1 '$tv'; echo \$? >'$tmp/rc'; sleep 600"
expect "the dashboard lists t1" '^t1 +stopped'
expect "the help line has the new keys" 'X cancel +l link +w switches'
t send-keys -t tui s
expect "s: t1 runs" '^t1 +running' 20

# l: the link goes down, and up again.
t send-keys -t tui Enter
expect "the detail view lists the NIC" '^nic0 +52:54:00:12:34:56 +lan +up$'
t send-keys -t tui l
expect "l: the link is down in the detail view" '^nic0 +52:54:00:12:34:56 +lan +DOWN$'
expect "... and on the status line" 't1: nic0 link down'
[ "$(nic_link)" = down ] && ok "the VM says down too" || bad "nic-link says $(nic_link)"
t send-keys -t tui l
expect "l again: up" '^nic0 +52:54:00:12:34:56 +lan +up$'
[ "$(nic_link)" = up ] && ok "the VM says up too" || bad "nic-link says $(nic_link)"
# Set from the CLI: the view follows.
"$tv" vm nic-link t1 0 down >/dev/null || bad "vm nic-link"
expect "a change from the CLI shows" '^nic0 +52:54:00:12:34:56 +lan +DOWN$'
"$tv" vm nic-link t1 0 up >/dev/null
t send-keys -t tui Escape
expect "Esc: the list" '^NAME +STATE'

# w: the switch view.
t send-keys -t tui w
expect "w: the switch view" '^termvisor switches: 2'
expect "... the running switch" '^vswitch0 +running +up [0-9]+s +uplink none +3 ports$'
expect "... its port group" '^  lan +no vlan +3 ports'
expect "... t1's port, with its MAC" '^    t1:net0 +nic +52:54:00:12:34:56'
expect "... the two VMs' ports with rates" '^    vma:net0 +nic +52:54:00:00:00:01 +[0-9]+ +[0-9]+ +[0-9.]+[KM]? +[0-9.]+[KM]? +0$'
expect "... both" '^    vmb:net0 +nic +52:54:00:00:00:02 +[0-9]+ +[0-9]+ '
rate() { screen | awk '$1 == "vma:net0" { print $4 }'; }
r1=$(rate)
[ -n "$r1" ] && [ "$r1" -gt 0 ] 2>/dev/null && ok "vma receives $r1 packets/s" ||
	bad "vma's RX packets/s: '$r1'"
rx() { screen | awk '$1 == "vma:net0" { print $6 }'; }
expect "a switch that never answers is unresponsive" '^zzhung +unresponsive' 10
expect "the header at 80 columns" '^SWITCH/GROUP/PORT +KIND +MAC +RXpk/s +TXpk/s +RX B/s +TX B/s +DROPS$'

# C on lan: capture, with a filter, to a relative file (the dashboard's
# directory).
t send-keys -t tui j
t send-keys -t tui C
expect "C asks for the file" 'Capture to pcap file for vswitch0: _'
t send-keys -t tui -l 'lan.pcap'
t send-keys -t tui Enter
expect "... then the filter" 'BPF filter .* for vswitch0: _'
t send-keys -t tui -l 'udp port 53'
t send-keys -t tui Enter
expect "capturing" 'switch vswitch0: capturing lan to .*/lan.pcap'
expect "the switch row counts the frames" '^vswitch0 +running .* \[capture lan: [1-9][0-9]*\]$' 10
sleep 1
t send-keys -t tui C
expect "C again stops it" 'capture of lan ended: [1-9][0-9]* frames written to' 10
n=$(screen | sed -n 's/.*ended: \([0-9]*\) frames.*/\1/p')
rows=$(tshark -r "$tmp/lan.pcap" -T fields -e udp.srcport -e udp.dstport 2>/dev/null)
[ -n "$rows" ] && [ "$(wc -l <<<"$rows")" -eq "$n" ] &&
	ok "tshark reads the $n frames" ||
	bad "tshark: $(wc -l <<<"$rows") frames, the dashboard said $n"
grep -qv '53' <<<"$rows" && bad "frames the filter should have left out: $(grep -v 53 <<<"$rows" | head -3)" ||
	ok "... all of them port 53 (the filter)"
t send-keys -t tui C
t send-keys -t tui Escape
expect "C again, Esc: no capture started" '^cancelled'
t send-keys -t tui '?'
expect "? works in the switch view" 'captures the selected group'
t send-keys -t tui x
t send-keys -t tui w
expect "w: back to the VMs" '^NAME +STATE'

# m, tcp:// and its secret; the destination accepts and never answers,
# so the migration waits there until X cancels it.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])
    open(sys.argv[1], "w").write("accepted")
' "$tmp/accepted" >"$tmp/port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
t send-keys -t tui m
t send-keys -t tui -l "tcp://127.0.0.1:$(cat "$tmp/port")"
t send-keys -t tui Enter
expect "m asks whether the disks go too" 'Copy the disks too\? \(y/N\) for t1: _'
t send-keys -t tui n
expect "tcp:// asks the secret" 'Shared secret .* for t1: _'
t send-keys -t tui -l 'sekrit-42'
t send-keys -t tui Enter
expect "the migration starts" 't1: migrate to tcp://127.0.0.1:[0-9]+\.\.\.'
# The VM connected: its migration waits for the destination's answer.
for _ in $(seq 100); do [ -s "$tmp/accepted" ] && break; sleep 0.1; done
[ -s "$tmp/accepted" ] && ok "the VM connects to the destination" ||
	bad "the VM did not connect to the destination"
t send-keys -t tui X
expect "X: the row says cancelled" '^t1 +cancelled' 15
expect "... the status line the outcome" 't1: (migration cancelled|migrate to .*: cancelled)' 15
"$tv" vm status t1 2>&1 | grep -q 'state: *running' && ok "the source runs on" ||
	bad "vm status: $("$tv" vm status t1 2>&1)"
expect "the row goes back to running" '^t1 +running' 20
expect "a panicked guest shows as such" '^zz-panic +panicked ' 10
# A guest that panics while we look: its event says so.
fake_vm zz-late panicked &
pids+=($!)
expect "a guest-panic event goes on the status line" '^zz-late: THE GUEST PANICKED \(on_panic: pause\)' 10
expect "... and the row" '^zz-late +panicked ' 10
expect "a state this version does not know shows as the VM says" '^zz-new +hibernating ' 10

t send-keys -t tui q
for _ in $(seq 50); do [ -s "$tmp/rc" ] && break; sleep 0.1; done
[ "$(cat "$tmp/rc" 2>/dev/null)" = 0 ] && ok "q quits with status 0" ||
	bad "q: exit status '$(cat "$tmp/rc" 2>/dev/null)'"
finish
