#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "hv/cpu_state.h"
#include "migrate/snap.h"

struct dev { uint32_t a; uint64_t b; uint8_t blob[5]; bool f; uint32_t added; };

/* A device's one symmetric function: version 2 added "added". */
static void
dev_snap(struct snap *s, struct dev *d, uint32_t version)
{
	snap_section_begin(s, "dev", version);
	snap_u32(s, "a", &d->a);
	snap_u64(s, "b", &d->b);
	snap_bytes(s, "blob", d->blob, sizeof(d->blob));
	snap_bool(s, "f", &d->f);
	if (version >= 2 || !snap_saving(s))
		snap_u32_since(s, "added", &d->added, 2);
	snap_section_end(s);
}

Test(snap, roundtrip)
{
	struct dev in = { 7, 1ull << 40, "abcd", true, 99 }, out = { 0 };
	struct snap s, l;

	snap_init_save(&s);
	dev_snap(&s, &in, 2);
	cr_assert_eq(snap_error(&s), 0);
	snap_init_load(&l, s.buf, s.len);
	dev_snap(&l, &out, 2);
	cr_assert_eq(snap_error(&l), 0, "%s", l.errmsg);
	cr_assert_eq(out.a, in.a);
	cr_assert_eq(out.b, in.b);
	cr_assert_eq(memcmp(out.blob, in.blob, sizeof(in.blob)), 0);
	cr_assert_eq(out.f, in.f);
	cr_assert_eq(out.added, in.added);
	snap_free(&s);
}

Test(snap, old_version_leaves_new_field_alone)
{
	struct dev in = { 1, 2, "x", false, 5 }, out = { .added = 1234 };
	struct snap s, l;

	snap_init_save(&s);
	dev_snap(&s, &in, 1);
	snap_init_load(&l, s.buf, s.len);
	dev_snap(&l, &out, 2);
	cr_assert_eq(snap_error(&l), 0, "%s", l.errmsg);
	cr_assert_eq(out.added, 1234);
	cr_assert_eq(out.a, 1);
	snap_free(&s);
}

Test(snap, newer_version_is_refused)
{
	struct dev d = { 0 };
	struct snap s, l;

	snap_init_save(&s);
	dev_snap(&s, &d, 3);
	snap_init_load(&l, s.buf, s.len);
	dev_snap(&l, &d, 2);
	cr_assert_eq(snap_error(&l), -ENOTSUP);
	cr_assert(strstr(l.errmsg, "newer") != NULL);
	snap_free(&s);
}

Test(snap, every_truncation_and_bitflip_is_refused_cleanly)
{
	struct dev in = { 7, 8, "abcd", true, 9 }, out;
	struct snap s, l;

	snap_init_save(&s);
	dev_snap(&s, &in, 2);
	for (size_t n = 0; n < s.len; n++) {
		memset(&out, 0, sizeof(out));
		snap_init_load(&l, s.buf, n);
		dev_snap(&l, &out, 2);
		cr_assert_neq(snap_error(&l), 0, "truncated to %zu loaded", n);
	}
	for (size_t i = 0; i < s.len * 8; i++) {
		uint8_t *copy = malloc(s.len);

		memcpy(copy, s.buf, s.len);
		copy[i / 8] ^= 1u << (i % 8);
		snap_init_load(&l, copy, s.len);
		dev_snap(&l, &out, 2);
		cr_assert_neq(snap_error(&l), 0, "bit %zu flipped loaded", i);
		free(copy);
	}
	snap_free(&s);
}

Test(snap, cpu_state_roundtrip)
{
	struct cpu_state a, b;
	struct snap s, l;

	cpu_state_reset(&a);
	a.gpr[R_R15] = 0xdeadbeef;
	a.seg[SEG_GS].base = 0xffff888000000000ull;
	a.fpu.fxsave[200] = 0x5a;
	memset(&b, 0, sizeof(b));
	snap_init_save(&s);
	snap_section_begin(&s, "cpu0", 1);
	cpu_state_snapshot(&a, &s);
	snap_section_end(&s);
	snap_init_load(&l, s.buf, s.len);
	snap_section_begin(&l, "cpu0", 1);
	cpu_state_snapshot(&b, &l);
	snap_section_end(&l);
	cr_assert_eq(snap_error(&l), 0, "%s", l.errmsg);
	cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
	snap_free(&s);
}
