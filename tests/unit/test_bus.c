#include <criterion/criterion.h>
#include <errno.h>

#include "devices/bus.h"

struct rec { uint64_t off; unsigned len; bool write; uint64_t val; int calls; };

static void
rec_io(struct vcpu *v, uint64_t off, uint8_t *d, unsigned len, bool w, void *op)
{
	struct rec *r = op;

	r->off = off; r->len = len; r->write = w; r->calls++;
	if (w)
		r->val = bus_get(d, len);
	else
		bus_put(d, len, 0x1122334455667788ull);
}

Test(bus, dispatches_relative_offset)
{
	struct bus *b = bus_new("t");
	struct rec r = { 0 };
	uint8_t d[4];

	cr_assert_eq(bus_register(b, 0x3f8, 8, rec_io, &r, "uart"), 0);
	bus_put(d, 1, 0x41);
	cr_assert(bus_access(b, NULL, 0x3f8, d, 1, true));
	cr_assert_eq(r.off, 0);
	cr_assert_eq(r.val, 0x41);
	cr_assert(bus_access(b, NULL, 0x3fd, d, 2, false));
	cr_assert_eq(r.off, 5);
	cr_assert_eq(bus_get(d, 2), 0x7788);
	bus_free(b);
}

Test(bus, unclaimed_reads_all_ones_and_is_not_fatal)
{
	struct bus *b = bus_new("t");
	uint8_t d[4] = { 0 };

	cr_assert_not(bus_access(b, NULL, 0x80, d, 4, false));
	cr_assert_eq(bus_get(d, 4), 0xffffffff);
	cr_assert_not(bus_access(b, NULL, 0x80, d, 4, true));
	bus_free(b);
}

Test(bus, refuses_overlap_and_keeps_order)
{
	struct bus *b = bus_new("t");
	struct rec r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	uint8_t d[1];

	cr_assert_eq(bus_register(b, 0x100, 0x10, rec_io, &r1, "a"), 0);
	cr_assert_eq(bus_register(b, 0x10f, 1, rec_io, &r2, "b"), -EEXIST);
	cr_assert_eq(bus_register(b, 0xf8, 9, rec_io, &r2, "b"), -EEXIST);
	cr_assert_eq(bus_register(b, 0x110, 4, rec_io, &r2, "b"), 0);
	cr_assert_eq(bus_register(b, 0x10, 4, rec_io, &r3, "c"), 0);
	cr_assert_eq(bus_register(b, 0, 0, rec_io, &r3, "z"), -EINVAL);
	cr_assert_str_eq(bus_lookup_name(b, 0x10f), "a");
	cr_assert_str_eq(bus_lookup_name(b, 0x113), "b");
	cr_assert_str_eq(bus_lookup_name(b, 0x13), "c");
	cr_assert_null(bus_lookup_name(b, 0x114));
	bus_access(b, NULL, 0x111, d, 1, false);
	cr_assert_eq(r2.calls, 1);
	cr_assert_eq(r2.off, 1);
	cr_assert_eq(bus_unregister(b, 0x110), 0);
	cr_assert_eq(bus_unregister(b, 0x110), -ENOENT);
	cr_assert_not(bus_access(b, NULL, 0x111, d, 1, false));
	bus_free(b);
}

Test(bus, top_of_address_space)
{
	struct bus *b = bus_new("t");
	struct rec r = { 0 };
	uint8_t d[8];

	cr_assert_eq(bus_register(b, 0xfffffffffffff000ull, 0x1000, rec_io,
	    &r, "top"), 0);
	cr_assert_eq(bus_register(b, 0xfffffffffffff000ull, 0x2000, rec_io,
	    &r, "wrap"), -EINVAL);
	cr_assert(bus_access(b, NULL, 0xfffffffffffffff8ull, d, 8, false));
	cr_assert_eq(r.off, 0xff8);
	bus_free(b);
}
