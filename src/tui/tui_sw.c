/*
 * The dashboard's switch view: the host's switches (configured in the
 * datastore or listening in the runtime directory), their port groups
 * and ports with packet and byte rates, and captures to pcap files.
 *
 * As with the VMs, nothing here waits for a switch: its control socket
 * is non-blocking and read when the main loop's poll says so; a show
 * unanswered after TUI_VM_TIMEOUT_MS makes it "unresponsive".  A capture
 * lives on a connection of its own, since the switch ends it when that
 * connection closes (and closes the connection once it ends).
 */
#include "tui/tui.h"

#include <curses.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/control_stats.h"
#include "vswitch/vswitch_capture.h"
#include "vswitch/vswitch_conf.h"
#include "util/sock.h"
#include "vswitch/vswitch_server.h"

#define TUI_SW_MAX	16	/* switches shown */
#define TUI_SW_LINE	(1024 * 1024)	/* a show of 256 ports fits */

static const char *const tui_sw_state_names[] = {
	[TUI_SW_STOPPED] = "stopped", [TUI_SW_RUNNING] = "running",
	[TUI_SW_UNRESPONSIVE] = "unresponsive",
};

double
tui_sw_rate(double before, double now, long long dt_ms)
{
	if (before < 0 || now < before || dt_ms < 50)
		return -1;
	return (now - before) * 1000.0 / (double)dt_ms;
}

/* --- connections --- */

static void
tui_sw_close(struct tui_sw_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}

/* Connect to switch name's control socket without waiting: 0, or
 * -errno (-EAGAIN: its backlog is full, it does not accept). */
static int
tui_sw_connect(const char *name, struct tui_sw_conn *c)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;

	if (vsw_server_paths(name, path, sizeof(path), NULL, 0, NULL, 0) < 0)
		return -ENAMETOOLONG;
	if (c->buf == NULL && (c->buf = malloc(TUI_SW_LINE)) == NULL)
		return -ENOMEM;
	if ((fd = sock_connect_unix(path)) < 0)
		return fd;
	c->fd = fd;
	c->len = 0;
	return 0;
}

