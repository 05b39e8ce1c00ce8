/*
 * Switch configuration files: the .vmx parser (vmfs/vmx.c) does the
 * syntax, this file the meaning of termvisor.switch(5)'s keys.
 */
#include "vswitch/vswitch_proto.h"
#include "vswitch/vswitch_conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmfs/vmfs.h"
#include "vmfs/vmx.h"

int
vsw_conf_name_valid(const char *name)
{
	return vmfs_name_valid(name);
}

int
vsw_conf_path(const char *datastore, const char *name, char *buf, size_t len)
{
	char ds[4096];
	int n, ret;

	if (vsw_conf_name_valid(name) < 0)
		return -EINVAL;
	if (datastore == NULL) {
		if ((ret = vmfs_datastore_default(ds, sizeof(ds))) < 0)
			return ret;
		datastore = ds;
	}
	n = snprintf(buf, len, "%s/switches/%s.conf", datastore, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

void
vsw_conf_defaults(struct vsw_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->autocreate = true;
	c->aging_s = VSW_AGING_NS / 1000000000ull;
	c->vxlan_port = VSW_VXLAN_PORT;
}

static struct vsw_conf_pg *
vsw_conf_pg_get(struct vsw_conf *c, const char *name, size_t n)
{
	int i;

	for (i = 0; i < c->npg; i++)
		if (strlen(c->pg[i].name) == n &&
		    strncasecmp(c->pg[i].name, name, n) == 0)
			return &c->pg[i];
	if (c->npg == VSW_MAX_PG || n == 0 || n >= VSW_NAME_MAX)
		return NULL;
	memcpy(c->pg[c->npg].name, name, n);
	c->pg[c->npg].name[n] = '\0';
	c->pg[c->npg].vlan = -1;
	return &c->pg[c->npg++];
}

static int
vsw_conf_num(const char *v, long lo, long hi, long *out)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (end == v || *end != '\0' || n < lo || n > hi)
		return -EINVAL;
	*out = n;
	return 0;
}

static int
vsw_conf_peers(struct vsw_conf *c, const char *v)
{
	const char *p = v, *comma;
	size_t n;

	c->npeers = 0;
	while (*p != '\0') {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == 0 || n >= sizeof(c->peers[0]) ||
		    c->npeers == VSW_CONF_MAX_PEERS)
			return -EINVAL;
		memcpy(c->peers[c->npeers], p, n);
		c->peers[c->npeers++][n] = '\0';
		p += n + (comma != NULL);
	}
	return 0;
}

/* portgroup.NAME.FIELD */
static int
vsw_conf_pg_key(struct vsw_conf *c, const char *k, const char *v, char *err,
    size_t errlen)
{
	const char *name = k + strlen("portgroup."), *dot = strrchr(k, '.');
	struct vsw_conf_pg *pg;
	uint8_t bits[4096 / 8];
	long n;

	if (dot < name || (pg = vsw_conf_pg_get(c, name,
	    (size_t)(dot - name))) == NULL)
		return vsw_errf(err, errlen, -EINVAL, "expected "
		    "portgroup.NAME.vlan or portgroup.NAME.trunk (at most %d "
		    "groups)", VSW_MAX_PG);
	if (strcasecmp(dot, ".vlan") == 0) {
		if (vsw_conf_num(v, 0, 4094, &n) < 0)
			return vsw_errf(err, errlen, -EINVAL, "a VLAN is "
			    "0 (none) to 4094");
		pg->vlan = (int)n;
		return 0;
	}
	if (strcasecmp(dot, ".trunk") == 0) {
		if (vsw_vlan_list(v, bits) < 0 || strlen(v) >=
		    sizeof(pg->trunk))
			return vsw_errf(err, errlen, -EINVAL, "a trunk "
			    "carries \"all\" VLANs or a list like "
			    "\"10,20-30\"");
		snprintf(pg->trunk, sizeof(pg->trunk), "%s", v);
		return 0;
	}
	if (strcasecmp(dot, ".shape") == 0) {
		if (vsw_shape_parse(v, &pg->shape_bps, &pg->shape_burst) < 0)
			return vsw_errf(err, errlen, -EINVAL, "expected "
			    "RATE[/BURST] like \"100M\" or \"10M/256K\" "
			    "(bits per second; burst bytes, at least 1514)");
		return 0;
	}
	return vsw_errf(err, errlen, -EINVAL, "unknown port group "
	    "setting (vlan, trunk, shape)");
}

