#!/bin/bash
# The control socket of a real `termvisor run` (the reference guest on
# whatever accelerator auto picks): the vm status/stats/pause/resume/stop
# commands, the raw protocol from python3 (greeting, events to a second
# client, garbage, an oversized line, a half message, a client that never
# reads), a stale socket reported and then replaced, and the socket's
# permissions.
set -u
tv=$(realpath "${BUILD:-build}/termvisor")
guest=${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest
[ -r "$guest/vmlinuz" ] || { echo "reference guest not built (make guest)"; exit 77; }
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
. "$(dirname "$0")/sandbox-lib.sh"
pids=()
vm_sandbox	# its VM (web) runs under `tv run`: killed by pid, in pids
sandbox_hook() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; }
sock="$XDG_RUNTIME_DIR/termvisor/web.sock"

# expect STATUS TEXT CMD...: exit status and a piece of the output
expect() {
	local want=$1 text=$2; shift 2
	"$@" >"$tmp/out" 2>&1
	local rc=$?
	if [ $rc -ne "$want" ] || ! grep -q -- "$text" "$tmp/out"; then
		bad "$*: exit $rc (want $want), output:"; cat "$tmp/out"
	else
		ok "$*: $(head -n 1 "$tmp/out")"
	fi
}

start_vm() {	# start_vm LOG: run the datastore VM web in the background
	"$tv" run web </dev/null >"$1" 2>&1 &
	vmpid=$!
	pids+=("$vmpid")
	for _ in $(seq 100); do
		[ -S "$sock" ] && "$tv" vm status web >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	bad "no control socket after 10 s"; cat "$1"
	return 1
}

