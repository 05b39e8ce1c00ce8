#!/bin/bash
# migrate --copy-storage between two datastores on this host, with the
# multiboot test guest (halted once it has reported) and two disks: a
# qcow2 overlay over a backing file, and a raw image, both with data.
#   1. into a datastore that has a VM of that name: refused, the source
#      runs on;
#   2. a destination killed (SIGKILL) in the middle of the disk copy, and
#      one stopped (SIGTERM) there: the source runs on, and no VM
#      directory is left on the destination's datastore;
#   2b. one that refuses the state once it has made the directory: it
#      removes it again;
#   2c. the source cancelled during the disk copy: the destination is
#      told and removes what it made;
#   3. a good destination: the VM runs there from its own copy of the
#      disks (the chain flattened into one qcow2), which qemu-img finds
#      identical to the source's and clean; the source exits 0;
#   4. (with openssh-server) on again over ssh:// through a private sshd
#      into a third datastore (--remote-datastore).
set -u
. "$(dirname "$0")/sshd-lib.sh"
BUILD=${BUILD:-build}
tv=$(readlink -f "$BUILD/termvisor")
g=$(readlink -f "$BUILD/guests/multiboot.elf")
[ -r "$g" ] || { echo "test guests not built (make test-guests)"; exit 77; }
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null ||
	{ echo "qemu-img/qemu-io missing (qemu-utils)"; exit 77; }
