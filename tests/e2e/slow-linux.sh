#!/bin/bash
# Slow reference-guest checks (make check-slow): nproc for --cpus 1 and 4
# on the software CPU, a guest reboot with and without --no-reboot, and
# Debian's kernel reaching its marker under --accel kvm (on this
# project's machines that runs on KVM's instruction emulator with KVM
# assist, so it is given a long time).
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

for n in 1 4; do
	linux_run "$LOG" 900 'echo NPROC=$(nproc)' --accel bt --cpus $n --memory 256M
	got=$(tr -d '\r' <"$LOG" | sed -n 's/^NPROC=//p')
	[ "$RC" -eq 0 ] && [ "$got" = $n ] || fail "--cpus $n: nproc '$got', exit $RC"
	echo "ok: --cpus $n -> nproc $got"
done

linux_run "$LOG" 600 'reboot -f' --accel bt --memory 256M --no-reboot
[ "$RC" -eq 0 ] || fail "reboot with --no-reboot: exit $RC"
[ "$(grep -c TERMVISOR-GUEST-READY "$LOG")" -eq 1 ] || fail "booted more than once"
echo "ok: reboot with --no-reboot exits 0"

# Without --no-reboot the guest comes back: a second marker appears.
linux_run "$LOG" 240 'reboot -f' --accel bt --memory 256M
[ "$(grep -c TERMVISOR-GUEST-READY "$LOG")" -ge 2 ] || fail "no second boot after reboot"
echo "ok: reboot restarts the guest"

# On a /dev/kvm that emulates kernel code (kvm_pvm, no VMX/SVM) this
# cannot pass: that KVM does not enter ring 0 on a guest's SYSCALL from
# ring 3 (tests/e2e/guest-syscall.sh), so /init dies at its first system
# call.  TV_KVM_LINUX=1 (and TV_KVM_LINUX_SECS) runs it there anyway.
if [ -w /dev/kvm ] && { grep -qwE 'vmx|svm' /proc/cpuinfo || [ "${TV_KVM_LINUX:-0}" = 1 ]; }; then
	linux_run "$LOG" "${TV_KVM_LINUX_SECS:-7200}" 'echo KVM-OK' --accel kvm --memory 256M
	grep -q TERMVISOR-GUEST-READY "$LOG" || fail "KVM: no marker (exit $RC)"
	echo "ok: Debian's kernel reaches the marker under --accel kvm"
else
	echo "skip: Debian on --accel kvm (this /dev/kvm keeps SYSCALL in ring 3, see guest-syscall.sh; TV_KVM_LINUX=1 runs it)"
fi
