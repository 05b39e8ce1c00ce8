/*
 * Real-mode test guest: a bzImage whose setup code is the test.  A
 * classic boot loader loads the setup at segment SEG with the zeropage
 * at its start and enters at SEG+0x20:0 with DS = ES = SS = SEG.
 *
 * The whole first 4 KiB is kept free for the zeropage (boot_params):
 * a loader without a BIOS fills e820_table (0x2d0..) there itself, so
 * the code starts at 0x1000.
 */
#include "bzheader.h"

	.section .header, "ax"
	.code16
	BZ_HEADER 0x020e, LOADED_HIGH, 0, rm_jump
rm_jump:
	jmp	rm_start
	.org	0x1000

rm_start:
	cli
	cld
	/* Keep what the loader set; check it once we have a stack. */
	movw	%ds, %bx
	movw	%es, %cx
	movw	%ss, %dx
	movw	%sp, %si
	movw	%cs, %ax
	subw	$0x20, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	$rm_stack_top, %esp
	movw	%bx, entry_ds
	movw	%cx, entry_es
	movw	%dx, entry_ss
	movw	%si, entry_sp
	addw	$0x20, %ax
	movw	%ax, entry_cs
	/* CS = SEG from here on, so code and data share one base. */
	pushw	%ds
	pushw	$1f
	lretw
1:	calll	realmode_main
2:	cli
	hlt
	jmp	2b

	.section .stack, "aw"
	.balign	16
	.globl	entry_ds, entry_es, entry_ss, entry_sp, entry_cs
entry_ds:	.word 0
entry_es:	.word 0
entry_ss:	.word 0
entry_sp:	.word 0
entry_cs:	.word 0
	.balign	16
	.fill	4096, 1, 0
rm_stack_top:

/*
 * The protected-mode payload, loaded at 1 MiB.  Only a loader that
 * ignores the real-mode entry runs it: it says so and fails the test.
 */
	.section .payload, "ax"
	.code32
	.globl	rm_payload
rm_payload:
	call	1f
1:	popl	%esi
	addl	$(rm_payload_msg - 1b), %esi
2:	movb	(%esi), %al
	testb	%al, %al
	jz	3f
	movw	$0x3f8, %dx
	outb	%al, %dx
	incl	%esi
	jmp	2b
3:	movb	$1, %al
	outb	%al, $0xf4
4:	cli
	hlt
	jmp	4b
rm_payload_msg:
	.asciz	"not ok realmode_entry: the loader ran the 32-bit entry, not the real-mode setup\n"

	.section .note.GNU-stack, "", @progbits
