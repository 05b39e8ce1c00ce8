/*
 * The datastore: where VM directories live, what a VM may be called,
 * loading a VM's configuration, and the --disk option's syntax.
 */
#include "vmfs/vmfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "vmfs/vmfs_lock.h"
#include "vmfs/vmx.h"

int
vmfs_name_valid(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > VMFS_NAME_MAX || name[0] == '.' || name[0] == '-')
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (name[i] == '/' || (unsigned char)name[i] < 0x20 ||
		    name[i] == 0x7f)
			return -EINVAL;
	return 0;
}

/* buf = a b c, or -ENAMETOOLONG. */
static int
vmfs_fmt(char *buf, size_t len, const char *a, const char *b, const char *c)
{
	int n = snprintf(buf, len, "%s%s%s", a, b, c);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
vmfs_datastore_default(char *buf, size_t len)
{
	const char *e;

	if ((e = getenv("TERMVISOR_DATASTORE")) != NULL && e[0] != '\0')
		return vmfs_fmt(buf, len, e, "", "");
	if ((e = getenv("XDG_DATA_HOME")) != NULL && e[0] == '/')
		return vmfs_fmt(buf, len, e, "/termvisor", "");
	if ((e = getenv("HOME")) != NULL && e[0] != '\0')
		return vmfs_fmt(buf, len, e, "/.local/share/termvisor",
		    "");
	return -ENOENT;
}

int
vmfs_vm_dir(const char *datastore, const char *name, char *buf, size_t len)
{
	char ds[4096];
	int ret;

	if (vmfs_name_valid(name) < 0)
		return -EINVAL;
	if (datastore == NULL) {
		if ((ret = vmfs_datastore_default(ds, sizeof(ds))) < 0)
			return ret;
		datastore = ds;
	}
	return vmfs_fmt(buf, len, datastore, "/", name);
}

int
vmfs_vmx_path(const char *datastore, const char *name, char *buf, size_t len)
{
	char dir[4096];
	int ret;

	if ((ret = vmfs_vm_dir(datastore, name, dir, sizeof(dir))) < 0)
		return ret;
	ret = snprintf(buf, len, "%s/%s.vmx", dir, name);
	return ret < 0 || (size_t)ret >= len ? -ENAMETOOLONG : 0;
}

int
vmfs_load_vm(const char *datastore, const char *name, struct vm_config *out)
{
	char dir[4096], path[4200], err[1024];
	struct vmx_doc doc;
	int ret;

	if (vmfs_name_valid(name) < 0) {
		log_warnx("'%s' is not a valid VM name", name);
		return -EINVAL;
	}
	if ((ret = vmfs_vm_dir(datastore, name, dir, sizeof(dir))) < 0 ||
	    (ret = vmfs_vmx_path(datastore, name, path, sizeof(path))) < 0) {
		log_warnx("%s: cannot find the datastore (set "
		    "TERMVISOR_DATASTORE or use --datastore)", name);
		return ret;
	}
	if ((ret = vmx_load(&doc, path, err, sizeof(err))) < 0) {
		if (ret == -ENOENT)
			log_warnx("no VM named '%s' in the datastore (%s)", name,
			    path);
		else
			log_warnx("%s", err);
		return ret;
	}
	ret = vmx_to_config(&doc, dir, out, err, sizeof(err));
	vmx_free(&doc);
	if (ret < 0)
		log_warnx("%s", err);
	return ret;
}

int
vmfs_start_vm(const char *datastore, const char *name, struct vm_config *out,
    struct vmfs_lock **lock)
{
	char dir[4096], path[4200], err[1024];
	int ret;

	*lock = NULL;
	if ((ret = vmfs_vm_dir(datastore, name, dir, sizeof(dir))) < 0 ||
	    (ret = vmfs_vmx_path(datastore, name, path, sizeof(path))) < 0) {
		log_warnx("'%s': not a valid VM name, or no datastore", name);
		return ret;
	}
	if (access(path, F_OK) < 0) {
		log_warnx("no VM named '%s' in the datastore (%s)", name, path);
		return -ENOENT;
	}
	/* the lock first: the config is read by its holder only */
	if ((ret = vmfs_lock_take(dir, NULL, lock, err, sizeof(err))) < 0) {
		log_warnx("cannot start '%s': %s", name, err);
		return ret;
	}
	if ((ret = vmfs_load_vm(datastore, name, out)) < 0) {
		vmfs_lock_release(*lock);
		*lock = NULL;
	}
	return ret;
}

static int
vmfs_disk_opt(struct vmcfg_disk *d, const char *opt, char *err, size_t errlen)
{
	const char *v = strchr(opt, '=');
	size_t kl = v ? (size_t)(v - opt) : strlen(opt);

	if (v == NULL)
		goto bad;
	v++;
	if (kl == 6 && strncmp(opt, "format", 6) == 0 &&
	    (strcmp(v, "raw") == 0 || strcmp(v, "qcow2") == 0)) {
		snprintf(d->format, sizeof(d->format), "%s", v);
		return 0;
	}
	if (kl == 8 && strncmp(opt, "readonly", 8) == 0 &&
	    (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)) {
		d->readonly = strcmp(v, "on") == 0;
		return 0;
	}
	if (kl == 6 && strncmp(opt, "serial", 6) == 0 &&
	    strlen(v) < sizeof(d->serial)) {
		snprintf(d->serial, sizeof(d->serial), "%s", v);
		return 0;
	}
bad:
	snprintf(err, errlen, "--disk: bad option '%s' (expected format=raw|"
	    "qcow2, readonly=on|off or serial=S of up to 20 characters)", opt);
	return -EINVAL;
}

int
vmfs_parse_disk_arg(const char *arg, struct vmcfg_disk *d, char *err,
    size_t errlen)
{
	char *s = strdup(arg), *opt, *save = NULL;
	int ret = 0;

	memset(d, 0, sizeof(*d));
	if (s == NULL)
		return -ENOMEM;
	opt = strtok_r(s, ",", &save);
	if (opt == NULL || arg[0] == ',' || strlen(opt) >= sizeof(d->path)) {
		snprintf(err, errlen, "--disk: expected FILE[,format=raw|qcow2]"
		    "[,readonly=on], got '%s'", arg);
		ret = -EINVAL;
		goto out;
	}
	snprintf(d->path, sizeof(d->path), "%s", opt);
	while (ret == 0 && (opt = strtok_r(NULL, ",", &save)) != NULL)
		ret = vmfs_disk_opt(d, opt, err, errlen);
out:
	free(s);
	return ret;
}
