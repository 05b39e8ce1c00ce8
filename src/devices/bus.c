#include "devices/bus.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"

struct bus_range {
	uint64_t base, len;
	bus_io_fn *fn;
	void *opaque;
	char name[32];
};

struct bus {
	char name[16];
	pthread_rwlock_t lock;
	struct bus_range *r;	/* sorted by base, never overlapping */
	int n, cap;
};

struct bus *
bus_new(const char *name)
{
	struct bus *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	snprintf(b->name, sizeof(b->name), "%s", name);
	pthread_rwlock_init(&b->lock, NULL);
	return b;
}

void
bus_free(struct bus *b)
{
	if (b == NULL)
		return;
	pthread_rwlock_destroy(&b->lock);
	free(b->r);
	free(b);
}

/* Index of the first range whose end is above addr (binary search). */
static int
bus_search(const struct bus *b, uint64_t addr)
{
	int lo = 0, hi = b->n;

	while (lo < hi) {
		int mid = (lo + hi) / 2;

		if (b->r[mid].base + b->r[mid].len - 1 < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn *fn,
    void *opaque, const char *name)
{
	int i, err = 0;

	if (len == 0 || base + len - 1 < base)
		return -EINVAL;
	pthread_rwlock_wrlock(&b->lock);
	i = bus_search(b, base);
	if (i < b->n && b->r[i].base <= base + len - 1) {
		log_debug("%s bus: %s [%#llx+%#llx] overlaps %s", b->name, name,
		    (unsigned long long)base, (unsigned long long)len,
		    b->r[i].name);
		err = -EEXIST;
		goto out;
	}
	if (b->n == b->cap) {
		int cap = b->cap ? b->cap * 2 : 16;
		struct bus_range *nr = realloc(b->r, cap * sizeof(*nr));

		if (nr == NULL) {
			err = -ENOMEM;
			goto out;
		}
		b->r = nr;
		b->cap = cap;
	}
	memmove(&b->r[i + 1], &b->r[i], (b->n - i) * sizeof(*b->r));
	b->r[i] = (struct bus_range){ .base = base, .len = len, .fn = fn,
	    .opaque = opaque };
	snprintf(b->r[i].name, sizeof(b->r[i].name), "%s", name);
	b->n++;
out:
	pthread_rwlock_unlock(&b->lock);
	return err;
}

int
bus_unregister(struct bus *b, uint64_t base)
{
	int i, err = -ENOENT;

	pthread_rwlock_wrlock(&b->lock);
	i = bus_search(b, base);
	if (i < b->n && b->r[i].base == base) {
		memmove(&b->r[i], &b->r[i + 1], (b->n - i - 1) * sizeof(*b->r));
		b->n--;
		err = 0;
	}
	pthread_rwlock_unlock(&b->lock);
	return err;
}

bool
bus_access(struct bus *b, struct vcpu *vcpu, uint64_t addr, uint8_t *data,
    unsigned len, bool is_write)
{
	struct bus_range r;
	int i;

	pthread_rwlock_rdlock(&b->lock);
	i = bus_search(b, addr);
	if (i >= b->n || b->r[i].base > addr) {
		pthread_rwlock_unlock(&b->lock);
		if (!is_write)
			memset(data, 0xff, len);
		log_guest_once("%s bus: unclaimed %s of %u bytes at %#llx",
		    b->name, is_write ? "write" : "read", len,
		    (unsigned long long)addr);
		return false;
	}
	r = b->r[i];
	pthread_rwlock_unlock(&b->lock);
	r.fn(vcpu, addr - r.base, data, len, is_write, r.opaque);
	return true;
}

const char *
bus_lookup_name(struct bus *b, uint64_t addr)
{
	const char *name = NULL;
	int i;

	pthread_rwlock_rdlock(&b->lock);
	i = bus_search(b, addr);
	if (i < b->n && b->r[i].base <= addr)
		name = b->r[i].name;
	pthread_rwlock_unlock(&b->lock);
	return name;
}
