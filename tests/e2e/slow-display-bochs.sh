#!/bin/bash
# The guest's own DRM driver for the display: the reference guest (software
# CPU) boots on vesafb, then loads Debian's bochs-drm with an 800x600
# preferred mode.  The driver finds the device (1234:1111, DISPI at BAR2),
# takes the framebuffer over from vesafb and sets the mode through DISPI;
# the screenshot must follow (800x600), and a pattern the guest writes to
# the driver's /dev/fb0 must land where it belongs.  Slow: loading drm on
# the software CPU takes a while.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/linux-lib.sh"
need_guest
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
tv=$(realpath "$tv")
vm_sandbox bo
log=$tmp/ds/bo/bo.log

# 400 pixels of (R,G,B) ff,80,40 then 400 of 10,20,f0 on lines 500-599
# (XRGB8888: bytes B, G, R, X; the driver's stride is 3200 bytes),
# written 50 lines at a time: Linux 6.1's fbdev emulation computes an
# empty damage rectangle for a write of exactly one whole line, so
# line-by-line writes would never reach video memory.
cmd='modprobe bochs defx=800 defy=600 || echo BOCHS-FAILED;
echo "fb0: $(cat /proc/fb) $(cat /sys/class/graphics/fb0/virtual_size) stride $(cat /sys/class/graphics/fb0/stride)";
printf "\100\200\377\000" >/a; printf "\360\040\020\000" >/b;
for i in 1 2 3 4 5 6 7 8 9; do cat /a /a >/t; mv /t /a; cat /b /b >/t; mv /t /b; done;
head -c 1600 /a >/row; head -c 1600 /b >>/row; i=0;
while [ $i -lt 100 ]; do cat /row; i=$((i+1)); done >/block;
dd if=/block of=/dev/fb0 bs=160000 seek=10 count=2 2>/dev/null;
sleep 2; echo FB-PATTERN; sleep 600'
cmd=$(tr '\n' ' ' <<<"$cmd")
"$tv" vm create bo --memory 256M --accel bt --kernel "$guest/vmlinuz" \
	--initrd "$guest/initrd.img" \
	--append "console=ttyS0 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$cmd")" \
	>/dev/null || { echo "vm create failed"; exit 1; }
"$tv" vm start bo >/dev/null || { echo "vm start failed"; tail "$log"; exit 1; }

cat >"$tmp/check.py" <<'EOF'
import sys
from png import load, pixel

w, h, rows = load(sys.argv[1])
assert (w, h) == (800, 600), (w, h)
px = lambda x, y: pixel(rows, x, y)
bad = [(x, y) for y in range(500, 600) for x in range(800)
       if px(x, y) != ((0xff, 0x80, 0x40) if x < 400 else (0x10, 0x20, 0xf0))]
assert not bad, 'pattern differs at %s: %s' % (bad[0], px(*bad[0]))
print('lines 500-599 hold the pattern')
EOF

if ! wait_log ^FB-PATTERN 600; then
	echo "FAIL: the guest never wrote its pattern"; tail -n 30 "$log"; exit 1
fi
# A line of its own: the kernel's "Command line:" quotes the command.
tr -d '\r' <"$log" | grep -qx "BOCHS-FAILED" &&
	bad "modprobe bochs: $(grep -m 3 -i 'bochs' "$log" | grep -v 'ommand line')"
grep -q "^fb0: 0 bochs-drmdrmfb 800,600 stride 3200" "$log" &&
	ok "bochs-drm took the display: $(grep -m 1 '^fb0:' "$log")" ||
	bad "fb0 is not bochs-drm at 800x600: $(grep -m 1 '^fb0:' "$log")"
"$tv" vm screenshot bo "$tmp/drm.png" >"$tmp/out" 2>&1 &&
	grep -q " 800x600 screenshot" "$tmp/out" && ok "$(cat "$tmp/out")" ||
	{ bad "screenshot after the mode switch"; cat "$tmp/out"; }
PYTHONPATH=$here python3 "$tmp/check.py" "$tmp/drm.png" >"$tmp/out" 2>&1 &&
	ok "pattern through bochs-drm: $(tail -n 1 "$tmp/out")" ||
	{ bad "pattern"; tail -n 3 "$tmp/out"; }
[ $fails -eq 0 ]
