#!/bin/bash
# Live migration benchmark: termvisor and QEMU side by side, from one run
# on this host, over loopback.  Prints the figures and termvisor/QEMU
# ratios; never pass/fail.
#
#   scripts/bench-migrate.sh BUILD_DIR
#	env: MEM=256M (guest memory, the same for both)  DIRTY=4 (MiB the
#	     guest rewrites per step, a step every 0.1 s: a fixed dirty rate)
#	     ACCEL=bt (termvisor), QACCEL=tcg (QEMU)  DOWNTIME=300 (ms, both)
#	     NOQEMU=1 (termvisor alone)  ERRLOG=FILE (keep the VMMs' logs)
#
# The guest (the reference guest on both) fills a 32 MiB buffer once, then
# loops: rewrite DIRTY MiB of it, print a line with a counter and its own
# clock (/proc/uptime), sleep 0.1 s.  Each VMM's serial console is read
# by this script, which stamps every line with the host clock as it
# arrives.  The downtime, from inside the guest: the guest's clock stands
# still while it is stopped (on both VMMs), so across the move (the
# source's last line, the destination's first) the host's gap less the
# guest's own is how long it did not run ("guest stopped"), whatever the
# guest's pace between two lines (seconds, on a busy host).  The raw
# console gap is printed too, and that gap less the median interval
# before the move ("beyond a tick").  Total time: from the migrate
# command to the source's end.  Bytes: what each side reports sent
# (termvisor's "migrated" line; QEMU's query-migrate ram.total
# transferred).  termvisor's own breakdown of its downtime (migrate -v:
# the source's steps, the destination's load and lock) is printed under
# its line, with when the destination's guest ran after the hand-over
# (its debug log).
set -u
build=${1:-build}
tv=$(readlink -f "$build/termvisor")
mem=${MEM:-256M}
dirty=${DIRTY:-4}
accel=${ACCEL:-bt}
qaccel=${QACCEL:-tcg}
downtime=${DOWNTIME:-300}
guest=${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest
qemu=$(command -v qemu-system-x86_64 || true)
[ -n "${NOQEMU:-}" ] && qemu=	# termvisor alone (while working on it)
errlog=${ERRLOG:-}		# keep the VMMs' logs there
echo "== Migration: $mem guest rewriting $dirty MiB every 0.1 s, max downtime $downtime ms, loopback =="
[ -r "$guest/vmlinuz" ] || { echo "skipped: reference guest not built (make guest)"; exit 0; }
[ -n "$qemu" ] || echo "(QEMU not installed or NOQEMU set: termvisor alone)"
tmp=$(mktemp -d)
trap '[ -n "$errlog" ] && cp "$tmp/err.log" "$errlog"; rm -rf "$tmp"' EXIT

export TV=$tv QEMU=$qemu MEMSZ=$mem DIRTY=$dirty ACCEL=$accel QACCEL=$qaccel \
	DOWNTIME=$downtime GUEST=$guest TMP=$tmp
python3 - <<'EOF'
import json, os, re, select, socket, subprocess, sys, time

env = os.environ
tmp, guest = env["TMP"], env["GUEST"]
cmd = ("dd if=/dev/urandom of=/dev/shm/b bs=1M count=32 2>/dev/null; i=0; "
       "while :; do i=$((i+1)); dd if=/dev/urandom of=/dev/shm/b bs=1M "
       "count=%s conv=notrunc seek=$((i %% 8 * 4)) 2>/dev/null; "
       "read u x </proc/uptime; echo \"tick $i $u\"; sleep 0.1; done" % env["DIRTY"])
enc = cmd.replace("%", "%25").replace("+", "%2B").replace(" ", "+")
append = "console=ttyS0 panic=-1 tv.quiet=1 tv.run=" + enc

def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

class Reader:
    """Lines of a process's stdout, stamped with the host clock."""
    def __init__(self, p):
        self.p, self.buf, self.ticks, self.clock = p, b"", [], []
    def pump(self, t=0.05):
        r, _, _ = select.select([self.p.stdout], [], [], t)
        if not r:
            return
        d = os.read(self.p.stdout.fileno(), 65536)
        if not d:
            return
        self.buf += d
        now = time.monotonic()
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            m = re.search(rb"tick (\d+)(?: ([\d.]+))?", line)
            if m:
                self.ticks.append((int(m.group(1)), now))
            if m and m.group(2):
                self.clock.append((now, float(m.group(2))))

def pump_all(rs, secs, until=None):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        for r in rs:
            r.pump(0.02)
        if until and until():
            return True
    return False

def gap(src, dst):
    """The arrival gap across the move: the source's last tick to the
    destination's first.  (Not the largest gap of the run: on a loaded
    host the guest itself stalls for longer now and then.)"""
    # A line cut by the pause ends on the destination: count its start.
    for r in (src, dst):
        m = re.search(rb"tick (\d+)( [\d.]*)?$", r.buf)
        if m and r.ticks:
            r.ticks.append((int(m.group(1)), r.ticks[-1][1]))
    t = dict(src.ticks); t.update(dict(dst.ticks))
    ks = sorted(t)
    missing = [k for k in range(ks[0], ks[-1]) if k not in t] if ks else []
    iv = sorted(b[1] - a[1] for a, b in zip(src.ticks, src.ticks[1:]))
    g = dst.ticks[0][1] - src.ticks[-1][1] if src.ticks and dst.ticks else 0.0
    # The guest's clock stands still while it is stopped (both VMMs):
    # the host's gap less the guest's own across the move is how long
    # the guest did not run, whatever its pace between two lines.
    stop = None
    if src.clock and dst.clock:
        (h0, g0), (h1, g1) = src.clock[-1], dst.clock[0]
        stop = (h1 - h0) - (g1 - g0)
    return g, missing, iv[len(iv) // 2] if iv else 0.0, stop

def spawn(args):
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=open(os.path.join(tmp, "err.log"), "a"))

def run_termvisor():
    secret = os.path.join(tmp, "secret")
    open(secret, "w").write("bench secret\n")
    base = [env["TV"], "run", "-vv", "--accel", env["ACCEL"], "-m", env["MEMSZ"],
            "--kernel", guest + "/vmlinuz", "--initrd", guest + "/initrd.img",
            "--append", append]
    p = port()
    src = spawn(base); dst = spawn(base[:2] + ["--incoming", "tcp:%d" % p,
                                   "--secret-file", secret] + base[2:])
    rs, rd = Reader(src), Reader(dst)
    try:
        if not pump_all([rs, rd], 300, lambda: len(rs.ticks) >= 30):
            return None
        t0 = time.monotonic()
        m = subprocess.Popen([env["TV"], "migrate", "-q", "-v", "-d", env["DOWNTIME"],
                              "pid-%d" % src.pid, "tcp://127.0.0.1:%d" % p,
                              "--secret-file", secret], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        pump_all([rs, rd], 300, lambda: src.poll() is not None)
        total = time.monotonic() - t0
        out = m.communicate()[0].decode()
        pump_all([rs, rd], 10, lambda: len(rd.ticks) >= 20)
        b = re.search(r"migrated .*: ([\d.]+) MiB", out)
        g, missing, tick, stop = gap(rs, rd)
        log = open(os.path.join(tmp, "err.log"), errors="replace").read()
        run = re.findall(r"the guest runs here ([\d.]+) ms after the go", log)
        parts = re.search(r"downtime parts.*", out)
        return dict(total=total, downtime=g, tick=tick, stop=stop,
                    mib=float(b.group(1)) if b else -1,
                    missing=len(missing), raw=out.splitlines()[0].strip() if out else "",
                    parts=(parts.group(0) if parts else "") +
                    ("; destination: the guest ran %s ms after the go" % run[-1] if run else ""))
    finally:
        for x in (src, dst):
            x.kill(); x.wait()

def qmp(path):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(100):
        try:
            s.connect(path); break
        except OSError:
            time.sleep(0.1)
    f = s.makefile("rw")
    f.readline()
    def call(cmd, **args):
        f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n"); f.flush()
        while True:
            r = json.loads(f.readline())
            if "return" in r or "error" in r:
                return r
    call("qmp_capabilities")
    return call

def run_qemu():
    acc = "kvm" if env["QACCEL"] == "kvm" else "tcg"
    base = [env["QEMU"], "-M", "pc", "-accel", acc, "-m", env["MEMSZ"], "-nographic",
            "-nodefaults", "-serial", "stdio", "-kernel", guest + "/vmlinuz",
            "-initrd", guest + "/initrd.img", "-append", append]
    p = port()
    sq, dq = os.path.join(tmp, "s.qmp"), os.path.join(tmp, "d.qmp")
    src = spawn(base + ["-qmp", "unix:%s,server=on,wait=off" % sq])
    dst = spawn(base + ["-qmp", "unix:%s,server=on,wait=off" % dq,
                        "-incoming", "tcp:127.0.0.1:%d" % p])
    rs, rd = Reader(src), Reader(dst)
    try:
        if not pump_all([rs, rd], 300, lambda: len(rs.ticks) >= 30):
            return None
        call = qmp(sq)
        call("migrate-set-parameters", **{"downtime-limit": int(env["DOWNTIME"])})
        t0 = time.monotonic()
        call("migrate", uri="tcp:127.0.0.1:%d" % p)
        st = {}
        while True:
            pump_all([rs, rd], 0.1)
            st = call("query-migrate")["return"]
            if st.get("status") in ("completed", "failed", "cancelled"):
                break
        total = time.monotonic() - t0
        pump_all([rs, rd], 30, lambda: len(rd.ticks) >= 20)
        g, missing, tick, stop = gap(rs, rd)
        return dict(total=total, downtime=g, tick=tick, stop=stop,
                    mib=st.get("ram", {}).get("total", 0) / 1048576.0
                    if st.get("status") == "completed" else -1,
                    missing=len(missing), raw="status %s, QEMU's own downtime %s ms" %
                    (st.get("status"), st.get("downtime")))
    finally:
        for x in (src, dst):
            x.kill(); x.wait()

t = run_termvisor()
q = run_qemu() if env["QEMU"] else None
def show(name, r):
    if r is None:
        print("%-10s failed (guest did not start or migration did not end)" % name); return
    print("%-10s total %6.2f s  guest stopped %s ms  (console gap %.0f ms, %.0f beyond a tick)  sent %7.1f MiB  lost ticks %d  (%s)" %
          (name, r["total"], "%.0f" % (r["stop"] * 1000) if r["stop"] is not None else "?",
           r["downtime"] * 1000, max(0.0, r["downtime"] - r["tick"]) * 1000,
           r["mib"], r["missing"], r["raw"]))
    if r.get("parts"):
        print("%-10s %s" % ("", r["parts"]))
show("termvisor", t)
show("qemu", q)
if t and q and q["total"] > 0 and q["downtime"] > 0 and q["mib"] > 0:
    print("ratios termvisor/qemu: total %.2f  guest stopped %s  console gap %.2f  bytes %.2f" %
          (t["total"] / q["total"],
           "%.2f" % (t["stop"] / q["stop"]) if t["stop"] and q["stop"] else "?",
           t["downtime"] / q["downtime"], t["mib"] / q["mib"]))
EOF
