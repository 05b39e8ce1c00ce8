/* Switches read from the environment (TERMVISOR_* for A/B measurements). */
#ifndef TV_ENV_H
#define TV_ENV_H

#include <stdbool.h>

/* False when variable name is 0, off or no; true otherwise (unset too). */
bool env_enabled(const char *name);

#endif
