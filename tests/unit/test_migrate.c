/*
 * Live migration without a network or a second process: the stream
 * records and their checks, RAM rounds over a fake dirty log that a fake
 * guest writes between rounds, the convergence rule, the shared-secret
 * handshake, and a whole stream (RAM and vmstate of a real software-CPU
 * VM) loaded into a second VM; truncated, corrupted and hostile streams
 * are refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bt/harness.h"
#include "control/control.h"
#include "hv/vmconfig.h"
#include "migrate/migrate.h"
#include "migrate/snap.h"
#include "migrate/vmstate.h"
#include "unit/migrate_stream.h"

/* --- a fake guest: two regions, a dirty log it keeps itself --- */

#define LOW	(1u << 20)
#define HIGH	(256u << 10)

struct fake {
	struct migrate_mem mem;
	uint8_t *dirty[2];		/* one byte a page */
	unsigned per_round[64];		/* pages the guest writes each round */
	int round;
	uint32_t seed;
};

static uint32_t
fake_rand(struct fake *f)
{
	f->seed = f->seed * 1103515245u + 12345u;
	return f->seed >> 8;
}

static void
fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->seed = 42;
	f->mem.nregions = 2;
	f->mem.r[0].gpa = 0;
	f->mem.r[0].size = LOW;
	f->mem.r[1].gpa = 0x100000000ull;
	f->mem.r[1].size = HIGH;
	for (int i = 0; i < 2; i++) {
		f->mem.r[i].hva = calloc(1, f->mem.r[i].size);
		f->dirty[i] = calloc(f->mem.r[i].size / 4096, 1);
	}
	/* Some pages with data, the rest zero. */
	for (uint32_t i = 0; i < LOW; i += 4096 * 3)
		memset(f->mem.r[0].hva + i, (int)(i >> 12) | 1, 4096);
	memcpy(f->mem.r[1].hva + 4096, "high page", 9);
}

static void
fake_fini(struct fake *f)
{
	for (int i = 0; i < 2; i++) {
		free(f->mem.r[i].hva);
		free(f->dirty[i]);
	}
}

/* The guest runs a little: writes n random pages, logging them. */
static void
fake_guest_writes(struct fake *f, unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		int reg = fake_rand(f) % 4 == 0;
		uint32_t pg = fake_rand(f) % (f->mem.r[reg].size / 4096);
		uint8_t *p = f->mem.r[reg].hva + pg * 4096;

		p[fake_rand(f) % 4096] = (uint8_t)fake_rand(f);
		f->dirty[reg][pg] = 1;
	}
}

static int
fake_dirty(void *opaque, int region, uint64_t *bitmap)
{
	struct fake *f = opaque;
	uint64_t pages = f->mem.r[region].size / 4096;

	/* Region 0 is asked first: the guest runs between two harvests. */
	if (region == 0 && f->round < 64)
		fake_guest_writes(f, f->per_round[f->round++]);
	memset(bitmap, 0, (pages + 63) / 64 * 8);
	for (uint64_t i = 0; i < pages; i++)
		if (f->dirty[region][i]) {
			bitmap[i / 64] |= 1ull << (i % 64);
			f->dirty[region][i] = 0;
		}
	return 0;
}

/* Read every record in fd into dst memory; the record count. */
static int
drain(int fd, struct migrate_mem *dst)
{
	struct migrate_chan ch;
	uint8_t *buf = NULL;
	size_t cap = 0, len;
	int type, n = 0, r;
	char err[256];

	migrate_chan_init(&ch, fd, -1);
	while ((r = migrate_rec_recv(&ch, &type, &buf, &cap, &len,
	    MIGRATE_RAM_MAX)) == 0) {
		cr_assert_eq(type, MIGRATE_REC_RAM);
		cr_assert_eq(migrate_ram_apply(dst, buf, len, err, sizeof(err)),
		    0, "%s", err);
		n++;
	}
	cr_assert_eq(r, -ECONNRESET, "the stream ends cleanly: %s", ch.err);
	free(buf);
	return n;
}

