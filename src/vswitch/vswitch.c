/*
 * The switch's data plane: where a frame goes (learning, flooding
 * inside its port group, VLAN tags on trunks), and queued output sent
 * in batches.  See vswitch.h for the model.
 */
#include "vswitch/vswitch_proto.h"
#include "vswitch/vswitch.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"
#include "vswitch/vswitch_capture.h"

#define VSW_ETH_HLEN	14
#define VSW_TPID	0x8100
#define VSW_TPID_AD	0x88a8
#define VSW_MAX_SEGS	192	/* 64 KiB at a 536-byte MSS fits */

/* The frame being forwarded: untagged and contiguous. */
struct vsw_frame {
	struct vsw_net_hdr hdr;		/* offsets of the untagged frame */
	uint8_t *data;
	size_t len;
	int pg;
	bool gso;
	int src;			/* port it came from */
	bool pause;			/* may pause src (see vswitch.h) */
	/* Segments of a GSO frame, made for the first port without GSO. */
	uint8_t *seg;
	int nseg;
	size_t segoff[VSW_MAX_SEGS], seglen[VSW_MAX_SEGS];
};

int
vsw_init(struct vsw *sw, const char *name)
{
	int ret;

	memset(sw, 0, sizeof(*sw));
	snprintf(sw->name, sizeof(sw->name), "%s",
	    name != NULL ? name : VSW_DEFAULT_SWITCH);
	sw->vxlan_fd = -1;
	sw->vxlan_port = VSW_VXLAN_PORT;
	sw->next_id = 1;
	if ((ret = vsw_fdb_init(&sw->fdb)) < 0)
		return ret;
	if ((sw->rxbuf = malloc((size_t)VSW_BATCH * VSW_RXSZ)) == NULL) {
		vsw_fdb_fini(&sw->fdb);
		return -ENOMEM;
	}
	return 0;
}

void
vsw_fini(struct vsw *sw)
{
	int i;

	sw->watch = NULL;		/* nobody watches any more */
	while (sw->caps != NULL)
		vsw_capture_stop(sw, sw->caps);
	vsw_flush(sw);
	for (i = 0; i < VSW_MAX_PORTS; i++)
		if (sw->ports[i] != NULL)
			vsw_port_del(sw, sw->ports[i]);
	vsw_fdb_fini(&sw->fdb);
	free(sw->scratch);
	free(sw->rxbuf);
	sw->scratch = NULL;
	sw->rxbuf = NULL;
}

static void vsw_backlog_drop(struct vsw *sw, struct vsw_port *q,
    bool count);
static void vsw_bit_clear(uint8_t *bits, int i);

/* Port group names are what a .vmx nicN.portgroup may hold. */
static bool
vsw_name_ok(const char *v)
{
	size_t i, n = strlen(v);

	if (n == 0 || n >= VSW_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr("_.-", v[i]))
			return false;
	return true;
}

int
vsw_vlan_list(const char *s, uint8_t bits[4096 / 8])
{
	char *end;
	long a, b;

	memset(bits, 0, 4096 / 8);
	if (strcmp(s, "all") == 0) {
		memset(bits, 0xff, 4096 / 8);
		bits[0] &= (uint8_t)~1;		/* VLAN 0 is not a VLAN */
		bits[511] &= 0x7f;		/* nor is 4095 */
		return 0;
	}
	while (*s != '\0') {
		a = strtol(s, &end, 10);
		if (end == s || a < 1 || a > 4094)
			return -EINVAL;
		b = a;
		if (*end == '-') {
			s = end + 1;
			b = strtol(s, &end, 10);
			if (end == s || b < a || b > 4094)
				return -EINVAL;
		}
		for (; a <= b; a++)
			bits[a / 8] |= (uint8_t)(1u << (a % 8));
		if (*end == ',')
			end++;
		else if (*end != '\0')
			return -EINVAL;
		s = end;
	}
	return 0;
}

/* A VNI for a port group without a VLAN: the same on every host that
 * names the group the same, above the VLAN range. */
static uint32_t
vsw_name_vni(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return 4096 + h % (0xffffffu - 4096);
}

int
vsw_pg_find(const struct vsw *sw, const char *name)
{
	int i;

	for (i = 0; i < VSW_MAX_PG; i++)
		if (sw->pgs[i].used && strcmp(sw->pgs[i].name, name) == 0)
			return i;
	return -ENOENT;
}

int
vsw_pg_by_vni(const struct vsw *sw, uint32_t vni)
{
	int i;

	for (i = 0; i < VSW_MAX_PG; i++)
		if (sw->pgs[i].used && !sw->pgs[i].trunk &&
		    sw->pgs[i].vni == vni)
			return i;
	return -ENOENT;
}

