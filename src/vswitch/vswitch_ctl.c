/*
 * The switch's control socket: JSON lines, as a VM's (control.c).
 * Request {"id": ..., "cmd": "show"|"capture"|"reload"|"stop",
 * "args": {...}}; reply {"id", "ok": true, "result": {...}} or
 * {"id", "ok": false, "error": {"code", "message"}}.  A capture streams
 * {"event": "capture", ...} lines to the client that asked and ends
 * when its count is reached ({"event": "capture-done"}) or the client
 * hangs up.
 */
#include "vswitch/vswitch_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"
#include "util/sock.h"
#include "vswitch/vswitch_capture.h"

static void
vsw_ctl_watch(struct vsw_server *s, struct vsw_ctl *c)
{
	bool want = c->outlen > 0;
	struct epoll_event ev = {
		.events = EPOLLIN | (want ? EPOLLOUT : 0),
		.data.ptr = &c->ev,
	};

	if (want == c->want_out || c->ev.fd < 0)
		return;
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->ev.fd, &ev) < 0)
		c->dead = true;
	c->want_out = want;
}

void
vsw_ctl_write(struct vsw_server *s, struct vsw_ctl *c)
{
	if (c->ev.fd >= 0 && !sock_flush(c->ev.fd, c->out, &c->outlen)) {
		c->dead = true;
		return;
	}
	if (c->outlen == 0 && c->closing)
		c->dead = true;
	vsw_ctl_watch(s, c);
}

/* Queue one JSON line (reference stolen). */
static void
vsw_ctl_send(struct vsw_server *s, struct vsw_ctl *c, json_t *j)
{
	char *str = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	size_t n = str != NULL ? strlen(str) : 0, cap;
	char *nb;

	json_decref(j);
	if (str == NULL || c->dead)
		goto out;
	if (c->outlen + n + 1 > VSW_CTL_OUT_MAX) {
		c->dead = true;		/* it does not read its replies */
		goto out;
	}
	if (c->outlen + n + 1 > c->outcap) {
		for (cap = c->outcap ? c->outcap : 4096; cap < c->outlen + n + 1;)
			cap *= 2;
		if ((nb = realloc(c->out, cap)) == NULL) {
			c->dead = true;
			goto out;
		}
		c->out = nb;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, str, n);
	c->out[c->outlen + n] = '\n';
	c->outlen += n + 1;
	vsw_ctl_write(s, c);
out:
	free(str);
}

void
vsw_ctl_accept(struct vsw_server *s, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct vsw_ctl *c;

	if (s->nctls >= VSW_CTL_MAX || (c = calloc(1, sizeof(*c))) == NULL ||
	    (c->in = malloc(VSW_CTL_LINE_MAX + 1)) == NULL) {
		if (s->nctls < VSW_CTL_MAX)
			free(c);
		close(fd);
		return;
	}
	c->ev.kind = VSW_EV_CTL;
	c->ev.fd = fd;
	c->ev.ptr = c;
	ev.data.ptr = &c->ev;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(c->in);
		free(c);
		close(fd);
		return;
	}
	c->next = s->ctls;
	s->ctls = c;
	s->nctls++;
}

static json_t *
vsw_ctl_error(json_t *id, const char *code, const char *msg)
{
	return json_pack("{s:O, s:b, s:{s:s, s:s}}", "id", id ? id : json_null(),
	    "ok", 0, "error", "code", code, "message", msg);
}

static const char *
vsw_ctl_kind(enum vsw_port_kind k)
{
	switch (k) {
	case VSW_PORT_NIC: return "nic";
	case VSW_PORT_TAP: return "uplink";
	case VSW_PORT_PEER: return "peer";
	case VSW_PORT_PCAP: return "uplink";
	}
	return "?";
}

static void
vsw_ctl_mac(char *buf, const uint8_t m[6])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
	    m[3], m[4], m[5]);
}

