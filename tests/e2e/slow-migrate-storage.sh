#!/bin/bash
# migrate --copy-storage with the reference guest writing its virtio-blk
# disk: 40 writes of 64 KiB (each with its own pattern, synced), one of
# them zeros over data the host put there.  On the software CPU:
#   0. ds1 -> ds1 while it writes: a shared datastore, the disk not
#      copied; the image locks go over with the VM (the source lets go
#      of them before its commit, the destination opens the image afresh
#      then), and the guest goes on writing at the destination;
#   1. ds1 -> ds2 while it writes, at full speed, so that the switch-over
#      comes in the middle of the writes (the last chunks go with the
#      guest stopped); the guest goes on writing at the destination and
#      its checksum of its whole disk must be the host's replay of them;
#   2. ds2 -> ds3 once it is done: both copies must hold exactly what the
#      guest wrote (qemu-img compare with the replay), be clean (qemu-img
#      check) and be identical to each other (source and destination).
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
tv=$(readlink -f "$tv")
. "$(dirname "$0")/storage-lib.sh"
stor_sandbox
printf 'storage migration secret\n' >"$tmp/s"

N=40
cmd='i=0; while [ $i -lt '$N' ]; do i=$((i+1)); yes "blk $i" | head -c 65536 >/tmp/p; dd if=/tmp/p of=/dev/vda bs=65536 seek=$(( (i*7) % 256 )) conv=fsync 2>/dev/null; if [ $i = 10 ]; then dd if=/dev/zero of=/dev/vda bs=65536 seek=200 count=1 conv=fsync 2>/dev/null; fi; echo "count $i"; usleep 250000; done; echo "writes done"; echo "disk-md5 $(md5sum </dev/vda)"; while :; do sleep 1; done'
"$tv" vm create g --memory 128M --accel bt --kernel "$guest/vmlinuz" \
	--initrd "$guest/initrd.img" \
	--append "console=ttyS0 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$cmd")" \
	--new-disk 16M >/dev/null || fail "vm create"
qemu-io -c "write -P 0x5a 12M 1M" "$tmp/ds1/g/g-disk0.qcow2" >/dev/null || fail "qemu-io"
"$tv" vm start g >/dev/null || fail "vm start"
LOG=$tmp/ds1/g/g.log
wait_file "$LOG" "count 2" 180 || fail "the guest did not start writing"

# 0. ds1 -> ds1: the same images, their locks handed over.
src=$(stor_holder ds1)
p=$(port)
"$tv" run --incoming "tcp:$p" --secret-file "$tmp/s" g \
	</dev/null >"$tmp/dst0.out" 2>"$tmp/dst0.err" &
dst0=$!
pids+=("$dst0")
wait_until 10 listening "$p"
timeout 300 "$tv" migrate -v g "tcp://127.0.0.1:$p" --secret-file "$tmp/s" \
	>"$tmp/m0.out" 2>&1 ||
	fail "the shared-datastore migration failed: $(tail -n 3 "$tmp/m0.out"; cat "$tmp/dst0.err")"
grep -a "^migrated" "$tmp/m0.out"
timeout 30 tail --pid="$src" -f /dev/null || fail "the first source did not end"
[ "$(stor_holder ds1)" = "$dst0" ] || fail "the destination does not hold the VM's lock"
qemu-img info "$tmp/ds1/g/g-disk0.qcow2" >/dev/null 2>&1 &&
	fail "the destination does not hold the image's lock"
LOG=$tmp/dst0.out
wait_file "$LOG" "^count [0-9]" 120 || fail "the guest does not write at the destination: $(cat "$tmp/dst0.err")"
echo "ok ds1 -> ds1: the image locks went with the VM, the guest writes on ($(grep -ao '^count [0-9][0-9]*' "$LOG" | tail -n 1))"

p=$(port)
TERMVISOR_DATASTORE=$tmp/ds2 "$tv" run --incoming "tcp:$p" --secret-file "$tmp/s" g \
	</dev/null >"$tmp/dst.out" 2>"$tmp/dst.err" &
