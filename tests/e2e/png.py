"""Decode the PNG screenshots the tests read: termvisor's own (termvisor
vm screenshot, 8-bit RGB) and a browser's (the noVNC check, 8-bit RGBA),
with any of the row filters an encoder may choose.  The display tests
(tests/e2e/display-fb.sh, slow-display-bochs.sh, tests/vnc/novnc_check.py)
check pixels with it instead of needing an image library on the host."""

import struct
import zlib


def unfilter(f, line, prev, bpp):
    """Undo row filter f of line (bytearray, in place) against the
    previous unfiltered row prev; bpp bytes a pixel."""
    if f == 0:
        return
    if f == 2:
        for x in range(len(line)):
            line[x] = (line[x] + prev[x]) & 255
        return
    for x in range(len(line)):
        a = line[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        if f == 1:
            line[x] = (line[x] + a) & 255
        elif f == 3:
            line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else
                                  b if pb <= pc else c)) & 255


def load(path):
    """(width, height, rows): rows[y] holds 3 bytes (R, G, B) a pixel
    (an alpha channel is dropped).  ValueError for what it cannot read:
    not a PNG, not 8-bit RGB or RGBA, interlaced."""
    d = open(path, 'rb').read()
    if d[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('%s: not a PNG' % path)
    pos, idat, w, h, bpp = 8, b'', None, None, 3
    while pos < len(d):
        n, t = struct.unpack('>I4s', d[pos:pos + 8])
        body = d[pos + 8:pos + 8 + n]
        if t == b'IHDR':
            w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB',
                                                                body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError('%s: not 8-bit RGB(A), non-interlaced' %
                                 path)
            bpp = 3 if ctype == 2 else 4
        elif t == b'IDAT':
            idat += body
        pos += 12 + n
    if w is None:
        raise ValueError('%s: no IHDR' % path)
    raw, stride = zlib.decompress(idat), bpp * w
    rows, prev = [], bytearray(stride)
    for y in range(h):
        off = y * (stride + 1)
        line = bytearray(raw[off + 1:off + 1 + stride])
        unfilter(raw[off], line, prev, bpp)
        rows.append(line if bpp == 3 else
                    bytearray(b for i in range(0, stride, 4)
                              for b in line[i:i + 3]))
        prev = line
    return w, h, rows


def pixel(rows, x, y):
    """The (R, G, B) of one pixel of load()'s rows."""
    return tuple(rows[y][3 * x:3 * x + 3])
