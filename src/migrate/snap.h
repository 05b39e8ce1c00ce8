/*
 * Described state: every device and vCPU writes and reads its state
 * through these helpers, one symmetric function per device, so the same
 * code saves and loads (QEMU's VMState idea, without the macros).
 *
 * Encoding (little-endian):
 *   section := 'S' u8 namelen, name, u32 version, u32 payload_len,
 *              payload, u32 crc32(header and payload)
 *   field   := u8 namelen, name, u32 len, bytes
 * A loader finds fields by name inside their section, so fields may be
 * added (tag them with the section version that added them: *_since) and
 * unknown fields from a newer writer of the same major version are skipped.
 * Every length is checked against what remains before use: streams come
 * from outside (snapshot files, migration).
 *
 * Errors are sticky: after the first failure every call is a no-op and
 * snap_error() reports it, so device code needs no checks per field.
 */
#ifndef TV_SNAP_H
#define TV_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum snap_dir { SNAP_SAVE, SNAP_LOAD };

struct snap {
	enum snap_dir dir;
	uint8_t *buf;
	size_t len, cap, pos;
	/* Open section (at most one; sections do not nest). */
	bool in_section;
	size_t sec_hdr;			/* saving: header offset */
	size_t sec_start, sec_end;	/* payload bounds */
	uint32_t sec_version;
	char sec_name[64];
	int err;
	char errmsg[160];
};

/* Start an empty stream to save into; free with snap_free(). */
void snap_init_save(struct snap *s);
/* Start loading from buf (not copied; must outlive s). */
void snap_init_load(struct snap *s, const void *buf, size_t len);
void snap_free(struct snap *s);

static inline bool snap_saving(const struct snap *s) { return s->dir == SNAP_SAVE; }
/* 0, or the first -errno with a message in s->errmsg. */
int snap_error(const struct snap *s);
/* Record a failure (device-level checks on loaded values). */
void snap_fail(struct snap *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Open section name.  Saving writes version; loading requires the next
 * section to be name with a version <= version (older versions load,
 * newer ones are refused) and checks its CRC.
 */
int snap_section_begin(struct snap *s, const char *name, uint32_t version);
int snap_section_end(struct snap *s);
/* Version of the open section (the writer's, when loading). */
uint32_t snap_version(const struct snap *s);
/* Name of the next section in a load stream, or NULL at the end. */
const char *snap_peek_section(struct snap *s, char *buf, size_t buflen);

void snap_bytes(struct snap *s, const char *name, void *p, size_t len);
void snap_bytes_since(struct snap *s, const char *name, void *p, size_t len,
    uint32_t since);
void snap_u8(struct snap *s, const char *name, uint8_t *v);
void snap_u16(struct snap *s, const char *name, uint16_t *v);
void snap_u32(struct snap *s, const char *name, uint32_t *v);
void snap_u64(struct snap *s, const char *name, uint64_t *v);
void snap_i32(struct snap *s, const char *name, int32_t *v);
void snap_i64(struct snap *s, const char *name, int64_t *v);
void snap_bool(struct snap *s, const char *name, bool *v);
/* Fields added in section version `since`: left untouched when loading
 * an older section. */
void snap_u32_since(struct snap *s, const char *name, uint32_t *v,
    uint32_t since);
void snap_u64_since(struct snap *s, const char *name, uint64_t *v,
    uint32_t since);

/* Round-trip helper for tests: save with fn, load into fresh with fn. */
uint32_t snap_crc32(const void *p, size_t len);

#endif
