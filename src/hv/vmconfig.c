#include "hv/vmconfig.h"

#include <stdio.h>
#include <string.h>

void
vm_config_defaults(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->memory = 512ull << 20;
	c->cpus = 1;
	snprintf(c->accel, sizeof(c->accel), "auto");
	c->debug_exit_port = 0xf4;
	snprintf(c->vnc, sizeof(c->vnc), "auto");
	snprintf(c->serial, sizeof(c->serial), "none");
	snprintf(c->display, sizeof(c->display), "std");
	snprintf(c->on_panic, sizeof(c->on_panic), "pause");
	snprintf(c->rng, sizeof(c->rng), "on");
}