/* A destination's RAM: fresh (zero), or holding something else, which
 * zero pages in the stream must clear. */
static struct migrate_mem
blank_like(const struct migrate_mem *m, int fill)
{
	struct migrate_mem d = *m;

	for (int i = 0; i < m->nregions; i++) {
		d.r[i].hva = malloc(m->r[i].size);
		memset(d.r[i].hva, fill, m->r[i].size);
	}
	return d;
}

static void
same_memory(const struct migrate_mem *a, const struct migrate_mem *b)
{
	for (int i = 0; i < a->nregions; i++)
		cr_assert_eq(memcmp(a->r[i].hva, b->r[i].hva, a->r[i].size),
		    0, "region %d differs", i);
}

static void
free_mem(struct migrate_mem *m)
{
	for (int i = 0; i < m->nregions; i++)
		free(m->r[i].hva);
}

/* Run the RAM pass of f into a temporary file; the file's fd. */
static int
ram_pass(struct fake *f, struct migrate_ram *r, uint64_t downtime_ms)
{
	struct migrate_ram_ops ops = { .dirty = fake_dirty, .opaque = f };
	struct migrate_chan ch;
	FILE *tmp = tmpfile();
	int fd = dup(fileno(tmp));

	fclose(tmp);
	migrate_chan_init(&ch, -1, fd);
	cr_assert_eq(migrate_ram_init(r, &f->mem, &ops, &ch), 0);
	r->conv.max_downtime_ns = downtime_ms * 1000000ull;
	cr_assert_eq(migrate_ram_live(r), 0);
	/* The guest runs on until it is stopped. */
	fake_guest_writes(f, 5);
	cr_assert_eq(migrate_ram_final(r), 0);
	cr_assert_eq(r->dirty_pages, 0);
	lseek(fd, 0, SEEK_SET);
	r->ch = NULL;
	return fd;
}

Test(migrate, rounds_converge_and_memory_arrives_intact)
{
	struct migrate_ram r;
	struct migrate_mem dst;
	struct fake f;
	int fd;

	fake_init(&f);
	/* A guest that settles down: fewer pages each round. */
	unsigned pr[] = { 0, 200, 100, 40, 10, 2, 0 };
	memcpy(f.per_round, pr, sizeof(pr));
	/* A downtime of 0 ms: only an empty dirty set stops the rounds. */
	fd = ram_pass(&f, &r, 0);
	cr_assert(!r.conv.forced, "the dirty set shrank to nothing");
	cr_assert_geq(r.conv.rounds, 5, "rounds: %d", r.conv.rounds);
	cr_assert_geq(r.pages_sent, (LOW + HIGH) / 4096);
	for (int fill = 0; fill < 0x100; fill += 0xee) {
		dst = blank_like(&f.mem, fill);
		lseek(fd, 0, SEEK_SET);
		cr_assert_gt(drain(fd, &dst), 0);
		same_memory(&dst, &f.mem);
		free_mem(&dst);
	}
	close(fd);
	migrate_ram_fini(&r);
	fake_fini(&f);
}

Test(migrate, a_guest_that_never_settles_is_stopped_anyway)
{
	struct migrate_ram r;
	struct migrate_mem dst;
	struct fake f;
	int fd;

	fake_init(&f);
	for (int i = 0; i < 64; i++)
		f.per_round[i] = 150;
	fd = ram_pass(&f, &r, 0);
	cr_assert(r.conv.forced, "stopped for lack of convergence");
	cr_assert_leq(r.conv.rounds, MIGRATE_MAX_ROUNDS);
	dst = blank_like(&f.mem, 0);
	drain(fd, &dst);
	same_memory(&dst, &f.mem);
	free_mem(&dst);
	close(fd);
	migrate_ram_fini(&r);
	fake_fini(&f);
}

