/*
 * The switch's backpressure through its real entry points (port input,
 * flush, vsw_port_writable, vsw_backlog_tick) with NICs on socketpairs:
 * a full port holds unicast frames and pauses the port sending them,
 * then lets it go once it drained; a port that stops reading for good
 * (dead or stopped guest) does not hold anyone for long, and never
 * those who do not send to it.
 */
#include "vswitch_harness.h"

#include "util/evloop.h"

static struct vsw sw;
static uint8_t buf[VSW_MAX_MSG + 64], rbuf[VSW_MAX_MSG + 64];
static int told[VSW_MAX_PORTS];		/* watch calls by port id */

static void
twatch(void *opaque, struct vsw_port *p)
{
	(void)opaque;
	told[p->id]++;
}

static void
setup(void)
{
	char err[256];

	vclock_set_fake(true, 1000000000ull);
	memset(told, 0, sizeof(told));
	cr_assert_eq(vsw_init(&sw, "t"), 0);
	sw.watch = twatch;
	cr_assert_geq(vsw_pg_add(&sw, "lan", 0, NULL, err, sizeof(err)), 0);
}

static void
teardown(void)
{
	vsw_fini(&sw);
	vclock_set_fake(false, 0);
}

TestSuite(vswitch_backpressure, .init = setup, .fini = teardown,
    .timeout = 10);

/* Let the switch learn t's MAC (a broadcast from it, drained). */
static void
learn(struct tport *t, struct tport *others[], int n)
{
	size_t len = tframe(buf, 0xff, t->p->mac[5], 0x88b5, "hi", 2);

	cr_assert_eq(tsend(&sw, t, buf, len), 0);
	for (int i = 0; i < n; i++)
		tcount(others[i]);
}

/* A unicast frame from port src to dst carrying sequence number seq. */
static size_t
useq(struct tport *src, struct tport *dst, uint32_t seq, size_t plen)
{
	static uint8_t pl[2000];

	memcpy(pl, &seq, 4);
	return tframe(buf, dst->p->mac[5], src->p->mac[5], 0x88b5, pl, plen);
}

/* Send from a to b until the switch pauses a; returns frames sent. */
static uint32_t
fill_until_paused(struct tport *a, struct tport *b)
{
	uint32_t seq;

	for (seq = 0; seq < 2000 && a->p->paused == 0; seq++)
		cr_assert_eq(tsend(&sw, a, buf, useq(a, b, seq, 1000)), 0);
	cr_assert_gt(a->p->paused, 0, "a full port paused its source");
	return seq;
}

Test(vswitch_backpressure, a_full_port_pauses_its_source_and_resumes)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	int small = 4096;
	uint32_t sent, seq, got = 0;
	ssize_t n;

	setsockopt(b.p->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	learn(&a, (struct tport *[]){ &b }, 1);
	learn(&b, (struct tport *[]){ &a }, 1);
	sent = fill_until_paused(&a, &b);
	cr_assert_gt(b.p->nbl, 0, "the frame that did not fit is held");
	cr_assert_gt(told[a.p->id], 0, "the server heard a is paused");
	cr_assert_gt(told[b.p->id], 0, "the server heard b wants POLLOUT");
	cr_assert_eq(a.p->st.rx_paused, 1);
	/* A batch already read while paused is held too, in order. */
	for (int i = 0; i < 10; i++, sent++)
		tsend(&sw, &a, buf, useq(&a, &b, sent, 1000));
	cr_assert_eq(b.p->st.tx_full, 0, "nothing dropped");
	/* b's reader takes everything; each POLLOUT sends more. */
	for (int round = 0; round < 1000 && got < sent; round++) {
		while ((n = trecv(&b, rbuf, sizeof(rbuf))) >= 0) {
			memcpy(&seq, rbuf + sizeof(struct vsw_net_hdr) + 14, 4);
			cr_assert_eq(seq, got, "frame %u in order", got);
			got++;
		}
		vsw_port_writable(&sw, b.p);
	}
	cr_assert_eq(got, sent, "every frame arrived (%u of %u)", got, sent);
	cr_assert_eq(b.p->nbl, 0);
	cr_assert_eq(a.p->paused, 0, "a resumed once b drained");
	cr_assert_eq(b.p->st.tx_packets, sent + 1);	/* and the learn */
	cr_assert_gt(b.p->st.tx_held, 0);
	tport_close(&a);
	tport_close(&b);
}

