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
. "$(dirname "$0")/storage-lib.sh"
need_test_guest multiboot.elf
stor_sandbox
stor_hook() { kill "$(cat "$tmp/sshd.pid" 2>/dev/null)" 2>/dev/null; }
fail() { echo "FAIL: $*"; exit 1; }
printf 'storage migration secret\n' >"$tmp/s"
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
stor_start_g

# 1. The destination's datastore has a VM of that name already.
TERMVISOR_DATASTORE=$tmp/ds2 "$tv" vm create g --memory 32M --kernel "$kernel" --accel bt \
	>/dev/null || fail "vm create in ds2"
stor_dst "$tmp/d1.out"
"$tv" migrate -q --copy-storage g "tcp://127.0.0.1:$p" --secret-file "$tmp/s" >"$tmp/m1.out" 2>&1
[ $? -eq 1 ] || fail "copying the storage over a VM did not fail: $(cat "$tmp/m1.out")"
grep -q "has the VM's directory already" "$tmp/m1.out" || fail "no reason: $(cat "$tmp/m1.out")"
src_running || fail "the source is not running after the refusal"
[ "$(ls "$tmp/ds2/g")" = "g.vmx" ] || fail "the refusal touched ds2/g: $(ls "$tmp/ds2/g")"
TERMVISOR_DATASTORE=$tmp/ds2 "$tv" vm rm g >/dev/null || fail "vm rm"
echo "ok refused over an existing VM of the same name"

# 2. Destinations that die during the disk copy (slowed to 2 MiB/s).
for sig in KILL TERM; do
	stor_dst "$tmp/d2$sig.out"
	"$tv" migrate --copy-storage --bandwidth 2M g "tcp://127.0.0.1:$p" \
		--secret-file "$tmp/s" >"$tmp/m2$sig.out" 2>&1 &
	m=$!
	wait_until 20 grep -qs "disks [1-9]" "$tmp/m2$sig.out" ||
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
stor_dst "$tmp/d2b.out" --display none
"$tv" migrate -q --copy-storage g "tcp://127.0.0.1:$p" --secret-file "$tmp/s" >"$tmp/m2b.out" 2>&1
[ $? -eq 1 ] || fail "a refused state did not fail the migration: $(cat "$tmp/m2b.out")"
grep -q "refused.*device" "$tmp/m2b.out" || fail "no reason: $(cat "$tmp/m2b.out")"
src_running || fail "the source is not running after the refusal"
no_vm_dir || fail "the refused destination left $tmp/ds2/g: $(ls -a "$tmp/ds2/g")"
echo "ok refused at the state: the destination removed the directory it made"

# 2c. The source cancels (migrate-cancel) during the disk copy: the
# destination is told and removes what it made.
stor_dst "$tmp/d2c.out"
"$tv" migrate --copy-storage --bandwidth 2M g "tcp://127.0.0.1:$p" \
	--secret-file "$tmp/s" >"$tmp/m2c.out" 2>&1 &
m=$!
wait_until 20 grep -qs "disks [1-9]" "$tmp/m2c.out" || fail "no disk progress: $(cat "$tmp/m2c.out")"
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
wait_until 10 bash -c "! kill -0 $d 2>/dev/null" || fail "the destination did not give up"
grep -q "source gave up.*cancelled" "$tmp/d2c.out" || fail "the destination was not told: $(cat "$tmp/d2c.out")"
src_running || fail "the source is not running after the cancel"
ls -a "$tmp/ds2" | grep -q "^\.incoming-g-$d\$" && fail "the hidden directory was left"
no_vm_dir || fail "the cancelled destination left $tmp/ds2/g"
echo "ok cancelled during the disk copy: the destination removed what it made"

# 3. A good destination.
stor_dst "$tmp/d3.out"
dst=$d
src=$(stor_holder ds1)
"$tv" migrate -q -v --copy-storage g "tcp://127.0.0.1:$p" --secret-file "$tmp/s" \
	>"$tmp/m3.out" 2>&1 || fail "the migration failed: $(cat "$tmp/m3.out") $(cat "$tmp/d3.out")"
cat "$tmp/m3.out"
wait_until 10 bash -c "! kill -0 $src 2>/dev/null" || fail "the source did not end"
export TERMVISOR_DATASTORE=$tmp/ds2
stor_runs_from_copies "at the destination"
ls -a "$tmp/ds2" | grep -q '^\.incoming' && fail "a hidden directory is left: $(ls -a "$tmp/ds2")"
stor_same_copies "$dst" 4096
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
wait_until 60 grep -q "checks [0-9]* passed, 0 failed" "$tmp/ds2/g/g.log" ||
	fail "the guest did not report in ds2"
src=$(stor_holder ds2)
"$tv" migrate -q --copy-storage g "ssh://$(id -un)@127.0.0.1:$sport" --ssh "$sshcmd" \
	--remote-termvisor "$tv" --remote-datastore "$tmp/ds3" >"$tmp/m4.out" 2>&1 ||
	fail "the ssh:// migration failed: $(cat "$tmp/m4.out")"
wait_until 10 bash -c "! kill -0 $src 2>/dev/null" || fail "the ds2 source did not end"
export TERMVISOR_DATASTORE=$tmp/ds3
wait_until 10 bash -c "'$tv' vm status g | grep -q 'state: *running'" ||
	fail "the VM does not run in ds3"
dst=$(stor_holder ds3)
[ -n "$dst" ] || fail "no lock holder in ds3"
"$tv" vm stop --force g >/dev/null || fail "vm stop in ds3"
wait_until 10 bash -c "! kill -0 $dst 2>/dev/null" || fail "the ds3 VM did not stop"
qemu-img compare "$tmp/ds2/g/top.qcow2" "$tmp/ds3/g/top.qcow2" || fail "ssh: disk0 differs"
qemu-img compare -f raw -F raw "$tmp/ds2/g/data.img" "$tmp/ds3/g/data.img" || fail "ssh: disk1 differs"
echo "ok migrated over ssh:// into a third datastore"
echo "PASS: migrate-storage"

