#include "hv/accel.h"

#include <stdio.h>
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

/* Does the host CPU show VMX or SVM (so /dev/kvm runs guests natively)? */
bool
accel_host_has_hw_virt(void)
{
	char line[4096];
	bool yes = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f == NULL)
		return true;	/* cannot tell: let KVM decide */
	while (!yes && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		yes = strstr(line, " vmx") != NULL || strstr(line, " svm") != NULL;
		break;
	}
	fclose(f);
	return yes;
}
