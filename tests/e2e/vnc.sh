#!/bin/bash
# The guest's screen and keyboard over VNC, judged by real clients: one
# boot of Debian's kernel on the software CPU serves VNC on a loopback
# display, and
#   - hostile clients (garbage, half a message, a flood, an unknown
#     message, one that never reads) are dropped while a libvncclient
#     client still gets frames and the guest goes on;
#   - the libvncclient client types a line; the guest reads it from its
#     VT (tty1, through the i8042) and echoes it on the serial console;
#   - the guest draws four colour bands on /dev/fb0, and vncsnapshot's
#     JPEG of the screen shows them where they are;
#   - the guest powers off (exit 0) after one more typed line.
# Meanwhile, two short-lived VMs check the password: a wrong one refused
# and the right one given a frame, from a file (--vnc-password-file, on
# a Unix socket) and from $TERMVISOR_VNC_PASSWORD.
# About 50 s on an idle 2-core host (the boot on the software CPU is
# most of it); the waits are generous so a loaded host is slow, not red.
set -u
. "$(dirname "$0")/linux-lib.sh"
. "$(dirname "$0")/vnc-lib.sh"
need_guest
need_vnc_client
for t in vncsnapshot djpeg python3; do
	command -v "$t" >/dev/null || { echo "$t is missing"; exit 77; }
done
W=$(mktemp -d)
LOG=$W/console
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$W"' EXIT
export VNC_CLIENT_QUIET=1

