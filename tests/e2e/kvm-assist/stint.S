/*
 * A multiboot (a.out kludge) guest for KVM assist stints: ring-0 work
 * long enough that, on a host whose /dev/kvm emulates kernel code, the
 * stint timer moves it to the software CPU.  It runs a xorshift over a
 * 64 KiB buffer, reading the serial line status register every 4096
 * steps (port I/O, which a stint leaves to KVM), and prints the result
 * in hex.  The test compares that with the same guest on --accel bt.
 * Exit through isa-debug-exit: 0 -> status 1.
 */
	.code32
	.globl _start
	.set FLAGS, 0x00010002
	.set STEPS, 400000
hdr:
	.long 0x1badb002, FLAGS, -(0x1badb002 + FLAGS)
	.long hdr, 0x100000, 0, 0, _start
_start:
	mov $0x200000, %esp
	mov $0x12345678, %eax		/* xorshift state */
	xor %ebx, %ebx			/* running sum */
	mov $STEPS, %ecx
1:	mov %eax, %edx
	shl $13, %edx
	xor %edx, %eax
	mov %eax, %edx
	shr $17, %edx
	xor %edx, %eax
	mov %eax, %edx
	shl $5, %edx
	xor %edx, %eax
	mov %eax, %edi
	and $0xfffc, %edi
	xor %eax, 0x300000(%edi)	/* scatter into the buffer */
	add 0x300000(%edi), %ebx
	test $0xfff, %ecx
	jnz 2f
	push %eax
	push %edx
	mov $0x3fd, %dx
	in (%dx), %al			/* LSR: THR empty, bit 5 */
	and $0x20, %eax
	add %eax, %ebx
	pop %edx
	pop %eax
2:	dec %ecx
	jnz 1b
	/* print "stint " and %ebx in hex, then a newline */
	mov $msg, %esi
	mov $0x3f8, %dx
3:	lodsb
	test %al, %al
	jz 4f
	out %al, %dx
	jmp 3b
4:	mov $8, %ecx
5:	rol $4, %ebx
	mov %ebx, %eax
	and $0xf, %eax
	mov hex(%eax), %al
	out %al, %dx
	dec %ecx
	jnz 5b
	mov $'\n', %al
	out %al, %dx
	mov $0xf4, %dx
	xor %eax, %eax
	out %al, %dx
	hlt
msg:
	.asciz "stint "
hex:
	.ascii "0123456789abcdef"