static json_t *
vsw_ctl_port(struct vsw_server *s, const struct vsw_port *p, uint64_t now)
{
	const struct vsw_stats *st = &p->st;
	char mac[18];

	vsw_ctl_mac(mac, p->mac);
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I,"
	    " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
	    "id", p->id, "name", p->name, "kind", vsw_ctl_kind(p->kind),
	    "portgroup", p->pg >= 0 ? s->sw.pgs[p->pg].name : "",
	    "vm", p->vm, "nic", p->nic, "mac", p->kind == VSW_PORT_NIC ?
	    mac : "", "csum", (p->features & VSW_F_CSUM) != 0,
	    "gso", (p->features & VSW_F_GSO) != 0,
	    "uptime", (json_int_t)((now - p->since_ns) / 1000000000ull),
	    "counters", "rx_packets", (json_int_t)st->rx_packets,
	    "rx_bytes", (json_int_t)st->rx_bytes,
	    "tx_packets", (json_int_t)st->tx_packets,
	    "tx_bytes", (json_int_t)st->tx_bytes,
	    "rx_malformed", (json_int_t)st->rx_malformed,
	    "rx_vlan", (json_int_t)st->rx_vlan,
	    "tx_full", (json_int_t)st->tx_full,
	    "tx_offload", (json_int_t)st->tx_offload,
	    "tx_error", (json_int_t)st->tx_error,
	    "rx_shaped", (json_int_t)st->rx_shaped,
	    "tx_held", (json_int_t)st->tx_held,
	    "rx_paused", (json_int_t)st->rx_paused);
}

static json_t *
vsw_ctl_pg(struct vsw_server *s, int i)
{
	const struct vsw_pg *pg = &s->sw.pgs[i];
	json_t *ports = json_array(), *vlans = json_array();
	int p, v;

	for (p = 1; p < VSW_MAX_PORTS; p++)
		if (s->sw.ports[p] != NULL && s->sw.ports[p]->pg == i)
			json_array_append_new(ports, json_integer(p));
	for (v = 1; pg->trunk && v < 4095; v++)
		if (pg->vlans[v / 8] & (1u << (v % 8)))
			json_array_append_new(vlans, json_integer(v));
	return json_pack("{s:s, s:i, s:I, s:b, s:b, s:o, s:o, s:I, s:I, s:I, "
	    "s:I}", "name", pg->name, "vlan", pg->vlan, "vni",
	    (json_int_t)pg->vni, "trunk", pg->trunk, "automatic",
	    pg->automatic, "trunk_vlans", vlans, "ports", ports, "frames",
	    (json_int_t)pg->frames, "flooded", (json_int_t)pg->flooded,
	    "shape_bps", (json_int_t)pg->shape_bps, "shape_burst",
	    (json_int_t)pg->shape_burst);
}

static json_t *
vsw_ctl_macs(struct vsw_server *s, uint64_t now)
{
	const struct vsw_fdb *f = &s->sw.fdb;
	const struct vsw_fdb_ent *e;
	json_t *a = json_array();
	char mac[18];
	size_t b;

	for (b = 0; b < sizeof(f->buckets) / sizeof(f->buckets[0]); b++)
		for (e = f->buckets[b]; e != NULL; e = e->next) {
			if (now - e->seen_ns > f->aging_ns)
				continue;
			vsw_ctl_mac(mac, e->mac);
			json_array_append_new(a, json_pack("{s:s, s:s, s:i, "
			    "s:I}", "mac", mac, "portgroup",
			    s->sw.pgs[e->pg].name, "port", e->port, "age",
			    (json_int_t)((now - e->seen_ns) / 1000000000ull)));
		}
	return a;
}

