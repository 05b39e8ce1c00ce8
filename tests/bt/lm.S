/* 64-bit: MSRs, SYSRET to ring 3 and SYSCALL back, CPUID, RDTSC, SSE, SSE2
 * and x87.  Loaded at 0x100000 and entered in long mode by the harness
 * (tvm_long_mode).  Results at 0x5000. */
	.code64
	.globl _start
_start:
	lea msg(%rip), %rsi
	call puts
	mov $0xc0000081, %ecx		/* STAR */
	mov $0x00180008, %edx
	xor %eax, %eax
	wrmsr
	mov $0xc0000082, %ecx		/* LSTAR */
	lea sysentry(%rip), %rax
	mov %rax, %rdx
	shr $32, %rdx
	wrmsr
	mov $0xc0000084, %ecx		/* SFMASK: IF */
	mov $0x200, %eax
	xor %edx, %edx
	wrmsr
	mov %rsp, %r15
	mov $0x1f0000, %rsp
	lea user(%rip), %rcx
	mov $0x202, %r11
	sysretq
user:
	mov $7, %eax
	imul $6, %eax, %eax
	mov %rax, %rdi
	syscall
	ud2
sysentry:
	mov %r15, %rsp
	mov %rdi, 0x5000
	mov %rcx, 0x5008
	mov %cs, %ax
	mov %ax, 0x5010
	mov %r11, 0x5018
	xor %eax, %eax
	cpuid
	mov %ebx, 0x5020
	rdtsc
	shl $32, %rdx
	or %rax, %rdx
	mov %rdx, %r8
	rdtsc
	shl $32, %rdx
	or %rax, %rdx
	sub %r8, %rdx
	mov %rdx, 0x5028		/* TSC delta, > 0 */
	movdqu vec1(%rip), %xmm0
	paddd vec2(%rip), %xmm0
	movdqu %xmm0, 0x5040
	movaps fvec1(%rip), %xmm1
	addps fvec2(%rip), %xmm1
	movaps %xmm1, 0x5050
	fld1
	fadd %st(0), %st(0)
	fistpl 0x5060			/* 2 */
	lea msg2(%rip), %rsi
	call puts
	hlt
puts:	lodsb
	test %al, %al
	jz 1f
	out %al, $0xe9
	jmp puts
1:	ret
msg:	.asciz "LM\n"
msg2:	.asciz "OK\n"
	.balign 16
vec1:	.long 1, 2, 3, 4
vec2:	.long 10, 20, 30, 0x7fffffff
fvec1:	.float 1.0, 2.0, 3.0, 4.0
fvec2:	.float 0.5, 0.5, 0.5, 0.5
