#!/bin/bash
# A switch restarted under attached NICs: `switch stop` closes their
# ports (they see EOF), a new switch serves their reconnect; a switch
# killed with SIGKILL leaves its socket and lock file behind, and the
# next one takes over; two switches started at once end as one; `switch
# stop` returns only once the process has exited, or fails after its
# --timeout; a switch that does not answer fails a command, not hangs it.
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

# `switch stop` returns once the process has exited, not when its
# control socket goes: the switch's log is a pipe this test holds and
# fills, so the last line the switch writes ("stopped", after it has let
# go of its lock and sockets, just before it exits) blocks until the
# test reads.  Then a stop that outlasts --timeout fails.
python3 - <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import os, subprocess, time
ck = Check()
tv = os.environ["tv"]
lock, log = sock_path() + ".lock", sock_path() + ".log"

def state(pid):
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"

def exited(pid):	# a zombie has exited; its reaper is not ours
    return state(pid) in ("Z", "X", "gone")

def fill(fd):
    for n in (4096, 1):	# writes up to PIPE_BUF are all or nothing
        try:
            while True:
                os.write(fd, b"x" * n)
        except BlockingIOError:
            pass

def drain(fd):
    out = b""
    try:
        while True:
            d = os.read(fd, 65536)
            if not d:
                return out
            out += d
    except BlockingIOError:
        return out

def wait_log(fd, text, n):
    """Until the switch has logged text n times (5 s at most)."""
    got, end = b"", time.time() + 5
    while got.count(text) < n and time.time() < end:
        got += drain(fd)
        time.sleep(0.05)

if os.path.exists(log):
    os.unlink(log)
os.mkfifo(log, 0o600)
# Read-write: the switch's open of its log never waits for a reader.
fifo = os.open(log, os.O_RDWR | os.O_NONBLOCK)
ck(subprocess.run([tv, "switch", "run", "--daemon"]).returncode == 0,
   "a switch that logs to a pipe")
pid = int(open(lock).read())
drain(fifo)
fill(fifo)
stop = subprocess.Popen([tv, "switch", "stop"])
time.sleep(1.5)
ck(stop.poll() is None and not exited(pid),
   "switch stop waits while the process has not exited (%s)" % (
       "returned %s" % stop.returncode if stop.poll() is not None else
       "running"))
drain(fifo)
try:
    rc = stop.wait(30)
except subprocess.TimeoutExpired:
    rc = "still waiting after 30 s"
ck(rc == 0 and exited(pid),
   "it returns once the process exited (status %s, process %s)" % (
       rc, state(pid)))
ck(subprocess.run([tv, "switch", "run", "--daemon"]).returncode == 0 and
   int(open(lock).read()) != pid, "a new switch starts right after")
a, b = Nic("lan", 1), Nic("lan", 2)
a.send(BCAST, b"hi")
ck(len(b.drain()) == 1, "and forwards")
a.close()
b.close()
# Not blocked in the lines saying so, which would hold the stop request.
wait_log(fifo, b" left (", 2)

pid = int(open(lock).read())
fill(fifo)
t = time.time()
try:
    r = subprocess.run([tv, "switch", "stop", "--timeout", "1"],
                       capture_output=True, text=True, timeout=30)
except subprocess.TimeoutExpired:
    r = subprocess.CompletedProcess([], None, "", "(still waiting after 30 s)")
ck(r.returncode == 1 and "still runs after 1 s" in r.stderr and
   time.time() - t < 5, "stop --timeout 1 fails when the process stays: " +
   r.stderr.strip())
drain(fifo)
end = time.time() + 5
while not exited(pid) and time.time() < end:
    drain(fifo)
    time.sleep(0.05)
ck(exited(pid), "and the switch exits once its log moves again")
os.close(fifo)
ck.exit()
EOF

# A switch that never answers (stopped with SIGSTOP) makes a command
# fail after the client's 10 s bound, with a message, instead of hanging.
python3 - <<'EOF' || fails=$((fails + 1))
from vswitch_nic import *
import os, signal, subprocess, time
ck = Check()
tv = os.environ["tv"]
lock, log = sock_path() + ".lock", sock_path() + ".log"
if os.path.exists(log):	# the pipe above: nobody reads it now
    os.unlink(log)
ck(subprocess.run([tv, "switch", "run", "--daemon"]).returncode == 0,
   "a switch to stop")
pid = int(open(lock).read())
os.kill(pid, signal.SIGSTOP)
t = time.time()
try:
    r = subprocess.run([tv, "switch", "show"], capture_output=True,
                       text=True, timeout=40)
except subprocess.TimeoutExpired:
    r = subprocess.CompletedProcess([], None, "", "(still waiting after 40 s)")
took = time.time() - t
os.kill(pid, signal.SIGCONT)
ck(r.returncode not in (0, None) and "did not answer within" in r.stderr and
   took < 20, "show fails when the switch does not answer (%.1f s): %s" % (
       took, r.stderr.strip()))
ck(subprocess.run([tv, "switch", "stop"]).returncode == 0,
   "and the switch, running again, stops")
ck.exit()
EOF
finish
