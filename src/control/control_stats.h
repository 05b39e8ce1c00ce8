/*
 * A VM's statistics as people read them: rates between two "stats"
 * replies (CPU%, exits/s, disk and network bytes/s), the table `termvisor
 * vm stats` prints, and `vm stats --watch`, which refreshes it every
 * second.  The dashboard computes its rates here too.
 */
#ifndef TV_CONTROL_STATS_H
#define TV_CONTROL_STATS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct control_conn;

/* Rates between two stats replies; -1 where unknown (no earlier sample,
 * a counter that went back after a reset, or no such device). */
struct control_rates {
	double interval;	/* s of uptime between the samples */
	double cpu_pct;		/* % of one host CPU, all vCPUs */
	double exits;		/* per second, all vCPUs */
	double disk_rd, disk_wr;	/* bytes/s, all disks */
	double disk_ops;	/* requests/s */
	double net_rx, net_tx;	/* bytes/s, all NICs */
	double net_pkts;	/* frames/s */
};

/* Fill r from prev (older, may be NULL) and cur; 0, or -1 when the two
 * cannot give rates (r is then all -1 but what cur alone says). */
int control_stats_rates(json_t *prev, json_t *cur, struct control_rates *r);
/* Bytes per second as "0", "512", "1.5K", "12M"...; "-" for unknown. */
void control_stats_fmt_rate(double bps, char *buf, size_t len);
/* The table of `vm stats`: the VM, its vCPUs, its devices; with rates
 * non-NULL, the rates too. */
void control_stats_print(FILE *f, json_t *r, const struct control_rates *rt);
/* One line for a log: time, state and the rates. */
void control_stats_line(FILE *f, json_t *r, const struct control_rates *rt);

/*
 * `vm stats NAME --watch`: ask for stats every second and show them,
 * redrawn in place on a terminal (as top) or one line a sample
 * otherwise (json: each reply as a JSON line), until SIGINT/SIGTERM (exit
 * 0) or the VM goes away (0 when it shut down, 1 when it stopped
 * answering).
 */
int control_stats_watch(struct control_conn *cc, const char *name,
    bool json);

#endif
