#!/bin/bash
# Soak of the software CPU's differential tests (issue 8): many more
# random sequences than `make check` runs, from a new seed base each time
# (printed, so a failure can be replayed with BT_DIFF_SEED / BT_ORACLE_SEED
# as the failing test prints).
#   - test_bt_diff: user-mode integer sequences against the host CPU
#   - test_bt_oracle: ring 0 and ring 3 sequences against KVM (skips
#     itself without /dev/kvm)
set -u
build=${BUILD:-build}
base=$(( $(date +%s) % 1000000 * 4096 ))
echo "seed base $base"
for t in test_bt_diff test_bt_oracle; do
	[ -x "$build/tests/$t" ] || { echo "missing $build/tests/$t"; exit 1; }
done
BT_DIFF_ITERS=${BT_DIFF_ITERS:-40000} BT_DIFF_SEED=$base \
    "$build/tests/test_bt_diff" --jobs 1 || exit 1
BT_ORACLE_ITERS=${BT_ORACLE_ITERS:-800} BT_ORACLE_BASE=$base \
    "$build/tests/test_bt_oracle" --jobs 2 --verbose 2>&1 |
    grep -v '^\[RUN \]'
exit "${PIPESTATUS[0]}"
