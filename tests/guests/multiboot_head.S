/*
 * Multiboot (v1) entry.  The header carries the a.out kludge (flag 16),
 * so a loader can place the image from the header's addresses alone; the
 * file is also a plain ELF32 whose one segment matches those addresses,
 * so an ELF-reading loader lands it in the same place.
 */
#define MB_MAGIC	0x1badb002
/* Page-align modules (0), give memory info (1), a.out kludge (16). */
#define MB_FLAGS	0x00010003

	.section .text.head, "ax"
	.code32
	.globl	mb_header, _start
	.balign	4
mb_header:
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)
	.long	mb_header		/* header_addr */
	.long	_image_start		/* load_addr */
	.long	_load_end		/* load_end_addr */
	.long	_bss_end		/* bss_end_addr */
	.long	_start			/* entry_addr */

_start:
	/* Record the machine state the loader left before touching it. */
	movl	%eax, entry_eax
	movl	%ebx, entry_ebx
	movl	%cr0, %eax
	movl	%eax, entry_cr0
	/* No stack is promised: use ours before pushing anything. */
	movl	$stack_top, %esp
	pushfl
	popl	entry_eflags
	movw	%cs, entry_cs
	call	multiboot_main
1:	cli
	hlt
	jmp	1b

	.section .bss
	.balign	16
	.globl	entry_eax, entry_ebx, entry_cr0, entry_eflags, entry_cs
entry_eax:	.long 0
entry_ebx:	.long 0
entry_cr0:	.long 0
entry_eflags:	.long 0
entry_cs:	.word 0
	.balign	16
	.skip	16384
stack_top:
