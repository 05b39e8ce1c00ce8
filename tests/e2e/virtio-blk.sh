#!/bin/bash
# virtio-blk judged by Debian's kernel (virtio_pci, virtio_blk, ext4) on
# the software CPU, as issue 3's "Real checks" ask.  One boot, three
# disks:
#   vda  raw ext4 image made by mkfs.ext4 -d from a directory of known files
#   vdb  qcow2 overlay on another such image (its backing file)
#   vdc  the raw base again, readonly=on
# The guest checks the known files' hashes, writes new files, syncs and
# unmounts, and powers off.  The host then wants e2fsck -fn clean on both
# file systems, debugfs to show what the guest wrote, qemu-img check
# clean on the overlay, and the backing file untouched.
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
for t in mkfs.ext4 e2fsck debugfs qemu-img sha256sum; do
	command -v "$t" >/dev/null || { echo "$t is missing"; exit 77; }
done
W=$(mktemp -d)
LOG=$W/console
trap 'rm -rf "$W"' EXIT

# Known files: text, binary data larger than a request, a subdirectory.
mkdir -p "$W/tree/sub/deeper"
seq 1 5000 >"$W/tree/numbers.txt"
head -c 1500000 /dev/urandom >"$W/tree/random.bin"
echo "hello from the host" >"$W/tree/sub/hello.txt"
head -c 70000 /dev/urandom >"$W/tree/sub/deeper/odd-size.bin"
(cd "$W/tree" && find . -type f | LC_ALL=C sort | xargs sha256sum) >"$W/sums"

mkimg() {
	mkfs.ext4 -q -F -L "$2" -d "$W/tree" "$1" 32M >/dev/null 2>&1 ||
		fail "mkfs.ext4 -d $1"
}
mkimg "$W/a.raw" tv-raw
mkimg "$W/base.raw" tv-base
qemu-img create -q -f qcow2 -b "$W/base.raw" -F raw "$W/top.qcow2" ||
	fail "qemu-img create"
base_sum=$(sha256sum <"$W/base.raw")

# Inside (one line: the kernel command line has no newlines, and tv.run
# spells no double quotes): hashes of the known files on both disks, then new files.  The
# big new file's hash is printed so the host can compare what it reads.
cmd='set -e; mkdir -p /mnt/a /mnt/b; echo RO=$(cat /sys/block/vdc/ro);'
cmd="$cmd mount -t ext4 /dev/vda /mnt/a; mount -t ext4 /dev/vdb /mnt/b;"
cmd="$cmd for d in a b; do (cd /mnt/\$d && find . -type f | sort | xargs sha256sum | sed s/^/SUM-\$d:/); done;"
cmd="$cmd seq 1 20000 >/mnt/a/newfile;"
cmd="$cmd dd if=/dev/urandom of=/mnt/b/big.bin bs=4096 count=300 2>/dev/null;"
cmd="$cmd echo NEWSUM \$(sha256sum </mnt/b/big.bin);"
cmd="$cmd echo written-in-the-guest >/mnt/b/sub/newfile;"
cmd="$cmd sync; umount /mnt/a; umount /mnt/b; echo UMOUNT-OK"
start=$(date +%s)
linux_run "$LOG" 600 "$cmd" --accel bt --memory 256M \
	--disk "$W/a.raw,format=raw" --disk "$W/top.qcow2,format=qcow2" \
	--disk "$W/base.raw,format=raw,readonly=on"
end=$(date +%s)
tr -d '\r' <"$LOG" >"$LOG.n" && mv "$LOG.n" "$LOG"
grep -q TERMVISOR-GUEST-READY "$LOG" || fail "no marker (exit $RC)"
grep -q '^TV-EXIT=0' "$LOG" || fail "the guest's commands failed"
grep -q '^UMOUNT-OK' "$LOG" || fail "no clean unmount"
[ "$RC" -eq 0 ] || fail "exit status $RC after power-off"
grep -q '^RO=1' "$LOG" || fail "vdc (readonly=on) is not read-only in the guest"

# The guest read every known file right, from both disks.
for d in a b; do
	sed -n "s/^SUM-$d://p" "$LOG" >"$W/got-$d"
	cmp -s "$W/sums" "$W/got-$d" ||
		{ diff "$W/sums" "$W/got-$d"; fail "file hashes on disk $d differ"; }
done

# The host reads what the guest wrote.
e2fsck -fn "$W/a.raw" >"$W/fsck-a" 2>&1 || { cat "$W/fsck-a"; fail "e2fsck on the raw disk"; }
debugfs -R 'cat /newfile' "$W/a.raw" 2>/dev/null >"$W/newfile"
seq 1 20000 | cmp -s - "$W/newfile" || fail "debugfs: /newfile is not what the guest wrote"

qemu-img check -q "$W/top.qcow2" || fail "qemu-img check on the overlay"
[ "$(sha256sum <"$W/base.raw")" = "$base_sum" ] || fail "the backing file changed"
qemu-img convert -O raw "$W/top.qcow2" "$W/top.raw" || fail "qemu-img convert"
e2fsck -fn "$W/top.raw" >"$W/fsck-b" 2>&1 || { cat "$W/fsck-b"; fail "e2fsck on the qcow2 disk"; }
want=$(sed -n 's/^NEWSUM \([0-9a-f]*\).*/\1/p' "$LOG")
got=$(debugfs -R 'cat /big.bin' "$W/top.raw" 2>/dev/null | sha256sum | cut -d' ' -f1)
[ -n "$want" ] && [ "$want" = "$got" ] || fail "big.bin: guest hash '$want', host '$got'"
[ "$(debugfs -R 'cat /sub/newfile' "$W/top.raw" 2>/dev/null)" = written-in-the-guest ] ||
	fail "debugfs: /sub/newfile on the qcow2 disk"
echo "ok: ext4 on raw and qcow2 (backing file) read and written by Debian's kernel, e2fsck and qemu-img check clean ($((end - start)) s)"