# In the guest: wait for a line on tty1 and echo it, draw the bands
# (pixels whose bytes avoid NUL, blanks and ash's internal 0x81-0x88, so
# the shell can build them by doubling a string and print them unquoted:
# no double quotes on the kernel command line), wait for one more line.
draw='for v in /sys/class/vtconsole/vtcon*; do grep -q frame $v/name && echo 0 >$v/bind; done;
s=$(cat /sys/class/graphics/fb0/virtual_size); w=${s%,*}; h=${s#*,};
st=$(cat /sys/class/graphics/fb0/stride); n=$((st*(h/4)));
band() { p=$(printf $1); while [ ${#p} -lt $n ]; do p=$p$p; done; printf %s ${p:0:$n}; };
{ band \\001\\001\\377\\001; band \\001\\377\\001\\001; band \\377\\001\\001\\001; band \\100\\100\\100\\001; } >/dev/fb0;
echo GEOM=$w,$h,$st'
# Then read two pointer reports from the tablet's evdev node.
tablet='ev=/dev/null; for e in /sys/class/input/event*; do grep -q tablet $e/device/name && ev=/dev/input/${e##*/}; done;
head -c 144 $ev >/tmp/ev & sleep 1; echo EVDEV-$((6*7)); wait; echo EV=$(od -An -tu2 -v /tmp/ev)'
cmd="echo READY-\$((6*7)); read l </dev/tty1; echo GOT-\$l; $tablet;
if [ -e /dev/fb0 ]; then $draw; echo DRAWN-\$((6*7)); else echo NOFB-\$((6*7)); fi;
read l </dev/tty1; echo BYE-\$l"
cmd=$(printf '%s' "$cmd" | tr '\n' ' ')

disp=$(vnc_free_display)
[ -n "$disp" ] || fail "no free VNC display"
port=$((5900 + disp))
start=$(date +%s)
"$tv" run --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" \
	--append "console=ttyS0 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$cmd")" \
	--accel bt --vnc "127.0.0.1:$disp" </dev/null >"$LOG" 2>&1 &
vm=$!
pids+=("$vm")

# --- the password, on two VMs of their own while the first one boots ---
pw_check() {	# name, socket or address, termvisor options...
	local name=$1 addr=$2; shift 2
	"$tv" run --accel bt "$@" </dev/null >"$W/$name.log" 2>&1 &
	local p=$!
	pids+=("$p")
	# The right password gets a frame once the server is up.
	for ((i = 0; i < 100; i++)); do
		VNC_PASSWORD=s3cret "$vnc_client" "$addr" frame "$W/$name.ppm" \
			>/dev/null 2>&1 && break
		sleep 0.1
	done
	[ -s "$W/$name.ppm" ] || fail "$name: the right password got no frame"
	head -c 2 "$W/$name.ppm" | grep -q P6 || fail "$name: no picture"
	rm -f "$W/$name.ppm"
	VNC_PASSWORD=wrong-pw "$vnc_client" "$addr" frame "$W/$name.ppm" \
		>/dev/null 2>&1 && fail "$name: a wrong password got a frame"
	[ -e "$W/$name.ppm" ] && fail "$name: a frame written for a wrong password"
	"$vnc_client" "$addr" frame /dev/null >/dev/null 2>&1 &&
		fail "$name: no password got a frame"
	kill "$p"
	wait "$p" 2>/dev/null
	echo "ok: password ($name)"
}
printf 's3cret\nsecond line is not the password\n' >"$W/pw"
pw_check file "$W/vnc.sock" --vnc "unix:$W/vnc.sock" --vnc-password-file "$W/pw"
[ -e "$W/vnc.sock" ] && fail "the Unix socket outlived its VM"
disp2=$(vnc_free_display)
TERMVISOR_VNC_PASSWORD=s3cret pw_check env "127.0.0.1:$((5900 + disp2))" \
	--vnc "127.0.0.1:$disp2"

# --- hostile clients, then the keyboard ---
wait_for "$LOG" READY-42 300 "$vm" || fail "the guest did not come up"
coproc BAD { python3 "$(dirname "$0")/vnc-bad-clients.py" 127.0.0.1 "$port" 2>&1; }
bad_out=$W/bad
: >"$bad_out"
while IFS= read -r -t 60 line <&"${BAD[0]}"; do
	echo "$line" >>"$bad_out"
	case $line in
	NOREAD-STARTED) break ;;
	FAIL*) fail "hostile clients: $line" ;;
	esac
done
grep -q NOREAD-STARTED "$bad_out" || fail "hostile clients: $(cat "$bad_out")"
# One client never reads: another one is still served.
timeout 30 "$vnc_client" "127.0.0.1:$port" frame "$W/during.ppm" ||
	fail "a client was not served while another one stalled"
exec {BAD[1]}>&-
while IFS= read -r -t 30 line <&"${BAD[0]}"; do echo "$line" >>"$bad_out"; done
grep -q "ok noread" "$bad_out" || fail "hostile clients: $(tail -n 3 "$bad_out")"
echo "ok: hostile clients dropped ($(grep -c '^ok' "$bad_out") kinds)"

"$vnc_client" "127.0.0.1:$port" type 'hello World_1!' ||
	fail "the client could not type"
wait_for "$LOG" 'GOT-hello World_1!' 120 "$vm" ||
	fail "the guest did not read the typed line"
echo "ok: typed line reached the guest's VT"

# --- the pointer: absolute, through the virtio-input tablet ---
wait_for "$LOG" EVDEV-42 60 "$vm" || fail "the guest found no tablet to read"
"$vnc_client" "127.0.0.1:$port" frame "$W/size.ppm" || fail "no frame"
size=$(head -c 20 "$W/size.ppm" | sed -n 2p)
"$vnc_client" "127.0.0.1:$port" pointer 700 5 0 &&
	"$vnc_client" "127.0.0.1:$port" pointer 512 384 0 ||
	fail "the client could not move the pointer"
wait_for "$LOG" '^EV=' 60 "$vm" || fail "the guest got no pointer events"
tr -d '\r' <"$LOG" | sed -n 's/^EV=//p' | python3 -c '
import sys
w, h = map(int, sys.argv[1].split())
u = [int(x) for x in sys.stdin.read().split()]
# struct input_event on x86-64: 16 bytes of time, type, code, value.
ev = [(u[12 * k + 8], u[12 * k + 9], u[12 * k + 10] | u[12 * k + 11] << 16)
      for k in range(len(u) // 12)]
sx, sy = lambda x: x * 32767 // (w - 1), lambda y: y * 32767 // (h - 1)
want = [(3, 0, sx(700)), (3, 1, sy(5)), (0, 0, 0),
        (3, 0, sx(512)), (3, 1, sy(384)), (0, 0, 0)]
if ev != want:
    sys.exit("tablet events %r, expected %r" % (ev, want))
' "$size" || fail "the tablet reported the wrong place"
echo "ok: the pointer reached the guest as absolute tablet events"

# --- the screen ---
wait_for "$LOG" 'DRAWN-42|NOFB-42' 180 "$vm" || fail "the guest did not draw"
tr -d '\r' <"$LOG" | grep -qa NOFB-42 && fail "the guest has no /dev/fb0"
geom=$(tr -d '\r' <"$LOG" | sed -n 's/^GEOM=//p')
timeout 30 vncsnapshot -quiet "127.0.0.1:$disp" "$W/shot.jpg" >/dev/null 2>&1 ||
	fail "vncsnapshot failed"
djpeg -pnm "$W/shot.jpg" >"$W/shot.ppm" || fail "djpeg"
python3 - "$W/shot.ppm" "$geom" <<'EOF' || fail "the screenshot is not the picture"
import sys
data = open(sys.argv[1], "rb").read()
parts = data.split(b"\n", 3)
w, h = map(int, parts[1].split())
pix = parts[3]
gw, gh, stride = map(int, sys.argv[2].split(","))
if (w, h) != (gw, gh):
    sys.exit("snapshot %dx%d, the guest's screen %dx%d" % (w, h, gw, gh))
want = [(255, 1, 1), (1, 255, 1), (1, 1, 255), (64, 64, 64)]
band = gh // 4
for i, rgb in enumerate(want):
    for fx in (0.1, 0.5, 0.9):
        for fy in (0.2, 0.5, 0.8):
            x, y = int(w * fx), int(band * (i + fy))
            got = tuple(pix[(y * w + x) * 3:(y * w + x) * 3 + 3])
            if any(abs(a - b) > 24 for a, b in zip(got, rgb)):
                sys.exit("band %d at (%d,%d): %r, expected %r" % (i, x, y, got, rgb))
print("ok: vncsnapshot shows the guest's %dx%d picture" % (w, h))
EOF

"$vnc_client" "127.0.0.1:$port" type 'bye' || fail "the client could not type"
wait "$vm"
rc=$?
pids=()
grep -qa BYE-bye "$LOG" || fail "the guest did not read the last line"
[ $rc -eq 0 ] || fail "the VM exited with $rc"
echo "ok: guest powered off, exit 0 ($(($(date +%s) - start)) s)"
