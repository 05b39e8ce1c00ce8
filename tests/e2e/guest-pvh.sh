#!/bin/bash
# PVH test guest: hvm_start_info memory map, command line, module list
# (--initrd), RSDP and the ACPI CPU count, devices.
set -eu
cd "$(dirname "$0")/../.."
. tests/guests/e2e-lib.sh
guest_init pvh.elf
check() {
	guest_boot 3 1024 "tv.guest=pvh year=$guest_year id=$RANDOM" || return 0
	expect_guest_passed
	expect_cmdline
	expect_ncpus
	expect_memory
	expect_eq "module 0 size" "$(guest_fact 'module 0' | awk '$2 == "size" { print $3 }')" \
		"$(wc -c <"$guest_initrd")"
	expect_initrd_cksum "module 0"
	expect_rtc
}
guest_run_all check