/* Send one request (args stolen); false when it could not go whole. */
static bool
tui_sw_send(struct tui_sw_conn *c, int id, const char *cmd, json_t *args)
{
	/* "args" an object or nothing: the switch refuses a null. */
	json_t *req = json_pack("{s:i, s:s, s:o}", "id", id, "cmd", cmd,
	    "args", args != NULL ? args : json_object());
	char *s = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	ssize_t w = -1;
	size_t n;

	json_decref(req);
	if (s == NULL || c->fd < 0) {
		free(s);
		return false;
	}
	n = strlen(s);
	s[n] = '\n';
	w = send(c->fd, s, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(s);
	return w == (ssize_t)(n + 1);
}

/* Read what c has: 1 with whole lines in c->buf, 0 nothing yet, -1
 * closed or broken (a line longer than we take). */
static int
tui_sw_read(struct tui_sw_conn *c)
{
	ssize_t n;

	if (c->fd < 0)
		return -1;
	n = read(c->fd, c->buf + c->len, TUI_SW_LINE - c->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	if (c->len == TUI_SW_LINE && memchr(c->buf, '\n', c->len) == NULL)
		return -1;
	return 1;
}

/* The next whole line as JSON (NULL: none; *bad set for a non-object). */
static json_t *
tui_sw_line(struct tui_sw_conn *c, bool *bad)
{
	char *nl = c->fd >= 0 ? memchr(c->buf, '\n', c->len) : NULL;
	size_t n;
	json_t *j;

	*bad = false;
	if (nl == NULL)
		return NULL;
	n = (size_t)(nl - c->buf);
	j = json_loadb(c->buf, n, 0, NULL);
	memmove(c->buf, nl + 1, c->len - n - 1);
	c->len -= n + 1;
	if (!json_is_object(j)) {
		json_decref(j);
		*bad = true;
		return NULL;
	}
	return j;
}

/* --- the show --- */

static const char *
tui_sw_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

static double
tui_sw_num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : 0;
}

static const struct tui_sw_port *
tui_sw_port_was(const struct tui_sw *sw, int id, const char *name)
{
	for (int i = 0; i < sw->nports; i++)
		if (sw->ports[i].id == id && strcmp(sw->ports[i].name,
		    name) == 0)
			return &sw->ports[i];
	return NULL;
}

void
tui_sw_show(struct tui_sw *sw, json_t *r, long long now)
{
	json_t *pgs = json_object_get(r, "portgroups");
	json_t *ports = json_object_get(r, "ports"), *v, *c;
	struct tui_sw_port *np;
	struct tui_sw_pg *ng;
	long long dt = sw->sample_ms > 0 ? now - sw->sample_ms : 0;
	size_t i, n;

	n = json_array_size(ports);
	if ((np = calloc(n + 1, sizeof(*np))) == NULL)
		return;
	json_array_foreach(ports, i, v) {
		struct tui_sw_port *p = &np[i];
		const struct tui_sw_port *o;

		c = json_object_get(v, "counters");
		p->id = (int)tui_sw_num(v, "id");
		snprintf(p->name, sizeof(p->name), "%s", tui_sw_str(v, "name"));
		snprintf(p->kind, sizeof(p->kind), "%s", tui_sw_str(v, "kind"));
		snprintf(p->portgroup, sizeof(p->portgroup), "%s",
		    tui_sw_str(v, "portgroup"));
		snprintf(p->mac, sizeof(p->mac), "%s", tui_sw_str(v, "mac"));
		p->rx_packets = tui_sw_num(c, "rx_packets");
		p->tx_packets = tui_sw_num(c, "tx_packets");
		p->rx_bytes = tui_sw_num(c, "rx_bytes");
		p->tx_bytes = tui_sw_num(c, "tx_bytes");
		/* Frames the switch did not pass on, whatever the cause. */
		p->drops = tui_sw_num(c, "rx_malformed") + tui_sw_num(c,
		    "tx_full") + tui_sw_num(c, "tx_error") + tui_sw_num(c,
		    "rx_shaped");
		o = tui_sw_port_was(sw, p->id, p->name);
		p->rx_pps = tui_sw_rate(o ? o->rx_packets : -1, p->rx_packets,
		    dt);
		p->tx_pps = tui_sw_rate(o ? o->tx_packets : -1, p->tx_packets,
		    dt);
		p->rx_bps = tui_sw_rate(o ? o->rx_bytes : -1, p->rx_bytes, dt);
		p->tx_bps = tui_sw_rate(o ? o->tx_bytes : -1, p->tx_bytes, dt);
	}
	free(sw->ports);
	sw->ports = np;
	sw->nports = (int)n;

	n = json_array_size(pgs);
	if ((ng = calloc(n + 1, sizeof(*ng))) == NULL)
		return;
	json_array_foreach(pgs, i, v) {
		snprintf(ng[i].name, sizeof(ng[i].name), "%s",
		    tui_sw_str(v, "name"));
		ng[i].vlan = (int)tui_sw_num(v, "vlan");
		ng[i].trunk = json_is_true(json_object_get(v, "trunk"));
		ng[i].nports = (int)json_array_size(json_object_get(v,
		    "ports"));
	}
	free(sw->pgs);
	sw->pgs = ng;
	sw->npgs = (int)n;
	sw->pid = (long long)tui_sw_num(r, "pid");
	sw->uptime = (long long)tui_sw_num(r, "uptime");
	snprintf(sw->uplink, sizeof(sw->uplink), "%s", tui_sw_str(r,
	    "uplink"));
	sw->sample_ms = now;
}

static void
tui_sw_forget(struct tui_sw *sw)
{
	tui_sw_close(&sw->c);
	sw->pending = false;
	sw->sample_ms = 0;
	free(sw->ports);
	free(sw->pgs);
	sw->ports = NULL;
	sw->pgs = NULL;
	sw->nports = sw->npgs = 0;
}

static void
tui_sw_set_state(struct tui_model *m, struct tui_sw *sw,
    enum tui_sw_state s)
{
	if (sw->state != s)
		m->dirty = true;
	sw->state = s;
}

/* --- captures --- */

static void
tui_sw_cap_end(struct tui_model *m, struct tui_sw *sw, const char *why)
{
	if (why != NULL)
		tui_vm_msg(m, "switch %s: capture of %s %s", sw->name,
		    sw->cap_target, why);
	tui_sw_close(&sw->cap);
	sw->cap_on = sw->cap_stopping = false;
	m->dirty = true;
}

static void
tui_sw_cap_lines(struct tui_model *m, struct tui_sw *sw)
{
	const char *ev;
	char why[PATH_MAX + 64];
	bool bad;
	json_t *j;

	while ((j = tui_sw_line(&sw->cap, &bad)) != NULL) {
		ev = json_string_value(json_object_get(j, "event"));
		if (ev == NULL && json_integer_value(json_object_get(j,
		    "id")) == 1) {
			if (json_is_true(json_object_get(j, "ok"))) {
				sw->cap_on = true;
				tui_vm_msg(m, "switch %s: capturing %s to %s",
				    sw->name, sw->cap_target, sw->cap_file);
			} else {
				snprintf(why, sizeof(why), "failed: %s",
				    tui_sw_str(json_object_get(j, "error"),
				    "message"));
				json_decref(j);
				tui_sw_cap_end(m, sw, why);
				return;
			}
		} else if (ev != NULL && (strcmp(ev, "capture") == 0 ||
		    strcmp(ev, "capture-done") == 0)) {
			sw->cap_written = (long long)tui_sw_num(j, "written");
			sw->cap_seen = (long long)tui_sw_num(j, "seen");
			m->dirty = true;
			if (strcmp(ev, "capture-done") == 0) {
				snprintf(why, sizeof(why), "ended: %lld frames "
				    "written to %s", sw->cap_written,
				    sw->cap_file);
				json_decref(j);
				tui_sw_cap_end(m, sw, why);
				return;
			}
		}
		json_decref(j);
	}
	if (bad)
		tui_sw_cap_end(m, sw, "ended: the switch said something "
		    "that is not JSON");
}

void
tui_sw_capture(struct tui_model *m, struct tui_sw *sw, const char *target,
    const char *file, const char *filter)
{
	char err[512], cwd[PATH_MAX];
	int r;

	if (sw->cap.fd >= 0) {
		tui_vm_msg(m, "switch %s: a capture of %s runs (C stops it)",
		    sw->name, sw->cap_target);
		return;
	}
	if (vsw_capture_check_filter(filter, err, sizeof(err)) < 0) {
		tui_vm_msg(m, "%s", err);
		return;
	}
	/* The switch opens the file: it needs the whole path. */
	if (file[0] == '/')
		r = snprintf(sw->cap_file, sizeof(sw->cap_file), "%s", file);
	else if (getcwd(cwd, sizeof(cwd)) != NULL)
		r = snprintf(sw->cap_file, sizeof(sw->cap_file), "%s/%s", cwd,
		    file);
	else
		r = -1;
	if (r < 0 || r >= (int)sizeof(sw->cap_file)) {
		tui_vm_msg(m, "%s: path too long", file);
		return;
	}
	snprintf(sw->cap_target, sizeof(sw->cap_target), "%s", target);
	if ((r = tui_sw_connect(sw->name, &sw->cap)) < 0) {
		tui_vm_msg(m, "switch %s: cannot connect: %s", sw->name,
		    strerror(-r));
		return;
	}
	sw->cap_written = sw->cap_seen = 0;
	sw->cap_on = sw->cap_stopping = false;
	if (!tui_sw_send(&sw->cap, 1, "capture", json_pack("{s:s, s:s, s:s}",
	    "target", target, "file", sw->cap_file, "filter", filter))) {
		tui_sw_cap_end(m, sw, "failed: the switch does not read");
		return;
	}
	tui_vm_msg(m, "switch %s: capture of %s to %s...", sw->name, target,
	    sw->cap_file);
}

void
tui_sw_capture_stop(struct tui_model *m, struct tui_sw *sw)
{
	if (sw->cap.fd < 0)
		return;
	/* The switch ends it, writes the rest and says capture-done. */
	if (!tui_sw_send(&sw->cap, 2, "capture-stop", NULL)) {
		tui_sw_cap_end(m, sw, "ended (the switch does not read)");
		return;
	}
	sw->cap_stopping = true;
	tui_vm_msg(m, "switch %s: stopping the capture of %s...", sw->name,
	    sw->cap_target);
}

/* --- the model --- */

static void
tui_sw_show_reply(struct tui_model *m, struct tui_sw *sw)
{
	bool bad;
	json_t *j;

	while ((j = tui_sw_line(&sw->c, &bad)) != NULL) {
		if (json_integer_value(json_object_get(j, "id")) != 1) {
			json_decref(j);
			continue;
		}
		sw->pending = false;
		if (json_is_true(json_object_get(j, "ok"))) {
			tui_sw_show(sw, json_object_get(j, "result"),
			    tui_vm_now_ms());
			tui_sw_set_state(m, sw, TUI_SW_RUNNING);
			m->dirty = true;
		}
		json_decref(j);
	}
	if (bad) {
		tui_sw_forget(sw);
		tui_sw_set_state(m, sw, TUI_SW_UNRESPONSIVE);
	}
}

void
tui_sw_input(struct tui_model *m, struct tui_sw *sw, int fd)
{
	if (fd == sw->cap.fd) {
		if (tui_sw_read(&sw->cap) < 0) {
			tui_sw_cap_lines(m, sw);
			if (sw->cap.fd >= 0)
				tui_sw_cap_end(m, sw, "ended: the switch "
				    "closed the connection");
			return;
		}
		tui_sw_cap_lines(m, sw);
		return;
	}
	if (fd != sw->c.fd)
		return;
	if (tui_sw_read(&sw->c) < 0) {
		/* It went away: the next tick says whether it is back. */
		tui_sw_forget(sw);
		tui_sw_set_state(m, sw, TUI_SW_STOPPED);
		return;
	}
	tui_sw_show_reply(m, sw);
}

static struct tui_sw *
tui_sw_find(struct tui_model *m, const char *name)
{
	for (int i = 0; i < m->nsws; i++)
		if (strcmp(m->sws[i].name, name) == 0)
			return &m->sws[i];
	return NULL;
}

static void
tui_sw_add(struct tui_model *m, const char *name)
{
	struct tui_sw *n, *sw;

	if ((sw = tui_sw_find(m, name)) != NULL) {
		sw->seen = true;
		return;
	}
	if (m->nsws >= TUI_SW_MAX || vsw_conf_name_valid(name) != 0 ||
	    (n = realloc(m->sws, sizeof(*n) * (size_t)(m->nsws + 1))) == NULL)
		return;
	m->sws = n;
	sw = &m->sws[m->nsws++];
	memset(sw, 0, sizeof(*sw));
	snprintf(sw->name, sizeof(sw->name), "%s", name);
	sw->c.fd = sw->cap.fd = -1;
	sw->seen = true;
	m->dirty = true;
}

/* Switches named by "dir/NAME<suffix>" entries. */
static void
tui_sw_scan_dir(struct tui_model *m, const char *path, const char *suffix)
{
	char dir[PATH_MAX], name[64], *slash;
	size_t n, sl = strlen(suffix);
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		return;
	*slash = '\0';
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n <= sl || n - sl >= sizeof(name) ||
		    strcmp(de->d_name + n - sl, suffix) != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - sl),
		    de->d_name);
		tui_sw_add(m, name);
	}
	closedir(d);
}

