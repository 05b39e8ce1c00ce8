/*
 * The software CPU seen from the rest of termvisor: bt_accel_ops (accel.h)
 * and the one-instruction assist the KVM accelerator uses when the
 * kernel's emulator gives up.
 */
#ifndef TV_BT_H
#define TV_BT_H

#include "hv/cpu_state.h"

struct vcpu;

/*
 * Execute exactly one instruction of st on vcpu's VM (memory and I/O go
 * through the same paths as the software CPU's), updating st.  An
 * exception the instruction raises is delivered through the guest's IDT
 * described in st (st then points at the handler; nothing is left
 * pending in st->ev).  CR8 is taken from and returned in st->cr8.
 * Returns 0, -EFAULT on a triple fault, or -ENOTSUP when the
 * instruction cannot run here (code outside RAM).
 */
int bt_assist_step(struct vcpu *vcpu, struct cpu_state *st);
/* bt_assist_step, then on while in ring 0 (see bt.c).  Instructions run
 * or -errno. */
long bt_assist_stint(struct vcpu *vcpu, struct cpu_state *st, long max,
    bool failed);

struct vm;

/*
 * A device wrote guest RAM [gpa, gpa+len) behind the CPU's back (DMA,
 * snapshot load): drop the software CPU's translations of code there.
 * Stores by the guest CPU are tracked already; this is for writes
 * through vm_gpa_to_hva()/vm_write().  No-op on other accelerators;
 * safe from any thread.
 */
void bt_dma_invalidate(struct vm *vm, uint64_t gpa, uint64_t len);

#endif
