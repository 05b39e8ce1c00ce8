"""Decode the PNG screenshots termvisor writes (termvisor vm screenshot):
8-bit RGB, any of the row filters libpng may choose.  The display tests
(tests/e2e/display-fb.sh, slow-display-bochs.sh) check pixels with it
instead of needing an image library on the host."""

import struct
import zlib


def load(path):
    """(width, height, rows): rows[y] holds 3 bytes (R, G, B) a pixel."""
    d = open(path, 'rb').read()
    assert d[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat, w, h = 8, b'', None, None
    while pos < len(d):
        n, t = struct.unpack('>I4s', d[pos:pos + 8])
        body = d[pos + 8:pos + 8 + n]
        if t == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
            assert (depth, ctype) == (8, 2), 'not 8-bit RGB'
        elif t == b'IDAT':
            idat += body
        pos += 12 + n
    assert w is not None, 'no IHDR'
    raw, stride, rows, prev = zlib.decompress(idat), 3 * w, [], bytearray(3 * w)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - 3] if x >= 3 else 0
            b, c = prev[x], prev[x - 3] if x >= 3 else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc
                                      else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, rows


def pixel(rows, x, y):
    """The (R, G, B) of one pixel of load()'s rows."""
    return tuple(rows[y][3 * x:3 * x + 3])
