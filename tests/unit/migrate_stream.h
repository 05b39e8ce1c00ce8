/*
 * A migration stream between two real software-CPU VMs without a
 * network, for the migration tests (test_migrate.c, test_migrate_disk.c):
 * the VM the tests build, its memory as the RAM rounds see it, and the
 * records that open and close a stream, written as a source sends them
 * into a temporary file and read back whole for migrate_load_buffer().
 * What goes between (RAM rounds, disk records) stays in each test.
 * Include after criterion.h; everything is static inline.
 */
#ifndef TV_TEST_MIGRATE_STREAM_H
#define TV_TEST_MIGRATE_STREAM_H

#include <stdio.h>
#include <stdlib.h>

#include "hv/accel.h"
#include "hv/vm.h"
#include "hv/vmconfig.h"
#include "migrate/migrate.h"
#include "migrate/snap.h"
#include "migrate/vmstate.h"

/* The tests' VM: memory bytes of RAM, one vCPU, no serial; the caller
 * may add to cfg before ms_vm_create(). */
static inline void
ms_config(struct vm_config *cfg, uint64_t memory)
{
	vm_config_defaults(cfg);
	cfg->memory = memory;
	cfg->cpus = 1;
	snprintf(cfg->serial, sizeof(cfg->serial), "none");
}

static inline struct vm *
ms_vm_create(const struct vm_config *cfg)
{
	struct vm *vm;
	int err = 0;

	vm = vm_create(cfg, &bt_accel_ops, &err);
	cr_assert_not_null(vm, "vm_create: %d", err);
	return vm;
}

/* The RAM rounds' dirty log (migrate_ram_ops.dirty): the VM's own. */
static inline int
ms_vm_dirty(void *opaque, int region, uint64_t *bitmap)
{
	struct vm *vm = opaque;

	return vm->accel->dirty_log(vm, &vm->regions[region], bitmap);
}

/* The VM's memory regions, as the RAM rounds read them. */
static inline void
ms_vm_mem(struct vm *vm, struct migrate_mem *mem)
{
	mem->nregions = vm->nregions;
	for (int i = 0; i < vm->nregions; i++) {
		mem->r[i].gpa = vm->regions[i].gpa;
		mem->r[i].size = vm->regions[i].size;
		mem->r[i].hva = vm->regions[i].hva;
	}
}

/* A stream into a new temporary file on ch: the magic and h's hello. */
static inline FILE *
ms_begin(struct migrate_chan *ch, const struct migrate_hello *h)
{
	FILE *f = tmpfile();
	uint8_t hb[128];

	cr_assert_not_null(f);
	migrate_chan_init(ch, -1, fileno(f));
	cr_assert_eq(migrate_chan_write(ch, MIGRATE_MAGIC, 8), 0);
	cr_assert_eq(migrate_rec_send(ch, MIGRATE_REC_HELLO, hb,
	    migrate_hello_encode(h, hb, sizeof(hb))), 0);
	return f;
}

/* The stream's close: vm's state record and the end record; returns
 * the whole stream (malloc'd, *len bytes) and closes f. */
static inline uint8_t *
ms_end(struct migrate_chan *ch, FILE *f, struct vm *vm, size_t *len)
{
	struct snap s;
	uint8_t *buf;
	long n;

	snap_init_save(&s);
	cr_assert_eq(vmstate_save(vm, &s), 0, "%s", s.errmsg);
	cr_assert_eq(migrate_rec_send(ch, MIGRATE_REC_STATE, s.buf, s.len), 0);
	snap_free(&s);
	cr_assert_eq(migrate_rec_send(ch, MIGRATE_REC_END, NULL, 0), 0);
	fflush(f);
	n = ftell(f);
	cr_assert_gt(n, 0);
	rewind(f);
	buf = malloc((size_t)n);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

#endif
