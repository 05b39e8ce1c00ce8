#!/bin/bash
# virtio-blk the other way round from virtio-blk.sh: Debian's kernel on
# the software CPU with two vCPUs and pci=nomsi, so completions arrive
# through INTx and the ISR byte (the DSDT's routing), while four writers
# and then four readers hit the raw device at once.  The guest reports
# hashes of what it wrote and of what it read back after dropping its
# caches; the host hashes the same ranges of the image.  The VM runs
# from a private datastore, whose disk0.serial the guest must read back
# (VIRTIO_BLK_T_GET_ID, /sys/block/vda/serial).
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
W=$(mktemp -d)
LOG=$W/console
trap 'rm -rf "$W"' EXIT
truncate -s 16M "$W/disk.raw"

cmd='for i in 0 1 2 3; do dd if=/dev/urandom of=/tmp/f$i bs=64k count=16 2>/dev/null; done;'
cmd="$cmd for i in 0 1 2 3; do dd if=/tmp/f\$i of=/dev/vda bs=64k seek=\$((i*16)) conv=fsync 2>/dev/null & done; wait;"
cmd="$cmd echo 3 >/proc/sys/vm/drop_caches;"
cmd="$cmd for i in 0 1 2 3; do dd if=/dev/vda bs=64k skip=\$((i*16)) count=16 2>/dev/null | sha256sum >/tmp/r\$i & done; wait;"
cmd="$cmd for i in 0 1 2 3; do echo SUM\$i \$(sha256sum </tmp/f\$i) \$(cat /tmp/r\$i); done;"
cmd="$cmd grep virtio /proc/interrupts | sed s/^/IRQ:/; echo SERIAL=\$(cat /sys/block/vda/serial)"
export TERMVISOR_DATASTORE=$W/ds
mkdir "$W/ds"
"$tv" vm create vblk --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" \
	--append "console=ttyS0 panic=-1 tv.quiet=1 pci=nomsi tv.run=$(tv_enc "$cmd")" \
	--accel bt --cpus 2 --memory 256M --disk "$W/disk.raw,format=raw" \
	>/dev/null || fail "vm create"
"$tv" vm set vblk disk0.serial=TV-SERIAL-0007 || fail "vm set disk0.serial"
start=$(date +%s)
timeout 600 "$tv" run vblk </dev/null >"$LOG" 2>&1
RC=$?
end=$(date +%s)
tr -d '\r' <"$LOG" >"$LOG.n" && mv "$LOG.n" "$LOG"
grep -q TERMVISOR-GUEST-READY "$LOG" || fail "no marker (exit $RC)"
grep -q '^TV-EXIT=0' "$LOG" || fail "the guest's commands failed"
[ "$RC" -eq 0 ] || fail "exit status $RC after power-off"
grep '^IRQ:' "$LOG" | grep -q 'IO-APIC' || fail "virtio interrupts are not INTx through the IOAPIC"
grep '^IRQ:' "$LOG" | grep -q 'MSI' && fail "MSI used despite pci=nomsi"
grep -q '^SERIAL=TV-SERIAL-0007$' "$LOG" || fail "the guest reads serial '$(sed -n 's/^SERIAL=//p' "$LOG")'"
for i in 0 1 2 3; do
	set -- $(sed -n "s/^SUM$i //p" "$LOG" | tr -d -)
	[ $# -eq 2 ] || fail "no hashes for writer $i"
	[ "$1" = "$2" ] || fail "writer $i: the guest read back other data"
	host=$(dd if="$W/disk.raw" bs=64k skip=$((i * 16)) count=16 2>/dev/null | sha256sum | cut -d' ' -f1)
	[ "$host" = "$1" ] || fail "writer $i: the image holds other data than the guest wrote"
done
sed -n 's/^IRQ: *//p' "$LOG" | tr -s ' '
echo "ok: 4 parallel writers and readers over INTx on 2 vCPUs, data equal in guest and image, serial read back ($((end - start)) s)"
