/*
 * The CPU-bound loop make bench runs in a guest and on the host: integer
 * multiply, add, xor and a counted branch.  The same bytes assemble in
 * 32- and 64-bit mode.  %ecx counts down from LOOP_ITERS.
 */
#define LOOP_ITERS 200000000
#define LOOP_BODY \
	7: imul %ebx, %eax; add %edx, %ebx; xor %eax, %edx; dec %ecx; jnz 7b
