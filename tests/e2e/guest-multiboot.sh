#!/bin/bash
# Multiboot v1 test guest: magic, mbi memory fields and map, command
# line, --initrd as module 0 (bytes and string), ACPI CPU count, devices.
set -eu
cd "$(dirname "$0")/../.."
. tests/guests/e2e-lib.sh
guest_init multiboot.elf
check() {
	guest_boot 2 256 "tv.guest=multiboot year=$guest_year id=$RANDOM" || return 0
	expect_guest_passed
	# Loaders (GRUB, QEMU) put the kernel's path before the arguments.
	cmd=$(guest_fact cmdline)
	case "$cmd" in
	"\"$guest_append\"" | *" $guest_append\"") ;;
	*) guest_fail "cmdline: guest saw $cmd, want it to end with '$guest_append'" ;;
	esac
	expect_ncpus
	expect_memory
	upper=$(guest_fact mem_upper)
	[ -n "$upper" ] && [ $((upper + 1024)) -le $((guest_mem * 1024)) ] &&
		[ $((upper + 1024)) -ge $((guest_mem * 1024 * 98 / 100)) ] ||
		guest_fail "mem_upper ${upper:-none} KiB does not fit ${guest_mem} MiB"
	expect_initrd_cksum "module 0"
	string=$(sed -n 's/^module 0 string //p' "$guest_out")
	case "$string" in
	*"${guest_initrd##*/}\"") ;;
	*) guest_fail "module 0 string $string does not name ${guest_initrd##*/}" ;;
	esac
	expect_rtc
}
guest_run_all check
