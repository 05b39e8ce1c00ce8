#!/bin/bash
# SMP stress guest (tests/guests/smpstress.c) on the software CPU with 2 and
# 4 vCPUs, JIT on and off (TERMVISOR_BT_JIT=0), a few boots each, and once
# on KVM when /dev/kvm works: LOCKed read-modify-writes, spin locks and
# neighbouring byte/word stores must stay exact while the data shares a
# page with code the other vCPUs run, and a rewritten instruction must
# reach every vCPU (cross-modifying code).  The races are rare per
# operation, so the guest runs many of them; SMP_STRESS_RUNS=N boots each
# combination N times (default 1), SMP_STRESS_SCALE=N multiplies the work.
set -eu
cd "$(dirname "$0")/../.."
. tests/guests/e2e-lib.sh
guest_init smpstress.bin
runs=${SMP_STRESS_RUNS:-1}
scale=${SMP_STRESS_SCALE:-1}
failures=0 boots=0 xmc_stale=0
xmc_strict=${SMP_STRESS_XMC_STRICT:-1}

# stress ACCEL CPUS JIT ITERS SMC_ROUNDS: one boot; returns 1 when the
# accelerator cannot run it.
stress() {
	local accel=$1 cpus=$2 jit=$3 iters=$(($4 * scale)) rounds=$(($5 * scale)) bad
	guest_accel=$accel
	guest_run_failures=0
	if ! TERMVISOR_BT_JIT=$jit guest_boot "$cpus" 64 "cpus=$cpus iters=$iters smc=$rounds"; then
		[ "$guest_run_failures" -eq 0 ] && return 1	# accelerator missing
	else
		expect_eq "APs started" "$(guest_fact smp_started)" "$((cpus - 1))"
		bad=$(grep '^not ok' "$guest_out" || true)
		# Stale code after a cross-modifying store (ss_xmc_*) fails the
		# test; SMP_STRESS_XMC_STRICT=0 only reports it (for bisecting
		# the other checks on a tree without 3dde981's fix).
		if [ "$xmc_strict" -eq 0 ] && [ -n "$bad" ] &&
			! grep -v '^not ok ss_xmc_' <<<"$bad" | grep -q .; then
			echo "KNOWN BUG [$accel, $cpus vCPUs, TERMVISOR_BT_JIT=$jit]: $bad"
			grep '^smc round' "$guest_out" | head -n 3
			xmc_stale=$((xmc_stale + 1))
		elif [ "$guest_status" -ne 1 ] || [ -n "$bad" ] ||
			! grep -q '^checks [0-9]* passed, 0 failed$' "$guest_out"; then
			guest_fail "exit status $guest_status, want 1 (all guest checks passed)"
		fi
	fi
	boots=$((boots + 1))
	if [ "$guest_run_failures" -ne 0 ]; then
		echo "--- $accel, $cpus vCPUs, TERMVISOR_BT_JIT=$jit: guest serial output"
		grep -v '^ok ' "$guest_out"
		failures=$((failures + 1))
	fi
	guest_out=/dev/null	# its output is shown already
	return 0
}

# The cross-modifying-code race shows about once in 1500 rounds with 2
# vCPUs on this (loaded) host; 4 vCPUs make rounds far slower.
for r in $(seq "$runs"); do
	for jit in 1 0; do
		stress bt 2 "$jit" 2000 4000 || guest_skip "bt cannot run the guest:$guest_skipped"
		stress bt 4 "$jit" 1000 50
	done
done
# KVM emulates the real-mode APs one instruction at a time here: a small
# run, and only when it finishes in time.
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	start=$(date +%s)
	if stress kvm 4 1 500 50; then
		echo "kvm: 1 boot in $(($(date +%s) - start)) s"
	else
		echo "kvm: skipped:$guest_skipped"
	fi
else
	echo "kvm: skipped, no usable /dev/kvm"
fi
if [ "$failures" -ne 0 ]; then
	echo "FAIL: $failures of $boots boots broke an SMP invariant"
	exit 1
fi
[ "$xmc_stale" -eq 0 ] || echo "known bug: stale code after a cross-modifying store in $xmc_stale boots"
echo "smpstress: $boots boots passed (bt 2/4 vCPUs, JIT on/off, x$runs)"