/* The non-trunk port group carried under VLAN vlan, or -1. */
static int
vsw_pg_by_vlan(const struct vsw *sw, int vlan)
{
	int i;

	for (i = 0; i < VSW_MAX_PG; i++)
		if (sw->pgs[i].used && !sw->pgs[i].trunk &&
		    sw->pgs[i].vlan == vlan)
			return i;
	return -1;
}

int
vsw_pg_add(struct vsw *sw, const char *name, int vlan, const char *trunk,
    char *err, size_t errlen)
{
	struct vsw_pg *pg;
	int i, free_i = -1;

	if (!vsw_name_ok(name))
		return vsw_errf(err, errlen, -EINVAL, "bad port group name "
		    "'%s' (1-63 letters, digits, '_', '.', '-')", name);
	if (vlan < 0 || vlan > 4094)
		return vsw_errf(err, errlen, -EINVAL, "VLAN %d is out of range "
		    "(0-4094, 0 for none)", vlan);
	if (vsw_pg_find(sw, name) >= 0)
		return vsw_errf(err, errlen, -EEXIST, "port group '%s' exists",
		    name);
	if (trunk == NULL && vlan != 0 && (i = vsw_pg_by_vlan(sw, vlan)) >= 0)
		return vsw_errf(err, errlen, -EADDRINUSE, "VLAN %d is port "
		    "group '%s''s already", vlan, sw->pgs[i].name);
	for (i = 0; i < VSW_MAX_PG && free_i < 0; i++)
		if (!sw->pgs[i].used)
			free_i = i;
	if (free_i < 0)
		return vsw_errf(err, errlen, -ENOSPC, "too many port groups "
		    "(at most %d)", VSW_MAX_PG);
	pg = &sw->pgs[free_i];
	memset(pg, 0, sizeof(*pg));
	if (trunk != NULL && vsw_vlan_list(trunk, pg->vlans) < 0)
		return vsw_errf(err, errlen, -EINVAL, "bad trunk VLAN list "
		    "'%s' (\"all\" or like \"10,20-30\")", trunk);
	pg->used = true;
	pg->trunk = trunk != NULL;
	pg->vlan = (uint16_t)(trunk != NULL ? 0 : vlan);
	pg->vni = vlan != 0 ? (uint32_t)vlan : vsw_name_vni(name);
	snprintf(pg->name, sizeof(pg->name), "%s", name);
	return free_i;
}

void
vsw_pg_shape(struct vsw *sw, int pg, uint64_t bps, uint64_t burst)
{
	if (burst == 0) {
		burst = bps / 8 / 10;
		if (burst < 65536)
			burst = 65536;
	}
	sw->pgs[pg].shape_bps = bps;
	sw->pgs[pg].shape_burst = bps != 0 ? burst : 0;
}

static int
vsw_shape_num(const char *s, char **end, uint64_t k, uint64_t *out)
{
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	v = strtoull(s, end, 10);
	switch (**end) {
	case 'G': case 'g': v *= k;	/* fall through */
	case 'M': case 'm': v *= k;	/* fall through */
	case 'K': case 'k': v *= k;
		(*end)++;
		break;
	}
	if (v > (1ull << 50))
		return -EINVAL;
	*out = v;
	return 0;
}

int
vsw_shape_parse(const char *s, uint64_t *bps, uint64_t *burst)
{
	char *end;

	*burst = 0;
	if (vsw_shape_num(s, &end, 1000, bps) < 0 || *bps == 0)
		return -EINVAL;
	if (*end == '/' && (vsw_shape_num(end + 1, &end, 1024, burst) < 0 ||
	    *burst < 1514))
		return -EINVAL;
	return *end == '\0' ? 0 : -EINVAL;
}

/* May p send len more bytes now?  Its bucket says. */
static bool
vsw_shape_ok(const struct vsw *sw, struct vsw_port *p, size_t len)
{
	const struct vsw_pg *pg;
	uint64_t now, add;

	if (p->pg < 0 || (pg = &sw->pgs[p->pg])->shape_bps == 0)
		return true;
	now = vclock_ns();
	/* Elapsed time capped so the product cannot overflow. */
	add = now - p->tokens_ns > 10000000000ull ? pg->shape_burst :
	    (now - p->tokens_ns) * (pg->shape_bps / 8) / 1000000000ull;
	p->tokens_ns = now;
	p->tokens = p->tokens + add > pg->shape_burst ? pg->shape_burst :
	    p->tokens + add;
	if (p->tokens < len) {
		p->st.rx_shaped++;
		return false;
	}
	p->tokens -= len;
	return true;
}

