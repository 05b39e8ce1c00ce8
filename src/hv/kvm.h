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

#endif
