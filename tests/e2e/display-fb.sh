#!/bin/bash
# The display with the reference guest on the software CPU, with no guest
# configuration: Debian's kernel finds the framebuffer in screen_info
# (vesafb) and fbcon draws kernel messages there; then the guest writes a
# known pattern to /dev/fb0.  Both are checked in screenshots taken
# through the control socket (termvisor vm screenshot), decoded here.
# Only messages of level err and worse (and one the guest logs) go to
# fbcon: vesafb cannot pan on x86-64, so fbcon redraws the whole screen
# for every scrolled line, which the full boot log makes slow on the
# software CPU.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/linux-lib.sh"
need_guest
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
tv=$(realpath "$tv")
vm_sandbox fb
log=$tmp/ds/fb/fb.log

# A line of 512 pixels of (R,G,B) ff,80,40 then 512 of 10,20,f0 (the
# framebuffer is XRGB8888: bytes B, G, R, X), on lines 700-767.  Then the
# guest programs the DISPI registers in BAR2 itself (busybox devmem; no
# driver claims BAR2 under vesafb): an absurd width, refused, then
# 640x480; then DISPI off, back to VGA text, and "Hi" in white on blue
# stored at 0xB8000 (/dev/mem allows the first MiB).  The host takes a
# screenshot at each step.
cmd='echo 0 >/sys/class/graphics/fbcon/cursor_blink;
dmesg | grep -m 1 -o "vesafb: mode is .*"; echo "<3>termvisor: text on fbcon" >/dev/kmsg;
echo FB-TEXT; read x;
printf "\100\200\377\000" >/a; printf "\360\040\020\000" >/b;
for i in 1 2 3 4 5 6 7 8 9; do cat /a /a >/t; mv /t /a; cat /b /b >/t; mv /t /b; done;
cat /a /b >/row; i=700;
while [ $i -lt 768 ]; do dd if=/row of=/dev/fb0 bs=4096 seek=$i count=1 2>/dev/null; i=$((i+1)); done;
echo FB-PATTERN; read x;
for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = 0x1234 ] && r=$(sed -n 3p $d/resource); done;
m=$((${r%% *} + 0x500));
devmem $((m + 2)) 16 0; echo FB-ABSURD; read x;
devmem $((m + 8)) 16 0; devmem $((m + 2)) 16 640; devmem $((m + 4)) 16 480;
devmem $((m + 6)) 16 32; devmem $((m + 8)) 16 0x41; echo FB-MODE; read x;
devmem $((m + 8)) 16 0; devmem 0xb8000 32 0x1f691f48; echo FB-VGA; sleep 600'
cmd=$(tr '\n' ' ' <<<"$cmd")
"$tv" vm create fb --memory 256M --accel "${ACCEL:-bt}" --kernel "$guest/vmlinuz" \
	--initrd "$guest/initrd.img" \
	--append "console=tty0 console=ttyS0 loglevel=4 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$cmd")" \
	>/dev/null || { echo "vm create failed"; exit 1; }
"$tv" vm start fb >/dev/null || { echo "vm start failed"; tail "$log"; exit 1; }

# check.py FILE MODE: the screenshot's pixels (decoded by png.py).
cat >"$tmp/check.py" <<'EOF'
import sys
from png import load, pixel

w, h, rows = load(sys.argv[1])
px = lambda x, y: pixel(rows, x, y)
if sys.argv[2] == 'text':
    # fbcon's boot messages: light glyphs on black in the top lines.
    assert (w, h) == (1024, 768), (w, h)
    top = [px(x, y) for y in range(0, 160) for x in range(0, 1024)]
    lit = sum(1 for p in top if p != (0, 0, 0))
    assert 200 < lit < len(top) // 2, 'lit pixels in the top lines: %d' % lit
    print('%d lit pixels of %d, colours %s' % (lit, len(top), sorted(set(top))[:4]))
elif sys.argv[2] == 'vga':
    # 80x25 text: "Hi" white on blue in the first cells, as the font draws
    # them (the cursor underlines cell 0 on lines 13-14), black after.
    assert (w, h) == (640, 400), (w, h)
    fg, bg = (0xff, 0xff, 0xff), (0, 0, 0xaa)
    font = '/usr/share/consolefonts/Uni2-VGA16.psf.gz'
    try:
        import gzip
        f = gzip.open(font).read()
        glyph = lambda c: f[4 + 16 * c:4 + 16 * c + 16]
    except OSError:
        glyph = None
    for cell, ch in enumerate('Hi'):
        for y in range(16):
            for x in range(8):
                p = px(8 * cell + x, y)
                if glyph is None or (cell == 0 and y in (13, 14)):
                    assert p in (fg, bg), (cell, x, y, p)
                else:
                    want = fg if glyph(ord(ch))[y] & (0x80 >> x) else bg
                    assert p == want, (cell, x, y, p, want)
    assert all(px(x, y) == (0, 0, 0) for y in range(16) for x in range(16, 640)), 'rest not black'
    print('"Hi" drawn with the console font%s' % ('' if glyph else ' (colours only)'))
else:
    bad = [(x, y) for y in range(700, 768) for x in range(1024)
           if px(x, y) != ((0xff, 0x80, 0x40) if x < 512 else (0x10, 0x20, 0xf0))]
    assert not bad, 'pattern differs at %s: %s' % (bad[0], px(*bad[0]))
    print('lines 700-767 hold the pattern')
EOF

# shot NAME MARKER SIZE: once the guest says MARKER, a screenshot of SIZE;
# then a line on the serial console lets the guest go on (it waits for
# it with read, so a slow host never misses a step).
shot() {
	if ! wait_log "^$2" 120; then
		bad "the guest never said $2"; tail -n 20 "$log"; return 1
	fi
	"$tv" vm screenshot fb "$tmp/$1.png" >"$tmp/out" 2>&1 &&
		grep -q " $3 screenshot" "$tmp/out" && ok "$1: $(cat "$tmp/out")" ||
		{ bad "$1 screenshot (want $3)"; cat "$tmp/out"; }
	echo go | "$tv" vm console fb >/dev/null 2>&1
}
# check NAME MODE: the pixels of screenshot NAME.
check() {
	PYTHONPATH=$here python3 "$tmp/check.py" "$tmp/$1.png" "$2" >"$tmp/out" 2>&1 &&
		ok "$1: $(tail -n 1 "$tmp/out")" ||
		{ bad "$1"; tail -n 3 "$tmp/out"; }
}

shot text FB-TEXT 1024x768 || { echo "FAIL: no text screen"; exit 1; }
shot pattern FB-PATTERN 1024x768
shot absurd FB-ABSURD 1024x768
shot mode FB-MODE 640x480
shot vga FB-VGA 640x400
grep -q "^vesafb: mode is 1024x768x32" "$log" && ok "vesafb found the framebuffer" ||
	bad "no vesafb line in the boot log"
check text text
check pattern pattern
check absurd pattern	# the refused mode left the picture alone
check vga vga
# A relative path is taken from the caller's directory.
(cd "$tmp" && "$tv" vm screenshot fb rel.png >/dev/null 2>&1) &&
	[ -s "$tmp/rel.png" ] && ok "relative screenshot path" ||
	bad "relative screenshot path"
[ $fails -eq 0 ]