static int
vsw_conf_key(struct vsw_conf *c, const char *k, const char *v, char *err,
    size_t errlen)
{
	long n;

	if (strncasecmp(k, "portgroup.", 10) == 0)
		return vsw_conf_pg_key(c, k, v, err, errlen);
	if (strcasecmp(k, "autocreate") == 0) {
		if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
			return vsw_errf(err, errlen, -EINVAL, "expected "
			    "\"yes\" or \"no\"");
		c->autocreate = v[0] == 'y';
	} else if (strcasecmp(k, "mac.aging") == 0) {
		if (vsw_conf_num(v, 1, 86400 * 365, &n) < 0)
			return vsw_errf(err, errlen, -EINVAL, "expected "
			    "seconds, 1 or more");
		c->aging_s = (uint64_t)n;
	} else if (strcasecmp(k, "uplink") == 0) {
		size_t pl = strncmp(v, "tap:", 4) == 0 ? 4 :
		    strncmp(v, "pcap:", 5) == 0 ? 5 : 0;

		if (pl == 0 || v[pl] == '\0' || strlen(v + pl) >= 16 ||
		    strchr(v + pl, '/') != NULL)
			return vsw_errf(err, errlen, -EINVAL, "expected "
			    "\"tap:IFNAME\" or \"pcap:IFNAME\" (an interface "
			    "name up to 15 characters)");
		snprintf(c->uplink, sizeof(c->uplink), "%s", v + pl);
		c->uplink_pcap = pl == 5;
	} else if (strcasecmp(k, "uplink.portgroup") == 0) {
		snprintf(c->uplink_pg, sizeof(c->uplink_pg), "%s", v);
	} else if (strcasecmp(k, "vxlan.local") == 0) {
		snprintf(c->vxlan_local, sizeof(c->vxlan_local), "%s", v);
	} else if (strcasecmp(k, "vxlan.port") == 0) {
		if (vsw_conf_num(v, 1, 65535, &n) < 0)
			return vsw_errf(err, errlen, -EINVAL, "expected a "
			    "UDP port");
		c->vxlan_port = (int)n;
	} else if (strcasecmp(k, "vxlan.peers") == 0) {
		if (vsw_conf_peers(c, v) < 0)
			return vsw_errf(err, errlen, -EINVAL, "expected "
			    "HOST[:PORT] separated by commas (at most %d)",
			    VSW_CONF_MAX_PEERS);
	} else if (strncasecmp(k, "x-", 2) != 0) {
		return vsw_errf(err, errlen, -EINVAL, "unknown key (see "
		    "termvisor.switch(5))");
	}
	return 0;
}

/* Whole-file rules: every group has a VLAN or a trunk list; VLANs are
 * unique; the uplink's group exists. */
static int
vsw_conf_check(struct vsw_conf *c, const char *path, char *err, size_t errlen)
{
	int i, j;

	for (i = 0; i < c->npg; i++) {
		if (c->pg[i].trunk[0] != '\0' && c->pg[i].vlan > 0)
			return vsw_errf(err, errlen, -EINVAL, "%s: port "
			    "group %s has both a vlan and a trunk list", path,
			    c->pg[i].name);
		if (c->pg[i].vlan < 0)
			c->pg[i].vlan = 0;
		for (j = 0; j < i; j++)
			if (c->pg[i].vlan != 0 && c->pg[i].vlan ==
			    c->pg[j].vlan)
				return vsw_errf(err, errlen, -EINVAL, "%s: "
				    "port groups %s and %s share VLAN %d", path,
				    c->pg[j].name, c->pg[i].name, c->pg[i].vlan);
	}
	if (c->uplink[0] != '\0' && c->uplink_pg[0] == '\0')
		return vsw_errf(err, errlen, -EINVAL, "%s: uplink needs "
		    "uplink.portgroup", path);
	for (i = 0; i < c->npg && c->uplink_pg[0] != '\0'; i++)
		if (strcmp(c->pg[i].name, c->uplink_pg) == 0)
			return 0;
	if (c->uplink_pg[0] != '\0')
		return vsw_errf(err, errlen, -EINVAL, "%s: "
		    "uplink.portgroup '%s' is not a configured port group",
		    path, c->uplink_pg);
	return 0;
}

