/* PAE test code for tests/unit/test_bt.c (bytes pasted there). */
	.code32
	/* at 0x200000, flat 32-bit PM, PAE paging set up by the test */
	movl $0x11223344, 0x40000100	/* alias 1G -> phys 0x300000 */
	mov 0x300100, %eax
	mov %eax, 0x5000
	mov 0x7ff00000, %ebx		/* not present: #PF */
	hlt