tmp=$(mktemp -d)
pids=()
cleanup() {
	for ds in ds1 ds2 ds3; do
		TERMVISOR_DATASTORE=$tmp/$ds "$tv" vm stop --force g >/dev/null 2>&1
	done
	kill "$(cat "$tmp/sshd.pid" 2>/dev/null)" 2>/dev/null
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {
	local n=$(($1 * 10)); shift
	for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
	return 1
}
export XDG_RUNTIME_DIR=$tmp/run TERMVISOR_DATASTORE=$tmp/ds1
mkdir -m 700 "$XDG_RUNTIME_DIR"
printf 'storage migration secret\n' >"$tmp/s"
# A destination is ready once it listens (it reads its datastore first).
listening() { grep -qi ":$(printf %04X "$1") 00000000:0000 0A" /proc/net/tcp; }
src_running() { "$tv" vm status g 2>/dev/null | grep -q "state: *running"; }
no_vm_dir() { [ ! -e "$tmp/ds2/g" ]; }

# The disks: 6 MiB of data in the backing file, some of it overwritten
# (and some zeroed) in the overlay; 2 MiB in the raw image.
qemu-img create -q -f qcow2 "$tmp/base.qcow2" 32M
qemu-io -c "write -P 0x11 0 6M" "$tmp/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b "$tmp/base.qcow2" -F qcow2 "$tmp/top.qcow2"
qemu-io -c "write -P 0x22 1M 1M" -c "write -z 3M 64k" -c "write -P 0x33 20M 512k" \
	"$tmp/top.qcow2" >/dev/null
qemu-img create -q -f raw "$tmp/data.img" 8M
qemu-io -f raw -c "write -P 0x44 4M 2M" "$tmp/data.img" >/dev/null
"$tv" vm create g --memory 32M --kernel "$g" --accel bt \
	--disk "$tmp/top.qcow2,format=qcow2" --disk "$tmp/data.img,format=raw" \
	>/dev/null || fail "vm create"
"$tv" vm start g >/dev/null || fail "vm start"
wait_for 60 grep -q "checks [0-9]* passed, 0 failed" "$tmp/ds1/g/g.log" ||
	fail "the guest did not report: $(tail -n 5 "$tmp/ds1/g/g.log")"

# 1. The destination's datastore has a VM of that name already.
TERMVISOR_DATASTORE=$tmp/ds2 "$tv" vm create g --memory 32M --kernel "$g" --accel bt \
	>/dev/null || fail "vm create in ds2"
p=$(port)
TERMVISOR_DATASTORE=$tmp/ds2 "$tv" run --incoming "tcp:$p" --secret-file "$tmp/s" g \
	</dev/null >"$tmp/d1.out" 2>&1 &
pids+=($!)
wait_for 20 listening "$p" || fail "the destination does not listen"
"$tv" migrate -q --copy-storage g "tcp://127.0.0.1:$p" --secret-file "$tmp/s" >"$tmp/m1.out" 2>&1
[ $? -eq 1 ] || fail "copying the storage over a VM did not fail: $(cat "$tmp/m1.out")"
grep -q "has the VM's directory already" "$tmp/m1.out" || fail "no reason: $(cat "$tmp/m1.out")"
src_running || fail "the source is not running after the refusal"
[ "$(ls "$tmp/ds2/g")" = "g.vmx" ] || fail "the refusal touched ds2/g: $(ls "$tmp/ds2/g")"
TERMVISOR_DATASTORE=$tmp/ds2 "$tv" vm rm g >/dev/null || fail "vm rm"
echo "ok refused over an existing VM of the same name"

# 2. Destinations that die during the disk copy (slowed to 2 MiB/s).
for sig in KILL TERM; do
	p=$(port)
	TERMVISOR_DATASTORE=$tmp/ds2 "$tv" run --incoming "tcp:$p" --secret-file "$tmp/s" g \
		</dev/null >"$tmp/d2$sig.out" 2>&1 &
	d=$!
	pids+=("$d")
	wait_for 20 listening "$p" || fail "the destination does not listen"
	"$tv" migrate --copy-storage --bandwidth 2M g "tcp://127.0.0.1:$p" \
		--secret-file "$tmp/s" >"$tmp/m2$sig.out" 2>&1 &
	m=$!
	wait_for 20 grep -qs "disks [1-9]" "$tmp/m2$sig.out" ||
		fail "no disk progress: $(cat "$tmp/m2$sig.out")"
	ls -a "$tmp/ds2" | grep -q "^\.incoming-g-$d\$" ||
		fail "no hidden directory while copying: $(ls -a "$tmp/ds2")"
	kill -$sig "$d"
	wait "$m"
	[ $? -eq 1 ] || fail "SIG$sig: the migration did not fail: $(cat "$tmp/m2$sig.out")"
	src_running || fail "SIG$sig: the source is not running"
	no_vm_dir || fail "SIG$sig: $tmp/ds2/g left behind"
	if [ $sig = TERM ]; then
		wait "$d"
		ls -a "$tmp/ds2" | grep -q "^\.incoming-g-$d\$" &&
			fail "SIGTERM: the hidden directory was left: $(cat "$tmp/d2$sig.out")"
	fi
	echo "ok destination SIG$sig mid-copy: the source runs on, no VM directory there"
done

# 2b. A destination that refuses the state (another device list: no
# display) after it made the directory: it removes it again.
p=$(port)
TERMVISOR_DATASTORE=$tmp/ds2 "$tv" run --display none --incoming "tcp:$p" \
	--secret-file "$tmp/s" g </dev/null >"$tmp/d2b.out" 2>&1 &
pids+=($!)
wait_for 20 listening "$p" || fail "the destination does not listen"
"$tv" migrate -q --copy-storage g "tcp://127.0.0.1:$p" --secret-file "$tmp/s" >"$tmp/m2b.out" 2>&1
[ $? -eq 1 ] || fail "a refused state did not fail the migration: $(cat "$tmp/m2b.out")"
grep -q "refused.*device" "$tmp/m2b.out" || fail "no reason: $(cat "$tmp/m2b.out")"
src_running || fail "the source is not running after the refusal"
no_vm_dir || fail "the refused destination left $tmp/ds2/g: $(ls -a "$tmp/ds2/g")"
echo "ok refused at the state: the destination removed the directory it made"

# 2c. The source cancels (migrate-cancel) during the disk copy: the
# destination is told and removes what it made.
p=$(port)
TERMVISOR_DATASTORE=$tmp/ds2 "$tv" run --incoming "tcp:$p" --secret-file "$tmp/s" g \
	</dev/null >"$tmp/d2c.out" 2>&1 &
d=$!
pids+=("$d")
wait_for 20 listening "$p" || fail "the destination does not listen"
"$tv" migrate --copy-storage --bandwidth 2M g "tcp://127.0.0.1:$p" \
	--secret-file "$tmp/s" >"$tmp/m2c.out" 2>&1 &
m=$!
wait_for 20 grep -qs "disks [1-9]" "$tmp/m2c.out" || fail "no disk progress: $(cat "$tmp/m2c.out")"
python3 - <<'EOF' || fail "migrate-cancel refused"
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["XDG_RUNTIME_DIR"] + "/termvisor/g.sock")
f = s.makefile("rw")
f.readline()
f.write(json.dumps({"id": 1, "cmd": "migrate-cancel"}) + "\n")
f.flush()
while True:
    r = json.loads(f.readline())
    if r.get("id") == 1:
        sys.exit(0 if r.get("ok") else 1)
EOF
wait "$m"
[ $? -eq 1 ] || fail "the cancelled migration did not fail: $(cat "$tmp/m2c.out")"
wait_for 10 bash -c "! kill -0 $d 2>/dev/null" || fail "the destination did not give up"
grep -q "source gave up.*cancelled" "$tmp/d2c.out" || fail "the destination was not told: $(cat "$tmp/d2c.out")"
src_running || fail "the source is not running after the cancel"
ls -a "$tmp/ds2" | grep -q "^\.incoming-g-$d\$" && fail "the hidden directory was left"
no_vm_dir || fail "the cancelled destination left $tmp/ds2/g"
echo "ok cancelled during the disk copy: the destination removed what it made"