# wait_gone PID SECONDS: the VM process has exited
wait_gone() {
	for _ in $(seq $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

"$tv" vm create web --memory 256M --kernel "$guest/vmlinuz" \
	--initrd "$guest/initrd.img" --append "console=ttyS0 panic=-1" \
	>/dev/null || { echo "FAIL vm create"; exit 1; }

expect 1 "web is not running" "$tv" vm status web
expect 2 "usage" "$tv" vm stop
expect 2 "unknown or incomplete option" "$tv" vm stop --bogus web
expect 2 "unknown or incomplete option" "$tv" vm pause --force web
expect 2 "--timeout 0" "$tv" vm stop --timeout 0 web
expect 2 "not a VM name" "$tv" vm status ../etc
expect 0 "vm stop \[--force\]" "$tv" vm stop --help

start_vm "$tmp/console1" || exit 1
[ "$(stat -c %a "$sock")" = 600 ] && ok "socket mode 0600" ||
	bad "socket mode $(stat -c %a "$sock")"
[ "$(stat -c %a "$XDG_RUNTIME_DIR/termvisor")" = 700 ] &&
	ok "runtime dir mode 0700" || bad "runtime dir mode"

expect 0 "state:   running" "$tv" vm status web
expect 0 "vcpu" "$tv" vm stats web
expect 0 "web: paused" "$tv" vm pause web
expect 0 "state:   paused" "$tv" vm status web
expect 1 "paused, not running" "$tv" vm pause web
# vm list and vm show ask a VM running here for its live state.
expect 0 "web .* paused (pid" "$tv" vm list
expect 0 "state:    paused (pid" "$tv" vm show web
# Paused vCPUs use no CPU time.
"$tv" vm stats --json web >"$tmp/s1"; sleep 1
"$tv" vm stats --json web >"$tmp/s2"
python3 - "$tmp/s1" "$tmp/s2" <<'EOF' && ok "no CPU time while paused" || bad "CPU time grew while paused"
import json, sys
a, b = (json.load(open(f))["vcpus"][0].get("cpu_time", 0) for f in sys.argv[1:])
sys.exit(0 if b - a < 0.05 else 1)
EOF
expect 0 "web: running" "$tv" vm resume web
expect 1 "running, not paused" "$tv" vm resume web
expect 0 "web .* running (pid" "$tv" vm list

# The raw protocol, as a client program would speak it.
python3 - "$sock" <<'EOF' && ok "raw protocol" || bad "raw protocol"
import json, socket, sys, time
path = sys.argv[1]

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(10)
    f = s.makefile("rb")
    return s, f

def line(f):
    l = f.readline()
    assert l.endswith(b"\n"), l
    return json.loads(l)

def call(s, f, req):
    s.sendall(json.dumps(req).encode() + b"\n")
    while True:
        r = line(f)
        if "event" not in r:
            return r

a, fa = conn()
g = line(fa)
assert g["termvisor"]["protocol"] == 1 and g["vm"] == "web", g
assert g["state"] == "running", g
b, fb = conn()
line(fb)

# A client that never reads: the VM must not wait for it.
slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
slow.connect(path)
slow.setblocking(False)
for i in range(20000):
    try:
        slow.send(b'{"cmd":"console-history"}\n')
    except BlockingIOError:
        break

r = call(a, fa, {"id": 1, "cmd": "status"})
assert r == {"id": 1, "ok": True, "result": r["result"]}, r
# A late client sees the boot log (the kernel prints once its UART
# driver is up: allow a slow software CPU a minute).
for i in range(600):
    r = call(a, fa, {"id": "x", "cmd": "console-history"})
    assert r["ok"], r
    if "ttyS0" in r["result"]["data"]:
        break
    time.sleep(0.1)
else:
    raise AssertionError("no boot log in the console history: %r" % r)

a.sendall(b"\x00\xff garbage\n")
r = line(fa)
assert r["ok"] is False and r["error"]["code"] == "parse-error", r
r = call(a, fa, {"id": 2, "cmd": "no-such"})
assert r["error"]["code"] == "unknown-command", r

# Pause from a, b sees the event; resume.
r = call(a, fa, {"id": 3, "cmd": "pause"})
assert r["ok"], r
ev = line(fb)
assert ev == {"event": "state", "state": "paused"}, ev
r = call(a, fa, {"id": 4, "cmd": "resume"})
assert r["ok"], r
assert line(fb) == {"event": "state", "state": "running"}

# Half a message, then hang up.
h, fh = conn()
line(fh)
h.sendall(b'{"id": 5, "cmd": "sta')
h.close()

# A line past 64 KiB: an error, then the server hangs up.
o, fo = conn()
line(fo)
try:
    o.sendall(b"[" * (70 * 1024))
except BrokenPipeError:
    pass
r = line(fo)
assert r["error"]["code"] == "line-too-long", r
assert fo.readline() == b""

# Still answering everyone else.
r = call(b, fb, {"id": 6, "cmd": "stats"})
assert r["ok"] and len(r["result"]["vcpus"]) == 1, r
slow.close()
EOF
expect 0 "state:   running" "$tv" vm status web

# A graceful stop the guest ignores (busybox has no power-button
# handler): forced after the timeout, and the VM's process ends.
start=$(date +%s)
expect 0 "web: stopped" "$tv" vm stop --timeout 2 web
wait_gone "$vmpid" 10 && ok "VM process ended" || bad "VM process still there"
[ $(($(date +%s) - start)) -ge 2 ] && ok "waited for the guest" ||
	bad "stop did not wait for the timeout"
[ ! -e "$sock" ] && ok "socket removed" || bad "socket left behind"

# A VM that dies leaves its socket: reported as stale, replaced at start.
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$sock"
expect 1 "stale control socket" "$tv" vm status web
start_vm "$tmp/console2" || exit 1
expect 0 "state:   running" "$tv" vm status web
expect 0 "web: stopped" "$tv" vm stop --force web
wait_gone "$vmpid" 10 && ok "forced stop ended the VM" || bad "forced stop"

# An unnamed VM answers as pid-PID; starting it sweeps the stale sockets
# of unnamed VMs that were killed (no later VM would have their name).
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' \
	"$XDG_RUNTIME_DIR/termvisor/pid-1.sock"
"$tv" run --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" -m 128M \
	</dev/null >"$tmp/console3" 2>&1 &
p=$!
pids+=("$p")
for _ in $(seq 100); do
	"$tv" vm status "pid-$p" >/dev/null 2>&1 && break
	sleep 0.1
done
expect 0 "name:    pid-$p" "$tv" vm status "pid-$p"
[ ! -e "$XDG_RUNTIME_DIR/termvisor/pid-1.sock" ] &&
	ok "stale pid-1.sock swept" || bad "stale pid-1.sock left"
expect 0 "stopped" "$tv" vm stop --force "pid-$p"

[ $fails -eq 0 ] && echo "control: all passed"
[ $fails -eq 0 ]
