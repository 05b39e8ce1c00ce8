/*
 * Rates from two stats replies (what vm stats --watch and the dashboard
 * show), their formatting, and the vm stats table.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_stats.h"

TestSuite(control_stats, .timeout = 10);

/* A stats reply: uptime, two vCPUs' time and exits, a disk and a NIC. */
static json_t *
sample(double up, double cpu, long exits, long disk_rd, long disk_wr,
    long net_rx, long net_tx)
{
	return json_pack("{s:s, s:s, s:I, s:f, s:[{s:i, s:f, s:I}, {s:i, "
	    "s:f, s:I}], s:[{s:s, s:s, s:I, s:I, s:I, s:I, s:I}, {s:s, s:s, "
	    "s:I, s:I, s:I, s:I, s:I}]}", "name", "t1", "state", "running",
	    "memory", (json_int_t)64 << 20, "uptime", up,
	    "vcpus", "id", 0, "cpu_time", cpu / 2, "exits_total",
	    (json_int_t)exits / 2, "id", 1, "cpu_time", cpu / 2,
	    "exits_total", (json_int_t)exits / 2,
	    "devices", "name", "vda", "kind", "disk", "rx_bytes",
	    (json_int_t)disk_rd, "tx_bytes", (json_int_t)disk_wr, "rx_ops",
	    (json_int_t)disk_rd / 512, "tx_ops", (json_int_t)disk_wr / 512,
	    "errors", (json_int_t)0, "name", "net0", "kind", "net",
	    "rx_bytes", (json_int_t)net_rx, "tx_bytes", (json_int_t)net_tx,
	    "rx_ops", (json_int_t)net_rx / 100, "tx_ops", (json_int_t)net_tx /
	    100, "errors", (json_int_t)0);
}

Test(control_stats, rates_from_two_samples)
{
	json_t *a = sample(10, 1.0, 100, 0, 0, 1000, 0);
	json_t *b = sample(12, 2.0, 300, 4096, 1024, 3000, 400);
	struct control_rates r;

	cr_assert_not_null(a);
	cr_assert_eq(control_stats_rates(a, b, &r), 0);
	cr_assert_float_eq(r.interval, 2, 1e-9);
	cr_assert_float_eq(r.cpu_pct, 50, 1e-9, "1 CPU-second in 2 s");
	cr_assert_float_eq(r.exits, 100, 1e-9);
	cr_assert_float_eq(r.disk_rd, 2048, 1e-9);
	cr_assert_float_eq(r.disk_wr, 512, 1e-9);
	cr_assert_float_eq(r.disk_ops, 5, 1e-9, "(8 + 2) requests in 2 s");
	cr_assert_float_eq(r.net_rx, 1000, 1e-9);
	cr_assert_float_eq(r.net_tx, 200, 1e-9);
	cr_assert_float_eq(r.net_pkts, 12, 1e-9);
	json_decref(a);
	json_decref(b);
}

Test(control_stats, unknown_without_an_earlier_sample_or_after_a_reset)
{
	json_t *a = sample(10, 5.0, 1000, 8192, 0, 0, 0);
	json_t *b = sample(11, 0.5, 10, 512, 0, 0, 0);	/* new vCPUs, disk */
	json_t *none = json_pack("{s:f, s:[], s:[]}", "uptime", 3.0, "vcpus",
	    "devices");
	struct control_rates r;

	cr_assert_eq(control_stats_rates(NULL, a, &r), -1);
	cr_assert_lt(r.cpu_pct, 0);
	cr_assert_float_eq(r.disk_rd, 0, 1e-9, "a disk that is there: 0");
	cr_assert_eq(control_stats_rates(a, b, &r), 0);
	cr_assert_lt(r.cpu_pct, 0, "CPU time went back: unknown");
	cr_assert_lt(r.exits, 0);
	cr_assert_lt(r.disk_rd, 0);
	cr_assert_float_eq(r.net_rx, 0, 1e-9, "a NIC that moved nothing: 0");
	cr_assert_eq(control_stats_rates(a, a, &r), -1, "no time between");
	cr_assert_eq(control_stats_rates(none, none, &r), -1);
	cr_assert_lt(r.disk_rd, 0, "no disk: unknown, not 0");
	cr_assert_lt(r.net_rx, 0);
	json_decref(a);
	json_decref(b);
	json_decref(none);
}

static const char *
rate(double bps)
{
	static char buf[32];

	control_stats_fmt_rate(bps, buf, sizeof(buf));
	return buf;
}

Test(control_stats, rate_format)
{
	cr_assert_str_eq(rate(-1), "-");
	cr_assert_str_eq(rate(0), "0");
	cr_assert_str_eq(rate(512), "512");
	cr_assert_str_eq(rate(1536), "1.5K");
	cr_assert_str_eq(rate(12 << 20), "12M");
	cr_assert_str_eq(rate(3.5 * (1 << 30)), "3.5G");
}

Test(control_stats, the_table_shows_vcpus_devices_and_rates)
{
	json_t *a = sample(10, 1.0, 100, 0, 0, 0, 0);
	json_t *b = sample(11, 1.5, 200, 3 << 20, 0, 2048, 0);
	struct control_rates r;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	control_stats_rates(a, b, &r);
	control_stats_print(f, b, &r);
	control_stats_line(f, b, &r);
	fclose(f);
	cr_assert(strstr(out, "t1: running, up 11.0 s, memory 64 MiB, CPU "
	    "50.0%, 100 exits/s") != NULL, "%s", out);
	cr_assert(strstr(out, "vda ") != NULL, "%s", out);
	cr_assert(strstr(out, "net0 ") != NULL, "%s", out);
	cr_assert(strstr(out, "disk: read 3.0M/s, written 0/s") != NULL, "%s",
	    out);
	cr_assert(strstr(out, "received 2.0K/s") != NULL, "%s", out);
	cr_assert(strstr(out, " t1 running cpu 50.0% exits/s 100 disk-rd/s "
	    "3.0M disk-wr/s 0 net-rx/s 2.0K net-tx/s 0\n") != NULL, "%s", out);
	free(out);
	json_decref(a);
	json_decref(b);
}