static int
vsw_conf_from_doc(const struct vmx_doc *doc, struct vsw_conf *c, char *err,
    size_t errlen)
{
	char e[256];
	int i, ret;

	vsw_conf_defaults(c);
	for (i = 0; i < doc->n; i++) {
		const struct vmx_line *l = &doc->lines[i];

		if (l->key == NULL)
			continue;
		if ((ret = vsw_conf_key(c, l->key, l->value, e,
		    sizeof(e))) < 0)
			return vsw_errf(err, errlen, ret, "%s:%d: %s: %s",
			    doc->path, l->lineno, l->key, e);
	}
	return vsw_conf_check(c, doc->path, err, errlen);
}

int
vsw_conf_parse(const char *path, const char *text, size_t len,
    struct vsw_conf *c, char *err, size_t errlen)
{
	struct vmx_doc doc;
	int ret;

	if ((ret = vmx_parse(&doc, path, text, len, err, errlen)) < 0)
		return ret;
	ret = vsw_conf_from_doc(&doc, c, err, errlen);
	vmx_free(&doc);
	return ret;
}

int
vsw_conf_load(const char *datastore, const char *name, struct vsw_conf *c,
    char *err, size_t errlen)
{
	struct vmx_doc doc;
	char path[4096];
	int ret;

	vsw_conf_defaults(c);
	if ((ret = vsw_conf_path(datastore, name, path, sizeof(path))) < 0)
		return vsw_errf(err, errlen, ret, "bad switch name '%s'",
		    name);
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 1;
	if ((ret = vmx_load(&doc, path, err, errlen)) < 0)
		return ret;
	ret = vsw_conf_from_doc(&doc, c, err, errlen);
	vmx_free(&doc);
	return ret;
}

/* Load the document (an empty one when the file does not exist and
 * create is set), for editing. */
static int
vsw_conf_open(const char *datastore, const char *name, bool create,
    struct vmx_doc *doc, char *path, size_t plen, char *err, size_t errlen)
{
	static const char head[] =
	    "# termvisor virtual switch (termvisor.switch(5))\n";
	char dir[4096], *slash;
	int ret;

	if ((ret = vsw_conf_path(datastore, name, path, plen)) < 0)
		return vsw_errf(err, errlen, ret, "bad switch name '%s'",
		    name);
	if (access(path, F_OK) == 0)
		return vmx_load(doc, path, err, errlen);
	if (!create)
		return vsw_errf(err, errlen, -ENOENT, "no switch %s (make "
		    "it with termvisor switch create %s)", name, name);
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		(void)mkdir(dir, 0755);		/* the datastore itself */
		*slash = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return vsw_errf(err, errlen, -errno, "%s: %s", dir,
		    strerror(errno));
	return vmx_parse(doc, path, head, sizeof(head) - 1, err, errlen);
}

/* Check the edited document still means a configuration, then save. */
static int
vsw_conf_commit(struct vmx_doc *doc, const char *path, char *err,
    size_t errlen)
{
	struct vsw_conf c;
	int ret;

	if ((ret = vsw_conf_from_doc(doc, &c, err, errlen)) < 0)
		return ret;
	if ((ret = vmx_save(doc, path)) < 0)
		return vsw_errf(err, errlen, ret, "%s: %s", path,
		    strerror(-ret));
	return 0;
}

