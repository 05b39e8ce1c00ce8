#!/usr/bin/env python3
"""Host time of the software CPU's generated code, by guest function.

The JIT's buffer is a memfd mapping, which perf report does not resolve
through /tmp/perf-PID.map; this does it from perf script's samples:

  TV_BT_PERFMAP=1 termvisor run --accel bt ...   # writes /tmp/perf-PID.map
  perf record -p PID -- sleep 10
  perf script -F ip,dso -G > samples.txt
  tests/bt/jitprof.py /tmp/perf-PID.map samples.txt guest-kallsyms.txt [N]

Blocks are named by guest RIP; a kernel RIP maps to its function through
the guest's /proc/kallsyms (boot with nokaslr), user RIPs count as <user>.
A flush of the code buffer reuses addresses: the later map line wins.
"""
import bisect
import collections
import sys


def main():
    blocks = []
    for n, line in enumerate(open(sys.argv[1])):
        a, s, name = line.split()
        blocks.append((int(a, 16), int(s, 16), name, n))
    blocks.sort()
    starts = [b[0] for b in blocks]
    syms = []
    for line in open(sys.argv[3]):
        a, t, name = line.split()[:3]
        if t in 'tTwW':
            syms.append((int(a, 16), name))
    syms.sort()
    sym_at = [a for a, _ in syms]
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    fn = collections.Counter()
    total = jit = unmapped = 0
    for line in open(sys.argv[2]):
        f = line.split()
        if not f:
            continue
        total += 1
        if 'memfd' not in line:
            continue
        jit += 1
        ip = int(f[0], 16)
        k = bisect.bisect_right(starts, ip) - 1
        best = None
        for j in range(k, max(k - 64, -1), -1):
            b = blocks[j]
            if b[0] <= ip < b[0] + b[1] and (best is None or b[3] > best[3]):
                best = b
        if best is None:
            unmapped += 1
            continue
        rip = int(best[2][3:], 16)
        if rip < 0xffff800000000000:
            fn['<user>'] += 1
            continue
        j = bisect.bisect_right(sym_at, rip) - 1
        fn[syms[j][1] if j >= 0 else '?'] += 1
    print('samples %d, in generated code %d (%.1f%%), outside any block %d'
          % (total, jit, 100.0 * jit / max(total, 1), unmapped))
    for name, c in fn.most_common(top):
        print('%6.2f%% %s' % (100.0 * c / max(total, 1), name))


main()
