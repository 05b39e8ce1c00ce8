#!/bin/bash
# Boot the reference guest on the software CPU to its busybox shell, run
# a few commands and check their output.  Slow (tens of seconds; minutes
# on a loaded host): meant for check-slow / by hand.
#   tests/bt/boot-shell.sh [BUILD_DIR]      exit 0 pass, 1 fail, 77 skip
set -u
build=${1:-${BUILD:-build}}
tv=$build/termvisor
guestdir=${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest
limit=${BT_BOOT_LIMIT:-600}
[ -x "$tv" ] || { echo "no $tv"; exit 77; }
[ -e "$guestdir/vmlinuz" ] || { echo "no reference guest (make guest)"; exit 77; }
log=$(mktemp)
in=$(mktemp -u)
mkfifo "$in"
trap 'rm -f "$log" "$in"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null' EXIT
start=$(date +%s)
"$tv" run --accel bt -m 512M --no-reboot -a "console=ttyS0 mitigations=off" \
    <"$in" >"$log" 2>&1 &
pid=$!
exec 3>"$in"
wait_for() {	# pattern
	while ! grep -q "$1" "$log"; do
		kill -0 "$pid" 2>/dev/null || return 1
		[ $(( $(date +%s) - start )) -lt "$limit" ] || return 1
		sleep 1
	done
}
if ! wait_for 'guest:/#'; then
	echo "no shell prompt after $(( $(date +%s) - start ))s:"; tail -20 "$log"
	exit 1
fi
echo "shell prompt after $(( $(date +%s) - start ))s"
echo 'echo HELLO-$((6*7)); grep -c processor /proc/cpuinfo; i=0; while [ $i -lt 500 ]; do i=$((i+1)); done; echo LOOP-$i' >&3
if ! wait_for 'LOOP-500'; then
	echo "commands did not complete:"; tail -20 "$log"
	exit 1
fi
grep -q '^HELLO-42' "$log" || { echo "no HELLO-42"; exit 1; }
echo "commands done after $(( $(date +%s) - start ))s"
kill -INT "$pid"
wait "$pid" 2>/dev/null
exit 0
