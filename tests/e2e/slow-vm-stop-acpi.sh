#!/bin/bash
# A graceful vm stop of the reference guest on the software CPU: the ACPI
# power button reaches Linux's button driver, busybox acpid in the guest
# runs poweroff, and the VM ends cleanly (vm stop exits 0, within its
# timeout, and the VMM did not have to force it off).
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
tvabs=$(cd "$(dirname "$tv")" && pwd)/$(basename "$tv")
vm_sandbox g
"$tvabs" vm create g --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" \
	--append "console=ttyS0 cryptomgr.notests=1 tv.quiet=1" --accel bt \
	>/dev/null || fail "vm create"
"$tvabs" vm start g >"$tmp/start" 2>&1 || { cat "$tmp/start"; fail "vm start"; }
for ((i = 0; i < 300; i++)); do
	"$tvabs" vm console g </dev/null >"$tmp/con" 2>&1
	grep -q 'guest:/#' "$tmp/con" && break
	sleep 1
done
grep -q 'guest:/#' "$tmp/con" || fail "no shell prompt: $(tail -n 5 "$tmp/con")"
# Attached while it stops: the guest's own last words.
timeout 90 "$tvabs" vm console g < <(exec sleep 80 2>/dev/null) >"$tmp/end" 2>&1 &
conpid=$!
sleep 2
start=$(date +%s)
"$tvabs" vm stop --timeout 60 g >"$tmp/stop" 2>&1
rc=$?
took=$(($(date +%s) - start))
[ $rc -eq 0 ] && grep -q "^g: stopped" "$tmp/stop" ||
	fail "vm stop: exit $rc: $(cat "$tmp/stop")"
log=$TERMVISOR_DATASTORE/g/g.log
grep -q "forcing it off" "$log" && fail "the guest ignored the button; forced after ${took}s"
[ $took -lt 60 ] || fail "vm stop took ${took}s"
"$tvabs" vm status g >/dev/null 2>&1 && fail "the VM still answers"
wait "$conpid"
grep -q "reboot: Power down" "$tmp/end" ||
	fail "the guest did not power itself down: $(tail -n 5 "$tmp/end")"
echo "ok: the power button powered the guest off in ${took}s; vm stop exit 0"
