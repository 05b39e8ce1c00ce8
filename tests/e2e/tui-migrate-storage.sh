#!/bin/bash
# The dashboard migrates a datastore VM into a second datastore with its
# disks (m, tcp://..., y to "Copy the disks too?", the secret as @FILE),
# driven like a person in tmux at 80x24: the VM then runs from the
# destination's own copies of its disks (a qcow2 overlay over a backing
# file, flattened; a raw image), which qemu-img finds identical.
set -u
. "$(dirname "$0")/storage-lib.sh"
. "$(dirname "$0")/tui-lib.sh"
cd "$(dirname "$0")/../.."
command -v tmux >/dev/null || { echo "tmux not installed"; exit 77; }
need_test_guest multiboot.elf
stor_sandbox
stor_hook() { t kill-server 2>/dev/null; }
fail() {
	echo "FAIL: $*"
	show_screen
	exit 1
}

printf 'dashboard storage secret\n' >"$tmp/s"
qemu-img create -q -f qcow2 "$tmp/base.qcow2" 16M
qemu-io -c "write -P 0x11 0 3M" "$tmp/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$tmp/base.qcow2" -F qcow2 "$tmp/top.qcow2"
qemu-io -c "write -P 0x22 1M 512k" -c "write -z 2M 64k" -c "write -P 0x33 12M 256k" \
	"$tmp/top.qcow2" >/dev/null
qemu-img create -q -f raw "$tmp/data.img" 64M
qemu-io -f raw -c "write -P 0x44 40M 1M" "$tmp/data.img" >/dev/null
stor_start_g
src=$(stor_holder ds1)

stor_dst "$tmp/dst.out"
dst=$d

t new-session -d -s tui -x 80 -y 24 \
	"env TERM=vt100 NO_COLOR=1 '$tv'; echo \$? >'$tmp/rc'; sleep 600"
wait_screen '^g +running' 20 || fail "the dashboard does not show g running"
t send-keys -t tui m
wait_screen 'Migrate to .* for g: _' || fail "m does not ask for the destination"
t send-keys -t tui -l "tcp://127.0.0.1:$p"
t send-keys -t tui Enter
wait_screen 'Copy the disks too\? \(y/N\) for g: _' ||
	fail "no question about the disks"
t send-keys -t tui y
wait_screen 'Shared secret .* for g: _' || fail "tcp:// does not ask for the secret"
t send-keys -t tui -l "@$tmp/s"
t send-keys -t tui Enter
wait_screen "g: (migrate to tcp://127.0.0.1:$p with its disks: done|migrated)" 60 ||
	fail "the dashboard's migration did not finish: $(cat "$tmp/dst.out")"
echo "ok the dashboard migrated g with its disks"
wait_until 10 bash -c "! kill -0 $src 2>/dev/null" || fail "the source did not end"
t send-keys -t tui q
wait_until 5 test -s "$tmp/rc" && [ "$(cat "$tmp/rc")" = 0 ] || fail "q: no exit 0"

export TERMVISOR_DATASTORE=$tmp/ds2
stor_runs_from_copies "in ds2"
echo "ok the VM runs in ds2 from copies of its disks"
stor_same_copies "$dst" 8192
echo "ok qemu-img finds the copies identical and clean"
echo "PASS: tui-migrate-storage"
