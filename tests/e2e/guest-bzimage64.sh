#!/bin/bash
# bzImage test guest through the 64-bit boot protocol: boot_params (setup
# header copy, e820, cmdline, initrd), ACPI CPU count, devices.
set -eu
cd "$(dirname "$0")/../.."
. tests/guests/e2e-lib.sh
guest_init bzimage64.bin
check() {
	guest_boot 4 3072 "console=ttyS0 tv.guest=bzimage64 year=$guest_year id=$RANDOM" || return 0
	expect_guest_passed
	# termvisor enters startup_64 itself; under QEMU our setup code does.
	expect_eq entry "$(guest_fact entry)" "$([ "$GUEST_VMM" = qemu ] && echo 64-setup || echo 64)"
	expect_cmdline
	expect_ncpus
	expect_memory
	expect_eq "initrd size" "$(guest_fact initrd | awk '{ print $3 }')" "$(wc -c <"$guest_initrd")"
	expect_initrd_cksum initrd
	expect_rtc
}
# More RAM than fits below the 32-bit PCI hole: the rest must be mapped
# above 4 GiB, and the checks must hold there too.
check_high() {
	check
	guest_boot 1 5120 "tv.guest=bzimage64 year=$guest_year id=$RANDOM" || return 0
	expect_guest_passed
	expect_memory
	grep -Eq '^e820 0x[1-9a-f][0-9a-f]{8,}-0x[0-9a-f]+ 1$' "$guest_out" ||
		guest_fail "no usable RAM above 4 GiB with ${guest_mem} MiB"
}
guest_run_all check_high
