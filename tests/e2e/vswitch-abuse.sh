#!/bin/bash
# Bad input and floods on a real switch: garbage and truncated hellos,
# idle connections, malformed and oversized frames, a port flooding a
# reader that never reads; the switch neither crashes nor starves the
# other ports, and counts what it dropped.
set -u
. "$(dirname "$0")/vswitch-lib.sh"

"$tv" switch run --daemon || bad "switch run"
python3 - <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import json, os, socket, struct, subprocess, threading, time
ck = Check()
tv = os.environ["tv"]

def raw(msg):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(3)
    s.connect(sock_path())
    try:
        if msg is not None:
            s.send(msg)
        return s.recv(4096)
    except (socket.timeout, OSError):
        return b""
    finally:
        s.close()

w = raw(b"\0" * 10)
ck(len(w) == WELCOME.size and WELCOME.unpack(w)[3] < 0, "a short hello is refused")
w = raw(os.urandom(HELLO.size))
ck(WELCOME.unpack(w)[3] < 0, "a random hello is refused")
bad = HELLO.pack(MAGIC, 99, 0, 0, mac(1), b"\0\0", b"lan", b"vm", b"n")
ck(b"version" in raw(bad), "another protocol version is refused")
bad = HELLO.pack(MAGIC, VERSION, 0, 0, mac(1), b"\0\0", b"x" * 64, b"vm", b"n")
ck(WELCOME.unpack(raw(bad))[3] < 0, "an unterminated port group is refused")
try:
    Nic("lan", 1, hello=b"\x00" * 70000)
    ck(False, "a 70000-byte hello was accepted")
except (Refused, OSError) as e:
    ck(True, "a 70000-byte hello is refused (%s)" % e)

# Frames that are not.
a, b = Nic("lan", 1), Nic("lan", 2)
a.send(None, raw=b"\0" * 5)
a.send(None, raw=HDR + b"\xff" * 13)
a.send(None, raw=HDR + BCAST + mac(1) + b"\x08\x00" + b"x" * 66000)
a.send(None, raw=b"\x01\x00\x00\x00\x00\x00\xf0\xff\x00\x00\x00\x00" +
       BCAST + mac(1) + b"\x08\x00" + b"x" * 50)
a.send(None, raw=HDR + BCAST + b"\x01" + mac(1)[1:] + b"\x08\x00" + b"x" * 50)
for i in range(200):
    a.send(None, raw=os.urandom(20 + i * 7))
a.send(BCAST, b"still here")
got = b.drain()
ck(any(f[14:24] == b"still here" for f in got), "a good frame after garbage")
j = json.loads(subprocess.run([tv, "switch", "show", "--json"],
                              capture_output=True, text=True).stdout)
pa = [p for p in j["ports"] if p["name"] == "py1:net0"][0]["counters"]
ck(pa["rx_malformed"] >= 4, "malformed frames counted (%d)" % pa["rx_malformed"])

# A flood towards a port that never reads, while a and b talk.
sink = Nic("lan", 3)
sink.send(BCAST)
a.drain(); b.drain()
f = Nic("lan", 4)
stop = False
sent = [0]

def flood():
    while not stop:
        if f.send(sink.mac, b"F" * 60000, wait=0):
            sent[0] += 1
        else:
            time.sleep(0.0005)

t = threading.Thread(target=flood)
t.start()
worst, lost, i = 0.0, 0, 0
t0 = time.time()
# At least 50 round trips, and on until the sink must be full.
while i < 50 or (sent[0] < 300 and time.time() - t0 < 8):
    i += 1
    s = time.time()
    a.send(b.mac, b"ping %d" % i)
    got = b.recv(2.0)
    if got is None:
        lost += 1
        continue
    b.send(a.mac, b"pong")
    if a.recv(2.0) is None:
        lost += 1
    worst = max(worst, time.time() - s)
stop = True
t.join()
ck(lost == 0, "%d ping-pongs during the flood, %d lost" % (i, lost))
ck(worst < 1.0, "worst round trip %.3f s while %d frames flooded" % (worst, sent[0]))
j = json.loads(subprocess.run([tv, "switch", "show", "--json"],
                              capture_output=True, text=True).stdout)
ps = [p for p in j["ports"] if p["name"] == "py3:net0"][0]["counters"]
ck(ps["tx_full"] > 0, "the full sink's drops are counted (%d)" % ps["tx_full"])

# Idle connections that never say hello are let go.
idle = []
for i in range(70):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sock_path())
    idle.append(s)
time.sleep(6.5)
try:
    n = Nic("lan", 5)
    ck(True, "a NIC is served after 70 idle connections timed out")
except Exception as e:
    ck(False, "after idle connections: %s" % e)
ck.exit()
EOF
"$tv" switch show >/dev/null || bad "the switch died"
"$tv" switch stop || bad "switch stop"
finish
