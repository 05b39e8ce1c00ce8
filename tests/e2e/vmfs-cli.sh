#!/bin/bash
# termvisor vm / disk from the real binary against a private datastore,
# with qemu-img as the judge of the disks it makes.
set -u
tv=${BUILD:-build}/termvisor
if ! "$tv" vm --help 2>/dev/null | grep -q 'vm create NAME'; then
	echo "$tv does not dispatch 'vm' to vmfs_cli_vm yet"
	exit 77
fi
command -v qemu-img >/dev/null || { echo "qemu-img not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TERMVISOR_DATASTORE="$tmp/ds"
fail() { echo "FAIL: $*"; exit 1; }

"$tv" disk create "$tmp/base.qcow2" 32M || fail "disk create"
qemu-img check -q "$tmp/base.qcow2" || fail "qemu-img check base"
qemu-io -c 'write -P 0x5a 0 1M' "$tmp/base.qcow2" >/dev/null || fail "qemu-io"
"$tv" disk snapshot "$tmp/base.qcow2" "$tmp/web.qcow2" || fail "disk snapshot"
qemu-img info "$tmp/web.qcow2" | grep -q 'backing file: base.qcow2' ||
	fail "overlay does not name its backing file"
qemu-io -c 'read -P 0x5a 0 1M' "$tmp/web.qcow2" | grep -q 'read 1048576' ||
	fail "overlay does not read through"
"$tv" disk info "$tmp/web.qcow2" | grep -q 'virtual size: 32 MiB' ||
	fail "disk info"
"$tv" disk check "$tmp/web.qcow2" | grep -q 'No errors' || fail "disk check"

"$tv" vm create web --memory 1G --cpus 2 --disk "$tmp/web.qcow2" \
	--nic lan || fail "vm create"
grep -q 'disk0.format = "qcow2"' "$tmp/ds/web/web.vmx" ||
	fail "format not recorded"
"$tv" vm list | grep -q '^web .* stopped' || fail "vm list"
"$tv" vm set web memsize=2048 || fail "vm set"
"$tv" vm show web | grep -q 'memory:   2 GiB' || fail "vm show after set"
"$tv" vm set web memsize=lots 2>/dev/null; [ $? -eq 2 ] || fail "bad set not 2"
"$tv" vm create web 2>/dev/null; [ $? -eq 1 ] || fail "duplicate not 1"
"$tv" vm create 'a/b' 2>/dev/null; [ $? -eq 2 ] || fail "bad name not 2"
"$tv" vm rm web || fail "vm rm"
[ ! -e "$tmp/ds/web" ] || fail "vm rm left the directory"
exit 0
