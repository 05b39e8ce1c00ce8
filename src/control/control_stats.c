/*
 * Statistics for people: rates from two "stats" replies, the `vm stats`
 * table, and `vm stats --watch`.
 *
 * Rates come from counter differences over the VM's own uptime (not our
 * clock), so a slow reply does not show as a burst.  A counter that goes
 * back (a guest reset builds new vCPUs and devices) gives "unknown" for
 * one sample rather than a negative rate.
 */
#include "control/control_stats.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control/control_client.h"
#include "util/log.h"

#define CONTROL_STATS_PERIOD	1000	/* ms between samples */
#define CONTROL_STATS_TIMEOUT	5000	/* ms for a reply */

static double
control_stats_num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : 0;
}

/* Sums over a stats reply: CPU seconds (-1 if a vCPU has none), exits,
 * and per kind of device bytes in/out and operations; ndisk/nnet count
 * the devices. */
struct control_stats_sum {
	double cpu, exits, up;
	double disk_rd, disk_wr, disk_ops, net_rx, net_tx, net_pkts;
	int ndisk, nnet;
};

static void
control_stats_sum(json_t *r, struct control_stats_sum *s)
{
	json_t *v;
	size_t i;

	memset(s, 0, sizeof(*s));
	s->up = json_is_number(json_object_get(r, "uptime")) ?
	    control_stats_num(r, "uptime") : -1;
	json_array_foreach(json_object_get(r, "vcpus"), i, v) {
		if (!json_is_number(json_object_get(v, "cpu_time")))
			s->cpu = -1;
		else if (s->cpu >= 0)
			s->cpu += control_stats_num(v, "cpu_time");
		s->exits += control_stats_num(v, "exits_total");
	}
	json_array_foreach(json_object_get(r, "devices"), i, v) {
		const char *kind = json_string_value(json_object_get(v, "kind"));
		double rx = control_stats_num(v, "rx_bytes");
		double tx = control_stats_num(v, "tx_bytes");
		double ops = control_stats_num(v, "rx_ops") +
		    control_stats_num(v, "tx_ops");

		if (kind != NULL && strcmp(kind, "disk") == 0) {
			s->disk_rd += rx;
			s->disk_wr += tx;
			s->disk_ops += ops;
			s->ndisk++;
		} else if (kind != NULL && strcmp(kind, "net") == 0) {
			s->net_rx += rx;
			s->net_tx += tx;
			s->net_pkts += ops;
			s->nnet++;
		}
	}
}

/* (b - a) / dt, or -1 when the counter went back or there is none. */
static double
control_stats_rate(double a, double b, double dt, bool have)
{
	if (!have || b < a || dt <= 0)
		return -1;
	return (b - a) / dt;
}

int
control_stats_rates(json_t *prev, json_t *cur, struct control_rates *r)
{
	struct control_stats_sum a, b;
	double dt;

	control_stats_sum(cur, &b);
	*r = (struct control_rates){ -1, -1, -1, -1, -1, -1, -1, -1, -1 };
	/* No device of a kind: unknown; one that moved nothing: 0. */
	if (b.ndisk > 0)
		r->disk_rd = r->disk_wr = r->disk_ops = 0;
	if (b.nnet > 0)
		r->net_rx = r->net_tx = r->net_pkts = 0;
	if (prev == NULL)
		return -1;
	control_stats_sum(prev, &a);
	dt = b.up - a.up;
	if (a.up < 0 || b.up < 0 || dt < 0.05) {
		if (b.ndisk > 0 || b.nnet > 0)
			r->disk_rd = r->disk_wr = r->disk_ops = r->net_rx =
			    r->net_tx = r->net_pkts = -1;
		return -1;
	}
	r->interval = dt;
	r->cpu_pct = control_stats_rate(a.cpu, b.cpu, dt, a.cpu >= 0 &&
	    b.cpu >= 0);
	if (r->cpu_pct >= 0)
		r->cpu_pct *= 100;
	r->exits = control_stats_rate(a.exits, b.exits, dt, true);
	r->disk_rd = control_stats_rate(a.disk_rd, b.disk_rd, dt, b.ndisk > 0);
	r->disk_wr = control_stats_rate(a.disk_wr, b.disk_wr, dt, b.ndisk > 0);
	r->disk_ops = control_stats_rate(a.disk_ops, b.disk_ops, dt,
	    b.ndisk > 0);
	r->net_rx = control_stats_rate(a.net_rx, b.net_rx, dt, b.nnet > 0);
	r->net_tx = control_stats_rate(a.net_tx, b.net_tx, dt, b.nnet > 0);
	r->net_pkts = control_stats_rate(a.net_pkts, b.net_pkts, dt,
	    b.nnet > 0);
	return 0;
}

