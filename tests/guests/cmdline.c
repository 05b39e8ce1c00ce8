/* Reads "key=value" words from a kernel-style command line. */
#include "guest.h"

int cmdline_uint(const char *cmdline, const char *key, uint32_t *out)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!memcmp(p, key, klen) && p[klen] == '=') {
			uint32_t v = 0;
			const char *d = p + klen + 1;

			if (*d < '0' || *d > '9')
				return 0;
			for (; *d >= '0' && *d <= '9'; d++)
				v = v * 10 + (uint32_t)(*d - '0');
			*out = v;
			return 1;
		}
		while (*p && *p != ' ')
			p++;
	}
	return 0;
}
