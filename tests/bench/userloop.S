/*
 * A multiboot (a.out kludge) guest for make bench: it drops to ring 3
 * with IOPL 3 and interrupts off, times LOOP_ITERS rounds of the loop in
 * loop.h with RDTSC, prints "cycles=<hex>" on COM1 and ends through
 * isa-debug-exit.  Under KVM, ring 3 runs natively even on a /dev/kvm
 * that emulates kernel code, so this measures user-mode CPU-bound code
 * against the same loop on the host (scripts/userloop-host.c).
 */
#include "loop.h"

	.code32
	.globl _start
	.set FLAGS, 0x00010002
hdr:
	.long 0x1badb002, FLAGS, -(0x1badb002 + FLAGS)
	.long hdr, 0x100000, 0, 0, _start
_start:
	lgdt gdtr
	ljmp $0x08, $1f
1:	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $stack0 + 4096, %esp
	/* TSS descriptor base = tss; ESP0/SS0 for any trap back to ring 0 */
	mov $tss, %eax
	mov %ax, gdt + 0x28 + 2
	shr $16, %eax
	mov %al, gdt + 0x28 + 4
	mov %ah, gdt + 0x28 + 7
	movl $stack0 + 4096, tss + 4
	movl $0x10, tss + 8
	mov $0x28, %ax
	ltr %ax
	/*
	 * Paging on (identity, 4 MiB user pages): a software KVM backend
	 * such as kvm_pvm runs guest user mode natively only under paging.
	 */
	mov $pgdir, %edi
	xor %eax, %eax
	mov $0x87, %ebx			/* present, writable, user, 4 MiB */
8:	mov %ebx, (%edi, %eax, 4)
	add $0x400000, %ebx
	inc %eax
	cmp $4, %eax
	jne 8b
	mov %cr4, %eax
	or $0x10, %eax			/* PSE */
	mov %eax, %cr4
	mov $pgdir, %eax
	mov %eax, %cr3
	mov %cr0, %eax
	or $0x80000000, %eax
	mov %eax, %cr0
	/* iret to ring 3: SS, ESP, EFLAGS (IOPL 3, IF 0), CS, EIP */
	pushl $0x23
	pushl $stack3 + 4096
	pushl $0x3002
	pushl $0x1b
	pushl $user
	iret
user:
	mov $0x23, %ax
	mov %ax, %ds
	mov %ax, %es
	rdtsc
	mov %eax, %esi
	mov %edx, %edi
	mov $LOOP_ITERS, %ecx
	mov $1, %eax
	mov $3, %ebx
	mov $5, %edx
	LOOP_BODY
	rdtsc
	sub %esi, %eax
	sbb %edi, %edx
	mov %eax, %esi		/* low half */
	mov %edx, %ebp		/* high half */
	mov $msg, %ebx
	call puts
	mov %ebp, %eax
	call puthex
	mov %esi, %eax
	call puthex
	mov $nl, %ebx
	call puts
	mov $0xf4, %dx
	xor %eax, %eax
	out %al, %dx
2:	jmp 2b
/* print the NUL-terminated string at %ebx */
puts:
	mov $0x3f8, %dx
3:	mov (%ebx), %al
	test %al, %al
	jz 4f
	out %al, %dx
	inc %ebx
	jmp 3b
4:	ret
/* print %eax as 8 hex digits */
puthex:
	mov $8, %ecx
	mov $0x3f8, %dx
5:	rol $4, %eax
	push %eax
	and $0xf, %al
	add $'0', %al
	cmp $'9', %al
	jbe 6f
	add $7, %al
6:	out %al, %dx
	pop %eax
	loop 5b
	ret

	.p2align 3
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08 ring-0 code */
	.quad 0x00cf92000000ffff	/* 0x10 ring-0 data */
	.quad 0x00cffa000000ffff	/* 0x18 ring-3 code */
	.quad 0x00cff2000000ffff	/* 0x20 ring-3 data */
	.quad 0x0000890000000067	/* 0x28 32-bit TSS, base patched */
gdtr:
	.word 6 * 8 - 1
	.long gdt
msg:	.asciz "cycles="
nl:	.asciz "\n"
	.p2align 4
tss:	.fill 104, 1, 0
	.p2align 12
pgdir:	.fill 4096, 1, 0
stack0:	.fill 4096, 1, 0
stack3:	.fill 4096, 1, 0