Test(migrate, convergence_rule)
{
	struct migrate_conv c = { .max_downtime_ns = 300000000ull };
	const uint64_t bw = 100ull << 20;	/* 100 MiB/s */

	/* Round 1: 100 MiB in 1 s; 10000 pages left = 390 ms: go on. */
	cr_assert_eq(migrate_conv_next(&c, 10000, bw, 1000000000ull),
	    MIGRATE_ITERATE);
	cr_assert_eq(c.bandwidth, bw);
	cr_assert_eq(migrate_conv_downtime(&c, 10000) / 1000000, 390);
	/* 6000 pages = 234 ms: under 300 and not half of the 10000 before:
	 * another round would buy little, stop and copy. */
	cr_assert_eq(migrate_conv_next(&c, 6000, bw / 10, 100000000ull),
	    MIGRATE_STOP_COPY);
	cr_assert(!c.forced);

	/* Under the limit but still halving: one more (short) round, until
	 * the rest fits in an eighth of the budget (37.5 ms = 960 pages). */
	memset(&c, 0, sizeof(c));
	c.max_downtime_ns = 300000000ull;
	c.prev_dirty = 65536;		/* round 1 sent all of 256 MiB */
	cr_assert_eq(migrate_conv_next(&c, 5000, bw, 1000000000ull),
	    MIGRATE_ITERATE, "5000 of 65536 pages: still halving");
	cr_assert_eq(migrate_conv_next(&c, 2000, bw / 10, 100000000ull),
	    MIGRATE_ITERATE, "2000 after 5000 (78 ms): still halving");
	cr_assert_eq(migrate_conv_next(&c, 900, bw / 10, 100000000ull),
	    MIGRATE_STOP_COPY, "900 pages (35 ms) fit in an eighth");
	cr_assert(!c.forced);
	cr_assert_eq(c.rounds, 3);

	/* A dirty set that does not shrink: stopped after the stalls. */
	memset(&c, 0, sizeof(c));
	c.max_downtime_ns = 1000000ull;
	int n = 0;
	while (migrate_conv_next(&c, 50000, bw, 1000000000ull) ==
	    MIGRATE_ITERATE)
		n++;
	cr_assert(c.forced);
	cr_assert_eq(n, MIGRATE_MAX_STALLS, "rounds before stopping: %d", n);

	/* A slowly shrinking one: the round limit. */
	memset(&c, 0, sizeof(c));
	c.max_downtime_ns = 1;
	for (n = 0; migrate_conv_next(&c, 1000000 - (uint64_t)n, bw,
	    1000000000ull) == MIGRATE_ITERATE; n++)
		;
	cr_assert(c.forced);
	cr_assert_eq(c.rounds, MIGRATE_MAX_ROUNDS);
}

/* --- records --- */

static int
pipe_with(const void *p, size_t len)
{
	int fds[2];

	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(write(fds[1], p, len), (ssize_t)len);
	close(fds[1]);
	return fds[0];
}

static size_t
record(int type, const void *p, size_t len, uint8_t *out)
{
	FILE *tmp = tmpfile();
	struct migrate_chan ch;
	size_t n;

	migrate_chan_init(&ch, -1, fileno(tmp));
	cr_assert_eq(migrate_rec_send(&ch, type, p, len), 0);
	rewind(tmp);
	n = fread(out, 1, 9 + len, tmp);
	fclose(tmp);
	cr_assert_eq(n, 9 + len);
	return n;
}

static int
recv_one(const uint8_t *buf, size_t len, size_t max, char *err)
{
	struct migrate_chan ch;
	uint8_t *b = NULL;
	size_t cap = 0, got;
	int type, r, fd = pipe_with(buf, len);

	migrate_chan_init(&ch, fd, -1);
	r = migrate_rec_recv(&ch, &type, &b, &cap, &got, max);
	strcpy(err, ch.err);
	free(b);
	close(fd);
	return r;
}