int
vsw_pg_del(struct vsw *sw, const char *name)
{
	int i = vsw_pg_find(sw, name), p;

	if (i < 0)
		return i;
	for (p = 0; p < VSW_MAX_PORTS; p++)
		if (sw->ports[p] != NULL && sw->ports[p]->pg == i)
			return -EBUSY;
	vsw_fdb_flush_pg(&sw->fdb, (uint16_t)i);
	memset(&sw->pgs[i], 0, sizeof(sw->pgs[i]));
	return 0;
}

int
vsw_hello_check(const void *buf, size_t len, struct vsw_hello *h,
    char *err, size_t errlen)
{
	if (len != sizeof(*h))
		return vsw_errf(err, errlen, -EPROTO, "hello of %zu bytes "
		    "(expected %zu)", len, sizeof(*h));
	memcpy(h, buf, sizeof(*h));
	if (h->magic != VSW_MAGIC)
		return vsw_errf(err, errlen, -EPROTO, "not a termvisor NIC "
		    "(bad magic)");
	if (h->version != VSW_VERSION)
		return vsw_errf(err, errlen, -EPROTO, "protocol version %u "
		    "(this switch speaks %u)", h->version, VSW_VERSION);
	if (memchr(h->portgroup, '\0', sizeof(h->portgroup)) == NULL ||
	    memchr(h->vm, '\0', sizeof(h->vm)) == NULL ||
	    memchr(h->nic, '\0', sizeof(h->nic)) == NULL)
		return vsw_errf(err, errlen, -EINVAL, "unterminated string in "
		    "the hello");
	if (!vsw_name_ok(h->portgroup))
		return vsw_errf(err, errlen, -EINVAL, "bad port group name "
		    "'%.63s'", h->portgroup);
	if (h->mac[0] & 1)
		return vsw_errf(err, errlen, -EINVAL, "the NIC's MAC is "
		    "multicast");
	for (size_t i = 0; h->vm[i] != '\0'; i++)
		if ((unsigned char)h->vm[i] < 0x20)
			return vsw_errf(err, errlen, -EINVAL, "control "
			    "character in the VM name");
	for (size_t i = 0; h->nic[i] != '\0'; i++)
		if ((unsigned char)h->nic[i] < 0x20)
			return vsw_errf(err, errlen, -EINVAL, "control "
			    "character in the NIC name");
	return 0;
}