static int
tui_sw_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tui_sw *)a)->name,
	    ((const struct tui_sw *)b)->name);
}

static void
tui_sw_scan(struct tui_model *m)
{
	char path[PATH_MAX];
	int i, j;

	for (i = 0; i < m->nsws; i++)
		m->sws[i].seen = false;
	if (vsw_conf_path(m->ds, VSW_DEFAULT_SWITCH, path, sizeof(path)) == 0)
		tui_sw_scan_dir(m, path, ".conf");
	if (vsw_server_paths(VSW_DEFAULT_SWITCH, path, sizeof(path), NULL, 0,
	    NULL, 0) == 0)
		tui_sw_scan_dir(m, path, ".vswitch.ctl");
	for (i = j = 0; i < m->nsws; i++) {
		struct tui_sw *sw = &m->sws[i];

		/* A capture keeps its switch in the list till it ends. */
		if (sw->seen || sw->cap.fd >= 0 || sw->c.fd >= 0) {
			m->sws[j++] = *sw;
			continue;
		}
		tui_sw_forget(sw);
		free(sw->c.buf);
		free(sw->cap.buf);
		m->dirty = true;
	}
	m->nsws = j;
	if (m->nsws > 1)	/* qsort wants a non-NULL array even of 0 */
		qsort(m->sws, (size_t)m->nsws, sizeof(*m->sws), tui_sw_cmp);
}

