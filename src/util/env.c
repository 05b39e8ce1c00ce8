/* Switches read from the environment: see env.h. */
#include "util/env.h"

#include <stdlib.h>
#include <string.h>

bool
env_enabled(const char *name)
{
	const char *e = getenv(name);

	return e == NULL || (strcmp(e, "0") != 0 && strcmp(e, "off") != 0 &&
	    strcmp(e, "no") != 0);
}
