#!/bin/bash
# Live migration over ssh:// for real: a private sshd on a loopback port
# (a generated host key, a throwaway client key, nothing in ~/.ssh), a
# datastore VM (the reference guest counting, on the software CPU) run
# from a datastore both "hosts" share.  termvisor migrate runs
# `ssh ... termvisor run --incoming - NAME` through it; the counter goes
# on with no gap or repeat in the destination's console history, the
# buffer checksum holds, the source exits 0, and the datastore lock moved
# to the destination process.
set -u
. "$(dirname "$0")/migrate-lib.sh"
. "$(dirname "$0")/sshd-lib.sh"
need_guest
[ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null ||
	{ echo "openssh-server not installed"; exit 77; }

tmp=$(mktemp -d)
trap 'kill $(cat "$tmp/sshd.pid" 2>/dev/null) 2>/dev/null; mig_cleanup' EXIT
tva=$(readlink -f "$tv")
ds=$tmp/ds
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

sshd_start "$tmp" "$port" || fail "the private sshd does not work"

name=mig$$
"$tv" vm --datastore "$ds" create "$name" --memory 128M --accel bt \
	--kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" \
	--append "$mig_append" >/dev/null || fail "vm create"
"$tv" run --datastore "$ds" "$name" </dev/null >"$tmp/src.out" 2>"$tmp/src.err" &
src=$!
mig_pids+=("$src")
LOG=$tmp/src.out
wait_file "$tmp/src.out" "count 5" 120 || fail "the guest did not start counting"
grep -q "pid $src\|\"pid\": *$src\|^pid=$src\|$src" "$ds/$name/lease" || fail "the source does not hold the lease"

timeout 180 "$tv" migrate "$name" "ssh://$(id -un)@127.0.0.1:$port" --ssh "$sshcmd" \
	--remote-termvisor "$tva" >"$tmp/m.out" 2>&1 || fail "migration failed: $(cat "$tmp/m.out" "$tmp/src.err")"
cat "$tmp/m.out"
timeout 30 tail --pid="$src" -f /dev/null || fail "the source did not end"
wait "$src"
[ $? -eq 0 ] || fail "the source's exit status is not 0"

# The destination runs detached; its console is on its control socket.
history() {
	python3 - "$1" <<'EOF'
import json, os, socket, sys
d = os.environ.get("XDG_RUNTIME_DIR")
d = d + "/termvisor" if d and d.startswith("/") else ("/run/termvisor" if os.geteuid() == 0 else "/tmp/termvisor-%d" % os.geteuid())
s = socket.socket(socket.AF_UNIX)
s.connect("%s/%s.sock" % (d, sys.argv[1]))
f = s.makefile("rw")
f.readline()
f.write(json.dumps({"id": 1, "cmd": "console-history"}) + "\n"); f.flush()
while True:
    r = json.loads(f.readline())
    if r.get("id") == 1:
        sys.stdout.write(r["result"]["data"]); break
EOF
}
dpid=""
for i in $(seq 180); do	# bt runs urandom slowly: 25 counts can take minutes
	history "$name" >"$tmp/dst.out" 2>/dev/null
	n=$(mig_counts "$tmp/dst.out" | wc -l)
	[ "$n" -ge 25 ] && grep -aq "^sum " "$tmp/dst.out" && break
	sleep 1
done
LOG=$tmp/dst.out
[ "$(mig_counts "$tmp/dst.out" | wc -l)" -ge 25 ] || fail "the destination does not count on"
"$tv" vm status "$name" >"$tmp/st" || fail "no status from the destination"
dpid=$(pgrep -f -- "--incoming - $name\$" | head -n 1)
[ -n "$dpid" ] && mig_pids+=("$dpid")
grep -q "$dpid" "$ds/$name/lease" || fail "the lease is not the destination's (pid $dpid): $(cat "$ds/$name/lease")"
# The history ring may start after the first counts: compare from there.
mig_check "$tmp/src.out" "$tmp/dst.out"
echo "PASS: slow-migrate-ssh"
