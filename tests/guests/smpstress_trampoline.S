/*
 * Real-mode code every application processor of the SMP stress guest
 * runs after INIT-SIPI-SIPI (smpstress.c copies it to a page below 1 MiB).
 * It marks its APIC ID, takes a slot, counts itself in, then runs the
 * stress loop once per phase the BSP starts:
 *   phase 1  data at DATA_OFF in this very page: every store lands in a
 *            page whose code the other vCPUs are executing (self-modifying
 *            code handling on each one);
 *   phase 2  data in the next page: the same loop without code around.
 * The BSP runs the same operations from 64-bit code on the same data.
 * Position-independent: code and control variables are addressed from
 * CS, the phase's data from ES (CS in phase 1, CS + 0x1000 - DATA_OFF
 * bytes in phase 2, so the offsets stay the same).
 */
#include "smpstress.h"

	.section .rodata.smpstress, "a"
	.globl	smpstress_rm, smpstress_rm_end
	.code16
smpstress_rm:
	cli
	movw	%cs, %ax
	movw	%ax, %ds
	movl	$1, %eax
	cpuid
	shrl	$24, %ebx
	/* Mark before counting in: once the BSP sees the count (stores are
	 * seen in order), it sees the mark. */
	movb	$1, CTL_IDS(%bx)
	movw	$1, %ax
	lock xaddw %ax, CTL_SLOT
	cmpw	$SS_SLOTS, %ax
	jb	1f
	movw	$SS_SLOTS - 1, %ax	/* too many vCPUs: the BSP reports it */
1:	movw	%ax, %si		/* byte index */
	movw	%ax, %di
	addw	%di, %di		/* word index */
	movw	%di, %bp
	addw	%bp, %bp		/* dword index */
	lock incl CTL_STARTED
	xorw	%dx, %dx		/* phase */
phase:
	incw	%dx
wait:	pause
	cmpb	%dl, CTL_GO
	jne	wait
	movw	%cs, %ax
	cmpw	$1, %dx
	je	2f
	addw	$(0x1000 - DATA_OFF) >> 4, %ax
2:	movw	%ax, %es
	movl	$1, %ecx
loop:
	lock incl %es:DATA_OFF+D_INC
	movl	$1, %eax
	lock xaddl %eax, %es:DATA_OFF+D_XADD
	addl	%eax, %es:DATA_OFF+D_XSUM(%bp)	/* sum of what xadd returned, per slot */
	/* xchg spin lock around a plain load-add-store */
3:	movb	$1, %al
	xchgb	%al, %es:DATA_OFF+D_LOCK1
	testb	%al, %al
	jz	4f
	pause
	jmp	3b
4:	movl	%es:DATA_OFF+D_CNT1, %eax
	incl	%eax
	movl	%eax, %es:DATA_OFF+D_CNT1
	movb	$0, %es:DATA_OFF+D_LOCK1
	/* lock cmpxchg spin lock around a plain add to memory */
5:	xorl	%eax, %eax
	movl	$1, %ebx
	lock cmpxchgl %ebx, %es:DATA_OFF+D_LOCK2
	jz	6f
	pause
	jmp	5b
6:	addl	$1, %es:DATA_OFF+D_CNT2
	movl	$0, %eax
	xchgl	%eax, %es:DATA_OFF+D_LOCK2	/* unlock with xchg */
	/* neighbours in one cache line: plain byte/word/dword RMW and stores */
	incb	%es:DATA_OFF+D_BYTES(%si)
	incw	%es:DATA_OFF+D_WORDS(%di)
	incl	%es:DATA_OFF+D_DWORDS(%bp)
	movb	%cl, %es:DATA_OFF+D_LAST(%si)
	incl	%ecx
	cmpl	CTL_ITERS, %ecx
	jbe	loop
	movw	%dx, %bx
	shlw	$2, %bx
	lock incl CTL_DONE(%bx)
	cmpw	$SS_PHASES, %dx
	jb	phase
	/* Phase 3, cross-modifying code: the BSP rewrites the immediate of
	 * the movl below, one value per round, and waits until every AP
	 * has executed the new one (echoed into its slot in the next page);
	 * SS_SMC_END ends it. */
	movw	%cs, %ax
	addw	$(0x1000 - DATA_OFF) >> 4, %ax
	movw	%ax, %es
	incw	%dx
8:	pause
	cmpb	%dl, CTL_GO
	jne	8b
	.balign	4
	nop
	nop
smc_insn:
	movl	$0, %eax		/* 66 b8 imm32: imm 4-aligned */
	movl	%eax, %es:DATA_OFF+D_SEEN(%bp)
	incl	%es:DATA_OFF+D_BEAT(%bp)	/* alive, whatever it sees */
	cmpl	$SS_SMC_END, %eax
	jne	smc_insn
	movw	%dx, %bx
	shlw	$2, %bx
	lock incl CTL_DONE(%bx)
7:	hlt
	jmp	7b
	.globl	smpstress_smc_imm
	.set	smpstress_smc_imm, smc_insn + 2
	.org	CTL_OFF
ctl:
	.fill	CTL_END - CTL_OFF, 1, 0
	.org	DATA_OFF
	.fill	D_END, 1, 0
smpstress_rm_end:

	.section .note.GNU-stack, "", @progbits
