#!/bin/bash
# Network benchmark (issue 6): iperf3 between two reference guests, side
# by side on termvisor and on QEMU, from one run on this host.
#
#   scripts/bench-net.sh BUILD_DIR
#	env: RUNTIME=5 (seconds per iperf3 test)  MEM=256M (per guest)
#	     ACCEL (termvisor: kvm where the host has VMX/SVM and /dev/kvm,
#	     else bt)  QACCEL (QEMU: kvm or tcg, chosen the same way)
#	     UDP_LEN=64 (UDP payload bytes of the small-frame test)
#
# What: guest A is the iperf3 client, guest B the server, both 1 vCPU.
#   tcp: one TCP stream A -> B for $RUNTIME s; the receiver's Mbit/s.
#   pps: UDP A -> B with $UDP_LEN-byte payloads and no rate limit
#        (-b 0), $RUNTIME s; datagrams B received per second (frames
#        on the wire are 64 + 42 bytes), and the share A sent that
#        were lost on the way (the rate A sent at is shown too).
#   cpu: CPU time the VM processes (and termvisor's switch) used per
#        second during the tcp test (2.00: both host cores busy), and
#        the tcp Mbit/s per such core: on a host shared with other
#        work, what each side got of the CPU varies from run to run,
#        and this ratio varies less than the plain one.
#   split: that CPU by thread kind: the guests' vCPU threads, the VM
#        processes' main threads (termvisor's event loop, which moves
#        the NIC's frames; QEMU's main loop), others (QEMU's helpers,
#        VNC) and termvisor's switch: what a faster NIC path (shared
#        memory rings instead of the socket) could save at most.
#   lo:  the tcp test over A's own loopback: no NIC, so this is the CPU
#        (termvisor's bt vs TCG) and the guest's stack alone; the ratio
#        of the tcp ratio to this one is what the NIC path costs.
# termvisor: both guests with `--nic portgroup=bench` on the host switch
#   (`termvisor switch`, started on demand by the first NIC) in a
#   private XDG_RUNTIME_DIR, stopped at the end.
# QEMU: -M pc, virtio-net-pci on a TAP device each (vhost off: userspace
#   virtio-net, what termvisor is measured against; no iPXE ROM, which
#   only slows the boot), both TAPs on one
#   Linux bridge inside a network namespace this script creates and
#   deletes; the host's own network is never touched.  Needs root; else
#   the QEMU column shows n/a with a message.
#
# The guests run iperf3 from a second initramfs built here: the reference
# guest's initrd.img with a cpio of the host's /usr/bin/iperf3, its
# libraries and the loader appended (as scripts/bench-disk.sh does for
# fio).  B sets its address and serves; A waits until B answers pings,
# then retries its first iperf3 until B's server accepts, so both boot at
# once.  The host reads the numbers from A's console.  Numbers come from
# the guests' own clocks (on a software CPU, their clocksource follows the
# host's).  Never pass/fail: a run that fails shows "n/a".
# ROUNDS=3 rounds, each termvisor then QEMU, and the table shows each
# test's median over the rounds (every round's figures are printed
# too): one sample swings by up to 2x on this kind of host, for QEMU as
# much as for termvisor (the scheduler, and the two guests' share of
# two cores), more than any change being measured; the load is printed
# with it.
set -u
build=${1:?usage: bench-net.sh BUILD_DIR}
tv=$(realpath "$build/termvisor")
runtime=${RUNTIME:-5}
rounds=${ROUNDS:-3}
mem=${MEM:-256M}
ulen=${UDP_LEN:-64}
guest=${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest
kernel=$guest/vmlinuz base_initrd=$guest/initrd.img
qemu=$(command -v qemu-system-x86_64 || true)
iperf=$(command -v iperf3 || true)

[ -n "$iperf" ] || { echo "bench-net: skipped: iperf3 not installed"; exit 0; }
if [ ! -r "$kernel" ] || [ ! -r "$base_initrd" ]; then
	echo "bench-net: skipped: reference guest missing (make guest)"; exit 0
fi
[ -x "$tv" ] || { echo "bench-net: skipped: $tv not built"; exit 0; }

hwvirt=no
grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ] && hwvirt=yes
if [ $hwvirt = yes ]; then def=kvm; defq=kvm; else def=bt; defq=tcg; fi
accel=${ACCEL:-$def}
qaccel=${QACCEL:-$defq}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tv-bench-net.XXXXXX") || exit 1
ns=tvbench$$
pids=()
cleanup() {
	local p f
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.5
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ -d "$tmp/run/termvisor" ]; then
		XDG_RUNTIME_DIR=$tmp/run "$tv" switch stop >/dev/null 2>&1
		for f in "$tmp"/run/termvisor/*.vswitch.lock; do
			[ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
		done
	fi
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
initrd=$tmp/initrd-iperf.img

# The guest's initramfs: the reference one plus a cpio of iperf3 and its
# libraries at their host paths.
mkinitrd() {
	local stage=$tmp/stage f real
	mkdir -p "$stage/usr/bin" || return 1
	cp -L "$iperf" "$stage/usr/bin/iperf3" || return 1
	for f in $(ldd "$iperf" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }'); do
		real=$(readlink -f "$f") || return 1
		mkdir -p "$stage$(dirname "$f")" && cp -L "$real" "$stage$f" || return 1
	done
	cp "$base_initrd" "$initrd" &&
		(cd "$stage" && find . -mindepth 1 | sed 's|^\./||' |
			cpio -o -H newc -R 0:0 --quiet) >>"$initrd"
}
mkinitrd || { echo "bench-net: cannot build the iperf3 initramfs"; exit 1; }

enc() { printf '%s' "$1" | sed 's/%/%25/g; s/+/%2B/g; s/ /+/g; s/"/%22/g'; }
up='ip link set lo up; ip link set eth0 up;'
# B: serve until the host ends it.
cmd_b="$up ip addr add 10.77.0.2/24 dev eth0; echo NET-B-SERVING; iperf3 -s"
# A: wait for B (both boot at once), then TCP and the small-frame UDP
# test; each line of the results is tagged so the host can find it.
cmd_a="$up ip addr add 10.77.0.1/24 dev eth0;"
cmd_a="$cmd_a for i in \$(seq 300); do ping -c 1 -W 1 10.77.0.2 >/dev/null && break; done;"
cmd_a="$cmd_a echo NET-A-TCP-START;"
cmd_a="$cmd_a for i in \$(seq 60); do iperf3 -c 10.77.0.2 -t $runtime -f m >/tmp/tcp 2>&1 && break; sleep 1; done;"
cmd_a="$cmd_a sed 's/^/TCP: /' /tmp/tcp;"
cmd_a="$cmd_a iperf3 -c 10.77.0.2 -u -b 0 -l $ulen -t $runtime -f m >/tmp/udp 2>&1;"
cmd_a="$cmd_a sed 's/^/UDP: /' /tmp/udp;"
# The same TCP test over A's loopback: the guest's CPU and network stack
# without any NIC, to tell a slow CPU from a slow NIC path.
cmd_a="$cmd_a iperf3 -s -1 -D -p 5202; sleep 1;"
cmd_a="$cmd_a iperf3 -c 127.0.0.1 -p 5202 -t $runtime -f m 2>&1 | sed 's/^/LO: /';"
cmd_a="$cmd_a echo NET-A-DONE"
append() { echo "console=ttyS0 panic=-1 quiet tv.quiet=1 tv.run=$(enc "$1")"; }

# Boot, two runtimes, and start-up retries: generous for two software
# CPUs sharing a loaded host.
limit=$(( 300 + 6 * runtime ))

# CPU time (clock ticks) of the VM processes (the children of the
# timeout(1)s in pids) and of any extra pids given (the switch).
cpu_ticks() {
	local p t=0 v
	for p in $(for q in "${pids[@]}"; do pgrep -P "$q"; done) "$@"; do
		v=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + ${v:-0}))
	done
	echo $t
}
# CPU ticks by thread kind: "vcpu main other extra" (extra: the extra
# pids given, the switch).  A vCPU thread is a termvisor thread other
# than the main one and VNC's, or a QEMU thread named "CPU n/..."
# (debug-threads=on names them).
split_ticks() {
	local p t comm v kind vc=0 mn=0 ot=0 ex=0
	for p in $(for q in "${pids[@]}"; do pgrep -P "$q"; done) "$@"; do
		for t in /proc/"$p"/task/*; do
			v=$(awk '{ print $14 + $15 }' "$t/stat" 2>/dev/null) || continue
			comm=$(cat "$t/comm" 2>/dev/null)
			if [[ " $* " == *" $p "* ]]; then kind=ex
			elif [ "${t##*/}" = "$p" ]; then kind=mn
			elif [[ "$comm" == CPU* ]] || [[ "$comm" == termvisor ]]; then kind=vc
			else kind=ot; fi
			case $kind in
			vc) vc=$((vc + ${v:-0})) ;; mn) mn=$((mn + ${v:-0})) ;;
			ot) ot=$((ot + ${v:-0})) ;; ex) ex=$((ex + ${v:-0})) ;;
			esac
		done
	done
	echo "$vc $mn $ot $ex"
}
# wait_done A_CONSOLE [EXTRA_PIDS]: until A's NET-A-DONE, A's exit or
# the time limit.  Meanwhile CPU[tcp] is set to the CPU the VMs (and
# extra pids) used per second of wall time during the TCP test: from
# A's NET-A-TCP-START to its TCP result lines (sampled every 0.2 s).
wait_done() {
	local i st=0 c0=0 w0=0 hz s0=""
	hz=$(getconf CLK_TCK)
	CPU[tcp]=
	CPU[split]=
	for ((i = 0; i < limit * 5; i++)); do
		if [ $st = 0 ] && grep -aq '^NET-A-TCP-START' "$1" 2>/dev/null; then
			c0=$(cpu_ticks "${@:2}"); w0=$(date +%s%N); st=1
			s0=$(split_ticks "${@:2}")
		elif [ $st = 1 ] && grep -aq '^TCP: ' "$1" 2>/dev/null; then
			CPU[tcp]=$(awk -v c="$(( $(cpu_ticks "${@:2}") - c0 ))" -v hz="$hz" \
				-v w="$(( $(date +%s%N) - w0 ))" 'BEGIN { if (w > 0) printf "%.2f", c / hz / (w / 1e9) }')
			CPU[split]=$(echo "$s0 $(split_ticks "${@:2}")" | awk -v hz="$hz" \
				-v w="$(( $(date +%s%N) - w0 ))" '{ if (w > 0)
				printf "vcpu %.2f, main %.2f, other %.2f, switch %.2f",
				($5 - $1) / hz / (w / 1e9), ($6 - $2) / hz / (w / 1e9),
				($7 - $3) / hz / (w / 1e9), ($8 - $4) / hz / (w / 1e9) }')
			st=2
		fi
		grep -aq '^NET-A-DONE' "$1" 2>/dev/null && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
declare -A CPU
# The pids are timeout(1)'s, which passes SIGTERM on to the VM.
stop_guests() {
	local p i
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for ((i = 0; i < 50; i++)); do
		kill -0 "${pids[@]}" 2>/dev/null || break
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait "${pids[@]}" 2>/dev/null
	pids=()
}

# Results: R[platform.tcp] Mbit/s, R[platform.pps], R[platform.loss] %,
# from the receiver's summary lines on A's console.
declare -A R
mbits() {	# TAG FILE: the receiver's Mbit/s of a TCP test
	tr -d '\r' <"$2" | awk -v tag="$1: " 'index($0, tag) == 1 && / receiver$/ {
		for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") v = $(i - 1) }
		END { if (v != "") printf "%.0f", v }'
}
parse() {	# PLATFORM A_CONSOLE
	R[$1.tcp]=$(mbits TCP "$2")
	R[$1.lo]=$(mbits LO "$2")
	R[$1.retr]=$(tr -d '\r' <"$2" | awk '/^TCP: .* sender$/ { v = $(NF - 1) }
		END { print v }')
	# "[  5]   0.00-5.04  sec  X MBytes  Y Mbits/sec  J ms  LOST/TOTAL (P%)  receiver"
	read -r pps loss < <(tr -d '\r' <"$2" | awk '/^UDP: .* receiver$/ {
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^[0-9.]+-[0-9.]+$/) { split($i, t, "-"); d = t[2] - t[1] }
			if ($i ~ /^[0-9]+\/[0-9]+$/) split($i, l, "/")
		}
		if (d > 0 && l[2] > 0) printf "%.0f %.1f\n", (l[2] - l[1]) / d, 100 * l[1] / l[2] }')
	R[$1.pps]=${pps:-}
	R[$1.sent]=$(tr -d '\r' <"$2" | awk '/^UDP: .* sender$/ {
		for (i = 1; i <= NF; i++) {
			if ($i ~ /^[0-9.]+-[0-9.]+$/) { split($i, t, "-"); d = t[2] - t[1] }
			if ($i ~ /^[0-9]+\/[0-9]+$/) split($i, l, "/")
		}
		if (d > 0) printf "%.0f\n", l[2] / d }')
	R[$1.loss]=${loss:-}
	if [ -z "${R[$1.tcp]}${R[$1.pps]}" ]; then
		echo "  $1 run failed: $(tr -d '\r' <"$2" | grep -av '^\[' | tail -n 3 | tr '\n' ' ')"
	fi
}

