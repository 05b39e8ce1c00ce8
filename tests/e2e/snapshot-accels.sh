#!/bin/bash
# Snapshots across accelerators with the multiboot test guest (it runs
# its checks, then halts; the VM stays up).  A snapshot taken under KVM
# resumes under KVM; with cpu = baseline it also resumes on the software
# CPU.  With all of the host's features, or the other way round, it
# resumes only where every CPU feature the guest was given is there, and
# is refused otherwise, naming what is missing, before anything runs:
# which of the two depends on the host, and a refusal must say why.
# A refused revert is refused before the running VM is stopped: it goes
# on running as it was.
set -u
. "$(dirname "$0")/linux-lib.sh"
need_test_guest multiboot.elf
[ -w /dev/kvm ] || { echo "no /dev/kvm"; exit 77; }
vm_sandbox g
log=$tmp/ds/g/g.log

# still_runs FROM TO: after a refused revert, the VM runs on as before.
still_runs() {
	"$tv" vm status g 2>/dev/null | grep -q "accel: *$1" &&
		ok "$1 -> $2: the VM still runs under $1" ||
		bad "$1 -> $2: the refused revert stopped the VM"
}

# cross FROM TO CPU: snapshot under FROM, revert under TO; CPU is the
# .vmx cpu model.  MUST: "resume" when the revert has to work.
cross() {
	local from=$1 to=$2 cpu=$3 must=${4:-} rc
	"$tv" vm stop --force g >/dev/null 2>&1
	"$tv" vm rm g >/dev/null 2>&1
	rm -rf "$tmp/ds/g"
	"$tv" vm create g --memory 64M --kernel "$kernel" --accel "$from" >/dev/null &&
		"$tv" vm set g cpu="$cpu" >/dev/null || { bad "vm create"; return; }
	"$tv" vm start g >/dev/null || { bad "start under $from"; return; }
	wait_log "checks [0-9]* passed, 0 failed" 120 || { bad "guest under $from"; tail "$log"; return; }
	"$tv" snapshot take g s1 >"$tmp/out" 2>&1 || { bad "take under $from"; cat "$tmp/out"; return; }
	"$tv" snapshot revert g s1 >"$tmp/out" 2>&1 &&
		"$tv" vm status g | grep -q "accel: *$from" &&
		ok "$from -> $from: resumed" || { bad "$from -> $from"; cat "$tmp/out"; }
	"$tv" vm set g accel="$to" >/dev/null
	"$tv" snapshot revert g s1 >"$tmp/out" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		"$tv" vm status g | grep -q "accel: *$to" &&
			ok "$from -> $to (cpu $cpu): resumed" || bad "$from -> $to: not running on $to"
	elif [ "$must" = resume ]; then
		bad "$from -> $to (cpu $cpu) was refused:"; cat "$tmp/out"
	elif grep -q "lacks:" "$tmp/out"; then
		ok "$from -> $to: refused: $(grep -o 'the guest was given.*' "$tmp/out" | head -n 1)"
		still_runs "$from" "$to"
	elif grep -q "cannot be loaded under" "$tmp/out"; then
		ok "$from -> $to: refused: $(grep -o 'state saved under.*' "$tmp/out" | head -n 1)"
		still_runs "$from" "$to"
	else
		bad "$from -> $to: exit $rc without a reason"; cat "$tmp/out"
	fi
}

# The baseline CPU (x86-64 as first defined) is on both: both ways must
# work, the interrupt controllers converted between KVM and the models.
cross kvm bt baseline resume
cross kvm bt host
cross bt kvm baseline resume
cross bt kvm host

[ $fails -eq 0 ] && echo "snapshot-accels: all passed" && exit 0
echo "snapshot-accels: $fails failed"
exit 1
