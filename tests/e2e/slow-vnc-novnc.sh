#!/bin/bash
# A browser as the VNC client: noVNC (Debian's novnc) in headless Chromium
# shows a running VM's screen.  The reference guest, started with no VNC
# option at all (VNC is on by default, on the first free loopback
# display), draws four bands of two colours each on /dev/fb0; then
# tests/vnc/novnc_check.py opens noVNC's vnc_lite.html through
# chromedriver, once through websockify and once straight to the VM's
# port (libvncserver's own WebSocket support), and compares the
# browser's screenshot of the canvas with `termvisor vm screenshot`'s PNG
# of the same moment, pixel by pixel.  Only loopback traffic.
# About a minute: one boot, two browser sessions.
set -u
here=$(dirname "$0")
. "$here/linux-lib.sh"
need_guest
for t in python3 chromedriver websockify; do
	command -v "$t" >/dev/null || { echo "$t is missing (scripts/deps.sh installs it)"; exit 77; }
done
[ -r /usr/share/novnc/vnc_lite.html ] || { echo "noVNC is missing (Debian package novnc)"; exit 77; }
[ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null ||
	{ echo "chromium is missing"; exit 77; }
tv=$(realpath "$tv")
vm_sandbox nv
export HOME="$tmp"
log=$tmp/ds/nv/nv.log

# The picture (novnc_check.py knows it): band i of four is LEFT on its
# left half and RIGHT on its right.  Pixels are XRGB8888 (bytes B, G, R,
# X) whose bytes avoid NUL, blanks, glob characters and ash's internal
# 0x81-0x88, so the shell can build them by doubling a string and print
# them unquoted (no double quotes on the kernel command line).  fbcon
# lets go of the framebuffer first, so nothing draws over the picture.
draw='for v in /sys/class/vtconsole/vtcon*; do grep -q frame $v/name && echo 0 >$v/bind; done;
s=$(cat /sys/class/graphics/fb0/virtual_size); w=${s%,*}; h=${s#*,};
st=$(cat /sys/class/graphics/fb0/stride); n=$((st*(h/4)));
rep() { p=$(printf $1); while [ ${#p} -lt $2 ]; do p=$p$p; done; printf %s ${p:0:$2}; };
band() { r=$(rep $1 $((w*2)))$(rep $2 $((st-w*2))); while [ ${#r} -lt $n ]; do r=$r$r; done; printf %s ${r:0:$n}; };
{ band \\001\\001\\377\\001 \\200\\001\\001\\001; band \\001\\377\\001\\001 \\001\\377\\377\\001;
band \\377\\001\\001\\001 \\377\\001\\200\\001; band \\100\\100\\100\\001 \\310\\310\\310\\001; } >/dev/fb0;
echo DRAWN-$((6*7)); sleep 600'
draw=$(tr '\n' ' ' <<<"$draw")
"$tv" vm create nv --memory 256M --accel "${ACCEL:-bt}" --kernel "$guest/vmlinuz" \
	--initrd "$guest/initrd.img" \
	--append "console=ttyS0 loglevel=4 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$draw")" \
	>/dev/null || { echo "vm create failed"; exit 1; }
"$tv" vm start nv >"$tmp/start" 2>&1 || { echo "vm start failed"; cat "$tmp/start"; tail "$log"; exit 1; }
port=$(sed -n 's/.*, VNC 127\.0\.0\.1:\(59[0-9][0-9]\)$/\1/p' "$tmp/start")
[ -n "$port" ] && ok "VNC on by default: $(sed 's/.*, VNC //' "$tmp/start")" ||
	{ bad "vm start names no loopback VNC address"; cat "$tmp/start"; exit 1; }

for ((i = 0; i < 600; i++)); do
	grep -q "^DRAWN-42" "$log" 2>/dev/null && break
	sleep 0.2
done
grep -q "^DRAWN-42" "$log" || { bad "the guest never drew its picture"; tail -n 20 "$log"; exit 1; }

for mode in websockify direct; do
	python3 "$here/../vnc/novnc_check.py" --vnc "$port" --mode "$mode" \
		--work "$tmp" --shot "$tv" vm screenshot nv >"$tmp/out" 2>&1
	rc=$?
	case $rc in
	0) ok "$(tail -n 1 "$tmp/out")" ;;
	77) echo "$(tail -n 1 "$tmp/out")"; exit 77 ;;
	*) bad "noVNC via $mode:"; tail -n 15 "$tmp/out"
	   tail -n 5 "$tmp/helpers-$mode.log" 2>/dev/null ;;
	esac
done
[ $fails -eq 0 ]
