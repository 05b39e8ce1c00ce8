#!/bin/bash
# The snapshot tree of a VM that is not running: take freezes its disk
# under a qcow2 overlay, revert goes back to the frozen data (QEMU's
# qemu-io writes and reads the images, qemu-img checks them), delete
# keeps what other snapshots still read and removes the rest.
set -u
. "$(dirname "$0")/sandbox-lib.sh"
need_test_guest multiboot.elf
command -v qemu-io >/dev/null && command -v qemu-img >/dev/null ||
	{ echo "qemu-io/qemu-img not installed (qemu-utils)"; exit 77; }
vm_sandbox	# d1 is never started
dir=$tmp/ds/d1
disk() { sed -n 's/^disk0.path = "\(.*\)"$/\1/p' "$dir/d1.vmx"; }
# put BYTE: fill the first 64 KiB of the VM's current disk with BYTE
put() { qemu-io -f qcow2 -c "write -P $1 0 64k" "$dir/$(disk)" >/dev/null; }
# has BYTE: the VM's current disk reads back BYTE there
has() { qemu-io -f qcow2 -c "read -P $1 0 64k" "$dir/$(disk)" | grep -q "read 65536"; }

"$tv" vm create d1 --memory 64M --kernel "$kernel" --new-disk 16M >/dev/null ||
	{ echo "vm create failed"; exit 1; }
base=$(disk)
put 0x11
"$tv" snapshot take d1 s1 >"$tmp/out" 2>&1 || { bad "take s1"; cat "$tmp/out"; }
over=$(disk)
[ "$over" != "$base" ] && qemu-img info "$dir/$over" | grep -q "backing file: $base" &&
	ok "take: disk0 is now $over over $base" || bad "take did not put an overlay: $over"
has 0x11 && ok "the overlay reads the frozen data" || bad "overlay data"
put 0x22
"$tv" snapshot take d1 s2 >/dev/null 2>&1 || bad "take s2"
put 0x33
"$tv" snapshot list d1 >"$tmp/out"
grep -q '^ s1 ' "$tmp/out" && grep -q '^  \*s2 ' "$tmp/out" &&
	ok "list: s2 under s1, current" || { bad "list"; cat "$tmp/out"; }

last=$(disk)
"$tv" snapshot revert d1 s1 >"$tmp/out" 2>&1 && has 0x11 &&
	ok "revert s1: the data as it was at s1" || { bad "revert s1"; cat "$tmp/out"; }
[ ! -e "$dir/$last" ] && ok "the discarded overlay is deleted" || bad "$last left behind"
"$tv" snapshot revert d1 s2 >/dev/null 2>&1 && has 0x22 &&
	ok "revert s2: the data as it was at s2" || bad "revert s2"
"$tv" snapshot list d1 | grep -q '^  \*s2 ' && ok "s2 is current" || bad "current after revert"

# s1's image is s2's backing: deleting s1 must keep it.
"$tv" snapshot delete d1 s1 >/dev/null 2>&1 || bad "delete s1"
[ -e "$dir/$base" ] && has 0x22 && ok "delete s1 keeps the image s2 reads" ||
	bad "delete s1 broke s2's chain"
grep -q '"parent": null' "$dir/snapshots.json" && ! grep -q '"s1"' "$dir/snapshots.json" &&
	ok "s2 took s1's parent" || { bad "tree after delete"; cat "$dir/snapshots.json"; }
qemu-img check -q "$dir/$(disk)" && ok "qemu-img check: clean" || bad "qemu-img check"
# s3's image is read by s3 alone once the VM went back to s2.
"$tv" snapshot take d1 s3 >/dev/null 2>&1 || bad "take s3"
only=$(
	python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); print([s for s in t["snapshots"] if s["name"]=="s3"][0]["disks"][0])' "$dir/snapshots.json")
"$tv" snapshot revert d1 s2 >/dev/null 2>&1 && "$tv" snapshot delete d1 s3 >/dev/null 2>&1 &&
	[ ! -e "$dir/$only" ] && has 0x22 && ok "delete s3 removes the image only it read" ||
	bad "delete s3: $only"

"$tv" snapshot take d1 s1 >/dev/null 2>&1 &&
	"$tv" snapshot take d1 s1 2>&1 | grep -q "exists" && ok "a name is taken once" ||
	bad "duplicate name"
"$tv" snapshot revert d1 nosuch 2>&1 | grep -q "no snapshot nosuch" &&
	ok "revert of an unknown snapshot is refused" || bad "revert nosuch"
"$tv" snapshot list nosuchvm >/dev/null 2>&1; [ $? -eq 1 ] && ok "unknown VM: exit 1" || bad "unknown VM"
"$tv" snapshot frob d1 >/dev/null 2>&1; [ $? -eq 2 ] && ok "bad subcommand: exit 2" || bad "usage"
echo '{"version": 1, "current": "x", "snapshots": []}' >"$dir/snapshots.json"
"$tv" snapshot list d1 2>&1 | grep -q "not a snapshot tree" &&
	ok "a damaged tree file is refused" || bad "damaged tree accepted"

[ $fails -eq 0 ] && echo "snapshot-disks: all passed" && exit 0
echo "snapshot-disks: $fails failed"
exit 1
