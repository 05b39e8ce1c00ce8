#!/bin/bash
# Checks the guests themselves under QEMU (TCG, no KVM needed), so a
# failure under termvisor points at termvisor, not at the guest:
#   - each test guest through its tests/e2e/guest-*.sh script with
#     GUEST_VMM=qemu (same facts compared, QEMU's isa-debug-exit);
#   - the reference guest (make guest) reaches TERMVISOR-GUEST-READY, runs
#     a tv.run command and powers off, with the time each step took.
#
#   tests/guests/run-qemu.sh [BUILD_DIR]     (after make test-guests guest)
set -eu
cd "$(dirname "$0")/../.."
export BUILD=${1:-${BUILD:-build}} GUEST_VMM=qemu
failed=0

for t in tests/e2e/guest-bzimage64.sh tests/e2e/guest-multiboot.sh \
	 tests/e2e/guest-pvh.sh tests/e2e/guest-realmode.sh; do
	name=$(basename "$t" .sh)
	if out=$(bash "$t" 2>&1); then
		echo "PASS $name (qemu): $(tail -n 1 <<<"$out")"
	else
		rc=$?
		[ $rc -eq 77 ] && { echo "SKIP $name (qemu): $(tail -n 1 <<<"$out")"; continue; }
		echo "FAIL $name (qemu)"
		sed 's/^/    /' <<<"$out" | tail -n 40
		failed=1
	fi
done

guestdir=${GUESTDIR:-${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest}
if [ ! -f "$guestdir/vmlinuz" ] || [ ! -f "$guestdir/initrd.img" ]; then
	echo "SKIP reference guest (qemu): not built (make guest)"
	exit $failed
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# nproc must say 2, every module of guest/modules must be loaded, and the
# command's exit status must come back.  (%22 is a double quote.)
cmd='nproc;cut+-d%22+%22+-f1+/proc/modules;exit+7'
start=$(date +%s%N)
timeout -k 5 300 qemu-system-x86_64 -M pc -accel tcg -smp 2 -m 512 -kernel "$guestdir/vmlinuz" \
	-initrd "$guestdir/initrd.img" -append "console=ttyS0 tv.run=$cmd" \
	-nographic -nodefaults -serial stdio -no-reboot </dev/null 2>&1 |
	while IFS= read -r line; do
		printf '%s %s\n' "$(( ($(date +%s%N) - start) / 1000000 ))" "${line%$'\r'}"
	done >"$log" || true
ready=$(awk '$2 == "TERMVISOR-GUEST-READY" { print $1; exit }' "$log")
done_ms=$(awk '$2 ~ /^TV-EXIT=/ { print $1; exit }' "$log")
body=$(awk '$2 == "TERMVISOR-GUEST-READY" { on = 1; next } on && $2 ~ /^TV-EXIT=/ { print $2; exit } on { print $2 }' "$log" | tr '\n' ' ')
if [ -z "$ready" ]; then
	echo "FAIL reference guest (qemu): no TERMVISOR-GUEST-READY"
	tail -n 20 "$log" | sed 's/^/    /'
	failed=1
elif [ "${body%% *}" != 2 ] || [ "${body##* TV-EXIT=}" != "7 " ]; then
	echo "FAIL reference guest (qemu): tv.run printed '$body', want '2 <modules> TV-EXIT=7'"
	failed=1
elif missing=$(for m in $(sed 's/#.*//' guest/modules); do
		case " $body " in *" ${m//-/_} "*) ;; *) echo "$m" ;; esac
	done) && [ -n "$missing" ]; then
	echo "FAIL reference guest (qemu): modules not loaded: $missing"
	failed=1
else
	echo "PASS reference guest (qemu TCG): marker after ${ready} ms, tv.run done after ${done_ms} ms"
fi
exit $failed
