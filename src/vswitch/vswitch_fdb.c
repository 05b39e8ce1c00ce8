/*
 * The MAC table: (port group, MAC) -> port, learned from source
 * addresses, forgotten after the aging time.  A fixed pool: a guest
 * flooding random source MACs fills it and further MACs are simply not
 * learned (their frames flood), instead of growing without bound.
 */
#include "vswitch/vswitch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define VSW_FDB_BUCKETS	(sizeof(((struct vsw_fdb *)0)->buckets) / \
			    sizeof(((struct vsw_fdb *)0)->buckets[0]))

int
vsw_fdb_init(struct vsw_fdb *f)
{
	int i;

	memset(f, 0, sizeof(*f));
	if ((f->pool = calloc(VSW_FDB_MAX, sizeof(*f->pool))) == NULL)
		return -ENOMEM;
	for (i = VSW_FDB_MAX - 1; i >= 0; i--) {
		f->pool[i].next = f->free;
		f->free = &f->pool[i];
	}
	f->aging_ns = VSW_AGING_NS;
	return 0;
}

void
vsw_fdb_fini(struct vsw_fdb *f)
{
	free(f->pool);
	memset(f, 0, sizeof(*f));
}

static size_t
vsw_fdb_hash(uint16_t pg, const uint8_t mac[6])
{
	uint32_t h = 2166136261u ^ pg;
	int i;

	for (i = 0; i < 6; i++)
		h = (h ^ mac[i]) * 16777619u;
	return h % VSW_FDB_BUCKETS;
}

static struct vsw_fdb_ent **
vsw_fdb_slot(struct vsw_fdb *f, uint16_t pg, const uint8_t mac[6])
{
	struct vsw_fdb_ent **pp = &f->buckets[vsw_fdb_hash(pg, mac)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->pg == pg && memcmp((*pp)->mac, mac, 6) == 0)
			return pp;
	return pp;
}

static void
vsw_fdb_unlink(struct vsw_fdb *f, struct vsw_fdb_ent **pp)
{
	struct vsw_fdb_ent *e = *pp;

	*pp = e->next;
	e->next = f->free;
	f->free = e;
	f->count--;
}

void
vsw_fdb_learn(struct vsw_fdb *f, uint16_t pg, const uint8_t mac[6],
    int port, uint64_t now_ns)
{
	struct vsw_fdb_ent **pp = vsw_fdb_slot(f, pg, mac), *e = *pp;

	if (e != NULL) {
		if (e->port != port)
			f->moved++;	/* a VM moved, or migrated */
		e->port = port;
		e->seen_ns = now_ns;
		return;
	}
	if ((e = f->free) == NULL) {
		f->full++;
		return;
	}
	f->free = e->next;
	memcpy(e->mac, mac, 6);
	e->pg = pg;
	e->port = port;
	e->seen_ns = now_ns;
	e->next = NULL;
	*pp = e;
	f->count++;
	f->learned++;
}

int
vsw_fdb_lookup(struct vsw_fdb *f, uint16_t pg, const uint8_t mac[6],
    uint64_t now_ns)
{
	struct vsw_fdb_ent **pp = vsw_fdb_slot(f, pg, mac), *e = *pp;

	if (e == NULL)
		return -1;
	if (now_ns - e->seen_ns > f->aging_ns) {
		vsw_fdb_unlink(f, pp);
		f->aged++;
		return -1;
	}
	return e->port;
}

/* Drop every entry for which match() says so. */
static void
vsw_fdb_sweep(struct vsw_fdb *f, bool (*match)(const struct vsw_fdb_ent *,
    long), long arg)
{
	struct vsw_fdb_ent **pp;
	size_t b;

	for (b = 0; b < VSW_FDB_BUCKETS; b++) {
		pp = &f->buckets[b];
		while (*pp != NULL) {
			if (match(*pp, arg))
				vsw_fdb_unlink(f, pp);
			else
				pp = &(*pp)->next;
		}
	}
}

static bool
vsw_fdb_is_port(const struct vsw_fdb_ent *e, long port)
{
	return port < 0 || e->port == port;
}

static bool
vsw_fdb_is_pg(const struct vsw_fdb_ent *e, long pg)
{
	return e->pg == pg;
}

void
vsw_fdb_flush_port(struct vsw_fdb *f, int port)
{
	vsw_fdb_sweep(f, vsw_fdb_is_port, port);
}

void
vsw_fdb_flush_pg(struct vsw_fdb *f, uint16_t pg)
{
	vsw_fdb_sweep(f, vsw_fdb_is_pg, pg);
}

void
vsw_fdb_age(struct vsw_fdb *f, uint64_t now_ns)
{
	struct vsw_fdb_ent **pp;
	size_t b;

	for (b = 0; b < VSW_FDB_BUCKETS; b++) {
		pp = &f->buckets[b];
		while (*pp != NULL) {
			if (now_ns - (*pp)->seen_ns > f->aging_ns) {
				vsw_fdb_unlink(f, pp);
				f->aged++;
			} else {
				pp = &(*pp)->next;
			}
		}
	}
}
