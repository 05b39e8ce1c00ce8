#!/bin/bash
# The dashboard migrates a datastore VM into a second datastore with its
# disks (m, tcp://..., y to "Copy the disks too?", the secret as @FILE),
# driven like a person in tmux at 80x24: the VM then runs from the
# destination's own copies of its disks (a qcow2 overlay over a backing
# file, flattened; a raw image), which qemu-img finds identical.
set -u
cd "$(dirname "$0")/../.."
tv=$(realpath "${BUILD:-build}/termvisor")
g=$(realpath "${BUILD:-build}/guests/multiboot.elf" 2>/dev/null)
command -v tmux >/dev/null || { echo "tmux not installed"; exit 77; }
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null ||
	{ echo "qemu-img/qemu-io missing (qemu-utils)"; exit 77; }
[ -r "$g" ] || { echo "multiboot test guest not built"; exit 77; }
tmp=$(mktemp -d)
export TERMVISOR_DATASTORE="$tmp/ds1" XDG_RUNTIME_DIR="$tmp/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
t() { tmux -S "$tmp/tmux" "$@"; }
pids=()
cleanup() {
	for ds in ds1 ds2; do
		TERMVISOR_DATASTORE=$tmp/$ds "$tv" vm stop --force g >/dev/null 2>&1
	done
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	t kill-server 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	t capture-pane -p -t tui 2>/dev/null | sed 's/^/	| /'
	exit 1
}
screen() { t capture-pane -p -t tui 2>/dev/null; }
# wait_screen REGEX [SECONDS]
wait_screen() {
	for _ in $(seq $((${2:-10} * 10))); do
		screen | grep -Eq -- "$1" && return 0
		sleep 0.1
	done
	return 1
}
wait_for() {
	local n=$(($1 * 10)); shift
	for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
	return 1
}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
listening() { grep -qi ":$(printf %04X "$1") 00000000:0000 0A" /proc/net/tcp; }

printf 'dashboard storage secret\n' >"$tmp/s"
qemu-img create -q -f qcow2 "$tmp/base.qcow2" 16M
qemu-io -c "write -P 0x11 0 3M" "$tmp/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$tmp/base.qcow2" -F qcow2 "$tmp/top.qcow2"
qemu-io -c "write -P 0x22 1M 512k" -c "write -z 2M 64k" -c "write -P 0x33 12M 256k" \
	"$tmp/top.qcow2" >/dev/null
qemu-img create -q -f raw "$tmp/data.img" 64M
qemu-io -f raw -c "write -P 0x44 40M 1M" "$tmp/data.img" >/dev/null
"$tv" vm create g --memory 32M --kernel "$g" --accel bt \
	--disk "$tmp/top.qcow2,format=qcow2" --disk "$tmp/data.img,format=raw" \
	>/dev/null || fail "vm create"
"$tv" vm start g >/dev/null || fail "vm start"
wait_for 60 grep -q "checks [0-9]* passed, 0 failed" "$tmp/ds1/g/g.log" ||
	fail "the guest did not report: $(tail -n 5 "$tmp/ds1/g/g.log")"
src=$(grep -ao 'pid[^0-9]*[0-9]*' "$tmp/ds1/g/lease" | grep -o '[0-9]*$')

p=$(port)
TERMVISOR_DATASTORE=$tmp/ds2 "$tv" run --incoming "tcp:$p" --secret-file "$tmp/s" g \
	</dev/null >"$tmp/dst.out" 2>&1 &
dst=$!
pids+=("$dst")
wait_for 20 listening "$p" || fail "the destination does not listen"

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
wait_for 10 bash -c "! kill -0 $src 2>/dev/null" || fail "the source did not end"
t send-keys -t tui q
wait_for 5 test -s "$tmp/rc" && [ "$(cat "$tmp/rc")" = 0 ] || fail "q: no exit 0"

export TERMVISOR_DATASTORE=$tmp/ds2
wait_for 10 bash -c "'$tv' vm status g | grep -q 'state: *running'" ||
	fail "the VM does not run in ds2"
"$tv" vm show g | grep -q "disk0: *$tmp/ds2/g/top.qcow2 (qcow2" ||
	fail "disk0 is not the copy: $("$tv" vm show g)"
"$tv" vm show g | grep -q "disk1: *$tmp/ds2/g/data.img (raw" ||
	fail "disk1 is not the copy: $("$tv" vm show g)"
echo "ok the VM runs in ds2 from copies of its disks"
"$tv" vm stop --force g >/dev/null
wait_for 10 bash -c "! kill -0 $dst 2>/dev/null" || fail "the destination did not stop"
qemu-img compare "$tmp/top.qcow2" "$tmp/ds2/g/top.qcow2" || fail "disk0 differs"
qemu-img compare -f raw -F raw "$tmp/data.img" "$tmp/ds2/g/data.img" || fail "disk1 differs"
qemu-img check -q "$tmp/ds2/g/top.qcow2" || fail "qemu-img check: the copy is not clean"
[ "$(du -k "$tmp/ds2/g/data.img" | cut -f1)" -lt 8192 ] || fail "the raw copy is not sparse"
echo "ok qemu-img finds the copies identical and clean"
echo "PASS: tui-migrate-storage"