Test(migrate, damaged_records_are_refused)
{
	uint8_t rec[64], bad[64];
	char err[512];
	size_t n = record('S', "state bytes", 11, rec);

	cr_assert_eq(recv_one(rec, n, 4096, err), 0);
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, rec, n);
		bad[i] ^= 0x10;
		cr_assert_neq(recv_one(bad, n, 4096, err), 0, "flip at %zu", i);
	}
	for (size_t cut = 0; cut < n; cut++)
		cr_assert_neq(recv_one(rec, cut, 4096, err), 0, "cut at %zu",
		    cut);
	/* A length over the limit is refused before anything is read. */
	cr_assert_eq(recv_one(rec, n, 8, err), -EPROTO);
	cr_assert(strstr(err, "larger") != NULL, "%s", err);
}

Test(migrate, hostile_page_batches_change_nothing)
{
	struct fake f;
	struct migrate_batch b;
	char err[256];
	uint8_t page[4096], *copy;

	fake_init(&f);
	copy = malloc(LOW);
	memcpy(copy, f.mem.r[0].hva, LOW);
	memset(page, 0x5a, sizeof(page));
	cr_assert_eq(migrate_batch_init(&b), 0);
	/* A good page first, then one outside RAM: nothing is written. */
	migrate_batch_add(&b, 0x1000, page);
	migrate_batch_add(&b, 0x80000000ull, page);
	cr_assert_eq(migrate_ram_apply(&f.mem, b.buf, b.len, err,
	    sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "not in this VM") != NULL, "%s", err);
	cr_assert_eq(memcmp(copy, f.mem.r[0].hva, LOW), 0);
	/* Misaligned, straddling the end of a region. */
	migrate_batch_reset(&b);
	migrate_batch_add(&b, 0x1000, page);
	b.buf[4] |= 0x10;
	cr_assert_eq(migrate_ram_apply(&f.mem, b.buf, b.len, err,
	    sizeof(err)), -EPROTO);
	migrate_batch_reset(&b);
	migrate_batch_add(&b, LOW - 4096 + 0, page);
	cr_assert_eq(migrate_ram_apply(&f.mem, b.buf, b.len, err,
	    sizeof(err)), 0, "%s", err);
	memcpy(copy, f.mem.r[0].hva, LOW);
	/* Cut short, trailing bytes, a count beyond the batch limit. */
	cr_assert_eq(migrate_ram_apply(&f.mem, b.buf, b.len - 1, err,
	    sizeof(err)), -EPROTO);
	cr_assert_eq(migrate_ram_apply(&f.mem, b.buf, b.len + 1, err,
	    sizeof(err)), -EPROTO);
	b.buf[0] = 0xff;
	b.buf[1] = 0xff;
	cr_assert_eq(migrate_ram_apply(&f.mem, b.buf, b.len, err,
	    sizeof(err)), -EPROTO);
	cr_assert_eq(memcmp(copy, f.mem.r[0].hva, LOW), 0);
	migrate_batch_free(&b);
	free(copy);
	fake_fini(&f);
}

/* --- the handshake --- */

Test(migrate, hmac_sha256_rfc4231)
{
	static const uint8_t want[32] = {
		0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04,
		0x24, 0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08,
		0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec,
		0x38, 0x43 };
	uint8_t out[32];

	migrate_hmac("Jefe", "what do ya want for nothing?", 28, out);
	cr_assert_eq(memcmp(out, want, 32), 0);
}

struct side {
	int fd;
	const char *secret;
	int r;
};

static void *
server_side(void *arg)
{
	struct side *s = arg;
	struct migrate_chan ch;

	migrate_chan_init(&ch, s->fd, s->fd);
	ch.timeout_ms = 5000;
	s->r = migrate_auth_server(&ch, s->secret);
	return NULL;
}

