#!/bin/bash
# VNC benchmark (issue 4): termvisor's VNC server and QEMU's built-in one
# (-vnc) serving the same guest doing the same work, a full-screen scroll
# of the text console (fbcon on a 1024x768 framebuffer), to the same
# client (tests/vnc/vnc_client.c on libvncclient, which asks for Tight).
# Then the same guest idle for a while, the client still connected.
#
#   scripts/bench-vnc.sh BUILD_DIR
#	env: LINES_N=1500 (lines scrolled)  IDLE=10 (seconds idle)
#	     ACCEL=bt (termvisor)  QACCEL=tcg (QEMU)
#
# Measured, per VMM:
#   bytes   what the server sent the client (counted by a relay between
#           them), from the start of the scroll to one second after it
#   cpu     CPU time of the VMM's display path: for termvisor its VNC
#           thread (tv-vnc: change detection, text rendering, encoding;
#           nothing else of the display runs elsewhere); for QEMU every
#           thread but the vCPUs' (its main loop does the dirty tracking
#           and VNC, vnc_worker the encoding; the main loop also runs
#           QEMU's device timers, a few ms a second, which this counts
#           against it).  The guest's own drawing (fbcon) is in the vCPU
#           threads on both sides and not counted.
#   idle    the same two over IDLE seconds of a still screen.
# QEMU's guest has a VESA framebuffer (vga=0x318: 1024x768, 24 bits per
# pixel) since its direct kernel boot gives none by itself; termvisor's
# has 1024x768 at 32 bits.  Prints ratios termvisor / QEMU; never
# pass/fail.
set -u
build=${1:?usage: bench-vnc.sh BUILD_DIR}
tv=$build/termvisor
client=$build/tests/vnc-client
nlines=${LINES_N:-1500}
idle=${IDLE:-10}
accel=${ACCEL:-bt}
qaccel=${QACCEL:-tcg}
guest=${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest
qemu=$(command -v qemu-system-x86_64 || true)
hz=$(getconf CLK_TCK)

echo "== VNC: full-screen scroll of the text console, then idle (bench-vnc.sh) =="
[ -r "$guest/vmlinuz" ] || { echo "  skipped: reference guest missing (make guest)"; exit 0; }
[ -x "$tv" ] || { echo "  skipped: $tv not built"; exit 0; }
[ -x "$client" ] || { echo "  skipped: $client not built (make tests-build)"; exit 0; }

tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# A relay that counts the bytes going from the server to the client and
# keeps the running total in a file.
cat >"$tmp/relay.py" <<'EOF'
import os, socket, sys, threading
lport, dport, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", lport))
ls.listen(1)
open(out + ".ready", "w").close()
c, _ = ls.accept()
s = socket.create_connection(("127.0.0.1", dport))
total = 0
def up():
    while True:
        b = c.recv(65536)
        if not b:
            break
        s.sendall(b)
threading.Thread(target=up, daemon=True).start()
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    total += len(b)
    c.sendall(b)
    with open(out + ".tmp", "w") as f:
        f.write("%d\n" % total)
    os.replace(out + ".tmp", out)
EOF

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# CPU ticks of PID's threads whose name matches (or, with -v, does not
# match) the regex.
thread_ticks() {	# [-v] PID REGEX
	local inv=0 t sum=0 comm rest
	[ "$1" = -v ] && { inv=1; shift; }
	for t in /proc/"$1"/task/*; do
		IFS= read -r rest <"$t/stat" 2>/dev/null || continue
		comm=${rest#*(}; comm=${comm%%)*}
		if [[ $comm =~ $2 ]]; then ((inv)) && continue
		else ((inv)) || continue; fi
		# Fields after "(comm) ": state is field 3; utime 14, stime 15.
		set -- ${rest##*) }
		sum=$((sum + ${12} + ${13}))
	done
	echo $sum
}

bytes_now() { cat "$tmp/count" 2>/dev/null || echo 0; }

wait_line() {	# FILE PATTERN SECONDS
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		tr -d '\r' <"$1" | grep -qa -- "$2" && return 0
		sleep 0.1
	done
	return 1
}

# run_one NAME CPU_ARGS... : sets R_BYTES R_CPU R_SECS R_IBYTES R_ICPU
run_one() {
	local name=$1 kind=$2 vport=$3; shift 3
	local log=$tmp/$kind.log fifo=$tmp/$kind.in rport pid relay cl t0 t1 b0 b1 c0 c1
	rm -f "$tmp/count" "$tmp/count.ready" "$fifo"
	: >"$log"
	mkfifo "$fifo"
	R_BYTES=n/a R_CPU=n/a R_SECS=n/a R_IBYTES=n/a R_ICPU=n/a
	"$@" <"$fifo" >"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	exec 7>"$fifo"
	if ! wait_line "$log" READY-42 300; then
		echo "  $name: the guest did not come up"; exec 7>&-; kill "$pid"; return
	fi
	rport=$(free_port)
	python3 "$tmp/relay.py" "$rport" "$vport" "$tmp/count" &
	relay=$!
	pids+=("$relay")
	for ((i = 0; i < 100; i++)); do [ -e "$tmp/count.ready" ] && break; sleep 0.1; done
	VNC_CLIENT_QUIET=1 "$client" "127.0.0.1:$rport" watch 3600 >/dev/null 2>&1 &
	cl=$!
	pids+=("$cl")
	# The first whole frame, and a client still there.
	for ((i = 0; i < 100; i++)); do [ -s "$tmp/count" ] && break; sleep 0.1; done
	sleep 2
	if ! kill -0 "$cl" 2>/dev/null || [ ! -s "$tmp/count" ]; then
		echo "  $name: the client could not connect"; exec 7>&-; kill "$pid" "$relay"; return
	fi
	if [ "$kind" = tv ]; then sel=(ticks_tv "$pid"); else sel=(ticks_qemu "$pid"); fi
	b0=$(bytes_now); c0=$("${sel[@]}"); t0=$(date +%s%N)
	echo go >&7
	if ! wait_line "$log" SCROLL-END-42 600; then
		echo "  $name: the scroll did not finish"; exec 7>&-; kill "$pid" "$cl" "$relay"; return
	fi
	t1=$(date +%s%N)
	sleep 1
	b1=$(bytes_now); c1=$("${sel[@]}")
	R_BYTES=$((b1 - b0)); R_CPU=$(( (c1 - c0) * 1000 / hz ))
	R_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	sleep "$idle"
	R_IBYTES=$(( $(bytes_now) - b1 )); R_ICPU=$(( ($("${sel[@]}") - c1) * 1000 / hz ))
	exec 7>&-
	kill "$pid" "$cl" "$relay" 2>/dev/null
	wait "$pid" "$cl" "$relay" 2>/dev/null
	printf '  %-26s %12s %10s %8s s %12s %10s\n' "$name" "$R_BYTES" "$R_CPU" \
		"$R_SECS" "$R_IBYTES" "$R_ICPU"
}
ticks_tv() { thread_ticks "$1" '^tv-vnc$'; }
ticks_qemu() { thread_ticks -v "$1" '^CPU [0-9]+/'; }

ratio() {
	if [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]]; then
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
	else echo "n/a"; fi
}

# The guest: wait for a line on the serial console, scroll the VT, wait.
cmd="echo READY-\$((6*7)); read x; echo SCROLL-START; i=0;
while [ \$i -lt $nlines ]; do echo line \$i of the scroll: the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuvwxyz; i=\$((i+1)); done >/dev/tty1;
echo SCROLL-END-\$((6*7)); sleep 3600"
cmd=$(printf '%s' "$cmd" | tr '\n' ' ')
enc=$(printf '%s' "$cmd" | sed 's/%/%25/g; s/+/%2B/g; s/ /+/g')
append="console=ttyS0 panic=-1 tv.quiet=1 tv.run=$enc"

printf '  %-26s %12s %10s %10s %12s %10s\n' "" "scroll bytes" "cpu ms" "time" \
	"idle bytes" "idle cpu ms"
d=$(python3 -c 'import socket
for d in range(60, 99):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 5900 + d)); print(d); break
    except OSError: pass
    finally: s.close()')
run_one "termvisor --accel $accel" tv $((5900 + d)) \
	"$tv" run --accel "$accel" --memory 512M --kernel "$guest/vmlinuz" \
	--initrd "$guest/initrd.img" --append "$append" --vnc "127.0.0.1:$d"
tb=$R_BYTES tc=$R_CPU tib=$R_IBYTES tic=$R_ICPU ts=$R_SECS
if [ -z "$qemu" ]; then
	echo "  QEMU: skipped: qemu-system-x86_64 not installed"
	exit 0
fi
run_one "qemu -accel $qaccel -vnc" qemu $((5900 + d)) \
	"$qemu" -M pc -accel "$qaccel" -m 512M -nographic -no-reboot -nodefaults \
	-serial stdio -monitor none -vga std -vnc "127.0.0.1:$d" \
	-kernel "$guest/vmlinuz" -initrd "$guest/initrd.img" \
	-append "$append vga=0x318"
echo "  ratio termvisor / QEMU: scroll bytes $(ratio "$tb" "$R_BYTES"), scroll cpu $(ratio "$tc" "$R_CPU"), idle bytes $(ratio "$tib" "$R_IBYTES"), idle cpu $(ratio "$tic" "$R_ICPU")"
echo "  (the scroll took $(awk -v a="$ts" -v b="$R_SECS" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }')x as long on termvisor: a slower guest shows the client more of the intermediate frames)"
