#!/bin/bash
# A switch restarted under attached NICs: `switch stop` closes their
# ports (they see EOF), a new switch serves their reconnect; a switch
# killed with SIGKILL leaves its socket and lock file behind, and the
# next one takes over; two switches started at once end as one.
set -u
. "$(dirname "$0")/vswitch-lib.sh"

"$tv" switch run --daemon || bad "switch run"
python3 - <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import os, signal, subprocess, time
ck = Check()
tv = os.environ["tv"]
lock = sock_path() + ".lock"

def pair():
    a, b = Nic("lan", 1), Nic("lan", 2)
    a.send(BCAST, b"hi")
    return a, b, len(b.drain()) == 1

a, b, fw = pair()
ck(fw, "forwarding before the restart")
pid = int(open(lock).read())
ck(subprocess.run([tv, "switch", "stop"]).returncode == 0, "switch stop")
ck(a.closed() and b.closed(), "the NICs saw their ports close")
ck(subprocess.run([tv, "switch", "run", "--daemon"]).returncode == 0,
   "a new switch")
a, b, fw = pair()
ck(fw and int(open(lock).read()) != pid, "reconnected NICs forward again")

# SIGKILL: no cleanup at all.
pid = int(open(lock).read())
os.kill(pid, signal.SIGKILL)
ck(a.closed(), "the port closes when the switch dies")
ck(os.path.exists(sock_path()), "a dead switch leaves its socket")
try:
    Nic("lan", 7)
    ck(False, "a dead switch answered")
except ConnectionRefusedError:
    ck(True, "nobody answers on the stale socket")
# Two starters at once: one switch.
ps = [subprocess.Popen([tv, "switch", "run", "--daemon"]) for i in range(3)]
ck(all(p.wait() == 0 for p in ps), "three starters all succeed")
out = subprocess.run(["pgrep", "-f", "switch run"], capture_output=True,
                     text=True).stdout.split()
mine = [p for p in out if os.path.exists("/proc/%s/environ" % p) and
        os.environ["XDG_RUNTIME_DIR"].encode() in
        open("/proc/%s/environ" % p, "rb").read()]
ck(len(mine) == 1, "one switch runs (%s)" % mine)
a, b, fw = pair()
ck(fw, "the survivor forwards")
ck.exit()
EOF
"$tv" switch stop || bad "switch stop"
finish