static void
tui_sw_poll(struct tui_model *m, struct tui_sw *sw)
{
	long long now = tui_vm_now_ms();
	int r;

	if (sw->c.fd < 0) {
		r = tui_sw_connect(sw->name, &sw->c);
		if (r == -EAGAIN)
			tui_sw_set_state(m, sw, TUI_SW_UNRESPONSIVE);
		else if (r < 0)
			tui_sw_set_state(m, sw, TUI_SW_STOPPED);
		if (r < 0)
			return;
		sw->pending = false;
	}
	if (sw->pending) {
		if (now - sw->sent_ms > TUI_VM_TIMEOUT_MS)
			tui_sw_set_state(m, sw, TUI_SW_UNRESPONSIVE);
		return;
	}
	if (!tui_sw_send(&sw->c, 1, "show", NULL)) {
		/* It does not read its socket: as good as hung. */
		tui_sw_forget(sw);
		tui_sw_set_state(m, sw, TUI_SW_UNRESPONSIVE);
		return;
	}
	sw->pending = true;
	sw->sent_ms = now;
}

void
tui_sw_tick(struct tui_model *m)
{
	tui_sw_scan(m);
	for (int i = 0; i < m->nsws; i++) {
		if (m->sw_watch)
			tui_sw_poll(m, &m->sws[i]);
		else if (m->sws[i].c.fd >= 0 && !m->sws[i].pending)
			tui_sw_forget(&m->sws[i]);	/* nobody looks */
	}
}

