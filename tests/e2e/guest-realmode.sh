#!/bin/bash
# Real-mode test guest: entered at the bzImage setup code (SEG+0x20:0)
# with the zeropage filled by the loader (e820, cmd_line_ptr, initrd).
set -eu
. tests/guests/e2e-lib.sh
guest_init realmode.bin
guest_boot 1 128 "tv.guest=realmode year=$guest_year id=$RANDOM"
expect_guest_passed
expect_eq entry "$(guest_fact entry)" 16
expect_cmdline
expect_memory
expect_eq "initrd size" "$(guest_fact initrd | awk '{ print $3 }')" "$(wc -c <"$guest_initrd")"
# termvisor has no BIOS: the map must come from the zeropage.
[ "$GUEST_VMM" = qemu ] || expect_eq "e820 source" "$(guest_fact e820_source)" zeropage
expect_rtc
guest_done
