/*
 * Real-mode code an application processor runs after INIT-SIPI-SIPI
 * (smp.c copies it to a free page below 1 MiB): it marks its APIC ID
 * (CPUID.1 EBX[31:24]), counts itself in and halts with interrupts off.
 * Position-independent: it addresses everything from CS.
 */
	.section .rodata
	.globl	smp_trampoline, smp_trampoline_end, smp_count, smp_ids
	.code16
smp_trampoline:
	cli
	movw	%cs, %ax
	movw	%ax, %ds
	/* Mark the APIC ID first, then count in: the BSP reads the marks
	 * once the count is complete, and a vCPU descheduled between the
	 * two must not look like a missing one. */
	movl	$1, %eax
	cpuid
	shrl	$24, %ebx
	movb	$1, (smp_ids - smp_trampoline)(%bx)
	lock incl (smp_count - smp_trampoline)
1:	hlt
	jmp	1b
	.balign	4
smp_count:
	.long	0
smp_ids:
	.fill	256, 1, 0
smp_trampoline_end:

	.section .note.GNU-stack, "", @progbits
