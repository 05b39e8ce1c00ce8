#!/bin/bash
# Queue kicks through ioeventfd (src/hv/vm_ioeventfd.c): the virtiokick
# test guest sends N virtio-blk requests, each kicked by a 16-bit write to
# its notify address, then waits.  On KVM with KVM_IOEVENTFD those writes
# never leave the kernel: the VM's MMIO exits stay far below N, while with
# TERMVISOR_IOEVENTFD=0 every kick is one.  On the software CPU the kicks
# take the user-space table (the unit tests show it skips the device lock);
# here every request must still complete, with it on and off.
set -u
. "$(dirname "$0")/sandbox-lib.sh"
need_test_guest virtiokick.elf
vm_sandbox vk-bt-1 vk-bt-0 vk-kvm-1 vk-kvm-0	# run's vk-ACCEL-IOEVENTFD
truncate -s 1M "$tmp/disk.raw"
N=2000

# run ACCEL IOEVENTFD: prints the VM's MMIO exits once the guest is done,
# and the guest's TSC ticks per request (kick to completion).
run() {
	local vm=vk-$1-$2 i
	local log="$TERMVISOR_DATASTORE/$vm/$vm.log"
	"$tv" vm create $vm --memory 64M --accel "$1" --kernel "$kernel" \
		--append "kicks=$N hold=1" --disk "$tmp/disk.raw,format=raw" \
		--vnc none >/dev/null || return 1
	TERMVISOR_IOEVENTFD=$2 "$tv" vm start $vm >/dev/null || return 1
	for i in $(seq 600); do
		grep -q "^kicks $N done" "$log" 2>/dev/null && break
		grep -q "^not ok" "$log" 2>/dev/null && break
		sleep 0.1
	done
	if ! grep -q "^kicks $N done" "$log"; then
		tail -n 5 "$log" >&2
		"$tv" vm stop --force $vm >/dev/null 2>&1
		return 1
	fi
	"$tv" vm stats --json $vm | python3 -c '
import json, sys
print(sum(v["mmio_exits"] for v in json.load(sys.stdin)["vcpus"]), end=" ")'
	sed -n 's/^tsc per request \([0-9]*\).*/\1/p' "$log"
	"$tv" vm stop --force $vm >/dev/null 2>&1
}

for accel in bt kvm; do
	if [ $accel = kvm ] && [ ! -w /dev/kvm ]; then
		echo "skip kvm: no /dev/kvm"; continue
	fi
	on=$(run $accel 1) || { bad "$accel: $N kicks with ioeventfd"; continue; }
	off=$(run $accel 0) || { bad "$accel: $N kicks without ioeventfd"; continue; }
	read -r on on_tsc <<<"$on"
	read -r off off_tsc <<<"$off"
	ok "$accel: $N requests kicked, with and without ioeventfd"
	echo "   $accel: MMIO exits $on with ioeventfd, $off without;" \
		"TSC ticks per request $on_tsc with, $off_tsc without"
	[ "$off" -ge $N ] && ok "$accel without ioeventfd: every kick an MMIO exit" ||
		bad "$accel without ioeventfd: $off MMIO exits for $N kicks"
	# KVM_CHECK_EXTENSION(KVM_CAP_IOEVENTFD): without it the kicks take
	# the user-space table, an exit each, and that is all we can ask.
	if [ $accel = kvm ] && ! python3 -c 'import fcntl, os, sys
sys.exit(fcntl.ioctl(os.open("/dev/kvm", os.O_RDWR), 0xAE03, 36) <= 0)'; then
		echo "   this host's KVM has no KVM_IOEVENTFD: kicks exit to the VMM"
	elif [ $accel = kvm ]; then
		[ "$on" -lt $((N / 10)) ] &&
			ok "kvm with ioeventfd: the kicks stayed in the kernel" ||
			bad "kvm with ioeventfd: $on MMIO exits for $N kicks"
	fi
done
[ $fails -eq 0 ]