dst=$!
pids+=("$dst")
wait_until 10 listening "$p"
src=$(stor_holder ds1)
at=$(grep -ao 'count [0-9][0-9]*' "$LOG" | tail -n 1)
[ "$at" != "count $N" ] || fail "the guest was done writing before the migration began"
# 1. ds1 -> ds2 while the guest writes, at full speed: the switch-over
# normally comes in the middle of the writes, the last chunks going with
# the guest stopped.
timeout 300 "$tv" migrate -v --copy-storage g "tcp://127.0.0.1:$p" \
	--secret-file "$tmp/s" >"$tmp/m.out" 2>&1 ||
	fail "the migration failed: $(tail -n 3 "$tmp/m.out"; cat "$tmp/dst.err")"
grep -a "^migrated\|^downtime" "$tmp/m.out"
timeout 30 tail --pid="$src" -f /dev/null || fail "the source did not end"
last=$(grep -ao 'count [0-9][0-9]*' "$tmp/dst0.out" | tail -n 1)
echo "ok ds1 -> ds2: the migration began at guest $at, switched over at $last of $N"
LOG=$tmp/dst.out
# The guest's last words, on whichever side it was when it said them
# (anchored: the kernel's command line in the source's log has them too).
for ((i = 0; i < 360; i++)); do
	cat "$tmp/ds1/g/g.log" "$tmp/dst0.out" "$tmp/dst.out" >"$tmp/both.out"
	grep -aq "^disk-md5 " "$tmp/both.out" && break
	sleep 0.5
done
grep -aq "^disk-md5 " "$tmp/both.out" || fail "the guest did not finish at the destination"
# What the guest wrote, replayed by the host into a raw reference image.
python3 - "$tmp/ref.img" "$N" <<'EOF'
import sys
img = bytearray(16 << 20)
img[12 << 20:13 << 20] = b'\x5a' * (1 << 20)
for i in range(1, int(sys.argv[2]) + 1):
    pat = (("blk %d\n" % i).encode() * 65536)[:65536]
    off = ((i * 7) % 256) * 65536
    img[off:off + 65536] = pat
    if i == 10:
        img[200 * 65536:201 * 65536] = bytes(65536)
open(sys.argv[1], "wb").write(img)
EOF
gsum=$(grep -ao '^disk-md5 [0-9a-f]*' "$tmp/both.out" | awk '{print $2}')
hsum=$(md5sum <"$tmp/ref.img" | awk '{print $1}')
[ "$gsum" = "$hsum" ] || fail "the guest's checksum $gsum of its disk is not the host's $hsum"
echo "ok the guest read back all $N writes (md5 $hsum)"
qemu-img check -q "$tmp/ds1/g/g-disk0.qcow2" ||
	fail "qemu-img check: the image written by two processes in turn is not clean"

# 2. ds2 -> ds3, the guest done writing: the source's disk and the copy
# must be identical.
p=$(port)
TERMVISOR_DATASTORE=$tmp/ds3 "$tv" run --incoming "tcp:$p" --secret-file "$tmp/s" g \
	</dev/null >"$tmp/dst3.out" 2>"$tmp/dst3.err" &
dst3=$!
pids+=("$dst3")
wait_until 10 listening "$p"
export TERMVISOR_DATASTORE=$tmp/ds2
timeout 300 "$tv" migrate -q -v --copy-storage g "tcp://127.0.0.1:$p" \
	--secret-file "$tmp/s" >"$tmp/m3.out" 2>&1 ||
	fail "the second migration failed: $(tail -n 3 "$tmp/m3.out"; cat "$tmp/dst3.err")"
grep -a "^migrated" "$tmp/m3.out"
timeout 30 tail --pid="$dst" -f /dev/null || fail "the ds2 VM did not end"
export TERMVISOR_DATASTORE=$tmp/ds3
"$tv" vm stop --force g >/dev/null
timeout 30 tail --pid="$dst3" -f /dev/null || fail "the ds3 VM did not stop"
for img in "$tmp/ds2/g/g-disk0.qcow2" "$tmp/ds3/g/g-disk0.qcow2"; do
	qemu-img compare -f raw "$tmp/ref.img" "$img" ||
		fail "$img is not what the guest wrote"
	qemu-img check -q "$img" || fail "qemu-img check: $img is not clean"
done
qemu-img compare "$tmp/ds2/g/g-disk0.qcow2" "$tmp/ds3/g/g-disk0.qcow2" ||
	fail "the source's and the destination's images differ"
echo "ok both copies hold exactly what the guest wrote, are clean, and are identical"
echo "PASS: slow-migrate-storage"