void
control_stats_fmt_rate(double bps, char *buf, size_t len)
{
	static const char units[] = "KMGTP";
	double v = bps / 1024;
	int u = 0;

	if (bps < 0) {
		snprintf(buf, len, "-");
		return;
	}
	if (bps < 1024) {
		snprintf(buf, len, "%.0f", bps);
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
}

static long long
control_stats_int(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static void
control_stats_pct(double pct, char *buf, size_t len)
{
	if (pct < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", pct);
}

static void
control_stats_devices(FILE *f, json_t *r, const struct control_rates *rt)
{
	json_t *d, *devs = json_object_get(r, "devices");
	size_t i;

	if (json_array_size(devs) == 0)
		return;
	fprintf(f, "%-12s %-4s %12s %12s %9s %9s %6s\n", "device", "kind",
	    "rd/rx-bytes", "wr/tx-bytes", "rd/rx-ops", "wr/tx-ops", "errors");
	json_array_foreach(devs, i, d)
		fprintf(f, "%-12s %-4s %12lld %12lld %9lld %9lld %6lld\n",
		    json_string_value(json_object_get(d, "name")),
		    json_string_value(json_object_get(d, "kind")),
		    control_stats_int(d, "rx_bytes"),
		    control_stats_int(d, "tx_bytes"),
		    control_stats_int(d, "rx_ops"),
		    control_stats_int(d, "tx_ops"),
		    control_stats_int(d, "errors"));
	if (rt == NULL)
		return;
	char a[16], b[16], c[16], e[16];

	control_stats_fmt_rate(rt->disk_rd, a, sizeof(a));
	control_stats_fmt_rate(rt->disk_wr, b, sizeof(b));
	control_stats_fmt_rate(rt->net_rx, c, sizeof(c));
	control_stats_fmt_rate(rt->net_tx, e, sizeof(e));
	fprintf(f, "disk: read %s/s, written %s/s, %.0f ops/s; net: "
	    "received %s/s, sent %s/s, %.0f frames/s\n", a, b,
	    rt->disk_ops < 0 ? 0 : rt->disk_ops, c, e,
	    rt->net_pkts < 0 ? 0 : rt->net_pkts);
}

void
control_stats_print(FILE *f, json_t *r, const struct control_rates *rt)
{
	char pct[16];
	json_t *v;
	size_t i;

	fprintf(f, "%s: %s, up %.1f s, memory %lld MiB",
	    json_string_value(json_object_get(r, "name")),
	    json_string_value(json_object_get(r, "state")),
	    control_stats_num(r, "uptime"), control_stats_int(r, "memory") >> 20);
	if (rt != NULL) {
		control_stats_pct(rt->cpu_pct, pct, sizeof(pct));
		fprintf(f, ", CPU %s, %.0f exits/s", pct, rt->exits < 0 ? 0 :
		    rt->exits);
	}
	fputc('\n', f);
	fprintf(f, "%4s %10s %10s %9s %9s %9s %9s %9s\n", "vcpu", "cpu-s",
	    "exits", "pio", "mmio", "hlt", "intr", "assists");
	json_array_foreach(json_object_get(r, "vcpus"), i, v) {
		json_t *e = json_object_get(v, "exits");

		fprintf(f, "%4lld %10.2f %10lld %9lld %9lld %9lld %9lld %9lld\n",
		    control_stats_int(v, "id"), control_stats_num(v, "cpu_time"),
		    control_stats_int(v, "exits_total"),
		    control_stats_int(e, "pio"), control_stats_int(e, "mmio"),
		    control_stats_int(e, "hlt"), control_stats_int(e, "intr"),
		    control_stats_int(v, "assists"));
	}
	control_stats_devices(f, r, rt);
}

void
control_stats_line(FILE *f, json_t *r, const struct control_rates *rt)
{
	char t[16], pct[16], a[16], b[16], c[16], d[16];
	time_t now = time(NULL);
	struct tm tm;

	strftime(t, sizeof(t), "%H:%M:%S", localtime_r(&now, &tm));
	control_stats_pct(rt->cpu_pct, pct, sizeof(pct));
	control_stats_fmt_rate(rt->disk_rd, a, sizeof(a));
	control_stats_fmt_rate(rt->disk_wr, b, sizeof(b));
	control_stats_fmt_rate(rt->net_rx, c, sizeof(c));
	control_stats_fmt_rate(rt->net_tx, d, sizeof(d));
	fprintf(f, "%s %s %s cpu %s exits/s %.0f disk-rd/s %s disk-wr/s %s "
	    "net-rx/s %s net-tx/s %s\n", t,
	    json_string_value(json_object_get(r, "name")),
	    json_string_value(json_object_get(r, "state")), pct,
	    rt->exits < 0 ? 0 : rt->exits, a, b, c, d);
}

static volatile sig_atomic_t control_stats_quit;

static void
control_stats_on_signal(int sig)
{
	control_stats_quit = 1;
}

/* Show one sample as the output wants it. */
static void
control_stats_show(json_t *cur, const struct control_rates *rt, bool tty,
    bool json)
{
	char *s;

	if (json) {
		if ((s = json_dumps(cur, JSON_COMPACT)) != NULL)
			puts(s);
		free(s);
	} else if (tty) {
		fputs("\033[H\033[2J", stdout);	/* home, clear: as watch(1) */
		control_stats_print(stdout, cur, rt);
		fputs("\n(refreshed every second; Ctrl-C quits)\n", stdout);
	} else {
		control_stats_line(stdout, cur, rt);
	}
	fflush(stdout);
}

int
control_stats_watch(struct control_conn *cc, const char *name, bool json)
{
	struct sigaction sa = { .sa_handler = control_stats_on_signal };
	bool tty = isatty(STDOUT_FILENO);
	struct control_rates rt;
	json_t *prev = NULL, *cur;
	char err[512];
	int r, status = 0;

	/* No SA_RESTART: the wait between samples ends at once. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!control_stats_quit) {
		r = control_client_call(cc, "stats", NULL,
		    CONTROL_STATS_TIMEOUT, &cur, err, sizeof(err));
		if (r < 0) {
			if (control_stats_quit)
				break;
			if (r == -EPIPE || r == -ECONNRESET) {
				printf("%s: the VM shut down\n", name);
			} else {
				log_warnx("%s: %s", name, err);
				status = 1;
			}
			break;
		}
		control_stats_rates(prev, cur, &rt);
		control_stats_show(cur, &rt, tty, json);
		json_decref(prev);
		prev = cur;
		poll(NULL, 0, CONTROL_STATS_PERIOD);
	}
	json_decref(prev);
	return status;
}
