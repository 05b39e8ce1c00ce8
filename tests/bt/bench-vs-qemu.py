#!/usr/bin/env python3
"""Side-by-side timing of the software CPU and QEMU TCG on the reference
guest: boot to the shell prompt, a busybox shell loop, md5sum of 32 MiB.
Prints the times and the ratios from one run (no pass/fail: wall time on
a shared host says little on its own).

    tests/bt/bench-vs-qemu.py [BUILD_DIR]
"""
import os
import re
import select
import subprocess
import sys
import time

GUEST = os.path.join(os.environ.get('XDG_CACHE_HOME',
                                    os.path.expanduser('~/.cache')),
                     'termvisor', 'guest')
APPEND = 'console=ttyS0 mitigations=off'
STEPS = [
    ('shell loop', b'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; '
                   b'echo LOOP-$i\n', rb'\nLOOP-20000'),
    ('md5sum 32M', b'dd if=/dev/zero bs=1M count=32 2>/dev/null | md5sum; '
                   b'echo MD5-$((1+1))\n', rb'\nMD5-2'),
]


def run(cmd, limit=600):
    t0 = time.time()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    buf, res, step, ts = b'', {}, -1, 0.0
    try:
        while time.time() < t0 + limit:
            r, _, _ = select.select([p.stdout], [], [], 1)
            if not r:
                continue
            d = os.read(p.stdout.fileno(), 65536)
            if not d:
                break
            buf += d
            if step < 0 and b'guest:/#' in buf:
                res['boot to prompt'] = time.time() - t0
                step, ts = 0, time.time()
                p.stdin.write(STEPS[0][1])
                p.stdin.flush()
            elif step >= 0 and re.search(STEPS[step][2], buf):
                res[STEPS[step][0]] = time.time() - ts
                step += 1
                if step == len(STEPS):
                    break
                ts = time.time()
                p.stdin.write(STEPS[step][1])
                p.stdin.flush()
    finally:
        p.kill()
        p.wait()
    return res


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else 'build'
    tv = os.path.join(build, 'termvisor')
    if not os.path.exists(os.path.join(GUEST, 'vmlinuz')):
        print('no reference guest in %s (make guest)' % GUEST)
        return 77
    bt = run([tv, 'run', '--accel', 'bt', '-m', '512M', '--no-reboot',
              '-a', APPEND])
    qemu = run(['qemu-system-x86_64', '-accel', 'tcg', '-M', 'pc', '-m',
                '512M', '-nographic', '-no-reboot', '-kernel',
                os.path.join(GUEST, 'vmlinuz'), '-initrd',
                os.path.join(GUEST, 'initrd.img'), '-append', APPEND])
    print('%-16s %10s %10s %8s' % ('', 'bt', 'qemu-tcg', 'bt/tcg'))
    for k in ['boot to prompt'] + [s[0] for s in STEPS]:
        b, q = bt.get(k), qemu.get(k)
        print('%-16s %9s %9s %8s' % (
            k, '%.2fs' % b if b else '-', '%.2fs' % q if q else '-',
            '%.1fx' % (b / q) if b and q else '-'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
