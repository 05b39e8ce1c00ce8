#!/bin/bash
# migrate-cancel: a migration to a destination that accepts and then
# never answers is cancelled; the VM reports the outcome (a "migration"
# event with status failed), keeps running, and has no migration left to
# cancel.
set -u
tv=$(realpath "${BUILD:-build}/termvisor")
guest=$(realpath "${BUILD:-build}/guests/multiboot.elf" 2>/dev/null)
[ -f "$guest" ] || { echo "skip: test guests not built (make test-guests)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
XDG_RUNTIME_DIR=$tmp/run python3 - "$tv" "$guest" <<'PY'
import json, os, socket, subprocess, sys, threading, time
tv, guest = sys.argv[1], sys.argv[2]
rt = os.environ["XDG_RUNTIME_DIR"]
os.makedirs(rt, mode=0o700, exist_ok=True)
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
held = []
threading.Thread(target=lambda: held.append(ls.accept()), daemon=True).start()
p = subprocess.Popen([tv, "run", "--accel", "bt", "--kernel", guest, "--memory",
                      "64M", "--vnc", "none", "--display", "none"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
import atexit
atexit.register(p.kill)	# whatever happens below, the VM goes
def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)
path = f"{rt}/termvisor/pid-{p.pid}.sock"
for _ in range(200):
    if os.path.exists(path):
        break
    time.sleep(0.1)
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.settimeout(20)
f = s.makefile("rw")
f.readline()
events = []
def call(cmd, args=None):
    req = {"cmd": cmd}
    if args:
        req["args"] = args
    f.write(json.dumps(req) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "event" not in r:
            return r
        events.append(r)
port = ls.getsockname()[1]
r = call("migrate", {"uri": f"tcp://127.0.0.1:{port}", "secret": "s3cret"})
if not r.get("ok"):
    fail(f"migrate refused: {r}")
time.sleep(1)
r = call("migrate-cancel")
if not r.get("ok"):
    fail(f"migrate-cancel refused: {r}")
end = time.time() + 15
outcome = None
while outcome is None and time.time() < end:
    outcome = next((e for e in events if e.get("event") == "migration"
                    and e.get("status") != "active"), None)
    if outcome is None:
        try:
            events.append(json.loads(f.readline()))
        except (OSError, ValueError):
            break
if outcome is None or outcome.get("status") != "failed":
    fail(f"no 'failed' migration event after the cancel: {outcome}")
print("ok: outcome event", outcome)
r = call("migrate-cancel")
if r.get("ok"):
    fail("a second migrate-cancel still found a migration")
print("ok: nothing left to cancel:", r["error"]["message"])
state = call("status").get("result", {}).get("state")
if state != "running":
    fail(f"state {state} after the cancel")
print("ok: the VM runs on")
PY
