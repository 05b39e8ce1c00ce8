#!/bin/bash
# `termvisor switch capture` on a real switch: a port group's frames,
# filtered by a BPF expression, written as pcap and read back by tshark
# (Wireshark's reader, not ours); -c COUNT; a port's capture; Ctrl-C
# (SIGINT) ends a capture with a complete file; a bad filter is refused.
set -u
. "$(dirname "$0")/vswitch-lib.sh"
command -v tshark >/dev/null || { echo "tshark not installed (apt-get install tshark)"; exit 77; }

"$tv" switch run --daemon || bad "switch run"
python3 - "$tmp" <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import os, signal, subprocess, sys, time
tmp, tv = sys.argv[1], os.environ["tv"]
ck = Check()
a, b = Nic("lan", 1), Nic("lan", 2)
c = Nic("other", 3)

def traffic(n):
    for i in range(n):
        a.send(b.mac, ipv4_udp("10.0.0.1", "10.0.0.2", 4000 + i, 53,
                               b"query %d" % i))
        a.send(b.mac, ipv4_udp("10.0.0.1", "10.0.0.2", 4000 + i, 9999,
                               b"other %d" % i))
        c.send(BCAST, ipv4_udp("10.9.0.1", "10.9.0.255", 1, 53, b"no"))
    b.drain(0.1)

def start(args):
    p = subprocess.Popen([tv, "switch", "capture"] + args,
                         stderr=subprocess.PIPE, text=True)
    # Wait for "capturing ..." so no frame is sent before it listens.
    ck("capturing" in p.stderr.readline(), "capture %s started" % args[0])
    return p

def tshark(f, fields):
    r = subprocess.run(["tshark", "-r", f, "-T", "fields"] +
                       sum([["-e", x] for x in fields], []),
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
    return [l.split("\t") for l in r.stdout.splitlines()]

# A port group with a filter, ended by -c.
f1 = tmp + "/dns.pcap"
p = start(["lan", "-w", f1, "-c", "5", "udp", "port", "53"])
traffic(10)
p.wait(timeout=10)
ck(p.returncode == 0, "capture -c 5 ended by itself")
rows = tshark(f1, ["ip.src", "ip.dst", "udp.dstport", "udp.payload"])
ck(len(rows) == 5, "tshark reads 5 frames (%d)" % len(rows))
ck(all(r[0] == "10.0.0.1" and r[2] == "53" for r in rows),
   "only lan's port 53 frames: %s" % rows[:2])
ck(rows and bytes.fromhex(rows[0][3].replace(":", "")) == b"query 0", "payload intact")

# A port's capture, both directions, until SIGINT.
f2 = tmp + "/port.pcap"
p = start(["py2:net0", "-w", "port.pcap"])
traffic(3)
b.send(a.mac, b"reply" * 10)
a.drain(0.2)
time.sleep(0.3)
p.send_signal(signal.SIGINT)
p.wait(timeout=10)
ck(p.returncode == 0, "capture ended by SIGINT")
rows = tshark(os.getcwd() + "/port.pcap", ["eth.src", "eth.dst"])
ck(len(rows) == 7, "port capture: 6 frames to b and 1 from it (%d)" % len(rows))
ck(["52:54:00:00:00:02", "52:54:00:00:00:01"] in rows, "b's own frame is in")
os.unlink("port.pcap")

# Bad input.
r = subprocess.run([tv, "switch", "capture", "lan", "-w", f1, "udp", "prot"],
                   capture_output=True, text=True)
ck(r.returncode == 2 and "filter" in r.stderr, "a bad filter is refused")
r = subprocess.run([tv, "switch", "capture", "nosuch", "-w", f1],
                   capture_output=True, text=True)
ck(r.returncode == 1 and "nosuch" in r.stderr, "an unknown target is refused")
ck.exit()
EOF
"$tv" switch stop || bad "switch stop"
finish
