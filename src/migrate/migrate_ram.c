/*
 * The pre-copy RAM pass.  Round 1 sends every page while the guest runs
 * (its dirty log was cleared just before, so whatever it writes from
 * then on is logged); each later round sends the pages logged since the
 * round before.  When the pages still dirty could be sent within the
 * allowed downtime at the bandwidth measured so far, or the dirty set
 * stops shrinking (the guest dirties as fast as we send), the caller
 * stops the guest and migrate_ram_final() sends what is left.
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t
migrate_ram_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
migrate_conv_downtime(const struct migrate_conv *c, uint64_t dirty)
{
	if (c->bandwidth == 0)
		return UINT64_MAX;
	return (uint64_t)((double)dirty * MIGRATE_PAGE * 1e9 /
	    (double)c->bandwidth);
}

int
migrate_conv_next(struct migrate_conv *c, uint64_t dirty, uint64_t bytes,
    uint64_t ns)
{
	/* Rounds of a few pages measure latency, not bandwidth: only a
	 * round that moved something worth timing updates the estimate. */
	if (ns > 0 && bytes >= 64 * MIGRATE_PAGE) {
		uint64_t bw = (uint64_t)((double)bytes * 1e9 / (double)ns);

		c->bandwidth = c->bandwidth == 0 ? bw :
		    (c->bandwidth + bw) / 2;
	}
	c->rounds++;
	if (dirty == 0)
		goto stop;
	/*
	 * Under the maximum downtime, the switch-over may come; it comes
	 * only once another round would buy little: the dirty set no longer
	 * halves each round (the guest dirties about as much as a round
	 * takes to send), or it would already go in an eighth of the
	 * budget.  A set that still halves costs a short round and cuts
	 * the pause: the maximum is a limit, not a target.
	 */
	if (migrate_conv_downtime(c, dirty) <= c->max_downtime_ns &&
	    (dirty * 2 > c->prev_dirty || migrate_conv_downtime(c, dirty) <=
	    c->max_downtime_ns / 8))
		goto stop;
	if (c->rounds > 1 && dirty >= c->prev_dirty)
		c->stalls++;
	c->prev_dirty = dirty;
	if (c->stalls >= MIGRATE_MAX_STALLS || c->rounds >= MIGRATE_MAX_ROUNDS) {
		c->forced = true;
		goto stop;
	}
	return MIGRATE_ITERATE;
stop:
	c->prev_dirty = dirty;
	return MIGRATE_STOP_COPY;
}

int
migrate_ram_init(struct migrate_ram *r, const struct migrate_mem *mem,
    const struct migrate_ram_ops *ops, struct migrate_chan *ch)
{
	memset(r, 0, sizeof(*r));
	r->mem = *mem;
	r->ops = *ops;
	r->ch = ch;
	r->conv.max_downtime_ns = MIGRATE_DEFAULT_DOWNTIME_MS * 1000000ull;
	for (int i = 0; i < mem->nregions; i++) {
		uint64_t pages = mem->r[i].size / MIGRATE_PAGE;

		r->bitmap[i] = calloc((pages + 63) / 64 + 1, sizeof(uint64_t));
		if (r->bitmap[i] == NULL)
			goto fail;
		r->total_pages += pages;
	}
	if (migrate_batch_init(&r->batch) < 0)
		goto fail;
	return 0;
fail:
	migrate_ram_fini(r);
	return -ENOMEM;
}

void
migrate_ram_fini(struct migrate_ram *r)
{
	for (int i = 0; i < 16; i++) {
		free(r->bitmap[i]);
		r->bitmap[i] = NULL;
	}
	migrate_batch_free(&r->batch);
}

/* Keep under the bandwidth limit: sleep off what we are ahead. */
static void
migrate_ram_throttle(struct migrate_ram *r)
{
	uint64_t ahead_ns, due_ns, el;
	struct timespec ts;

	if (r->bandwidth_limit == 0)
		return;
	/* Counted from the rounds' start: what went before them (the
	 * disks' first copy) kept to the limit on its own. */
	due_ns = (uint64_t)((double)(r->ch->sent - r->start_sent) * 1e9 /
	    (double)r->bandwidth_limit);
	el = migrate_ram_now() - r->start_ns;
	if (due_ns <= el)
		return;
	ahead_ns = due_ns - el;
	ts.tv_sec = (time_t)(ahead_ns / 1000000000ull);
	ts.tv_nsec = (long)(ahead_ns % 1000000000ull);
	nanosleep(&ts, NULL);
}

static int
migrate_ram_flush(struct migrate_ram *r)
{
	int err;

	if (r->batch.count == 0)
		return 0;
	err = migrate_rec_send(r->ch, MIGRATE_REC_RAM, r->batch.buf,
	    r->batch.len);
	r->pages_sent += r->batch.count;
	migrate_batch_reset(&r->batch);
	migrate_ram_throttle(r);
	/* A first round over a big guest takes a while: show it moving. */
	if (r->ops.progress != NULL &&
	    migrate_ram_now() - r->progress_ns > 250000000ull) {
		r->progress_ns = migrate_ram_now();
		r->ops.progress(r->ops.opaque, r);
	}
	return err;
}

