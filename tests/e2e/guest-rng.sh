#!/bin/bash
# Guest entropy on the software CPU (no RDRAND there), three boots of
# Debian's kernel:
#  1. PVH (--display none) with virtio-rng, the default: the hw_random
#     core picks virtio_rng, /dev/hwrng reads, and the CRNG is ready soon
#     after the driver loads (a PVH boot carries no seed);
#  2. the same with --rng off: no such PCI function, no hw_random source;
#  3. a zeropage boot (the display's 64-bit entry) with --rng off: the
#     setup_data RNG seed alone makes the CRNG ready at once.
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
# shellcheck disable=SC2016
cmd='echo CUR=$(cat /sys/devices/virtual/misc/hw_random/rng_current 2>/dev/null || echo absent);
echo HWRNG=$(head -c 64 /dev/hwrng 2>/dev/null | wc -c);
echo PCI=$(cat /sys/bus/pci/devices/*/device | grep -c 0x1044);
echo UP=$(cut -d. -f1 /proc/uptime); dmesg | grep "crng init done"; true'
cmd=$(tr '\n' ' ' <<<"$cmd")

# boot NAME OPTIONS...: run the command, check the marker; LOG has it.
boot() {
	local name=$1; shift
	linux_run "$LOG" 60 "$cmd" --accel bt --memory 256M "$@"
	tr -d '\r' <"$LOG" >"$LOG.n" && mv "$LOG.n" "$LOG"
	grep -q TERMVISOR-GUEST-READY "$LOG" || fail "$name: no marker (exit $RC)"
	grep -q '^TV-EXIT=0' "$LOG" || fail "$name: the command did not run"
}
val() { sed -n "s/^$1=//p" "$LOG" | head -n 1; }
# Seconds after boot at which dmesg says the CRNG is ready, or "".
crng_at() {
	sed -n 's/^\[ *\([0-9]*\)\.[0-9]*\] random: crng init done.*/\1/p' \
		"$LOG" | head -n 1
}

boot "virtio-rng" --display none
[ "$(val CUR)" = virtio_rng.0 ] || fail "rng_current is '$(val CUR)', not virtio_rng.0"
[ "$(val HWRNG)" = 64 ] || fail "head -c 64 /dev/hwrng gave '$(val HWRNG)' bytes"
[ "$(val PCI)" = 1 ] || fail "$(val PCI) virtio-rng functions (1af4:1044), not 1"
t1=$(crng_at)
# The driver loads a few seconds into a software-CPU boot (more on a
# loaded host); jitter entropy alone does not get there in the whole run
# (without the device: no "crng init done" by the command, entropy_avail
# about 5).  The CRNG must be ready by the time the command runs.
[ -n "$t1" ] && [ "$t1" -le "$(val UP)" ] ||
	fail "no 'crng init done' with virtio-rng by ${t1:-the command} (uptime $(val UP) s)"

boot "--rng off" --display none --rng off
[ "$(val PCI)" = 0 ] || fail "--rng off: a virtio-rng function is there"
case $(val CUR) in none | absent | "") ;; *) fail "--rng off: rng_current is '$(val CUR)'" ;; esac
[ "$(val HWRNG)" = 0 ] || fail "--rng off: /dev/hwrng gave bytes"

boot "seed" --rng off --vnc none
t3=$(crng_at)
[ "$t3" = 0 ] || fail "with the boot seed, 'crng init done' at ${t3:-never}, not at 0 s"

echo "ok: virtio_rng.0 serves /dev/hwrng, crng ready at ${t1} s of $(val UP); absent with --rng off; boot seed: crng ready at 0 s"
