/* The same loop as tests/bench/userloop.S, natively: prints "cycles=HEX". */
#include <stdint.h>
#include <stdio.h>
#include <x86intrin.h>

int
main(void)
{
	uint64_t t0, t1;

	t0 = __rdtsc();
	__asm__ volatile(
	    "mov $200000000, %%ecx\n\t"
	    "mov $1, %%eax\n\t"
	    "mov $3, %%ebx\n\t"
	    "mov $5, %%edx\n\t"
	    "7: imul %%ebx, %%eax; add %%edx, %%ebx; xor %%eax, %%edx;"
	    " dec %%ecx; jnz 7b"
	    ::: "eax", "ebx", "ecx", "edx", "cc");
	t1 = __rdtsc();
	printf("cycles=%016llx\n", (unsigned long long)(t1 - t0));
	return 0;
}
