#!/bin/bash
# Debian's kernel on the software CPU, one boot checking what issue 2
# asks of a guest: the marker, CPUs, memory, the clock, and that the
# guest's power-off ends the VMM with status 0.
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
cmd='echo NPROC=$(nproc); grep MemTotal /proc/meminfo; echo DATE=$(date +%s)'
start=$(date +%s)
linux_run "$LOG" 600 "$cmd" --accel bt --cpus 2 --memory 256M
end=$(date +%s)
tr -d '\r' <"$LOG" >"$LOG.n" && mv "$LOG.n" "$LOG"
grep -q TERMVISOR-GUEST-READY "$LOG" || fail "no marker (exit $RC)"
[ "$RC" -eq 0 ] || fail "poweroff gave exit status $RC, not 0"
grep -q '^TV-EXIT=0' "$LOG" || fail "the command did not run"
nproc=$(sed -n 's/^NPROC=//p' "$LOG")
[ "$nproc" = 2 ] || fail "nproc inside is '$nproc', --cpus was 2"
kb=$(awk '/^MemTotal:/ { print $2 }' "$LOG")
[ -n "$kb" ] && [ "$kb" -le $((256 * 1024)) ] && [ "$kb" -ge $((256 * 1024 * 80 / 100)) ] ||
	fail "MemTotal ${kb:-none} kB does not match --memory 256M"
gdate=$(sed -n 's/^DATE=//p' "$LOG")
# The guest's date must fall inside the run, give or take 5 s.
[ -n "$gdate" ] && [ "$gdate" -ge $((start - 5)) ] && [ "$gdate" -le $((end + 5)) ] ||
	fail "guest date ${gdate:-none} outside the run [$start, $end]"
echo "ok: marker, nproc=$nproc, MemTotal=$kb kB, clock within the run, exit 0 ($((end - start)) s)"
