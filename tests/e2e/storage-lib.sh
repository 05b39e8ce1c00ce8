# Shared by the storage-migration tests (migrate-storage.sh,
# tui-migrate-storage.sh, slow-migrate-storage.sh): VM g in datastore
# ds1 of a sandbox, migrated with its disks into ds2 and ds3. For the
# multiboot test guest (need_test_guest multiboot.elf) on two disks of
# data the test makes ($tmp/top.qcow2, a qcow2 overlay over a backing
# file, and $tmp/data.img, raw): its start, a destination in ds2, and
# the checks that the destination runs from copies of its own,
# flattened, identical, clean and sparse.
# The test defines fail; stor_hook, if it has one, runs at the end (after
# g is stopped everywhere, before the destinations in pids are killed).
. "$(dirname "${BASH_SOURCE[0]}")/sandbox-lib.sh"

# stor_sandbox: vm_sandbox with ds1 current and an empty pids; needs
# qemu-img, qemu-io and python3 or skips.
stor_sandbox() {
	command -v qemu-img >/dev/null && command -v qemu-io >/dev/null ||
		{ echo "qemu-img/qemu-io missing (qemu-utils)"; exit 77; }
	command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
	vm_sandbox
	export TERMVISOR_DATASTORE=$tmp/ds1
	pids=()
}
sandbox_hook() {
	local ds p

	for ds in ds1 ds2 ds3; do
		TERMVISOR_DATASTORE=$tmp/$ds "$tv" vm stop --force g >/dev/null 2>&1
	done
	declare -F stor_hook >/dev/null && stor_hook
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
}

# stor_holder DS: the pid that holds g's lease in datastore DS.
stor_holder() { grep -ao 'pid[^0-9]*[0-9]*' "$tmp/$1/g/lease" | grep -o '[0-9]*$'; }

# stor_start_g: g on the two disks, started in ds1, once it has reported.
stor_start_g() {
	"$tv" vm create g --memory 32M --kernel "$kernel" --accel bt \
		--disk "$tmp/top.qcow2,format=qcow2" --disk "$tmp/data.img,format=raw" \
		>/dev/null || fail "vm create"
	"$tv" vm start g >/dev/null || fail "vm start"
	wait_until 60 grep -q "checks [0-9]* passed, 0 failed" "$tmp/ds1/g/g.log" ||
		fail "the guest did not report: $(tail -n 5 "$tmp/ds1/g/g.log")"
}

# stor_dst OUT [RUN-OPTION...]: a destination for g in ds2 on a free
# port p, its output in OUT; sets p and d (its pid, also in pids) once
# it listens.
stor_dst() {
	local out=$1
	shift
	p=$(port)
	TERMVISOR_DATASTORE=$tmp/ds2 "$tv" run "$@" --incoming "tcp:$p" \
		--secret-file "$tmp/s" g </dev/null >"$out" 2>&1 &
	d=$!
	pids+=("$d")
	wait_until 20 listening "$p" || fail "the destination does not listen"
}

# stor_runs_from_copies WHERE: g runs (in the current datastore, ds2)
# from ds2's copies of its disks; WHERE names the place in the failure.
stor_runs_from_copies() {
	wait_until 10 bash -c "'$tv' vm status g | grep -q 'state: *running'" ||
		fail "the VM does not run $1"
	"$tv" vm show g | grep -q "disk0: *$tmp/ds2/g/top.qcow2 (qcow2" ||
		fail "disk0 is not the copy: $("$tv" vm show g)"
	"$tv" vm show g | grep -q "disk1: *$tmp/ds2/g/data.img (raw" ||
		fail "disk1 is not the copy: $("$tv" vm show g)"
}

# stor_same_copies PID KIB: stop g (PID, in ds2); its copies are then
# flattened, identical to the originals and clean, and the raw one
# stays sparse (under KIB KiB: only the data was sent).
stor_same_copies() {
	"$tv" vm stop --force g >/dev/null
	wait_until 10 bash -c "! kill -0 $1 2>/dev/null" || fail "the destination did not stop"
	qemu-img info "$tmp/ds2/g/top.qcow2" | grep -q "backing file" &&
		fail "the copy still has a backing file"
	qemu-img compare "$tmp/top.qcow2" "$tmp/ds2/g/top.qcow2" || fail "disk0 differs"
	qemu-img compare -f raw -F raw "$tmp/data.img" "$tmp/ds2/g/data.img" || fail "disk1 differs"
	qemu-img check -q "$tmp/ds2/g/top.qcow2" || fail "qemu-img check: the copy is not clean"
	[ "$(du -k "$tmp/ds2/g/data.img" | cut -f1)" -lt "$2" ] || fail "the raw copy is not sparse"
}
