#ifndef TV_KVM_H
#define TV_KVM_H

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
 * running forward across an assisted instruction.
 */
int kvm_get_state_for_assist(struct vcpu *vcpu, struct cpu_state *st);
int kvm_set_state_for_assist(struct vcpu *vcpu, const struct cpu_state *st);

#endif