static void
handshake(const char *cs, const char *ss, int *cr, int *sr)
{
	struct side srv;
	struct migrate_chan ch;
	pthread_t t;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	srv = (struct side){ sv[1], ss, 1 };
	pthread_create(&t, NULL, server_side, &srv);
	migrate_chan_init(&ch, sv[0], sv[0]);
	ch.timeout_ms = 5000;
	*cr = migrate_auth_client(&ch, cs);
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(t, NULL);
	*sr = srv.r;
	close(sv[0]);
	close(sv[1]);
}

Test(migrate, handshake_needs_the_same_secret_on_both_sides)
{
	int c, s;

	handshake("correct horse", "correct horse", &c, &s);
	cr_assert_eq(c, 0);
	cr_assert_eq(s, 0);
	handshake("correct horse", "battery staple", &c, &s);
	cr_assert_eq(s, -EACCES);
	cr_assert_eq(c, -EACCES);
}

Test(migrate, uris)
{
	struct migrate_uri u;
	char err[256];

	cr_assert_eq(migrate_uri_parse("tcp://10.0.0.2:4444", false, &u, err,
	    sizeof(err)), 0);
	cr_assert_str_eq(u.host, "10.0.0.2");
	cr_assert_str_eq(u.port, "4444");
	cr_assert_eq(migrate_uri_parse("ssh://root@host:2222", false, &u, err,
	    sizeof(err)), 0);
	cr_assert_eq(u.kind, MIGRATE_URI_SSH);
	cr_assert_str_eq(u.user, "root");
	cr_assert_str_eq(u.host, "host");
	cr_assert_str_eq(u.port, "2222");
	cr_assert_eq(migrate_uri_parse("ssh://-oProxyCommand=x", false, &u,
	    err, sizeof(err)), -EINVAL);
	cr_assert_eq(migrate_uri_parse("tcp://host", false, &u, err,
	    sizeof(err)), -EINVAL);
	cr_assert_eq(migrate_uri_parse("tcp:4444", true, &u, err,
	    sizeof(err)), 0);
	cr_assert_str_eq(u.host, "127.0.0.1");
	cr_assert_eq(migrate_uri_parse("tcp:0.0.0.0:4444", true, &u, err,
	    sizeof(err)), 0);
	cr_assert_str_eq(u.host, "0.0.0.0");
	cr_assert_eq(migrate_uri_parse("-", true, &u, err, sizeof(err)), 0);
	cr_assert_eq(u.kind, MIGRATE_URI_STDIO);
	cr_assert_eq(migrate_uri_parse("http://x", false, &u, err,
	    sizeof(err)), -EINVAL);
}

/* --- a whole stream between two real VMs --- */

#define MEM	(8ull << 20)
#define CODE	0x200000ull

static struct vm_config cfg;

static struct vm *
new_vm(void)
{
	ms_config(&cfg, MEM);
	return ms_vm_create(&cfg);
}

/* The stream a source would send for vm (never run), in memory. */
static uint8_t *
whole_stream(struct vm *vm, size_t *len)
{
	struct migrate_ram_ops ops = { .dirty = ms_vm_dirty, .opaque = vm };
	struct migrate_hello h = { .version = 1, .ram_size = MEM, .nvcpus = 1,
	    .name = "t" };
	struct migrate_mem mem;
	struct migrate_ram r;
	struct migrate_chan ch;
	FILE *f = ms_begin(&ch, &h);

	ms_vm_mem(vm, &mem);
	cr_assert_eq(migrate_ram_init(&r, &mem, &ops, &ch), 0);
	cr_assert_eq(migrate_ram_live(&r), 0);
	cr_assert_eq(migrate_ram_final(&r), 0);
	migrate_ram_fini(&r);
	return ms_end(&ch, f, vm, len);
}

