#!/bin/bash
# vm reset with the multiboot test guest (it prints its checks, then
# halts): the guest boots again behind the same control socket (the same
# file, answering before and after), an attached vm console stays attached
# and shows both boots, and console history spans the reset.
set -u
. "$(dirname "$0")/sandbox-lib.sh"
need_test_guest multiboot.elf
vm_sandbox mb
sandbox_hook() { [ -n "${conpid:-}" ] && kill "$conpid" 2>/dev/null; }
sock=$XDG_RUNTIME_DIR/termvisor/mb.sock
boots() { grep -c "checks [0-9]* passed" "$1" 2>/dev/null; }

"$tv" vm create mb --memory 64M --kernel "$kernel" >/dev/null ||
	{ echo "vm create failed"; exit 1; }
"$tv" vm reset mb >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "is not running" "$tmp/out" &&
	ok "vm reset of a stopped VM: exit 1" || bad "vm reset, not running: exit $rc: $(cat "$tmp/out")"
"$tv" vm reset >/dev/null 2>&1
[ $? -eq 2 ] && ok "vm reset without a name: exit 2" || bad "vm reset without a name"
"$tv" vm start mb >/dev/null || { echo "FAIL vm start"; exit 1; }
ino=$(stat -c %i "$sock")
# An attached console, reading until the test ends.
timeout 60 "$tv" vm console mb < <(exec sleep 30 2>/dev/null) >"$tmp/con" 2>&1 &
conpid=$!
for _ in $(seq 100); do [ "$(boots "$tmp/con")" -ge 1 ] && break; sleep 0.1; done
[ "$(boots "$tmp/con")" -eq 1 ] && ok "the console shows the first boot" ||
	bad "first boot not on the console: $(cat "$tmp/con")"

"$tv" vm reset mb >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "^mb: reset$" "$tmp/out" && ok "vm reset: exit 0" ||
	bad "vm reset: exit $rc: $(cat "$tmp/out")"
for _ in $(seq 100); do [ "$(boots "$tmp/con")" -ge 2 ] && break; sleep 0.1; done
[ "$(boots "$tmp/con")" -eq 2 ] && ok "the attached console shows the second boot" ||
	bad "second boot not on the attached console: $(cat "$tmp/con")"
kill -0 "$conpid" 2>/dev/null && ok "vm console is still attached" ||
	bad "vm console left at the reset: $(cat "$tmp/con")"
[ "$(stat -c %i "$sock" 2>/dev/null)" = "$ino" ] &&
	ok "the same socket file after the reset" || bad "the socket was replaced"
"$tv" vm status mb | grep -q "state: *running" && ok "it answers: running" ||
	bad "vm status after the reset: $("$tv" vm status mb 2>&1)"
"$tv" vm console mb </dev/null >"$tmp/hist" 2>&1
[ "$(boots "$tmp/hist")" -eq 2 ] && ok "a new attach replays both boots" ||
	bad "history after the reset: $(cat "$tmp/hist")"

"$tv" vm stop --force mb >/dev/null
wait "$conpid"
grep -q "the VM shut down" "$tmp/con" && ok "the console ends at the power-off" ||
	bad "console at the end: $(tail -n 3 "$tmp/con")"

[ $fails -eq 0 ] && echo "vm-reset: all passed" && exit 0
echo "vm-reset: $fails failed"
exit 1