void
tui_sw_free(struct tui_model *m)
{
	for (int i = 0; i < m->nsws; i++) {
		tui_sw_forget(&m->sws[i]);
		tui_sw_close(&m->sws[i].cap);
		free(m->sws[i].c.buf);
		free(m->sws[i].cap.buf);
	}
	free(m->sws);
	m->sws = NULL;
	m->nsws = 0;
}

/* --- the view --- */

int
tui_sw_rows(const struct tui_model *m, struct tui_sw_row *rows, int max)
{
	int n = 0, s, g, p;

#define TUI_SW_ROW(sw_, k_, i_) do {					\
	if (n < max)							\
		rows[n++] = (struct tui_sw_row){ (sw_), (k_), (i_) };	\
} while (0)
	for (s = 0; s < m->nsws; s++) {
		const struct tui_sw *sw = &m->sws[s];

		TUI_SW_ROW(s, 's', -1);
		for (g = 0; g < sw->npgs; g++) {
			TUI_SW_ROW(s, 'g', g);
			for (p = 0; p < sw->nports; p++)
				if (strcmp(sw->ports[p].portgroup,
				    sw->pgs[g].name) == 0)
					TUI_SW_ROW(s, 'p', p);
		}
		/* Ports of no group we know (a trunk peer, an uplink). */
		for (p = 0; p < sw->nports; p++) {
			for (g = 0; g < sw->npgs; g++)
				if (strcmp(sw->ports[p].portgroup,
				    sw->pgs[g].name) == 0)
					break;
			if (g == sw->npgs)
				TUI_SW_ROW(s, 'p', p);
		}
	}
