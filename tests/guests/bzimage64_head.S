/*
 * Protected-mode payload of the bzImage test guest, loaded at 1 MiB
 * (relocatable_kernel = 0).  Two entries, as in Linux:
 *   startup_32 (load address + 0):     32-bit boot protocol, %esi = boot_params
 *   startup_64 (load address + 0x200): 64-bit boot protocol, %rsi = boot_params
 * Either way the guest switches to its own GDT and page tables (the
 * 64-bit protocol only promises the loader's tables map the kernel, the
 * zero page and the command line; the checks read ACPI, the initrd and
 * the memory map too) identity-mapping the first 4 GiB with 2 MiB pages.
 */
	.section .text.head, "ax"
	.code32
	.globl	startup_32, startup_64
startup_32:
	cli
	lgdt	bz64_gdt_desc
	movl	$0x18, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	ljmp	$0x10, $1f
1:	movl	$bz64_stack_top, %esp	/* no protocol promises a stack */
	movl	%esi, boot_params_ptr
	movl	$32, entry_mode
	pushfl
	popl	entry_flags
	movl	%cr4, %eax
	orl	$0x20, %eax		/* PAE */
	movl	%eax, %cr4
	movl	$bz64_pml4, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	orl	$0x100, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax	/* PG, PE */
	movl	%eax, %cr0
	ljmp	$0x08, $bz64_common

	.org	0x200
	.code64
startup_64:
	cli
	/* Loaded anywhere but 1 MiB, every absolute address below is wrong:
	 * say so without using one. */
	leaq	startup_64(%rip), %rax
	cmpq	$startup_64, %rax
	jne	bz64_misplaced
	movq	$bz64_stack_top, %rsp	/* no protocol promises a stack */
	movq	%rsi, boot_params_ptr
	movl	$64, entry_mode
	pushfq
	popq	%rax
	movl	%eax, entry_flags
	lgdt	bz64_gdt_desc
	movq	$bz64_pml4, %rax
	movq	%rax, %cr3
	pushq	$0x08
	pushq	$bz64_common
	lretq

bz64_common:
	movl	$0x18, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movq	boot_params_ptr, %rdi
	call	bzimage64_main
2:	cli
	hlt
	jmp	2b

bz64_misplaced:
	leaq	bz64_misplaced_msg(%rip), %rsi
	movw	$0x3f8, %dx
3:	lodsb
	testb	%al, %al
	jz	4f
	outb	%al, %dx
	jmp	3b
4:	movb	$1, %al
	outb	%al, $0xf4
	jmp	2b
bz64_misplaced_msg:
	.asciz	"not ok bz_load_address: startup_64 is not at 0x100200 (relocatable_kernel is 0)\n"

	.section .data
	.balign	8
bz64_gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad	0x00cf9a000000ffff	/* 0x10: 32-bit code */
	.quad	0x00cf92000000ffff	/* 0x18: data */
bz64_gdt_desc:
	.word	bz64_gdt_desc - bz64_gdt - 1
	.quad	bz64_gdt

	.globl	boot_params_ptr, entry_mode, entry_flags
boot_params_ptr: .quad 0
entry_mode:	.long 0
entry_flags:	.long 0

	/* 0-4 GiB identity-mapped, 2 MiB pages, built by the assembler. */
	.balign	4096
bz64_pml4:
	.quad	bz64_pdpt + 0x3
	.fill	511, 8, 0
bz64_pdpt:
	.quad	bz64_pd + 0x3, bz64_pd + 0x1003, bz64_pd + 0x2003, bz64_pd + 0x3003
	.fill	508, 8, 0
bz64_pd:
	.set	i, 0
	.rept	2048
	.quad	(i << 21) | 0x83	/* present, writable, 2 MiB */
	.set	i, i + 1
	.endr

	.balign	16
	.fill	16384, 1, 0
bz64_stack_top:

	.section .note.GNU-stack, "", @progbits
