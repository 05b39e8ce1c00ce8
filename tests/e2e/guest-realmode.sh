#!/bin/bash
# Real-mode test guest: entered at the bzImage setup code (SEG+0x20:0)
# with the zeropage filled by the loader (e820, cmd_line_ptr, initrd).
set -eu
cd "$(dirname "$0")/../.."
. tests/guests/e2e-lib.sh
guest_init realmode.bin
check() {
	guest_boot 1 128 "tv.guest=realmode year=$guest_year id=$RANDOM" || return 0
	expect_guest_passed
	expect_eq entry "$(guest_fact entry)" 16
	expect_cmdline
	expect_memory
	expect_eq "initrd size" "$(guest_fact initrd | awk '{ print $3 }')" "$(wc -c <"$guest_initrd")"
	# The map may come in the zeropage (a loader that writes e820_table at
	# SEG:0x2d0) or from INT 15h E820 (firmware); with neither, the guest
	# fails rm_e820 and has no mem_kb.
	case "$(guest_fact e820_source)" in
	zeropage | bios) ;;
	*) guest_fail "no e820 map reached the real-mode guest (zeropage or INT 15h E820)" ;;
	esac
	expect_rtc
}
guest_run_all check