#undef TUI_SW_ROW
	return n;
}

/* Columns: NAME, KIND (vlan, nic, uplink), MAC, RX/TX packets/s, RX/TX
 * bytes/s, DROPS; MAC goes first on a narrow screen, then DROPS. */
enum { TUI_SWC_NAME, TUI_SWC_KIND, TUI_SWC_MAC, TUI_SWC_RXP, TUI_SWC_TXP,
	TUI_SWC_RXB, TUI_SWC_TXB, TUI_SWC_DROP, TUI_SWCS };
static const char *const tui_sw_titles[TUI_SWCS] = {
	"SWITCH/GROUP/PORT", "KIND", "MAC", "RXpk/s", "TXpk/s", "RX B/s",
	"TX B/s", "DROPS",
};
static const int tui_sw_widths[TUI_SWCS] = { 0, 8, 17, 6, 6, 6, 6, 6 };

static void
tui_sw_layout(int cols, int w[TUI_SWCS])
{
	static const int drop[] = { TUI_SWC_MAC, TUI_SWC_DROP, TUI_SWC_KIND,
		TUI_SWC_TXP, TUI_SWC_RXP };
	size_t d = 0;
	int fixed, c;

	memcpy(w, tui_sw_widths, sizeof(tui_sw_widths));
	for (;;) {
		for (fixed = 0, c = 1; c < TUI_SWCS; c++)
			fixed += w[c] > 0 ? w[c] + 1 : 0;
		/* NAME keeps room for "  lan:net0" and such */
		if (cols - 1 - fixed >= 16 || d >= sizeof(drop) / sizeof(*drop))
			break;
		w[drop[d++]] = 0;
	}
	w[TUI_SWC_NAME] = cols - 1 - fixed < 1 ? 1 : cols - 1 - fixed > 32 ?
	    32 : cols - 1 - fixed;
}

static void
tui_sw_cells(const char *const cells[TUI_SWCS], int cols, char *buf,
    size_t len)
{
	int w[TUI_SWCS];
	char cut[256];
	size_t at;

	tui_sw_layout(cols, w);
	buf[0] = '\0';
	for (int c = 0; c < TUI_SWCS; c++) {
		if (w[c] <= 0 || (at = strlen(buf)) >= len)
			continue;
		tui_list_fit(cells[c], w[c], cut, sizeof(cut));
		snprintf(buf + at, len - at, c >= TUI_SWC_RXP ? "%s%*s" :
		    "%s%-*s", c == 0 ? "" : " ", w[c], cut);
	}
}

void
tui_sw_header(int cols, char *buf, size_t len)
{
	tui_sw_cells(tui_sw_titles, cols, buf, len);
}

static void
tui_sw_fmt_pps(double v, char *buf, size_t len)
{
	if (v < 0)
		snprintf(buf, len, "-");
	else if (v < 10000)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.0fk", v / 1000);
}

