#ifndef TV_KVM_H
#define TV_KVM_H

#include <stdbool.h>

struct vcpu;
struct kvm_run;

/*
 * KVM assist: KVM stopped because its in-kernel emulator could not
 * execute an instruction.  Run that instruction on the software CPU and
 * put the state back; 0 if the guest can go on, -errno if not.
 */
int kvm_assist(struct vcpu *vcpu, struct kvm_run *run);

struct cpu_state;
/*
 * get/set_state for the assist path: the same conversion, but the TSC
 * is neither read into nor written from st, so the guest's TSC keeps
 * running forward across an assisted instruction.  before, if not NULL,
 * is st as it was read: only what changed since is written.
 */
int kvm_get_state_for_assist(struct vcpu *vcpu, struct cpu_state *st);
int kvm_set_state_for_assist(struct vcpu *vcpu, const struct cpu_state *st,
    const struct cpu_state *before);

/*
 * Assist stints (kvm_assist.c): kvm_stint_thread() once on each vCPU
 * thread arms the periodic interruption of KVM_RUN where stints are on;
 * kvm_stint() after KVM_RUN returns moves ring-0 code to the software CPU:
 * 1 if it ran some, 0 if not, -errno.  kvm_stint_ready(): the vCPU is
 * in protected-mode ring 0, not halted, and KVM holds no event being
 * injected (a stint would deliver it late); three cheap ioctls.
 */
void kvm_stint_thread(void);
bool kvm_stint_on(void);
int kvm_stint(struct vcpu *vcpu);
bool kvm_stint_ready(struct vcpu *vcpu);
/* Say (at -v) how much of the vCPU's kernel code stints ran. */
void kvm_stint_report(const struct vcpu *vcpu);

#endif