# 3. A good destination.
p=$(port)
TERMVISOR_DATASTORE=$tmp/ds2 "$tv" run --incoming "tcp:$p" --secret-file "$tmp/s" g \
	</dev/null >"$tmp/d3.out" 2>&1 &
dst=$!
pids+=("$dst")
wait_for 20 listening "$p" || fail "the destination does not listen"
src=$(grep -ao 'pid[^0-9]*[0-9]*' "$tmp/ds1/g/lease" | grep -o '[0-9]*$')
"$tv" migrate -q -v --copy-storage g "tcp://127.0.0.1:$p" --secret-file "$tmp/s" \
	>"$tmp/m3.out" 2>&1 || fail "the migration failed: $(cat "$tmp/m3.out") $(cat "$tmp/d3.out")"
cat "$tmp/m3.out"
wait_for 10 bash -c "! kill -0 $src 2>/dev/null" || fail "the source did not end"
export TERMVISOR_DATASTORE=$tmp/ds2
wait_for 10 bash -c "'$tv' vm status g | grep -q 'state: *running'" ||
	fail "the VM does not run at the destination"
ls -a "$tmp/ds2" | grep -q '^\.incoming' && fail "a hidden directory is left: $(ls -a "$tmp/ds2")"
"$tv" vm show g | grep -q "disk0: *$tmp/ds2/g/top.qcow2 (qcow2" ||
	fail "disk0 is not the copy: $("$tv" vm show g)"
"$tv" vm show g | grep -q "disk1: *$tmp/ds2/g/data.img (raw" ||
	fail "disk1 is not the copy: $("$tv" vm show g)"
"$tv" vm stop --force g >/dev/null
wait_for 10 bash -c "! kill -0 $dst 2>/dev/null" || fail "the destination did not stop"
qemu-img info "$tmp/ds2/g/top.qcow2" | grep -q "backing file" &&
	fail "the copy still has a backing file"
qemu-img compare "$tmp/top.qcow2" "$tmp/ds2/g/top.qcow2" || fail "disk0 differs"
qemu-img compare -f raw -F raw "$tmp/data.img" "$tmp/ds2/g/data.img" || fail "disk1 differs"
qemu-img check -q "$tmp/ds2/g/top.qcow2" || fail "qemu-img check: the copy is not clean"
# The raw copy stays sparse: only the data was sent.
[ "$(du -k "$tmp/ds2/g/data.img" | cut -f1)" -lt 4096 ] || fail "the raw copy is not sparse"
echo "ok migrated over tcp:// into another datastore"

# 4. Over ssh://, from ds2 into ds3.
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
	echo "PASS: migrate-storage (ssh:// skipped: openssh-server not installed)"
	exit 0
fi
sport=$(port)
sshd_start "$tmp" "$sport" -o SendEnv=XDG_RUNTIME_DIR ||
	fail "the private sshd does not work"
"$tv" vm start g >/dev/null || fail "vm start in ds2"
wait_for 60 grep -q "checks [0-9]* passed, 0 failed" "$tmp/ds2/g/g.log" ||
	fail "the guest did not report in ds2"
src=$(grep -ao 'pid[^0-9]*[0-9]*' "$tmp/ds2/g/lease" | grep -o '[0-9]*$')
"$tv" migrate -q --copy-storage g "ssh://$(id -un)@127.0.0.1:$sport" --ssh "$sshcmd" \
	--remote-termvisor "$tv" --remote-datastore "$tmp/ds3" >"$tmp/m4.out" 2>&1 ||
	fail "the ssh:// migration failed: $(cat "$tmp/m4.out")"
wait_for 10 bash -c "! kill -0 $src 2>/dev/null" || fail "the ds2 source did not end"
export TERMVISOR_DATASTORE=$tmp/ds3
wait_for 10 bash -c "'$tv' vm status g | grep -q 'state: *running'" ||
	fail "the VM does not run in ds3"
dst=$(grep -ao 'pid[^0-9]*[0-9]*' "$tmp/ds3/g/lease" | grep -o '[0-9]*$')
[ -n "$dst" ] || fail "no lock holder in ds3"
"$tv" vm stop --force g >/dev/null || fail "vm stop in ds3"
wait_for 10 bash -c "! kill -0 $dst 2>/dev/null" || fail "the ds3 VM did not stop"
qemu-img compare "$tmp/ds2/g/top.qcow2" "$tmp/ds3/g/top.qcow2" || fail "ssh: disk0 differs"
qemu-img compare -f raw -F raw "$tmp/ds2/g/data.img" "$tmp/ds3/g/data.img" || fail "ssh: disk1 differs"
echo "ok migrated over ssh:// into a third datastore"
echo "PASS: migrate-storage"