Test(migrate, a_whole_stream_loads_and_damage_is_refused)
{
	static const uint8_t code[] = { 0x48, 0xff, 0xc0, 0xeb, 0xfb };
	struct vm *src = new_vm(), *dst;
	struct tvm t = { .vm = src, .vcpu = src->vcpus[0] };
	struct cpu_state st, got;
	char err[512];
	uint8_t *s;
	size_t len;

	tvm_long_mode(&t, &st, CODE);
	tvm_put(&t, CODE, code, sizeof(code));
	st.gpr[0] = 0x1234;
	cr_assert_eq(src->accel->set_state(src->vcpus[0], &st), 0);
	memset(src->ram + 0x300000, 0xa5, 3 * 4096);
	s = whole_stream(src, &len);

	dst = new_vm();
	cr_assert_eq(migrate_load_buffer(dst, s, len, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(memcmp(dst->ram, src->ram, MEM), 0);
	cr_assert_eq(dst->accel->get_state(dst->vcpus[0], &got), 0);
	cr_assert_eq(got.rip, st.rip);
	cr_assert_eq(got.gpr[0], 0x1234);
	vm_destroy(dst);

	/* Every truncation is refused. */
	for (size_t cut = 0; cut < len; cut += cut < 64 ? 1 : 4093) {
		dst = new_vm();
		cr_assert_neq(migrate_load_buffer(dst, s, cut, err,
		    sizeof(err)), 0, "cut at %zu of %zu", cut, len);
		vm_destroy(dst);
	}
	/* A flipped byte anywhere in a record is caught by its checksum. */
	for (size_t at = 8; at < len; at += 7919) {
		s[at] ^= 0x40;
		dst = new_vm();
		cr_assert_neq(migrate_load_buffer(dst, s, len, err,
		    sizeof(err)), 0, "flip at %zu", at);
		vm_destroy(dst);
		s[at] ^= 0x40;
	}
	/* A VM of another size refuses at the hello. */
	cfg.memory = MEM * 2;
	dst = vm_create(&cfg, &bt_accel_ops, NULL);
	cr_assert_not_null(dst);
	cr_assert_eq(migrate_load_buffer(dst, s, len, err, sizeof(err)),
	    -EINVAL);
	cr_assert(strstr(err, "same configuration") != NULL, "%s", err);
	vm_destroy(dst);
	free(s);
	vm_destroy(src);
}

/* --- the control command, through the real request handler --- */

static const char *
reply_error(struct control *c, const char *line)
{
	static char code[64];
	json_t *r = control_cmd_request(c, line, strlen(line));
	json_t *e = json_object_get(r, "error");

	snprintf(code, sizeof(code), "%s", json_is_object(e) ?
	    json_string_value(json_object_get(e, "code")) : "ok");
	json_decref(r);
	return code;
}

Test(migrate, control_command_checks_its_arguments)
{
	struct vm *vm = new_vm();
	struct control c;

	control_init(&c, vm, "t");
	cr_assert_str_eq(reply_error(&c, "{\"cmd\": \"migrate\"}"),
	    "bad-argument");
	cr_assert_str_eq(reply_error(&c, "{\"cmd\": \"migrate\", \"args\": "
	    "{\"uri\": \"tcp://127.0.0.1:1\"}}"), "bad-argument",
	    "tcp:// without a secret");
	cr_assert_str_eq(reply_error(&c, "{\"cmd\": \"migrate\", \"args\": "
	    "{\"uri\": \"ftp://x\", \"secret\": \"s\"}}"), "bad-argument");
	cr_assert_str_eq(reply_error(&c, "{\"cmd\": \"migrate\", \"args\": "
	    "{\"uri\": \"tcp://127.0.0.1:1\", \"secret\": \"s\", "
	    "\"max_downtime_ms\": -5}}"), "bad-argument");
	/* Well-formed, but the VM was never started. */
	cr_assert_str_eq(reply_error(&c, "{\"cmd\": \"migrate\", \"args\": "
	    "{\"uri\": \"tcp://127.0.0.1:1\", \"secret\": \"s\"}}"),
	    "wrong-state");
	cr_assert(!migrate_source_active());
	cr_assert_str_eq(reply_error(&c, "{\"cmd\": \"migrate-cancel\"}"),
	    "wrong-state");
	control_fini(&c);
	vm_destroy(vm);
}
