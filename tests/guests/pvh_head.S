/*
 * PVH entry (Xen's direct boot ABI, also used by QEMU and Firecracker):
 * the ELF note XEN_ELFNOTE_PHYS32_ENTRY (type 18) names the 32-bit entry,
 * entered in protected mode with paging off and %ebx pointing at the
 * hvm_start_info.
 */
	.section .note.pvh, "a", @note
	.balign	4
	.long	4			/* name size: "Xen\0" */
	.long	4			/* descriptor size */
	.long	18			/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.balign	4
	.long	pvh_start

	.section .text.head, "ax"
	.code32
	.globl	pvh_start
pvh_start:
	movl	%ebx, entry_ebx
	movl	%cr0, %eax
	movl	%eax, entry_cr0
	/* No stack is promised: use ours before pushing anything. */
	movl	$stack_top, %esp
	pushfl
	popl	entry_eflags
	movw	%cs, entry_cs
	call	pvh_main
1:	cli
	hlt
	jmp	1b

	.section .bss
	.balign	16
	.globl	entry_ebx, entry_cr0, entry_eflags, entry_cs
entry_ebx:	.long 0
entry_cr0:	.long 0
entry_eflags:	.long 0
entry_cs:	.word 0
	.balign	16
	.skip	16384
stack_top:
