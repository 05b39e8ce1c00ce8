#include "hv/accel.h"

#include <string.h>

static const struct accel_ops *const accel_list[] = {
	&kvm_accel_ops,
	&bt_accel_ops,
};

const struct accel_ops *
accel_find(const char *name)
{
	for (size_t i = 0; i < sizeof(accel_list) / sizeof(accel_list[0]); i++)
		if (strcmp(accel_list[i]->name, name) == 0)
			return accel_list[i];
	return NULL;
}
