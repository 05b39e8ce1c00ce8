#!/bin/bash
# Guest panics (pvpanic): two reference guests booted side by side each
# panic through sysrq (panic=0, so they would stay in their panic loop).
# Debian's pvpanic-mmio driver finds the device through the DSDT on its
# own, and the control socket says so:
#   pa (on_panic default, pause): a guest-panic event, then state
#      "panicked" in vm status; a pause is refused; vm stop --force ends it.
#   pr (on_panic = reset in its .vmx): a guest-panic event, then the
#      reset event with the resets counter at 1: the guest boots again.
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
tv=$(realpath "$tv")
command -v python3 >/dev/null || { echo "python3 missing"; exit 77; }
pids=()
vm_sandbox pa pr
sandbox_hook() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
sock() { echo "$XDG_RUNTIME_DIR/termvisor/$1.sock"; }

# listen VM: every line the VM's control socket sends, into $tmp/VM.ev.
listen() {
	python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rb")
for line in f:
    sys.stdout.buffer.write(line)
    sys.stdout.flush()
' "$(sock "$1")" >"$tmp/$1.ev" 2>&1 &
	pids+=($!)
}

# wait_ev VM REGEX SECONDS: 0 once an event line matches.
wait_ev() {
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q -- "$2" "$tmp/$1.ev" && return 0
		sleep 0.1
	done
	return 1
}

# No crypto self-tests and no display: seconds off each boot.
append="console=ttyS0 panic=0 tv.quiet=1 cryptomgr.notests=1"
append="$append tv.run=$(tv_enc 'echo c >/proc/sysrq-trigger')"
for vm in pa pr; do
	"$tv" vm create "$vm" --memory 256M --kernel "$guest/vmlinuz" \
		--initrd "$guest/initrd.img" --append "$append" --vnc none \
		>/dev/null || { echo "FAIL vm create $vm"; exit 1; }
	"$tv" vm set "$vm" display=none >/dev/null
done
"$tv" vm set pr on_panic=reset >/dev/null || bad "vm set pr on_panic=reset"
"$tv" vm set pr on_panic=sometimes >"$tmp/out" 2>&1 &&
	bad "on_panic=sometimes accepted" ||
	{ grep -q "pause, stop, reset or none" "$tmp/out" &&
	ok "a bad on_panic is refused, naming the choices" ||
	bad "on_panic=sometimes: $(cat "$tmp/out")"; }
"$tv" run --on-panic later >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "on-panic later" "$tmp/out" &&
	ok "run --on-panic later: exit 2" || bad "run --on-panic later: $(cat "$tmp/out")"

# Both boot at once (the software CPU takes ~25 s to the panic).
for vm in pa pr; do
	"$tv" vm start "$vm" >"$tmp/start.$vm" 2>&1 ||
		{ echo "FAIL vm start $vm: $(cat "$tmp/start.$vm")"; exit 1; }
	listen "$vm"
done

if wait_ev pa '"event":"guest-panic"' 90; then
	line=$(grep '"event":"guest-panic"' "$tmp/pa.ev" | head -n 1)
	echo "$line" | grep -q '"kind":"panicked"' &&
	echo "$line" | grep -q '"action":"pause"' &&
	echo "$line" | grep -q '"paused":true' &&
		ok "pa: $line" || bad "pa: guest-panic event: $line"
else
	bad "pa: no guest-panic event; its log:"
	tail -n 20 "$TERMVISOR_DATASTORE/pa/pa.log"
fi
wait_ev pa '"event":"state","state":"panicked"' 5 &&
	ok "pa: a state event: panicked" || bad "pa: no panicked state event"
"$tv" vm status pa >"$tmp/out" 2>&1
grep -q "state: *panicked" "$tmp/out" && ok "pa: vm status says panicked" ||
	bad "pa: vm status: $(cat "$tmp/out")"
grep -q "Kernel panic - not syncing: sysrq triggered crash" \
	"$TERMVISOR_DATASTORE/pa/pa.log" && ok "pa: the guest's panic is in its log" ||
	bad "pa: no kernel panic in the log"
"$tv" vm pause pa >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "panicked" "$tmp/out" && ok "pa: vm pause refused: panicked" ||
	bad "pa: vm pause: $(cat "$tmp/out")"
"$tv" vm stop --force pa >"$tmp/out" 2>&1
[ $? -eq 0 ] && grep -q "pa: stopped" "$tmp/out" && ok "pa: vm stop --force" ||
	bad "pa: vm stop --force: $(cat "$tmp/out")"

if wait_ev pr '"event":"reset","resets":1' 90; then
	grep -q '"event":"guest-panic".*"action":"reset"' "$tmp/pr.ev" &&
		ok "pr: guest-panic (action reset), then reset 1" ||
		bad "pr: reset without a guest-panic event: $(cat "$tmp/pr.ev")"
else
	bad "pr: no reset event: $(cat "$tmp/pr.ev")"
	tail -n 20 "$TERMVISOR_DATASTORE/pr/pr.log"
fi
"$tv" vm status pr >"$tmp/out" 2>&1
grep -q "state: *running" "$tmp/out" && ok "pr: running again after the reset" ||
	bad "pr: vm status: $(cat "$tmp/out")"
"$tv" vm stop --force pr >/dev/null 2>&1 || bad "pr: vm stop --force"

[ $fails -eq 0 ] && echo "guest-panic: all passed" && exit 0
echo "guest-panic: $fails failed"
exit 1
