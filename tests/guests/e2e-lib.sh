# Helpers for the test-guest e2e scripts (tests/e2e/guest-*.sh); sourced,
# bash.  A script calls guest_init GUEST, defines a function that calls
# guest_boot CPUS MEM_MIB APPEND || return 0, then the expect_* checks,
# and ends with guest_run_all FUNCTION.
#
# The VMM is $BUILD/termvisor, run once per accelerator: kvm and bt where
# /dev/kvm is usable, else bt alone (the software CPU must pass the same
# tests); GUEST_ACCEL=NAME runs just that one.  GUEST_VMM=qemu runs QEMU
# instead (TCG; how tests/guests/run-qemu.sh checks the guests themselves).
# Exit status: 0 pass, 1 fail (each failure printed), 77 skip (reason on
# the last line).

BUILD=${BUILD:-build}
GUEST_VMM=${GUEST_VMM:-termvisor}
guest_failures=0
guest_passed=""
guest_skipped=""

guest_skip() {
	echo "skip: $*"
	exit 77
}

guest_fail() {
	echo "FAIL [$guest_accel]: $*"
	guest_run_failures=$((guest_run_failures + 1))
}

# guest_init GUEST: checks what the run needs; makes $guest_tmp (removed
# on exit) holding a fresh initrd of odd size, $guest_initrd.
guest_init() {
	guest_kernel=$BUILD/guests/$1
	[ -f "$guest_kernel" ] || guest_skip "$guest_kernel not built (make test-guests)"
	if [ "$GUEST_VMM" = qemu ]; then
		command -v qemu-system-x86_64 >/dev/null || guest_skip "qemu-system-x86_64 not installed"
	else
		[ -x "$BUILD/termvisor" ] || guest_skip "$BUILD/termvisor not built"
		"$BUILD/termvisor" run --help 2>&1 | grep -q -- --debug-exit ||
			guest_skip "termvisor run has no --debug-exit yet"
	fi
	guest_tmp=$(mktemp -d)
	trap 'rm -rf "$guest_tmp"' EXIT
	guest_initrd=$guest_tmp/initrd-$RANDOM.bin
	head -c $((65536 + RANDOM % 4096 + 1)) /dev/urandom >"$guest_initrd"
	guest_year=$(date -u +%Y)
	guest_accel=none
}

# guest_boot CPUS MEMORY_MIB APPEND: runs the guest; leaves its serial
# output in $guest_out and the VMM's exit status in $guest_status.
# Returns 1 when the VMM cannot run it on this accelerator (exit status 2
# and no guest output: a loader or the accelerator is missing).
guest_boot() {
	local cpus=$1 mem=$2
	# A second boot in one run: show the first one's output if it failed.
	if [ "${guest_run_failures:-0}" -ne 0 ] && [ "${guest_out:-/dev/null}" != /dev/null ]; then
		echo "--- guest serial output ($guest_accel, earlier boot)"
		cat "$guest_out"
		guest_failures=$((guest_failures + guest_run_failures))
		guest_run_failures=0
	fi
	guest_append=$3
	guest_cpus=$cpus guest_mem=$mem
	guest_out=$guest_tmp/serial.log
	guest_status=0
	if [ "$GUEST_VMM" = qemu ]; then
		timeout -k 5 120 qemu-system-x86_64 -M pc -smp "$cpus" -m "$mem" \
			-kernel "$guest_kernel" -initrd "$guest_initrd" -append "$guest_append" \
			-device isa-debug-exit,iobase=0xf4,iosize=4 -display none -serial stdio \
			-no-reboot -nodefaults >"$guest_out" 2>"$guest_tmp/stderr" || guest_status=$?
	else
		timeout -k 5 120 "$BUILD/termvisor" run --kernel "$guest_kernel" \
			--initrd "$guest_initrd" --append "$guest_append" --cpus "$cpus" \
			--memory "${mem}M" --debug-exit --accel "$guest_accel" \
			</dev/null >"$guest_out" 2>"$guest_tmp/stderr" || guest_status=$?
	fi
	if ! grep -q '^termvisor test guest:' "$guest_out"; then
		# The VMM refused (exit 2: a loader or accelerator not there yet).
		if [ "$guest_status" -eq 2 ]; then
			cat "$guest_tmp/stderr"
			guest_skipped="$guest_skipped $guest_accel: $(tail -n 1 "$guest_tmp/stderr");"
			return 1
		fi
		cat "$guest_tmp/stderr" "$guest_out"
		guest_fail "the guest printed nothing (exit status $guest_status)"
		return 1
	fi
	guest_booted=1
}

