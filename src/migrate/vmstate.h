/*
 * The whole state of a VM as one stream of snap sections: what snapshot
 * files and the migration stream both carry, read by one loader.
 *
 *   "vmstate" header: format version, the VM's shape (memory size and
 *       layout, vCPU count, device list), and the CPUID features the
 *       guest was given (a destination whose accelerator cannot give
 *       the same refuses, naming what is missing)
 *   "cpu.N" for each vCPU: cpu_state_snapshot() plus what the
 *       accelerator keeps beside it (KVM: XSAVE, MSRs, LAPIC, events,
 *       kvmclock; bt: the VM-wide TSC)
 *   one section per device instance (devices_snapshot())
 *   the accelerator's in-kernel chips (KVM: PIC, IOAPIC, PIT)
 *
 * Guest RAM is not in it: a snapshot file stores RAM beside it (so that
 * revert can map it), a migration stream sends RAM pages ahead of it.
 *
 * Owned by src/migrate/vmstate.c; used by snapshots and migration.
 */
#ifndef TV_VMSTATE_H
#define TV_VMSTATE_H

struct vm;
struct snap;

/*
 * Append the VM's state to s (a SNAP_SAVE stream).  The VM must be
 * paused (vm_pause()) or not yet running.  0 or -errno, with the reason
 * in s->errmsg.
 */
int vmstate_save(struct vm *vm, struct snap *s);

/*
 * Load what vmstate_save() wrote into vm: a VM made by vm_create() from
 * the same configuration (or one that adds virtio devices after the
 * saved VM's last one: they stay in reset state, as if hot-plugged),
 * paused or not yet started, whose RAM already holds the guest's memory.  Everything is checked before the first
 * change where it can be; on any failure the VM must not be run (the
 * caller destroys it) and s->errmsg says what was wrong.  0 or -errno.
 */
int vmstate_load(struct vm *vm, struct snap *s);

#endif
