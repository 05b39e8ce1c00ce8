#!/bin/bash
# `termvisor vm start` and `termvisor vm console` with the multiboot test
# guest (it prints its checks on the console, then halts) in a private
# datastore: start returns once the VM runs, a second start is refused,
# console with stdin from a pipe shows the guest's output, stop ends it.
set -u
. "$(dirname "$0")/sandbox-lib.sh"
need_test_guest multiboot.elf
vm_sandbox mb

# expect STATUS TEXT CMD...: exit status and a piece of the output
expect() {
	local want=$1 text=$2; shift 2
	timeout 60 "$@" >"$tmp/out" 2>&1 </dev/null
	local rc=$?
	if [ $rc -ne "$want" ] || ! grep -q -- "$text" "$tmp/out"; then
		bad "$*: exit $rc (want $want), output:"; cat "$tmp/out"
	else
		ok "$*: $(head -n 1 "$tmp/out")"
	fi
}

"$tv" vm create mb --memory 64M --kernel "$kernel" >/dev/null ||
	{ echo "vm create failed"; exit 1; }
expect 0 "start" "$tv" vm --help
expect 1 "is not running" "$tv" vm status mb
# VNC is on by default, on the first free loopback display.
expect 0 "mb running: console .termvisor vm console mb., control .*mb.sock, log .*mb.log, VNC 127\.0\.0\.1:59[0-9][0-9]$" \
	"$tv" vm start mb
vnc=$(sed -n 's/.*, VNC //p' "$tmp/out")
expect 0 "state: *running" "$tv" vm status mb
expect 0 "^vnc: *$vnc$" "$tv" vm status mb
expect 1 "already running" "$tv" vm start mb
expect 1 "no such VM" "$tv" vm start nosuch
expect 2 "usage" "$tv" vm start

# A VM that cannot start: the reason from its log, exit 1.
cp "$kernel" "$tmp/k.elf"
"$tv" vm create broken --memory 64M --kernel "$tmp/k.elf" >/dev/null
echo garbage >"$tmp/k.elf"
expect 1 "not a bzImage" "$tv" vm start broken

# vm console without a terminal: the history (the guest's checks),
# then it leaves a second after stdin ends and the output goes quiet.
expect 0 "start" "$tv" vm console --help
expect 0 "checks [0-9]* passed, 0 failed" "$tv" vm console mb
# Ctrl-] in the input detaches; the VM keeps running.
printf 'ab\035' | timeout 30 "$tv" vm console mb >"$tmp/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "Detached from mb" "$tmp/out" &&
	"$tv" vm status mb >/dev/null 2>&1; then ok "Ctrl-] detaches"
else bad "Ctrl-] detach: exit $rc"; cat "$tmp/out"; fi
# The VM's shutdown ends an attached console.
(sleep 1; "$tv" vm stop --force mb >/dev/null 2>&1) &
stopper=$!
timeout 30 "$tv" vm console mb < <(exec sleep 10 2>/dev/null) >"$tmp/out" 2>&1
rc=$?
wait "$stopper"
if [ $rc -eq 0 ] && grep -q "the VM shut down" "$tmp/out"; then
	ok "the VM's shutdown ends vm console"
else bad "vm console at shutdown: exit $rc"; cat "$tmp/out"; fi
expect 1 "is not running" "$tv" vm status mb
expect 1 "is not running" "$tv" vm console mb

[ $fails -eq 0 ] && echo "vm-start-console: all passed" && exit 0
echo "vm-start-console: $fails failed"
exit 1