# The value after "KEY " on the guest's first line starting with KEY.
guest_fact() {
	sed -n "s/^$1 //p" "$guest_out" | head -n 1
}

expect_eq() {	# what got want
	[ "$2" = "$3" ] || guest_fail "$1: guest saw '$2', want '$3'"
}

# Every check inside the guest passed: debug-exit value 0 -> status 1.
expect_guest_passed() {
	if [ "$guest_status" -ne 1 ]; then
		grep '^not ok' "$guest_out" | sed 's/^/guest: /'
		guest_fail "exit status $guest_status, want 1 (all guest checks passed)"
	elif ! grep -q '^checks [0-9]* passed, 0 failed$' "$guest_out"; then
		guest_fail "exit status 1 but no closing 'checks N passed, 0 failed' line"
	fi
}

expect_cmdline() {
	expect_eq cmdline "$(guest_fact cmdline)" "\"$guest_append\""
}

# The MADT lists --cpus processors, and all but the BSP woke up.
expect_ncpus() {
	expect_eq "ncpus (MADT)" "$(guest_fact ncpus)" "$guest_cpus"
	expect_eq "APs started" "$(guest_fact smp_started)" "$((guest_cpus - 1))"
}

# Usable RAM in the memory map: at most what was asked, and no more than
# 2% (the BIOS area, ACPI tables) missing.
expect_memory() {
	local kb want=$((guest_mem * 1024))
	kb=$(guest_fact mem_kb)
	if [ -z "$kb" ] || [ "$kb" -gt "$want" ] || [ "$kb" -lt $((want - want / 50)) ]; then
		guest_fail "usable memory ${kb:-none} KiB, want at most $want and at least 98% of it"
	fi
}

# "PREFIX cksum CRC SIZE" matches cksum(1) of the initrd we passed.
expect_initrd_cksum() {
	local got want
	got=$(sed -n "s/^$1 cksum //p" "$guest_out" | head -n 1)
	want=$(cksum <"$guest_initrd" | awk '{ print $1, $2 }')
	expect_eq "$1 contents (cksum)" "$got" "$want"
}

# The RTC holds the host's time (UTC) to within the boot time.
expect_rtc() {
	local rtc t now
	rtc=$(guest_fact rtc)
	t=$(date -u -d "$rtc" +%s 2>/dev/null) || { guest_fail "no rtc line"; return; }
	now=$(date -u +%s)
	[ $((now - t)) -le 120 ] && [ $((t - now)) -le 5 ] ||
		guest_fail "RTC says $rtc UTC, host $(date -u '+%F %T')"
}

# guest_run_all FUNCTION: runs FUNCTION (boot and checks) once per
# accelerator and exits with the verdict.
guest_run_all() {
	local accels
	if [ "$GUEST_VMM" = qemu ]; then
		accels=tcg
	elif [ -n "${GUEST_ACCEL:-}" ]; then
		accels=$GUEST_ACCEL
	elif [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		accels="kvm bt"
	else
		accels=bt
	fi
	for guest_accel in $accels; do
		guest_run_failures=0
		guest_booted=0
		guest_out=/dev/null
		"$1"
		if [ "$guest_run_failures" -ne 0 ]; then
			echo "--- guest serial output ($guest_accel)"
			cat "$guest_out"
			guest_failures=$((guest_failures + guest_run_failures))
		elif [ "$guest_booted" -eq 1 ]; then
			guest_passed="$guest_passed $guest_accel"
		fi
	done
	[ "$guest_failures" -eq 0 ] || exit 1
	[ -n "$guest_passed" ] || guest_skip "$GUEST_VMM cannot run ${guest_kernel##*/}:$guest_skipped"
	echo "${guest_kernel##*/}: $(grep -c '^ok ' "$guest_out") guest checks and the facts match on$guest_passed"
	exit 0
}
