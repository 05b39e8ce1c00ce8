/*
 * A switch's configuration in the datastore: DATASTORE/switches/NAME.conf,
 * the .vmx syntax (`key = "value"`, parsed by vmfs/vmx.c) with the keys
 * of termvisor.switch(5).  No file is a switch with no configured port
 * groups that makes them as NICs ask (autocreate).
 */
#ifndef TV_VSWITCH_CONF_H
#define TV_VSWITCH_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vswitch/vswitch.h"

#define VSW_CONF_MAX_PEERS	16

struct vsw_conf_pg {
	char name[VSW_NAME_MAX];
	int vlan;
	char trunk[256];		/* "" unless a trunk */
	uint64_t shape_bps, shape_burst;	/* 0: not shaped */
};

struct vsw_conf {
	struct vsw_conf_pg pg[VSW_MAX_PG];
	int npg;
	bool autocreate;		/* unknown port groups in a hello */
	uint64_t aging_s;
	char uplink[32];		/* interface name, or "" */
	bool uplink_pcap;		/* pcap:IF (a host NIC), not tap:IF */
	char uplink_pg[VSW_NAME_MAX];
	char vxlan_local[64];		/* bind address, "" for any */
	int vxlan_port;
	char peers[VSW_CONF_MAX_PEERS][128];
	int npeers;
};

/* 0 if name can name a switch (as a VM name), else -EINVAL. */
int vsw_conf_name_valid(const char *name);
/* DATASTORE/switches/NAME.conf (datastore NULL: the default). */
int vsw_conf_path(const char *datastore, const char *name, char *buf,
    size_t len);
/* The defaults: no port groups, autocreate, 300 s aging. */
void vsw_conf_defaults(struct vsw_conf *c);
/*
 * Load switch name's configuration (defaults when there is no file:
 * 1 returned then).  0/1, or -errno with "FILE:LINE: problem" in err.
 */
int vsw_conf_load(const char *datastore, const char *name,
    struct vsw_conf *c, char *err, size_t errlen);
/* Parse text as a configuration (for tests and the fuzzer). */
int vsw_conf_parse(const char *path, const char *text, size_t len,
    struct vsw_conf *c, char *err, size_t errlen);

/*
 * Edit the file in place (comments and unknown order kept): create it,
 * add or remove a port group (vlan; trunk NULL or a VLAN list), or set
 * a key (value NULL removes it).  0, or -errno with a sentence in err.
 */
int vsw_conf_create(const char *datastore, const char *name, char *err,
    size_t errlen);
int vsw_conf_pg_add(const char *datastore, const char *name,
    const char *pg, int vlan, const char *trunk, char *err, size_t errlen);
int vsw_conf_pg_rm(const char *datastore, const char *name, const char *pg,
    char *err, size_t errlen);
int vsw_conf_set(const char *datastore, const char *name, const char *key,
    const char *value, char *err, size_t errlen);
/* Several keys at once, checked together. */
int vsw_conf_set_many(const char *datastore, const char *name,
    const char *const *keys, const char *const *values, int n, char *err,
    size_t errlen);

#endif
