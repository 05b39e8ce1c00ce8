#!/bin/bash
# The dashboard's network side with two reference guests on the switch
# (software CPU), driven in tmux at 80x24 like a person:
#   - s starts both VMs (their NICs start the switch on demand); ga
#     pings gb over port group "lan";
#   - w shows the switch, "lan" and both VMs' ports with their MACs and
#     packet rates that move;
#   - C on "lan" with the filter "icmp" captures the pings; C stops it;
#     tshark reads echo requests from ga and replies from gb, nothing else;
#   - l on ga takes its link down: the guest sees its carrier go (and
#     its pings stop reaching gb), l again brings it back.
set -u
. "$(dirname "$0")/linux-lib.sh"
. "$(dirname "$0")/tui-lib.sh"
need_guest
for c in tmux tshark python3; do
	command -v $c >/dev/null || { echo "$c is not installed"; exit 77; }
done
tvabs=$(cd "$(dirname "$tv")" && pwd)/$(basename "$tv")
vm_sandbox ga gb
export TERMVISOR_BIN=$tvabs
# The dashboard's tmux, and the switch by the pid in its lock file.
sandbox_hook() {
	local f

	t kill-server 2>/dev/null
	for f in "$XDG_RUNTIME_DIR"/termvisor/*.vswitch.lock; do
		[ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
}
# wait_for REGEX SECONDS: the pane shows a line matching REGEX; or show it.
wait_for() { wait_screen "$1" "$2" || { show_screen; return 1; }; }
# log_wait VM PATTERN SECONDS: the VM's console (its log) has PATTERN
log_wait() {
	for ((i = 0; i < $3 * 2; i++)); do
		grep -aq -- "$2" "$TERMVISOR_DATASTORE/$1/$1.log" 2>/dev/null &&
			return 0
		sleep 0.5
	done
	LOG=$TERMVISOR_DATASTORE/$1/$1.log fail "no '$2' from $1 in $3 s"
}
mk() {	# mk NAME MAC COMMAND
	"$tvabs" vm create "$1" --kernel "$guest/vmlinuz" \
		--initrd "$guest/initrd.img" --memory 256M --accel bt \
		--nic "lan,mac=$2" --append "console=ttyS0 panic=-1 tv.quiet=1 \
cryptomgr.notests=1 tv.run=$(tv_enc "$3")" >/dev/null || fail "vm create $1"
}
# ga pings gb five times a second and says when its carrier changes.
mk ga 52:54:00:00:0a:01 'ip link set eth0 up; ip addr add 10.0.0.1/24 dev eth0; echo GA-UP; c=x; while :; do n=$(cat /sys/class/net/eth0/carrier 2>/dev/null); [ "$n" != "$c" ] && echo "GA-CARRIER=$n" && c=$n; ping -c 1 -W 1 10.0.0.2 >/dev/null 2>&1; sleep 0.2; done'
mk gb 52:54:00:00:0b:01 'ip link set eth0 up; ip addr add 10.0.0.2/24 dev eth0; echo GB-UP; while :; do sleep 10; done'

t new-session -d -s tui -x 80 -y 24 -c "$tmp" \
	"env TERM=vt100 NO_COLOR=1 '$tvabs'; sleep 600"
wait_for '^gb +stopped' 10 || fail "the dashboard does not list ga and gb"
t send-keys -t tui s
wait_for '^ga +running' 30 || fail "s did not start ga"
t send-keys -t tui j s
wait_for '^gb +running' 30 || fail "s did not start gb"
log_wait ga GA-UP 300
log_wait gb GB-UP 300
log_wait ga GA-CARRIER=1 60
echo "ok: both guests up"

t send-keys -t tui w
wait_for '^vswitch0 +running +up .* 2 ports' 20 || fail "w: no running switch with 2 ports"
wait_for '^  lan +no vlan +2 ports' 10 || fail "w: no port group lan"
# ga's port: echo requests in, replies out, both at a few a second.
wait_for '^    ga:net0 +nic +52:54:00:00:0a:01 +[1-9][0-9]* +[1-9][0-9]* ' 120 ||
	fail "ga's port shows no traffic"
wait_for '^    gb:net0 +nic +52:54:00:00:0b:01 +[1-9][0-9]* +[1-9][0-9]* ' 30 ||
	fail "gb's port shows no traffic"
echo "ok: the switch view shows both VMs' ports with moving packet rates"

t send-keys -t tui j C
wait_for 'Capture to pcap file for vswitch0' 10 || fail "C did not ask for a file"
t send-keys -t tui -l 'pings.pcap'
t send-keys -t tui Enter
wait_for 'BPF filter' 10 || fail "no filter question"
t send-keys -t tui -l 'icmp'
t send-keys -t tui Enter
wait_for '\[capture lan: [1-9][0-9]*\]' 60 || fail "the capture counts no frame"
sleep 3
t send-keys -t tui C
wait_for 'capture of lan ended: [1-9][0-9]* frames written' 30 || fail "C did not stop the capture"
rows=$(tshark -r "$tmp/pings.pcap" -T fields -e ip.src -e ip.dst -e icmp.type 2>"$tmp/tshark.err") ||
	fail "tshark cannot read the capture: $(cat "$tmp/tshark.err")"
grep -q $'^10.0.0.1\t10.0.0.2\t8$' <<<"$rows" || fail "no echo request from ga: $rows"
grep -q $'^10.0.0.2\t10.0.0.1\t0$' <<<"$rows" || fail "no echo reply from gb: $rows"
grep -vq $'\t[08]$' <<<"$rows" && fail "frames other than pings: $(grep -v $'\t[08]$' <<<"$rows" | head -3)"
echo "ok: the capture from the dashboard holds ga's pings and gb's replies ($(wc -l <<<"$rows") frames)"

t send-keys -t tui w
wait_for '^NAME +STATE' 10 || fail "w did not go back to the list"
t send-keys -t tui k l
wait_for 'ga: nic0 link down' 20 || fail "l did not take ga's link down"
log_wait ga GA-CARRIER=0 60
t send-keys -t tui l
wait_for 'ga: nic0 link up' 20 || fail "l again did not bring it up"
# the second GA-CARRIER=1
for ((i = 0; i < 120; i++)); do
	[ "$(grep -ac GA-CARRIER=1 "$TERMVISOR_DATASTORE/ga/ga.log")" -ge 2 ] && break
	sleep 0.5
done
[ "$(grep -ac GA-CARRIER=1 "$TERMVISOR_DATASTORE/ga/ga.log")" -ge 2 ] ||
	LOG=$TERMVISOR_DATASTORE/ga/ga.log fail "the guest did not see its carrier come back"
echo "ok: l takes ga's link down and up, and the guest sees its carrier follow"
