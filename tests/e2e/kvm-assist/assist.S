/*
 * A multiboot (a.out kludge) guest that runs in ring 0 two instructions
 * this host's KVM emulator gives up on (issue 8): CLWB (advertised by
 * KVM in CPUID leaf 7) and INT3, delivered through an IDT the guest sets
 * up, whose handler marks %ebx.  On a host whose /dev/kvm emulates kernel
 * code, KVM stops on each and termvisor's KVM assist runs it on the
 * software CPU.  Exit through isa-debug-exit: 0 -> status 1 (pass),
 * 1 -> status 3.
 */
	.code32
	.globl _start
	.set FLAGS, 0x00010002
hdr:
	.long 0x1badb002, FLAGS, -(0x1badb002 + FLAGS)
	.long hdr, 0x100000, 0, 0, _start
_start:
	mov $0x200000, %esp
	movl $0x11223344, 0x200000
	/* clwb 0x200000 */
	.byte 0x66, 0x0f, 0xae, 0x35
	.long 0x200000
	cmpl $0x11223344, 0x200000
	jne fail
	/* IDT gate 3 -> bp_handler: 32-bit interrupt gate, selector 0x08 */
	mov $bp_handler, %eax
	mov %ax, idt + 24
	movw $0x08, idt + 26
	movw $0x8e00, idt + 28
	shr $16, %eax
	mov %ax, idt + 30
	lidt idtr
	xor %ebx, %ebx
	int3
	cmp $0xb9, %ebx
	jne fail
	mov $msg, %esi
	mov $0x3f8, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	mov $0xf4, %dx
	xor %eax, %eax
	out %al, %dx
	hlt
fail:
	mov $0xf4, %dx
	mov $1, %al
	out %al, %dx
	hlt
bp_handler:
	mov $0xb9, %ebx
	iret
	.p2align 3
idt:
	.fill 4, 8, 0
idtr:
	.word 4 * 8 - 1
	.long idt
msg:
	.asciz "assist ok\n"