void
tui_sw_row_text(const struct tui_model *m, const struct tui_sw_row *r,
    int cols, char *buf, size_t len)
{
	const struct tui_sw *sw = &m->sws[r->sw];
	char name[96], kind[32], mac[32], rxp[16], txp[16], rxb[16], txb[16];
	char drops[16], up[16];
	const char *cells[TUI_SWCS] = { name, kind, mac, rxp, txp, rxb, txb,
	    drops };
	double v[5] = { 0, 0, 0, 0, 0 };
	bool known = false;
	int p;

	if (r->kind == 's') {
		/* A line of its own, not in the columns. */
		tui_vm_fmt_uptime(sw->state == TUI_SW_RUNNING ?
		    (double)sw->uptime : -1, up, sizeof(up));
		snprintf(buf, len, "%s  %s", sw->name,
		    tui_sw_state_names[sw->state]);
		if (sw->state == TUI_SW_RUNNING)
			snprintf(buf + strlen(buf), len - strlen(buf),
			    "  up %s  uplink %s  %d port%s",
			    up, sw->uplink[0] ? sw->uplink : "none",
			    sw->nports, sw->nports == 1 ? "" : "s");
		if (sw->cap.fd >= 0)
			snprintf(buf + strlen(buf), len - strlen(buf),
			    "  [capture %s: %lld]", sw->cap_target,
			    sw->cap_written);
		return;
	}
	if (r->kind == 'g') {
		const struct tui_sw_pg *g = &sw->pgs[r->i];

		snprintf(name, sizeof(name), "  %s", g->name);
		if (g->trunk)
			snprintf(kind, sizeof(kind), "trunk");
		else if (g->vlan > 0)
			snprintf(kind, sizeof(kind), "vlan %d", g->vlan);
		else
			snprintf(kind, sizeof(kind), "no vlan");
		snprintf(mac, sizeof(mac), "%d port%s", g->nports,
		    g->nports == 1 ? "" : "s");
		/* The group's rates: its ports' together. */
		for (p = 0; p < sw->nports; p++) {
			const struct tui_sw_port *o = &sw->ports[p];

			if (strcmp(o->portgroup, g->name) != 0)
				continue;
			if (o->rx_pps >= 0) {
				known = true;
				v[0] += o->rx_pps;
				v[1] += o->tx_pps;
				v[2] += o->rx_bps;
				v[3] += o->tx_bps;
			}
			v[4] += o->drops;
		}
		if (!known)
			v[0] = v[1] = v[2] = v[3] = -1;
	} else {
		const struct tui_sw_port *o = &sw->ports[r->i];

		snprintf(name, sizeof(name), "    %s", o->name);
		snprintf(kind, sizeof(kind), "%s", o->kind);
		snprintf(mac, sizeof(mac), "%s", o->mac[0] ? o->mac : "-");
		v[0] = o->rx_pps;
		v[1] = o->tx_pps;
		v[2] = o->rx_bps;
		v[3] = o->tx_bps;
		v[4] = o->drops;
	}
	tui_sw_fmt_pps(v[0], rxp, sizeof(rxp));
	tui_sw_fmt_pps(v[1], txp, sizeof(txp));
	control_stats_fmt_rate(v[2], rxb, sizeof(rxb));
	control_stats_fmt_rate(v[3], txb, sizeof(txb));
	snprintf(drops, sizeof(drops), "%.0f", v[4]);
	tui_sw_cells(cells, cols, buf, len);
}

void
tui_sw_draw(const struct tui_model *m, int height, int sel, bool color)
{
	struct tui_sw_row rows[512];
	int n = tui_sw_rows(m, rows, 512), top = 0, i;
	char line[1024];

	snprintf(line, sizeof(line), "termvisor switches: %d  (rates per "
	    "second; w or Esc: back to the VMs)", m->nsws);
	mvaddnstr(0, 0, line, COLS - 1);
	if (height < 3)
		return;
	tui_sw_header(COLS, line, sizeof(line));
	attron(A_BOLD);
	mvaddnstr(2, 0, line, COLS - 1);
	attroff(A_BOLD);
	height -= 3;
	if (n == 0) {
		mvaddnstr(3, 0, "No switch: none is configured in the datastore "
		    "or running (termvisor switch run).", COLS - 1);
		return;
	}
	if (sel >= height)
		top = sel - height + 1;
	for (i = top; i < n && i - top < height; i++) {
		const struct tui_sw *sw = &m->sws[rows[i].sw];
		attr_t a = i == sel ? A_REVERSE : 0;

		if (rows[i].kind == 's') {
			a |= A_BOLD;
			if (color && sw->state != TUI_SW_STOPPED)
				a |= COLOR_PAIR(sw->state == TUI_SW_RUNNING ?
				    1 : 2);
		}
		tui_sw_row_text(m, &rows[i], COLS, line, sizeof(line));
		attron(a);
		mvaddnstr(3 + i - top, 0, line, COLS - 1);
		attroff(a);
	}
}