struct vsw_port *
vsw_port_add(struct vsw *sw, enum vsw_port_kind kind, int fd, int pg,
    const char *name, uint32_t features)
{
	struct vsw_port *p;
	int i, id = -1;

	/* Ids are not reused at once: a `show` that names port 3 should
	 * not suddenly mean another VM. */
	for (i = 0; i < VSW_MAX_PORTS && id < 0; i++) {
		int c = (sw->next_id + i) % VSW_MAX_PORTS;

		if (c != 0 && sw->ports[c] == NULL)
			id = c;
	}
	if (id < 0 || (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if ((p->txq = calloc(VSW_TXQ, sizeof(*p->txq))) == NULL) {
		free(p);
		return NULL;
	}
	p->id = id;
	p->kind = kind;
	p->fd = fd;
	p->pg = pg;
	p->features = features;
	p->since_ns = p->tokens_ns = vclock_ns();
	p->tokens = pg >= 0 ? sw->pgs[pg].shape_burst : 0;
	snprintf(p->name, sizeof(p->name), "%s", name);
	sw->ports[id] = p;
	sw->next_id = id + 1;
	return p;
}

struct vsw_port *
vsw_port_add_nic(struct vsw *sw, int fd, const struct vsw_hello *h,
    char *err, size_t errlen)
{
	struct vsw_port *p;
	char name[VSW_NAME_MAX];
	int pg = vsw_pg_find(sw, h->portgroup);

	if (pg < 0) {
		vsw_errf(err, errlen, -ENOENT, "switch %s has no port group "
		    "'%s'", sw->name, h->portgroup);
		return NULL;
	}
	snprintf(name, sizeof(name), "%.40s:%.15s", h->vm[0] ? h->vm : "?",
	    h->nic[0] ? h->nic : "nic");
	if ((p = vsw_port_add(sw, VSW_PORT_NIC, fd, pg, name,
	    h->features & (VSW_F_CSUM | VSW_F_GSO))) == NULL) {
		vsw_errf(err, errlen, -ENOSPC, "switch %s has no free port",
		    sw->name);
		return NULL;
	}
	memcpy(p->mac, h->mac, 6);
	snprintf(p->vm, sizeof(p->vm), "%s", h->vm);
	snprintf(p->nic, sizeof(p->nic), "%s", h->nic);
	return p;
}

void
vsw_port_del(struct vsw *sw, struct vsw_port *p)
{
	struct vsw_capture *c, *next;
	int i;

	/* Queued output references the caller's buffers: send it now. */
	if (p->ntx > 0)
		vsw_flush(sw);
	for (i = 0; i < sw->ndirty; i++)
		if (sw->dirty[i] == p)
			sw->dirty[i] = sw->dirty[--sw->ndirty];
	for (c = sw->caps; c != NULL; c = next) {
		next = c->next;
		if (c->port == p->id)
			c->done = true;		/* the server ends it */
	}
	vsw_fdb_flush_port(&sw->fdb, p->id);
	vsw_backlog_drop(sw, p, false);
	for (i = 1; i < VSW_MAX_PORTS; i++)
		if (sw->ports[i] != NULL)
			vsw_bit_clear(sw->ports[i]->pausing, p->id);
	sw->ports[p->id] = NULL;
	free(p->bl);
	free(p->txq);
	free(p);
}

struct vsw_port *
vsw_port_find(const struct vsw *sw, const char *name)
{
	char *end;
	long id = strtol(name, &end, 10);
	int i;

	if (end != name && *end == '\0')
		return id > 0 && id < VSW_MAX_PORTS ? sw->ports[id] : NULL;
	for (i = 0; i < VSW_MAX_PORTS; i++)
		if (sw->ports[i] != NULL && strcmp(sw->ports[i]->name,
		    name) == 0)
			return sw->ports[i];
	return NULL;
}

int
vsw_scratch_keep(struct vsw *sw, void *buf)
{
	void **n;

	if (sw == NULL)
		return 0;		/* the caller frees it */
	if (sw->nscratch == sw->scratchcap) {
		int cap = sw->scratchcap ? 2 * sw->scratchcap : 16;

		if ((n = realloc(sw->scratch, (size_t)cap * sizeof(*n))) ==
		    NULL) {
			free(buf);
			return -ENOMEM;
		}
		sw->scratch = n;
		sw->scratchcap = cap;
	}
	sw->scratch[sw->nscratch++] = buf;
	return 0;
}

/* Does port q carry port group g? */
static bool
vsw_member(const struct vsw *sw, const struct vsw_port *q, int g)
{
	const struct vsw_pg *qp, *pg = &sw->pgs[g];

	if (q->dead)
		return false;
	if (q->kind == VSW_PORT_PEER)
		return !pg->trunk;
	if (q->pg == g)
		return !pg->trunk;
	qp = &sw->pgs[q->pg];
	return qp->trunk && pg->vlan != 0 &&
	    (qp->vlans[pg->vlan / 8] & (1u << (pg->vlan % 8)));
}

static bool
vsw_is_trunk(const struct vsw *sw, const struct vsw_port *p)
{
	return p->kind != VSW_PORT_PEER && sw->pgs[p->pg].trunk;
}

static struct vsw_txent *
vsw_txq_slot(struct vsw *sw, struct vsw_port *q)
{
	if (q->ntx == VSW_TXQ) {
		q->st.tx_full++;
		return NULL;
	}
	if (!q->dirty) {
		q->dirty = true;
		sw->dirty[sw->ndirty++] = q;
	}
	return &q->txq[q->ntx++];
}

/* Queue one complete (untagged) frame of f with header h for port q. */
static void
vsw_enqueue_one(struct vsw *sw, struct vsw_port *q, const struct vsw_frame *f,
    const struct vsw_net_hdr *h, uint8_t *data, size_t len)
{
	struct vsw_txent *e;
	int g = f->pg;
	uint16_t vlan = sw->pgs[g].vlan;

	if (sw->caps != NULL)
		vsw_capture_frame(sw, g, q, true, data, len);
	if ((e = vsw_txq_slot(sw, q)) == NULL)
		return;
	e->niov = 0;
	e->hdr = *h;
	e->src = f->src;
	e->pause = f->pause;
	if (q->kind == VSW_PORT_PEER) {
		vsw_vxlan_hdr(e->vxlan, sw->pgs[g].vni);
		e->iov[e->niov++] = (struct iovec){ e->vxlan, 8 };
		e->iov[e->niov++] = (struct iovec){ data, len };
		e->len = len;
		return;
	}
	e->iov[e->niov++] = (struct iovec){ &e->hdr, sizeof(e->hdr) };
	if (vsw_is_trunk(sw, q)) {
		e->tag[0] = VSW_TPID >> 8;
		e->tag[1] = VSW_TPID & 0xff;
		e->tag[2] = (uint8_t)(vlan >> 8);
		e->tag[3] = (uint8_t)vlan;
		if (e->hdr.flags & 1)
			e->hdr.csum_start = (uint16_t)(e->hdr.csum_start + 4);
		if (e->hdr.gso_type != 0)
			e->hdr.hdr_len = (uint16_t)(e->hdr.hdr_len + 4);
		e->iov[e->niov++] = (struct iovec){ data, 12 };
		e->iov[e->niov++] = (struct iovec){ e->tag, 4 };
		e->iov[e->niov++] = (struct iovec){ data + 12, len - 12 };
	} else {
		e->iov[e->niov++] = (struct iovec){ data, len };
	}
	e->len = len;
}

/* Queue frame f for port q, offloads resolved for what q takes. */
static void
vsw_enqueue(struct vsw *sw, struct vsw_port *q, struct vsw_frame *f)
{
	static const struct vsw_net_hdr plain;
	uint32_t feat = q->kind == VSW_PORT_PEER ? 0 : q->features;
	int i;

	if (!f->gso || (feat & VSW_F_GSO)) {
		vsw_enqueue_one(sw, q, f, &f->hdr, f->data, f->len);
		return;
	}
	if (f->seg == NULL && f->nseg == 0) {
		f->seg = vsw_gso_segment(sw, &f->hdr, f->data, f->len,
		    f->segoff, f->seglen, VSW_MAX_SEGS, &f->nseg);
		if (f->seg == NULL)
			f->nseg = -1;
		else
			sw->segmented++;
	}
	if (f->seg == NULL) {
		q->st.tx_offload++;
		return;
	}
	for (i = 0; i < f->nseg; i++)
		vsw_enqueue_one(sw, q, f, &plain, f->seg + f->segoff[i],
		    f->seglen[i]);
}

/* Every destination of f from port p, then the frame to each. */
static void
vsw_forward(struct vsw *sw, struct vsw_port *p, struct vsw_frame *f)
{
	struct vsw_port *dst[VSW_MAX_PORTS], *q;
	uint64_t now = vclock_ns();
	int i, n = 0, id = -1;
	bool need_csum = false;

	vsw_fdb_learn(&sw->fdb, (uint16_t)f->pg, f->data + 6, p->id, now);
	sw->pgs[f->pg].frames++;
	if (!(f->data[0] & 1))
		id = vsw_fdb_lookup(&sw->fdb, (uint16_t)f->pg, f->data, now);
	if (id == p->id)
		return;		/* it is on the port it came from */
	f->src = p->id;
	f->pause = false;
	if (id > 0 && (q = sw->ports[id]) != NULL && vsw_member(sw, q, f->pg)) {
		dst[n++] = q;
		/* Only a known unicast path pauses: a flood would let one
		 * full port stop everyone who broadcasts. */
		f->pause = p->kind == VSW_PORT_NIC || p->kind == VSW_PORT_TAP;
	} else {
		sw->pgs[f->pg].flooded++;
		for (i = 1; i < VSW_MAX_PORTS; i++) {
			q = sw->ports[i];
			if (q == NULL || q == p || !vsw_member(sw, q, f->pg))
				continue;
			/* Split horizon: the peers flood themselves. */
			if (p->kind == VSW_PORT_PEER &&
			    q->kind == VSW_PORT_PEER)
				continue;
			dst[n++] = q;
		}
	}
	for (i = 0; i < n && !f->gso; i++)
		if ((f->hdr.flags & 1) && (dst[i]->kind == VSW_PORT_PEER ||
		    !(dst[i]->features & VSW_F_CSUM)))
			need_csum = true;
	/* Completed once for all, before anyone is queued: a receiver told
	 * NEEDS_CSUM would otherwise sum over a finished checksum. */
	if (need_csum) {
		if (vsw_csum_complete(&f->hdr, f->data, f->len) == 0)
			sw->csum_done++;
	}
	for (i = 0; i < n; i++)
		vsw_enqueue(sw, dst[i], f);
}

/*
 * The port group of a frame from p, with any tag removed: the frame
 * then starts at f->data.  -1 when the tag is not allowed here.
 */
static int
vsw_ingress_vlan(struct vsw *sw, struct vsw_port *p, struct vsw_frame *f)
{
	uint16_t type = (uint16_t)(f->data[12] << 8 | f->data[13]);
	const struct vsw_pg *pg = &sw->pgs[p->pg];
	int vlan, g;

	if (!pg->trunk) {
		if (type == VSW_TPID || type == VSW_TPID_AD)
			return -1;	/* an access port does not tag */
		return p->pg;
	}
	if (type != VSW_TPID || f->len < VSW_ETH_HLEN + 4)
		return -1;		/* trunks carry no untagged group */
	vlan = (f->data[14] << 8 | f->data[15]) & 0xfff;
	if (vlan == 0 || !(pg->vlans[vlan / 8] & (1u << (vlan % 8))) ||
	    (g = vsw_pg_by_vlan(sw, vlan)) < 0)
		return -1;
	if (f->hdr.flags & 1) {
		if (f->hdr.csum_start < VSW_ETH_HLEN + 4)
			return -1;
		f->hdr.csum_start = (uint16_t)(f->hdr.csum_start - 4);
	}
	if (f->hdr.gso_type != 0)
		f->hdr.hdr_len = f->hdr.hdr_len >= 4 ?
		    (uint16_t)(f->hdr.hdr_len - 4) : 0;
	/* Untagged in place: the MACs move up over the tag. */
	memmove(f->data + 4, f->data, 12);
	f->data += 4;
	f->len -= 4;
	return g;
}

static void
vsw_frame_init(struct vsw_frame *f, uint8_t *data, size_t len)
{
	f->data = data;
	f->len = len;
	f->seg = NULL;
	f->nseg = 0;
}

int
vsw_port_input(struct vsw *sw, struct vsw_port *p, uint8_t *buf, size_t len)
{
	struct vsw_frame f;
	size_t hl = sizeof(struct vsw_net_hdr);

	if (len < hl + VSW_ETH_HLEN || len > VSW_MAX_MSG) {
		p->st.rx_malformed++;
		return -EINVAL;
	}
	memcpy(&f.hdr, buf, hl);
	vsw_frame_init(&f, buf + hl, len - hl);
	if (vsw_hdr_check(&f.hdr, f.len) < 0 || (f.data[6] & 1)) {
		p->st.rx_malformed++;	/* bad offsets; multicast source */
		return -EINVAL;
	}
	p->st.rx_packets++;
	p->st.rx_bytes += f.len;
	if (!vsw_shape_ok(sw, p, f.len))
		return 0;
	if ((f.pg = vsw_ingress_vlan(sw, p, &f)) < 0 ||
	    vsw_hdr_check(&f.hdr, f.len) < 0) {
		p->st.rx_vlan++;
		return 0;
	}
	f.gso = f.hdr.gso_type != 0;
	if (sw->caps != NULL)
		vsw_capture_frame(sw, f.pg, p, false, f.data, f.len);
	vsw_forward(sw, p, &f);
	return 0;
}

int
vsw_peer_input(struct vsw *sw, struct vsw_port *peer, uint32_t vni,
    uint8_t *frame, size_t len)
{
	struct vsw_frame f;
	uint16_t type;

	memset(&f.hdr, 0, sizeof(f.hdr));
	vsw_frame_init(&f, frame, len);
	if (len < VSW_ETH_HLEN || len > VSW_MAX_FRAME || (frame[6] & 1)) {
		peer->st.rx_malformed++;
		return -EINVAL;
	}
	peer->st.rx_packets++;
	peer->st.rx_bytes += len;
	type = (uint16_t)(frame[12] << 8 | frame[13]);
	if ((f.pg = vsw_pg_by_vni(sw, vni)) < 0 || type == VSW_TPID ||
	    type == VSW_TPID_AD) {
		peer->st.rx_vlan++;	/* a segment we do not have */
		return 0;
	}
	f.gso = false;
	if (sw->caps != NULL)
		vsw_capture_frame(sw, f.pg, peer, false, f.data, f.len);
	vsw_forward(sw, peer, &f);
	return 0;
}

/* --- backpressure (see vswitch.h) --- */

static void
vsw_bit_clear(uint8_t *bits, int i)
{
	bits[i / 8] &= (uint8_t)~(1u << (i % 8));
}

static void
vsw_rewatch(struct vsw *sw, struct vsw_port *p)
{
	if (sw->watch != NULL)
		sw->watch(sw->watch_opaque, p);
}

/* Full port q pauses port src (once per q). */
static void
vsw_pause(struct vsw *sw, struct vsw_port *q, int src)
{
	struct vsw_port *p = src > 0 && src < VSW_MAX_PORTS ? sw->ports[src] :
	    NULL;

	if (p == NULL || p == q || p->dead ||
	    (q->pausing[src / 8] & (1u << (src % 8))))
		return;
	q->pausing[src / 8] |= (uint8_t)(1u << (src % 8));
	if (p->paused++ == 0) {
		p->st.rx_paused++;
		vsw_rewatch(sw, p);
	}
}

/* Port q lets every source it paused go. */
static void
vsw_release(struct vsw *sw, struct vsw_port *q)
{
	struct vsw_port *p;
	int i;

	for (i = 1; i < VSW_MAX_PORTS; i++) {
		if (!(q->pausing[i / 8] & (1u << (i % 8))))
			continue;
		vsw_bit_clear(q->pausing, i);
		if ((p = sw->ports[i]) != NULL && p->paused > 0 &&
		    --p->paused == 0)
			vsw_rewatch(sw, p);
	}
}

/* Forget q's backlog (counted as dropped when count) and let its
 * sources go. */
static void
vsw_backlog_drop(struct vsw *sw, struct vsw_port *q, bool count)
{
	bool had = q->nbl > 0;

	for (; q->nbl > 0; q->nbl--) {
		free(q->bl[q->blhead].buf);
		q->blhead = (q->blhead + 1) % VSW_BACKLOG;
		if (count)
			q->st.tx_error++;
	}
	q->blhead = 0;
	q->blbytes = 0;
	q->stuck = false;
	vsw_release(sw, q);
	if (had)
		vsw_rewatch(sw, q);
}

/* Copy entry e into q's backlog; false when the backlog is full. */
static bool
vsw_backlog_add(struct vsw_port *q, const struct vsw_txent *e)
{
	struct vsw_blmsg *m;
	size_t len = 0, at = 0;
	int i;

	for (i = 0; i < e->niov; i++)
		len += e->iov[i].iov_len;
	if (q->nbl == VSW_BACKLOG || q->blbytes + len > VSW_BACKLOG_BYTES)
		return false;
	if (q->bl == NULL && (q->bl = calloc(VSW_BACKLOG, sizeof(*q->bl))) ==
	    NULL)
		return false;
	m = &q->bl[(q->blhead + q->nbl) % VSW_BACKLOG];
	if ((m->buf = malloc(len)) == NULL)
		return false;
	for (i = 0; i < e->niov; i++) {
		memcpy(m->buf + at, e->iov[i].iov_base, e->iov[i].iov_len);
		at += e->iov[i].iov_len;
	}
	m->len = len;
	m->flen = e->len;
	q->nbl++;
	q->blbytes += len;
	q->st.tx_held++;
	return true;
}

/* Send q's backlog while the socket takes it: 0 (all or some sent, the
 * rest waits for room), or -errno when the socket is broken. */
static int
vsw_backlog_send(struct vsw_port *q)
{
	struct mmsghdr m[VSW_BATCH];
	struct iovec iov[VSW_BATCH];
	struct vsw_blmsg *b;
	int i, n, r;

	while (q->nbl > 0) {
		n = q->nbl < VSW_BATCH ? q->nbl : VSW_BATCH;
		memset(m, 0, sizeof(m[0]) * (size_t)n);
		for (i = 0; i < n; i++) {
			b = &q->bl[(q->blhead + i) % VSW_BACKLOG];
			iov[i] = (struct iovec){ b->buf, b->len };
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
		}
		r = sendmmsg(q->fd, m, (unsigned)n, MSG_DONTWAIT |
		    MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == ENOBUFS ? 0 : -errno;
		for (i = 0; i < r; i++) {
			b = &q->bl[q->blhead];
			q->st.tx_packets++;
			q->st.tx_bytes += b->flen;
			q->blbytes -= b->len;
			free(b->buf);
			b->buf = NULL;
			q->blhead = (q->blhead + 1) % VSW_BACKLOG;
			q->nbl--;
		}
		q->bl_sent_ns = vclock_ns();
	}
	return 0;
}

void
vsw_port_writable(struct vsw *sw, struct vsw_port *q)
{
	if (q->nbl == 0)
		return;
	if (vsw_backlog_send(q) < 0) {
		vsw_backlog_drop(sw, q, true);
		return;
	}
	if (q->nbl > 0)
		return;
	/* Drained: its sources may send again; POLLOUT is not wanted. */
	q->stuck = false;
	vsw_release(sw, q);
	vsw_rewatch(sw, q);
}

void
vsw_backlog_tick(struct vsw *sw, uint64_t now_ns)
{
	struct vsw_port *q;
	int i;

	for (i = 1; i < VSW_MAX_PORTS; i++) {
		q = sw->ports[i];
		if (q == NULL || q->nbl == 0 || q->stuck ||
		    now_ns - q->bl_sent_ns < VSW_STALL_NS)
			continue;
		/* Its reader is gone or stopped: stop making others wait
		 * for it.  What does not fit from now on is dropped. */
		q->stuck = true;
		vsw_release(sw, q);
	}
}

/* Entries from `from` on that the socket did not take (err): held for
 * q when they may pause their source, else dropped and counted. */
static void
vsw_tx_rest(struct vsw *sw, struct vsw_port *q, int from, int err)
{
	bool full = err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS;
	bool had = q->nbl > 0;
	struct vsw_txent *e;
	int i;

	for (i = from; i < q->ntx; i++) {
		e = &q->txq[i];
		if (!full)
			q->st.tx_error++;
		else if (q->kind != VSW_PORT_NIC || !e->pause)
			q->st.tx_full++;
		else {
			if (!vsw_backlog_add(q, e))
				q->st.tx_full++;
			if (!q->stuck)
				vsw_pause(sw, q, e->src);
		}
	}
	if (!had && q->nbl > 0) {
		q->bl_sent_ns = vclock_ns();	/* the stall clock starts */
		vsw_rewatch(sw, q);
	}
}

/* Account what the first `sent` entries carried; the rest as above. */
static void
vsw_tx_done(struct vsw *sw, struct vsw_port *q, int sent, int err)
{
	int i;

	for (i = 0; i < sent; i++) {
		q->st.tx_packets++;
		q->st.tx_bytes += q->txq[i].len;
	}
	if (sent < q->ntx)
		vsw_tx_rest(sw, q, sent, err);
}

static void
vsw_flush_port(struct vsw *sw, struct vsw_port *q)
{
	struct mmsghdr m[VSW_TXQ];
	int i, sent = 0, r, err = 0;
	int fd = q->kind == VSW_PORT_PEER ? sw->vxlan_fd : q->fd;

	if (q->kind == VSW_PORT_PCAP) {
		for (sent = 0; sent < q->ntx; sent++)
			if ((err = -vsw_pcap_xmit(q, &q->txq[sent])) != 0)
				break;
		vsw_tx_done(sw, q, sent, err);
		return;
	}
	if (q->kind == VSW_PORT_TAP) {
		/* A TAP takes one frame per write. */
		for (sent = 0; sent < q->ntx; sent++) {
			if (writev(fd, q->txq[sent].iov, q->txq[sent].niov) >= 0)
				continue;
			if ((err = errno) == EINTR)
				sent--;
			else
				break;
		}
		vsw_tx_done(sw, q, sent, err);
		return;
	}
	/* Held messages go first: nothing overtakes them. */
	if (q->nbl > 0 && (r = vsw_backlog_send(q)) < 0)
		vsw_backlog_drop(sw, q, true);
	if (q->nbl > 0) {
		vsw_tx_done(sw, q, 0, EAGAIN);
		return;
	}
	memset(m, 0, sizeof(m[0]) * (size_t)q->ntx);
	for (i = 0; i < q->ntx; i++) {
		m[i].msg_hdr.msg_iov = q->txq[i].iov;
		m[i].msg_hdr.msg_iovlen = (size_t)q->txq[i].niov;
		if (q->kind == VSW_PORT_PEER) {
			m[i].msg_hdr.msg_name = &q->addr;
			m[i].msg_hdr.msg_namelen = q->addrlen;
		}
	}
	while (sent < q->ntx && fd >= 0) {
		r = sendmmsg(fd, m + sent, (unsigned)(q->ntx - sent),
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r > 0) {
			sent += r;
			continue;
		}
		if ((err = errno) != EINTR)
			break;
	}
	vsw_tx_done(sw, q, sent, err);
}

void
vsw_flush(struct vsw *sw)
{
	struct vsw_port *q;
	int i;

	for (i = 0; i < sw->ndirty; i++) {
		q = sw->dirty[i];
		if (q->ntx > 0)
			vsw_flush_port(sw, q);
		q->ntx = 0;
		q->dirty = false;
	}
	sw->ndirty = 0;
	for (i = 0; i < sw->nscratch; i++)
		free(sw->scratch[i]);
	sw->nscratch = 0;
}

int
vsw_port_recv(struct vsw *sw, struct vsw_port *p)
{
	struct mmsghdr m[VSW_BATCH];
	struct iovec iov[VSW_BATCH];
	int i, n;

	memset(m, 0, sizeof(m));
	for (i = 0; i < VSW_BATCH; i++) {
		iov[i] = (struct iovec){ sw->rxbuf + (size_t)i * VSW_RXSZ,
		    VSW_RXSZ };
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	do
		n = recvmmsg(p->fd, m, VSW_BATCH, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	if (n == 0)
		return -EPIPE;
	for (i = 0; i < n; i++) {
		/* A zero-length message is how SEQPACKET says EOF (so a
		 * NIC must never send an empty one). */
		if (m[i].msg_len == 0) {
			vsw_flush(sw);
			return -EPIPE;
		}
		if (m[i].msg_hdr.msg_flags & MSG_TRUNC) {
			p->st.rx_malformed++;
			continue;
		}
		(void)vsw_port_input(sw, p, iov[i].iov_base, m[i].msg_len);
	}
	vsw_flush(sw);
	return n;
}
