/* Compare-and-branch fusion cases for tests/unit/test_bt.c (bytes pasted
 * there); assemble with: as --64 fuse.S && objcopy -O binary -j .text */
	.code64
	mov $10, %ecx
	xor %eax, %eax
1:	add %ecx, %eax
	dec %ecx
	jnz 1b
	mov $5, %rbx
	xor %edx, %edx
2:	inc %rdx
	cmp %rbx, %rdx
	jb 2b
	setae %r9b		/* flags of the last fused cmp: 1 */
	xor %esi, %esi
3:	add $1, %rsi
	cmp $7, %rsi
	jne 3b
	mov $-3, %r8
	xor %edi, %edi
4:	inc %edi
	add $1, %r8
	test %r8, %r8
	js 4b
	mov $100, %r10
5:	sub $30, %r10
	jg 5b			/* 100,70,40,10,-20 */
	sbb %r11, %r11		/* 10 - 30 borrowed: r11 = -1 */
	hlt
