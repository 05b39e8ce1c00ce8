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

#endif