Test(vswitch_backpressure, a_dead_port_does_not_block_the_others)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	struct tport c = tport_add(&sw, "lan", 3, 0);
	int small = 4096, i;
	uint64_t full;

	setsockopt(b.p->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	learn(&a, (struct tport *[]){ &b, &c }, 2);
	learn(&b, (struct tport *[]){ &a, &c }, 2);
	learn(&c, (struct tport *[]){ &a, &b }, 2);
	fill_until_paused(&a, &b);
	/* c, which does not send to b, is never held back. */
	for (i = 0; i < 50; i++) {
		tsend(&sw, &c, buf, useq(&c, &a, (uint32_t)i, 1000));
		cr_assert_eq(tcount(&a), 1, "c to a, frame %d", i);
	}
	cr_assert_eq(c.p->paused, 0);
	/* b reads nothing for VSW_STALL_NS: a is let go. */
	vclock_advance_fake(VSW_STALL_NS / 2);
	vsw_backlog_tick(&sw, vclock_ns());
	cr_assert_gt(a.p->paused, 0, "not yet stuck");
	vclock_advance_fake(VSW_STALL_NS);
	vsw_backlog_tick(&sw, vclock_ns());
	cr_assert(b.p->stuck);
	cr_assert_eq(a.p->paused, 0, "a resumed: b is stuck");
	/* From now on what b cannot hold is dropped, nobody is paused. */
	full = b.p->st.tx_full;
	for (i = 0; i < VSW_BACKLOG + 20; i++)
		tsend(&sw, &a, buf, useq(&a, &b, (uint32_t)i, 1000));
	cr_assert_eq(a.p->paused, 0);
	cr_assert_gt(b.p->st.tx_full, full, "drops to the stuck port counted");
	cr_assert_leq(b.p->nbl, VSW_BACKLOG, "the backlog stays bounded");
	tsend(&sw, &a, buf, useq(&a, &c, 7, 100));
	cr_assert_eq(tcount(&c), 1, "a still reaches c");
	/* b reads again: it drains and is a normal port once more. */
	while (b.p->nbl > 0) {
		tcount(&b);
		vsw_port_writable(&sw, b.p);
	}
	cr_assert_not(b.p->stuck);
	tport_close(&a);
	tport_close(&b);
	tport_close(&c);
}

Test(vswitch_backpressure, a_port_that_leaves_lets_its_sources_go)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	int small = 4096;

	setsockopt(b.p->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	learn(&a, (struct tport *[]){ &b }, 1);
	learn(&b, (struct tport *[]){ &a }, 1);
	fill_until_paused(&a, &b);
	close(b.p->fd);
	close(b.fd);
	vsw_port_del(&sw, b.p);
	cr_assert_eq(a.p->paused, 0, "a resumed when b left");
	for (int i = 1; i < VSW_MAX_PORTS; i++)
		if (sw.ports[i] != NULL)
			for (int k = 0; k < VSW_MAX_PORTS / 8; k++)
				cr_assert_eq(sw.ports[i]->pausing[k], 0);
	tport_close(&a);
}

Test(vswitch_backpressure, floods_never_pause)
{
	struct tport a = tport_add(&sw, "lan", 1, 0);
	struct tport b = tport_add(&sw, "lan", 2, 0);
	int small = 4096;
	size_t n;

	/* b never reads: broadcasts to it are dropped, a goes on. */
	setsockopt(b.p->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	n = tframe(buf, 0xff, 1, 0x88b5, rbuf, 1000);
	for (int i = 0; i < 100; i++)
		tsend(&sw, &a, buf, n);
	cr_assert_eq(a.p->paused, 0);
	cr_assert_eq(b.p->nbl, 0);
	cr_assert_gt(b.p->st.tx_full, 0);
	tport_close(&a);
	tport_close(&b);
}