static int
migrate_ram_page(struct migrate_ram *r, int i, uint64_t pg)
{
	migrate_batch_add(&r->batch, r->mem.r[i].gpa + pg * MIGRATE_PAGE,
	    r->mem.r[i].hva + pg * MIGRATE_PAGE);
	if (migrate_batch_full(&r->batch))
		return migrate_ram_flush(r);
	return 0;
}

/* Send region i's pages whose bit is set (all of them with all). */
static int
migrate_ram_region(struct migrate_ram *r, int i, bool all)
{
	uint64_t pages = r->mem.r[i].size / MIGRATE_PAGE;
	int err;

	for (uint64_t w = 0; w < (pages + 63) / 64; w++) {
		uint64_t bits = all ? ~0ull : r->bitmap[i][w];

		if (r->ops.cancelled != NULL && w % 64 == 0 &&
		    r->ops.cancelled(r->ops.opaque))
			return -ECANCELED;
		while (bits != 0) {
			uint64_t pg = w * 64 + (uint64_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			if (pg >= pages)
				break;
			if ((err = migrate_ram_page(r, i, pg)) < 0)
				return err;
		}
	}
	return 0;
}

/* Fetch every region's dirty bitmap; the number of dirty pages. */
static int64_t
migrate_ram_harvest(struct migrate_ram *r)
{
	int64_t n = 0;
	int err;

	for (int i = 0; i < r->mem.nregions; i++) {
		uint64_t words = (r->mem.r[i].size / MIGRATE_PAGE + 63) / 64;

		if ((err = r->ops.dirty(r->ops.opaque, i, r->bitmap[i])) < 0)
			return err;
		for (uint64_t w = 0; w < words; w++)
			n += __builtin_popcountll(r->bitmap[i][w]);
	}
	return n;
}

/* Send the pages set in the bitmaps (or all). */
static int
migrate_ram_send(struct migrate_ram *r, bool all)
{
	int err;

	for (int i = 0; i < r->mem.nregions; i++)
		if ((err = migrate_ram_region(r, i, all)) < 0)
			return err;
	return migrate_ram_flush(r);
}

/* What else is dirty (the disks), sent after the pages; see ops.extra. */
static int64_t
migrate_ram_extra(struct migrate_ram *r, bool final)
{
	if (r->ops.extra == NULL)
		return 0;
	return r->ops.extra(r->ops.opaque, final);
}

int
migrate_ram_live(struct migrate_ram *r)
{
	uint64_t t0, bytes0;
	int64_t dirty, extra;
	int err;
	bool all = true;

	r->start_ns = migrate_ram_now();
	r->start_sent = r->ch->sent;
	/* Clear what was logged before: round 1 sends everything anyway. */
	if ((dirty = migrate_ram_harvest(r)) < 0)
		return (int)dirty;
	r->conv.prev_dirty = r->total_pages;	/* what round 1 sends */
	for (;;) {
		t0 = migrate_ram_now();
		bytes0 = r->ch->sent;
		if ((err = migrate_ram_send(r, all)) < 0)
			return err;
		all = false;
		if ((extra = migrate_ram_extra(r, false)) < 0)
			return (int)extra;
		if ((dirty = migrate_ram_harvest(r)) < 0)
			return (int)dirty;
		/* The disks' dirty chunks go in the switch-over too. */
		dirty += extra;
		r->dirty_pages = (uint64_t)dirty;
		r->dirty_rate = (uint64_t)((double)dirty * 1e9 /
		    (double)(migrate_ram_now() - t0 + 1));
		err = migrate_conv_next(&r->conv, (uint64_t)dirty,
		    r->ch->sent - bytes0, migrate_ram_now() - t0);
		if (r->ops.progress != NULL)
			r->ops.progress(r->ops.opaque, r);
		if (err == MIGRATE_STOP_COPY)
			return 0;
		if (r->ops.cancelled != NULL && r->ops.cancelled(r->ops.opaque))
			return -ECANCELED;
	}
}

int
migrate_ram_final(struct migrate_ram *r)
{
	int64_t dirty;
	int err;

	/* What the last live round left in the bitmaps, plus what the
	 * guest wrote until it stopped. */
	uint64_t *keep[16];

	for (int i = 0; i < r->mem.nregions; i++) {
		uint64_t words = (r->mem.r[i].size / MIGRATE_PAGE + 63) / 64;

		keep[i] = malloc((words + 1) * sizeof(uint64_t));
		if (keep[i] == NULL) {
			for (int k = 0; k < i; k++)
				free(keep[k]);
			return -ENOMEM;
		}
		memcpy(keep[i], r->bitmap[i], words * sizeof(uint64_t));
	}
	r->final_harvest_ns = migrate_ram_now();
	dirty = migrate_ram_harvest(r);
	r->final_harvest_ns = migrate_ram_now() - r->final_harvest_ns;
	for (int i = 0; i < r->mem.nregions; i++) {
		uint64_t words = (r->mem.r[i].size / MIGRATE_PAGE + 63) / 64;

		for (uint64_t w = 0; w < words; w++)
			r->bitmap[i][w] |= keep[i][w];
		free(keep[i]);
	}
	if (dirty < 0)
		return (int)dirty;
	err = migrate_ram_send(r, false);
	if (err == 0 && (dirty = migrate_ram_extra(r, true)) < 0)
		err = (int)dirty;
	r->dirty_pages = 0;
	return err;
}