echo "== Network: iperf3 between two guests, ${runtime} s per test =="
if [ $hwvirt = yes ]; then echo "  host: $(nproc) cores with VMX/SVM"
else echo "  host: $(nproc) cores without VMX/SVM (software CPUs: termvisor bt, QEMU TCG)"; fi
echo "  load before: $(cut -d' ' -f1-3 /proc/loadavg); $($iperf --version | head -1)"

# termvisor: two guests on port group "bench" of a private switch.
tvvm() {	# CONSOLE MAC COMMAND
	XDG_RUNTIME_DIR=$tmp/run TERMVISOR_DATASTORE=$tmp/ds TERMVISOR_BIN=$tv \
		timeout -k 5 "$limit" "$tv" run --accel "$accel" --kernel "$kernel" \
		--initrd "$initrd" --memory "$mem" --nic "portgroup=bench,mac=$2" \
		--append "$(append "$3")" </dev/null >"$1" 2>&1 &
	pids+=($!)
}
run_tv() {
	rm -rf "$tmp/run" "$tmp/ds"
	mkdir -p "$tmp/run" "$tmp/ds" && mkdir -m 700 "$tmp/run/termvisor"
	tvvm "$tmp/tv-b.out" 52:54:00:77:00:02 "$cmd_b"
	# B's NIC starts the switch: let it come up before A's NIC races it.
	for ((i = 0; i < 100; i++)); do [ -S "$tmp/run/termvisor/vswitch0.vswitch" ] && break; sleep 0.1; done
	tvvm "$tmp/tv-a.out" 52:54:00:77:00:01 "$cmd_a"
	wait_done "$tmp/tv-a.out" $(cat "$tmp"/run/termvisor/vswitch0.vswitch.lock 2>/dev/null)
	R[tv.cpu]=${CPU[tcp]}
	R[tv.split]=${CPU[split]}
	# Where frames were lost or held: the switch's per-port counters, summed.
	sw_drops=$(XDG_RUNTIME_DIR=$tmp/run "$tv" switch show --json 2>/dev/null |
		python3 -c '
import json, sys
d = json.load(sys.stdin)
keys = ("rx_malformed", "rx_vlan", "tx_full", "tx_offload", "tx_error", "rx_shaped",
        "tx_held", "rx_paused")
tot = {k: sum(p.get("counters", {}).get(k, 0) for p in d.get("ports", [])) for k in keys}
print(" ".join("%s %d" % (k, v) for k, v in tot.items() if v) or "none")' 2>/dev/null)
	stop_guests
	XDG_RUNTIME_DIR=$tmp/run "$tv" switch stop >/dev/null 2>&1
	parse tv "$tmp/tv-a.out"
}

# QEMU: two guests on TAPs of one bridge in a namespace of our own.
qnote="-accel $qaccel, userspace virtio-net (vhost off), TAP + bridge"
if [ -z "$qemu" ]; then
	qnote="skipped: qemu-system-x86_64 not installed"
elif [ "$(id -u)" != 0 ]; then
	qnote="skipped: the TAPs and the bridge need root"
elif ! ip netns add "$ns" 2>/dev/null; then
	qnote="skipped: cannot create a network namespace"
elif ! ip netns exec "$ns" sh -c 'ip link add br0 type bridge &&
		ip tuntap add dev tapa mode tap && ip tuntap add dev tapb mode tap &&
		ip link set tapa master br0 && ip link set tapb master br0 &&
		ip link set tapa up && ip link set tapb up && ip link set br0 up' 2>"$tmp/ns.err"; then
	qnote="skipped: cannot make the bridge and TAPs: $(head -1 "$tmp/ns.err")"
else
	qemu_ok=yes
fi
qvm() {	# CONSOLE TAP MAC COMMAND
		ip netns exec "$ns" timeout -k 5 "$limit" "$qemu" -M pc -accel "$qaccel" \
			-name "bench,debug-threads=on" -m "$mem" -nographic -no-reboot -nodefaults -serial stdio \
			-kernel "$kernel" -initrd "$initrd" -append "$(append "$4")" \
			-netdev "tap,id=n0,ifname=$2,script=no,downscript=no" \
			-device "virtio-net-pci,netdev=n0,mac=$3,romfile=" </dev/null >"$1" 2>&1 &
		pids+=($!)
}
run_qemu() {
	qvm "$tmp/q-b.out" tapb 52:54:00:77:00:02 "$cmd_b"
	qvm "$tmp/q-a.out" tapa 52:54:00:77:00:01 "$cmd_a"
	wait_done "$tmp/q-a.out"
	R[qemu.cpu]=${CPU[tcp]}
	R[qemu.split]=${CPU[split]% switch*}
	R[qemu.split]=${R[qemu.split]%,}
	stop_guests
	parse qemu "$tmp/q-a.out"
}

# Each round's figures go to L[platform.key] (a list); the table shows
# the medians.
declare -A L
keys="tcp lo retr pps sent loss cpu"
keep() {	# PLATFORM ROUND
	local k
	for k in $keys; do L[$1.$k]+="${R[$1.$k]:-} "; done
	printf '  round %d %-9s tcp %5s Mbit/s  udp rx %6s tx %6s pkt/s  lost %4s%%  lo %5s\n' \
		"$2" "$1" "${R[$1.tcp]:-n/a}" "${R[$1.pps]:-n/a}" "${R[$1.sent]:-n/a}" \
		"${R[$1.loss]:-n/a}" "${R[$1.lo]:-n/a}"
}
median() {	# values...: the median of the numeric ones, or nothing
	printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
			else if (NR) print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
for ((round = 1; round <= rounds; round++)); do
	run_tv
	keep tv $round
	if [ "${qemu_ok:-}" = yes ]; then
		run_qemu
		keep qemu $round
	fi
done
for p in tv qemu; do
	for k in $keys; do
		# shellcheck disable=SC2086
		R[$p.$k]=$(median ${L[$p.$k]:-})
	done
done
echo "  termvisor: --accel $accel, --nic on the host switch; QEMU: $qnote"
echo "  load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  termvisor switch counters (drops; held/paused by backpressure): ${sw_drops:-n/a}"

ratio() {	# ours theirs
	if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
	else echo "n/a"; fi
}
na() { echo "${1:-n/a}"; }
printf '  %-22s %10s %10s %9s\n' test termvisor qemu tv/qemu
printf '  %-22s %10s %10s %9s\n' "tcp 1 stream (Mbit/s)" "$(na "${R[tv.tcp]:-}")" \
	"$(na "${R[qemu.tcp]:-}")" "$(ratio "${R[tv.tcp]:-}" "${R[qemu.tcp]:-}")"
printf '  %-22s %10s %10s %9s\n' "tcp cpu (cores busy)" "$(na "${R[tv.cpu]:-}")" \
	"$(na "${R[qemu.cpu]:-}")" "$(ratio "${R[tv.cpu]:-}" "${R[qemu.cpu]:-}")"
per_core() {	# Mbit/s cores
	if [[ "${1:-}" =~ ^[0-9.]+$ && "${2:-}" =~ ^[0-9.]+$ ]] &&
		awk -v c="$2" 'BEGIN { exit !(c > 0) }'; then
		awk -v m="$1" -v c="$2" 'BEGIN { printf "%.0f", m / c }'
	fi
}
R[tv.pc]=$(per_core "${R[tv.tcp]:-}" "${R[tv.cpu]:-}")
R[qemu.pc]=$(per_core "${R[qemu.tcp]:-}" "${R[qemu.cpu]:-}")
printf '  %-22s %10s %10s %9s\n' "tcp per core (Mbit/s)" "$(na "${R[tv.pc]:-}")" \
	"$(na "${R[qemu.pc]:-}")" "$(ratio "${R[tv.pc]:-}" "${R[qemu.pc]:-}")"
echo "  tcp cpu by thread (cores, last round): termvisor $(na "${R[tv.split]:-}")"
echo "                                          qemu $(na "${R[qemu.split]:-}")"
printf '  %-22s %10s %10s %9s\n' "udp ${ulen} B (pkt/s rx)" "$(na "${R[tv.pps]:-}")" \
	"$(na "${R[qemu.pps]:-}")" "$(ratio "${R[tv.pps]:-}" "${R[qemu.pps]:-}")"
printf '  %-22s %10s %10s %9s\n' "udp ${ulen} B (pkt/s tx)" "$(na "${R[tv.sent]:-}")" \
	"$(na "${R[qemu.sent]:-}")" "$(ratio "${R[tv.sent]:-}" "${R[qemu.sent]:-}")"
printf '  %-22s %10s %10s\n' "udp ${ulen} B lost (%)" "$(na "${R[tv.loss]:-}")" \
	"$(na "${R[qemu.loss]:-}")"
printf '  %-22s %10s %10s\n' "tcp retransmits" "$(na "${R[tv.retr]:-}")" \
	"$(na "${R[qemu.retr]:-}")"
printf '  %-22s %10s %10s %9s\n' "tcp loopback (Mbit/s)" "$(na "${R[tv.lo]:-}")" \
	"$(na "${R[qemu.lo]:-}")" "$(ratio "${R[tv.lo]:-}" "${R[qemu.lo]:-}")"
echo "  target: tcp tv/qemu >= 1 (userspace virtio-net); goal beyond it: vhost-net class"
echo
