#include "migrate/snap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

uint32_t
snap_crc32(const void *p, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);

	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		c = crc32(c, p, n);
		p = (const uint8_t *)p + n;
		len -= n;
	}
	return (uint32_t)c;
}

void
snap_init_save(struct snap *s)
{
	memset(s, 0, sizeof(*s));
	s->dir = SNAP_SAVE;
}

void
snap_init_load(struct snap *s, const void *buf, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->dir = SNAP_LOAD;
	s->buf = (uint8_t *)buf;
	s->len = len;
}

void
snap_free(struct snap *s)
{
	if (s->dir == SNAP_SAVE)
		free(s->buf);
	s->buf = NULL;
	s->len = s->cap = s->pos = 0;
}

int
snap_error(const struct snap *s)
{
	return s->err;
}

void
snap_fail(struct snap *s, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->err != 0)
		return;
	s->err = err < 0 ? err : -err;
	n = snprintf(s->errmsg, sizeof(s->errmsg), "%s%s", s->sec_name,
	    s->sec_name[0] ? ": " : "");
	if (n < 0 || (size_t)n >= sizeof(s->errmsg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(s->errmsg + n, sizeof(s->errmsg) - n, fmt, ap);
	va_end(ap);
}

static void
snap_put(struct snap *s, const void *p, size_t n)
{
	if (s->err != 0)
		return;
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		uint8_t *nb;

		while (cap < s->len + n)
			cap *= 2;
		nb = realloc(s->buf, cap);
		if (nb == NULL) {
			snap_fail(s, -ENOMEM, "out of memory");
			return;
		}
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void
snap_put_u32(struct snap *s, uint32_t v)
{
	uint8_t b[4] = { v, v >> 8, v >> 16, v >> 24 };
	snap_put(s, b, 4);
}

static uint32_t
snap_get_u32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* Parse a section header at pos; fills name/version/payload bounds. */
static int
snap_parse_section(struct snap *s, size_t pos, char *name, size_t namecap,
    uint32_t *version, size_t *start, size_t *end)
{
	size_t rem = s->len - pos;
	unsigned nl;
	uint32_t plen;

	if (rem < 2 || s->buf[pos] != 'S')
		return -EINVAL;
	nl = s->buf[pos + 1];
	if (nl == 0 || nl >= namecap || rem < 2 + nl + 8)
		return -EINVAL;
	memcpy(name, s->buf + pos + 2, nl);
	name[nl] = '\0';
	*version = snap_get_u32(s->buf + pos + 2 + nl);
	plen = snap_get_u32(s->buf + pos + 6 + nl);
	*start = pos + 10 + nl;
	if (plen > s->len - *start || s->len - *start - plen < 4)
		return -EINVAL;
	*end = *start + plen;
	return 0;
}

const char *
snap_peek_section(struct snap *s, char *buf, size_t buflen)
{
	uint32_t v;
	size_t a, b;

	if (s->dir != SNAP_LOAD || s->err != 0 || s->pos >= s->len)
		return NULL;
	if (snap_parse_section(s, s->pos, buf, buflen, &v, &a, &b) != 0)
		return NULL;
	return buf;
}

int
snap_section_begin(struct snap *s, const char *name, uint32_t version)
{
	size_t nl = strlen(name);
	char got[64];

	if (s->err != 0)
		return s->err;
	if (s->in_section || nl == 0 || nl >= sizeof(s->sec_name)) {
		snap_fail(s, -EINVAL, "bad section use (%s)", name);
		return s->err;
	}
	if (s->dir == SNAP_SAVE) {
		uint8_t hdr[2] = { 'S', (uint8_t)nl };

		s->sec_hdr = s->len;
		snap_put(s, hdr, 2);
		snap_put(s, name, nl);
		snap_put_u32(s, version);
		snap_put_u32(s, 0);	/* patched by section_end */
		s->sec_start = s->len;
		s->sec_version = version;
	} else {
		uint32_t v;

		if (s->pos >= s->len) {
			snap_fail(s, -EINVAL, "stream ends before section %s", name);
			return s->err;
		}
		if (snap_parse_section(s, s->pos, got, sizeof(got), &v,
		    &s->sec_start, &s->sec_end) != 0) {
			snap_fail(s, -EINVAL, "malformed or truncated section "
			    "header where %s was expected", name);
			return s->err;
		}
		if (strcmp(got, name) != 0) {
			snap_fail(s, -EINVAL, "expected section %s, found %s",
			    name, got);
			return s->err;
		}
		if (v > version) {
			snap_fail(s, -ENOTSUP, "section %s version %u is newer "
			    "than this build reads (%u)", name, v, version);
			return s->err;
		}
		if (snap_crc32(s->buf + s->pos, s->sec_end - s->pos)
		    != snap_get_u32(s->buf + s->sec_end)) {
			snap_fail(s, -EBADMSG, "section %s: checksum mismatch",
			    name);
			return s->err;
		}
		s->sec_version = v;
		s->pos = s->sec_start;
	}
	memcpy(s->sec_name, name, nl + 1);
	s->in_section = true;
	return 0;
}

int
snap_section_end(struct snap *s)
{
	if (s->err != 0)
		return s->err;
	if (!s->in_section) {
		snap_fail(s, -EINVAL, "section end without begin");
		return s->err;
	}
	if (s->dir == SNAP_SAVE) {
		uint32_t plen = (uint32_t)(s->len - s->sec_start);
		uint8_t *p = s->buf + s->sec_start - 4;

		p[0] = plen; p[1] = plen >> 8; p[2] = plen >> 16; p[3] = plen >> 24;
		snap_put_u32(s, snap_crc32(s->buf + s->sec_hdr,
		    s->len - s->sec_hdr));
	} else {
		s->pos = s->sec_end + 4;
	}
	s->in_section = false;
	s->sec_name[0] = '\0';
	return s->err;
}

uint32_t
snap_version(const struct snap *s)
{
	return s->sec_version;
}

/*
 * Find field name inside the open section: first at the cursor (the
 * common case, fields in the order they were written), then anywhere in
 * the section.  Returns the value's offset and sets *vlen, or -1.
 */
static long
snap_find(struct snap *s, const char *name, uint32_t *vlen)
{
	size_t nl = strlen(name);
	size_t p, start = s->pos;

	for (int pass = 0; pass < 2; pass++) {
		p = pass == 0 ? start : s->sec_start;
		while (p < s->sec_end) {
			size_t rem = s->sec_end - p;
			unsigned fl = s->buf[p];
			uint32_t len;

			if (rem < 1 + (size_t)fl + 4)
				return -2;
			len = snap_get_u32(s->buf + p + 1 + fl);
			if (len > rem - 1 - fl - 4)
				return -2;
			if (fl == nl && memcmp(s->buf + p + 1, name, nl) == 0) {
				*vlen = len;
				s->pos = p + 1 + fl + 4 + len;
				return (long)(p + 1 + fl + 4);
			}
			p += 1 + fl + 4 + len;
			if (pass == 1 && p > start)
				break;
		}
	}
	return -1;
}

/* Returns true when a value was copied in (load) or out (save). */
static bool
snap_field(struct snap *s, const char *name, void *p, size_t len,
    uint32_t since)
{
	size_t nl = strlen(name);
	uint32_t vlen;
	long off;

	if (s->err != 0)
		return false;
	if (!s->in_section || nl == 0 || nl > 255 || len > UINT32_MAX) {
		snap_fail(s, -EINVAL, "bad field %s", name);
		return false;
	}
	if (s->dir == SNAP_SAVE) {
		uint8_t b = (uint8_t)nl;

		snap_put(s, &b, 1);
		snap_put(s, name, nl);
		snap_put_u32(s, (uint32_t)len);
		snap_put(s, p, len);
		return s->err == 0;
	}
	off = snap_find(s, name, &vlen);
	if (off == -2) {
		snap_fail(s, -EINVAL, "malformed field list");
		return false;
	}
	if (off < 0) {
		if (since > s->sec_version)
			return false;	/* added later than the writer knew */
		snap_fail(s, -EINVAL, "missing field %s", name);
		return false;
	}
	if (vlen != len) {
		snap_fail(s, -EINVAL, "field %s has %u bytes, expected %zu",
		    name, vlen, len);
		return false;
	}
	memcpy(p, s->buf + off, len);
	return true;
}

/* Integers go out little-endian whatever the host. */
#define SNAP_INT(fn, type)                                              \
void                                                                    \
fn(struct snap *s, const char *name, type *v)                           \
{                                                                       \
	uint8_t b[sizeof(type)];                                        \
	uint64_t x = (uint64_t)*v;                                      \
	for (size_t i = 0; i < sizeof(type); i++)                       \
		b[i] = (uint8_t)(x >> (8 * i));                         \
	snap_field(s, name, b, sizeof(b), 0);                           \
	if (s->dir == SNAP_LOAD && s->err == 0) {                       \
		x = 0;                                                  \
		for (size_t i = 0; i < sizeof(type); i++)               \
			x |= (uint64_t)b[i] << (8 * i);                 \
		*v = (type)x;                                           \
	}                                                               \
}
SNAP_INT(snap_u8, uint8_t)
SNAP_INT(snap_u16, uint16_t)
SNAP_INT(snap_u32, uint32_t)
SNAP_INT(snap_u64, uint64_t)
SNAP_INT(snap_i32, int32_t)
SNAP_INT(snap_i64, int64_t)

void
snap_bool(struct snap *s, const char *name, bool *v)
{
	uint8_t b = *v ? 1 : 0;

	snap_field(s, name, &b, 1, 0);
	if (s->dir == SNAP_LOAD && s->err == 0) {
		if (b > 1)
			snap_fail(s, -EINVAL, "field %s: bad boolean", name);
		else
			*v = b;
	}
}

void
snap_bytes(struct snap *s, const char *name, void *p, size_t len)
{
	snap_field(s, name, p, len, 0);
}

void
snap_bytes_since(struct snap *s, const char *name, void *p, size_t len,
    uint32_t since)
{
	snap_field(s, name, p, len, since);
}

void
snap_u32_since(struct snap *s, const char *name, uint32_t *v, uint32_t since)
{
	uint8_t b[4] = { *v, *v >> 8, *v >> 16, *v >> 24 };
	if (snap_field(s, name, b, 4, since) && s->dir == SNAP_LOAD)
		*v = snap_get_u32(b);
}

void
snap_u64_since(struct snap *s, const char *name, uint64_t *v, uint32_t since)
{
	uint8_t b[8];
	uint64_t x = *v;
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(x >> (8 * i));
	if (snap_field(s, name, b, 8, since) && s->dir == SNAP_LOAD) {
		x = 0;
		for (int i = 0; i < 8; i++)
			x |= (uint64_t)b[i] << (8 * i);
		*v = x;
	}
}