int
vsw_conf_create(const char *datastore, const char *name, char *err,
    size_t errlen)
{
	struct vmx_doc doc;
	char path[4096];
	int ret;

	if (vsw_conf_path(datastore, name, path, sizeof(path)) == 0 &&
	    access(path, F_OK) == 0)
		return vsw_errf(err, errlen, -EEXIST, "switch %s exists "
		    "(%s)", name, path);
	if ((ret = vsw_conf_open(datastore, name, true, &doc, path,
	    sizeof(path), err, errlen)) < 0)
		return ret;
	ret = vsw_conf_commit(&doc, path, err, errlen);
	vmx_free(&doc);
	return ret;
}

int
vsw_conf_pg_add(const char *datastore, const char *name, const char *pg,
    int vlan, const char *trunk, char *err, size_t errlen)
{
	struct vmx_doc doc;
	char path[4096], key[128], v[16];
	struct vsw sw;
	int ret;

	/* The switch's own rules for names, VLANs and lists. */
	if ((ret = vsw_init(&sw, name)) < 0)
		return ret;
	ret = vsw_pg_add(&sw, pg, vlan, trunk, err, errlen);
	vsw_fini(&sw);
	if (ret < 0)
		return ret;
	if ((ret = vsw_conf_open(datastore, name, true, &doc, path,
	    sizeof(path), err, errlen)) < 0)
		return ret;
	snprintf(key, sizeof(key), "portgroup.%s.vlan", pg);
	if (vmx_get(&doc, key) != NULL) {
		ret = vsw_errf(err, errlen, -EEXIST, "switch %s already "
		    "has port group %s", name, pg);
		goto out;
	}
	snprintf(v, sizeof(v), "%d", vlan);
	if ((ret = vmx_set(&doc, key, v)) < 0)
		goto out;
	snprintf(key, sizeof(key), "portgroup.%s.trunk", pg);
	if ((ret = vmx_set(&doc, key, trunk)) < 0)
		goto out;
	ret = vsw_conf_commit(&doc, path, err, errlen);
out:
	vmx_free(&doc);
	return ret;
}

int
vsw_conf_pg_rm(const char *datastore, const char *name, const char *pg,
    char *err, size_t errlen)
{
	struct vmx_doc doc;
	char path[4096], key[128];
	const char *up;
	int ret;

	if ((ret = vsw_conf_open(datastore, name, false, &doc, path,
	    sizeof(path), err, errlen)) < 0)
		return ret;
	snprintf(key, sizeof(key), "portgroup.%s.vlan", pg);
	if (vmx_get(&doc, key) == NULL) {
		ret = vsw_errf(err, errlen, -ENOENT, "switch %s has no "
		    "port group %s", name, pg);
		goto out;
	}
	if ((up = vmx_get(&doc, "uplink.portgroup")) != NULL &&
	    strcmp(up, pg) == 0) {
		ret = vsw_errf(err, errlen, -EBUSY, "port group %s "
		    "carries the uplink (remove the uplink first)", pg);
		goto out;
	}
	(void)vmx_set(&doc, key, NULL);
	snprintf(key, sizeof(key), "portgroup.%s.trunk", pg);
	(void)vmx_set(&doc, key, NULL);
	ret = vsw_conf_commit(&doc, path, err, errlen);
out:
	vmx_free(&doc);
	return ret;
}

int
vsw_conf_set_many(const char *datastore, const char *name,
    const char *const *keys, const char *const *values, int n, char *err,
    size_t errlen)
{
	struct vmx_doc doc;
	char path[4096];
	int i, ret = 0;

	if ((ret = vsw_conf_open(datastore, name, false, &doc, path,
	    sizeof(path), err, errlen)) < 0)
		return ret;
	/* All keys, then one check: uplink and uplink.portgroup go
	 * together. */
	for (i = 0; i < n && ret == 0; i++)
		ret = vmx_set(&doc, keys[i], values[i]);
	if (ret == 0)
		ret = vsw_conf_commit(&doc, path, err, errlen);
	vmx_free(&doc);
	return ret;
}

int
vsw_conf_set(const char *datastore, const char *name, const char *key,
    const char *value, char *err, size_t errlen)
{
	return vsw_conf_set_many(datastore, name, &key, &value, 1, err, errlen);
}
