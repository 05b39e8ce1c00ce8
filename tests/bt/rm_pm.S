/* Real mode, then 32-bit protected mode with 4 MiB pages: the
 * milestone-1 guest.  Loaded at 0x7c00 and entered in real mode with
 * CS:IP = 0:7c00.  Prints over port 0xe9, leaves results at 0x500. */
	.code16
	.globl _start
_start:
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7000, %sp
	mov $msg_rm, %si
	call puts16
	mov $1234, %ax
	mov $5678, %bx
	add %bx, %ax
	mov %ax, 0x500			/* 6912 */
	mov $10, %cx
	xor %dx, %dx
1:	add %cx, %dx
	loop 1b
	mov %dx, 0x502			/* 55 */
	call sub1
	mov %ax, 0x504			/* 0x4242 */
	mov $msg_rm, %si
	mov $0x600, %di
	mov $4, %cx
	cld
	rep movsb
	movw $handler, 0x100		/* IVT vector 0x40 */
	movw $0, 0x102
	int $0x40
	mov %ax, 0x506			/* 0x77 */
	cli
	lgdtl gdtr
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $pm32

sub1:	mov $0x4242, %ax
	ret
handler:
	mov $0x77, %ax
	iret
puts16:	lodsb
	test %al, %al
	jz 1f
	out %al, $0xe9
	jmp puts16
1:	ret

	.code32
pm32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x90000, %esp
	movl $0x83, 0x10000		/* 0-4M identity, 4M PSE page */
	movl $0x83, 0x10004		/* 4M-8M aliases physical 0-4M */
	mov %cr4, %eax
	or $0x10, %eax
	mov %eax, %cr4
	mov $0x10000, %eax
	mov %eax, %cr3
	mov %cr0, %eax
	or $0x80000000, %eax
	mov %eax, %cr0
	movl $0xdeadbeef, 0x400700	/* through the alias */
	mov 0x700, %eax
	mov %eax, 0x508
	pushl $0x12345678
	popl %ebx
	mov %ebx, 0x50c
	mov $msg_pm, %esi
2:	lodsb
	test %al, %al
	jz 3f
	out %al, $0xe9
	jmp 2b
3:	hlt

msg_rm:	.asciz "RM\n"
msg_pm:	.asciz "PM\n"
	.balign 8
gdt:	.quad 0, 0x00cf9a000000ffff, 0x00cf92000000ffff
gdtr:	.word 23
	.long gdt