json_t *
vsw_ctl_show(struct vsw_server *s)
{
	json_t *pgs = json_array(), *ports = json_array(), *peers;
	uint64_t now = vclock_ns();
	int i;

	for (i = 0; i < VSW_MAX_PG; i++)
		if (s->sw.pgs[i].used)
			json_array_append_new(pgs, vsw_ctl_pg(s, i));
	for (i = 1; i < VSW_MAX_PORTS; i++)
		if (s->sw.ports[i] != NULL)
			json_array_append_new(ports, vsw_ctl_port(s,
			    s->sw.ports[i], now));
	peers = json_pack("{s:i, s:I}", "port", s->sw.vxlan_fd >= 0 ?
	    s->sw.vxlan_port : 0, "unknown_sender",
	    (json_int_t)s->vxlan_unknown);
	return json_pack("{s:s, s:I, s:I, s:s, s:s, s:o, s:o, s:o, s:o, "
	    "s:{s:I, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
	    "switch", s->sw.name, "pid", (json_int_t)getpid(),
	    "uptime", (json_int_t)((now - s->start_ns) / 1000000000ull),
	    "socket", s->path, "uplink", s->uplink ? s->uplink->name : "",
	    "vxlan", peers, "portgroups", pgs, "ports", ports,
	    "macs", vsw_ctl_macs(s, now),
	    "counters", "mac_aging", (json_int_t)(s->sw.fdb.aging_ns /
	    1000000000ull), "macs", s->sw.fdb.count, "mac_max", VSW_FDB_MAX,
	    "mac_learned", (json_int_t)s->sw.fdb.learned,
	    "mac_moved", (json_int_t)s->sw.fdb.moved,
	    "mac_aged", (json_int_t)s->sw.fdb.aged,
	    "mac_table_full", (json_int_t)s->sw.fdb.full,
	    "hello_refused", (json_int_t)s->hello_bad,
	    "csum_completed", (json_int_t)s->sw.csum_done,
	    "gso_segmented", (json_int_t)s->sw.segmented);
}

static json_t *
vsw_ctl_capture(struct vsw_server *s, struct vsw_ctl *c, json_t *args,
    char *err, size_t errlen)
{
	const char *target = json_string_value(json_object_get(args,
	    "target"));
	const char *file = json_string_value(json_object_get(args, "file"));
	const char *filter = json_string_value(json_object_get(args,
	    "filter"));
	json_t *count = json_object_get(args, "count");
	long limit = json_is_integer(count) ? (long)json_integer_value(count) :
	    0;

	if (target == NULL || file == NULL || file[0] != '/' || limit < 0) {
		snprintf(err, errlen, "capture needs \"target\", \"file\" (an "
		    "absolute path) and maybe \"filter\", \"count\" >= 0");
		return NULL;
	}
	if (c->cap != NULL) {
		snprintf(err, errlen, "this connection captures already");
		return NULL;
	}
	if (vsw_capture_start(&s->sw, target, file, filter, limit, &c->cap,
	    err, errlen) < 0)
		return NULL;
	c->cap->owner = c;
	log_info("switch %s: capturing %s to %s%s%s", s->sw.name, target, file,
	    filter && filter[0] ? " filter " : "", filter ? filter : "");
	return json_pack("{s:s, s:s}", "target", target, "file", file);
}

