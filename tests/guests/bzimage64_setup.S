/*
 * Setup sectors of the bzImage test guest.  The header advertises the
 * 64-bit entry (XLF_KERNEL_64), which is what termvisor's loader uses:
 * it never runs this code.  The real-mode code below is for classic
 * loaders (QEMU -kernel, GRUB's linux16) that enter at SEG+0x20:0, so
 * the same file can be checked elsewhere: like Linux's setup, it gets
 * the e820 map from the BIOS when the zeropage has none; then it does
 * what a 64-bit loader does (identity page tables, long mode) and enters
 * startup_64 with %rsi = boot_params, so the 64-bit entry is what QEMU
 * checks too.
 *
 * The first 4 KiB stay free for the zeropage, as in the real-mode guest.
 */
#include "bzheader.h"

	.section .header, "ax"
	.code16
	BZ_HEADER 0x020e, LOADED_HIGH, XLF_KERNEL_64, bz_jump
bz_jump:
	jmp	bz_start
	.org	0x1000

bz_start:
	cli
	cld
	movw	%cs, %ax
	subw	$0x20, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	$bz_stack_top, %esp
	pushw	%ds
	pushw	$1f
	lretw
1:	cmpb	$0, 0x1e8		/* e820_entries */
	jne	3f
	xorl	%ebx, %ebx
	movw	$0x2d0, %di		/* e820_table */
2:	movl	$0xe820, %eax
	movl	$20, %ecx
	movl	$0x534d4150, %edx	/* "SMAP" */
	int	$0x15
	jc	3f
	cmpl	$0x534d4150, %eax
	jne	3f
	incb	0x1e8
	addw	$20, %di
	testl	%ebx, %ebx
	jz	3f
	cmpb	$128, 0x1e8
	jb	2b
3:	cli
	inb	$0x92, %al		/* fast A20 */
	orb	$0x02, %al
	andb	$0xfe, %al
	outb	%al, $0x92
	xorl	%esi, %esi		/* %esi = boot_params, linear */
	movw	%ds, %si
	shll	$4, %esi

	/* What a 64-bit loader provides: page tables identity-mapping the
	 * first GiB (only: the guest must not rely on more), a GDT with a
	 * 64-bit __BOOT_CS (0x10) and __BOOT_DS (0x18). */
	movl	%esi, %eax
	addl	$bz_pdpt + 3, %eax
	movl	%eax, bz_pml4
	movl	%esi, %eax
	addl	$bz_pd + 3, %eax
	movl	%eax, bz_pdpt
	movw	$bz_pd, %di
	movl	$0x83, %eax		/* present, writable, 2 MiB */
4:	movl	%eax, (%di)
	addl	$0x200000, %eax
	addw	$8, %di
	cmpw	$bz_pd + 4096, %di
	jb	4b
	movl	%esi, %eax
	addl	$bz_gdt, %eax
	movl	%eax, bz_gdt_desc + 2
	lgdtl	bz_gdt_desc
	movl	%esi, %eax
	addl	$bz_long, %eax
	movl	%eax, bz_far

	/* Straight from real mode into long mode: PAE, EFER.LME, PE|PG. */
	movl	%cr4, %eax
	orl	$0x20, %eax
	movl	%eax, %cr4
	movl	%esi, %eax
	addl	$bz_pml4, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx
	rdmsr
	orl	$0x100, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax
	movl	%eax, %cr0
	ljmpl	*bz_far

	.code64
bz_long:
	movl	$0x18, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%esi, %esi
	/* Tell the guest it came through here, not from the VMM: a mark in
	 * boot_params padding (0xcd0) that a 64-bit loader leaves zero. */
	movl	$0x55535654, 0xcd0(%rsi)	/* "TVSU" */
	movl	0x214(%rsi), %eax		/* code32_start */
	addq	$0x200, %rax			/* startup_64 */
	jmpq	*%rax
	.code16

	.balign	8
bz_gdt:
	.quad	0
	.quad	0
	.quad	0x00af9a000000ffff	/* 0x10: __BOOT_CS, 64-bit code */
	.quad	0x00cf92000000ffff	/* 0x18: __BOOT_DS, flat data */
bz_gdt_desc:
	.word	bz_gdt_desc - bz_gdt - 1
	.long	0
bz_far:
	.long	0
	.word	0x10

	.balign	4096
bz_pml4:
	.fill	4096, 1, 0
bz_pdpt:
	.fill	4096, 1, 0
bz_pd:
	.fill	4096, 1, 0

	.balign	16
	.fill	1024, 1, 0
bz_stack_top:

	.section .payload, "a"
	.incbin	PAYLOAD_BIN

	.section .note.GNU-stack, "", @progbits