json_t *
vsw_ctl_request(struct vsw_server *s, struct vsw_ctl *c, const char *line,
    size_t len)
{
	json_t *req, *id, *args, *res = NULL, *r;
	const char *cmd;
	char err[512] = "the command failed";
	json_error_t jerr;

	if ((req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL)
		return vsw_ctl_error(NULL, "parse-error", "not a JSON object");
	id = json_object_get(req, "id");
	args = json_object_get(req, "args");
	cmd = json_string_value(json_object_get(req, "cmd"));
	if (cmd == NULL || (args != NULL && !json_is_object(args))) {
		r = vsw_ctl_error(id, "invalid-request", "a request needs "
		    "\"cmd\" (a string) and maybe \"args\" (an object)");
		json_decref(req);
		return r;
	}
	if (strcmp(cmd, "show") == 0)
		res = vsw_ctl_show(s);
	else if (strcmp(cmd, "reload") == 0) {
		if (vsw_server_reload(s, err, sizeof(err)) == 0)
			res = json_object();
	} else if (strcmp(cmd, "stop") == 0) {
		s->stop = true;
		res = json_object();
	} else if (strcmp(cmd, "capture") == 0 && c != NULL)
		res = vsw_ctl_capture(s, c, args, err, sizeof(err));
	else if (strcmp(cmd, "capture-stop") == 0 && c != NULL) {
		/* Ends it at the reap: capture-done follows the reply. */
		if (c->cap != NULL)
			c->cap->done = true;
		res = json_object();
	}
	else
		snprintf(err, sizeof(err), "unknown command (show, capture, "
		    "capture-stop, reload, stop)");
	if (res == NULL)
		r = vsw_ctl_error(id, "failed", err);
	else
		r = json_pack("{s:O, s:b, s:o}", "id", id ? id : json_null(),
		    "ok", 1, "result", res);
	json_decref(req);
	return r;
}

static void
vsw_ctl_lines(struct vsw_server *s, struct vsw_ctl *c)
{
	size_t start = 0;
	char *nl;

	while (!c->dead && (nl = memchr(c->in + start, '\n',
	    c->inlen - start)) != NULL) {
		vsw_ctl_send(s, c, vsw_ctl_request(s, c, c->in + start,
		    (size_t)(nl - (c->in + start))));
		start = (size_t)(nl - c->in) + 1;
	}
	memmove(c->in, c->in + start, c->inlen - start);
	c->inlen -= start;
	if (c->inlen == VSW_CTL_LINE_MAX) {
		vsw_ctl_send(s, c, vsw_ctl_error(NULL, "line-too-long",
		    "request line too long"));
		c->closing = true;
		if (c->outlen == 0)
			c->dead = true;
	}
}

void
vsw_ctl_read(struct vsw_server *s, struct vsw_ctl *c)
{
	ssize_t n;

	if (c->dead || c->closing)
		return;
	n = recv(c->ev.fd, c->in + c->inlen, VSW_CTL_LINE_MAX - c->inlen,
	    MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->dead = true;		/* hung up: its capture ends */
		return;
	}
	c->inlen += (size_t)n;
	vsw_ctl_lines(s, c);
}

/* Progress of captures, and the end of those that reached their count
 * or lost their port. */
void
vsw_ctl_tick(struct vsw_server *s)
{
	struct vsw_ctl *c;

	for (c = s->ctls; c != NULL; c = c->next) {
		if (c->cap == NULL || c->dead)
			continue;
		if (c->cap->done) {
			vsw_ctl_send(s, c, json_pack("{s:s, s:I, s:I}", "event",
			    "capture-done", "written", (json_int_t)
			    c->cap->written, "seen", (json_int_t)c->cap->seen));
			vsw_capture_stop(&s->sw, c->cap);
			c->cap = NULL;
			c->closing = true;
			if (c->outlen == 0)
				c->dead = true;
		} else if (c->cap->written != c->cap_reported) {
			c->cap_reported = c->cap->written;
			vsw_ctl_send(s, c, json_pack("{s:s, s:I, s:I}", "event",
			    "capture", "written", (json_int_t)c->cap->written,
			    "seen", (json_int_t)c->cap->seen));
		}
	}
}

static void
vsw_ctl_free(struct vsw_server *s, struct vsw_ctl *c)
{
	if (c->cap != NULL)
		vsw_capture_stop(&s->sw, c->cap);
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->ev.fd, NULL);
	close(c->ev.fd);
	free(c->in);
	free(c->out);
	free(c);
	s->nctls--;
}

void
vsw_ctl_reap(struct vsw_server *s)
{
	struct vsw_ctl **pp = &s->ctls, *c;

	while ((c = *pp) != NULL) {
		/* A capture that hit its count ends now, not at the tick. */
		if (c->cap != NULL && c->cap->done && !c->dead)
			vsw_ctl_tick(s);
		if (c->dead) {
			*pp = c->next;
			vsw_ctl_free(s, c);
		} else {
			pp = &c->next;
		}
	}
}

void
vsw_ctl_close_all(struct vsw_server *s)
{
	struct vsw_ctl *c;

	while ((c = s->ctls) != NULL) {
		s->ctls = c->next;
		vsw_ctl_free(s, c);
	}
}
