/*
 * One VM's statistics: its numbers, the per-vCPU table and small
 * history graphs (sparklines) of CPU%, exits/s and disk and network
 * bytes/s.  The graphs are plain ASCII so they read the same on a vt100
 * as on anything newer.
 */
#include "tui/tui.h"

#include <curses.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "control/control_stats.h"

static const char tui_detail_levels[] = "_.:-=+*#";

void
tui_detail_spark(const double *hist, int hist_n, int at, double max,
    int width, char *buf, size_t len)
{
	int n = hist_n < width ? hist_n : width, i, pad;
	const int top = (int)sizeof(tui_detail_levels) - 2;

	if (len == 0)
		return;
	if (width >= (int)len)
		width = (int)len - 1;
	if (n > width)
		n = width;
	if (max <= 0)
		for (i = 0; i < n; i++)
			if (hist[((at - n + i) % TUI_HIST + TUI_HIST) % TUI_HIST]
			    > max)
				max = hist[((at - n + i) % TUI_HIST + TUI_HIST) %
				    TUI_HIST];
	/* Oldest on the left, newest at the right edge. */
	pad = width - n;
	memset(buf, ' ', (size_t)pad);
	for (i = 0; i < n; i++) {
		double v = hist[((at - n + i) % TUI_HIST + TUI_HIST) % TUI_HIST];
		int l = max > 0 ? (int)(v / max * top + 0.5) : 0;

		if (l > top)
			l = top;
		if (l < 1 && v > 0)
			l = 1;	/* busy at all shows */
		buf[pad + i] = tui_detail_levels[l < 0 ? 0 : l];
	}
	buf[width] = '\0';
}

static void
tui_detail_graph(const struct tui_vm *vm, int y, const char *title,
    const double *hist, double max, double now, const char *unit)
{
	char spark[512], label[64], rate[16];
	int w;

	control_stats_fmt_rate(now, rate, sizeof(rate));
	if (strcmp(unit, "B/s") == 0)	/* bytes: 1.5K, 12M */
		snprintf(label, sizeof(label), "%-8s %9s%s ", title, rate,
		    now < 0 ? "   " : unit);
	else
		snprintf(label, sizeof(label), "%-8s %9.1f%s ", title,
		    now < 0 ? 0 : now, unit);
	w = COLS - 1 - (int)strlen(label) - 2;
	mvaddnstr(y, 0, label, COLS - 1);
	if (w < 4)
		return;
	tui_detail_spark(hist, vm->hist_n, vm->hist_at, max, w, spark,
	    sizeof(spark));
	addch('|');
	addstr(spark);
	addch('|');
}

static double
tui_detail_num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : 0;
}

static void
tui_detail_vcpus(const struct tui_vm *vm, int y, int height)
{
	char line[256];
	json_t *v, *e;
	size_t i;

	snprintf(line, sizeof(line), "%4s %10s %12s %10s %10s %10s %10s",
	    "VCPU", "CPU-S", "EXITS", "PIO", "MMIO", "HLT", "INTR");
	attron(A_BOLD);
	mvaddnstr(y++, 0, line, COLS - 1);
	attroff(A_BOLD);
	json_array_foreach(json_object_get(vm->stats, "vcpus"), i, v) {
		if ((int)i >= height - 1)
			break;
		e = json_object_get(v, "exits");
		snprintf(line, sizeof(line), "%4.0f %10.2f %12.0f %10.0f "
		    "%10.0f %10.0f %10.0f", tui_detail_num(v, "id"),
		    tui_detail_num(v, "cpu_time"),
		    tui_detail_num(v, "exits_total"), tui_detail_num(e, "pio"),
		    tui_detail_num(e, "mmio"), tui_detail_num(e, "hlt"),
		    tui_detail_num(e, "intr"));
		mvaddnstr(y++, 0, line, COLS - 1);
	}
}

/* Its NICs: MAC, port group and link, as the VM reports it. */
static int
tui_detail_nics(const struct tui_vm *vm, int y)
{
	char line[256];

	snprintf(line, sizeof(line), "%-4s %-17s %-20s %s", "NIC", "MAC",
	    "PORT GROUP", "LINK");
	attron(A_BOLD);
	mvaddnstr(y++, 0, line, COLS - 1);
	attroff(A_BOLD);
	for (int i = 0; i < vm->nnics; i++) {
		const struct tui_nic *n = &vm->nics[i];

		snprintf(line, sizeof(line), "nic%-1d %-17s %-20s %s", i,
		    n->mac[0] ? n->mac : "(automatic)", n->portgroup,
		    n->link < 0 ? "?" : n->link ? "up" : "DOWN");
		mvaddnstr(y++, 0, line, COLS - 1);
	}
	return y + 1;
}

void
tui_detail_draw(const struct tui_vm *vm, int height)
{
	char line[256], mem[16], up[16];
	int y;
	double rate = vm->hist_n > 0 ? vm->exit_hist[(vm->hist_at + TUI_HIST -
	    1) % TUI_HIST] : -1;

	tui_vm_fmt_mem(vm->memory, mem, sizeof(mem));
	tui_vm_fmt_uptime(vm->fd >= 0 ? vm->uptime : -1, up, sizeof(up));
	snprintf(line, sizeof(line), "%s  %s  %d vCPU%s  %s  up %s", vm->name,
	    tui_vm_state_text(vm, tui_vm_now_ms()), vm->cpus, vm->cpus == 1 ? "" : "s",
	    mem, up);
	attron(A_BOLD);
	mvaddnstr(0, 0, line, COLS - 1);
	attroff(A_BOLD);
	if (vm->stats == NULL || vm->fd < 0) {
		mvaddnstr(2, 0, "No statistics: the VM is not running here.",
		    COLS - 1);
		return;
	}
	tui_detail_graph(vm, 2, "CPU%", vm->cpu_hist, 100.0 * (vm->cpus > 0 ?
	    vm->cpus : 1), vm->cpu_pct, "%");
	tui_detail_graph(vm, 3, "exits/s", vm->exit_hist, 0, rate, "");
	tui_detail_graph(vm, 4, "disk", vm->disk_hist, 0, vm->disk_rate, "B/s");
	tui_detail_graph(vm, 5, "net", vm->net_hist, 0, vm->net_rate, "B/s");
	y = 7;
	if (vm->nnics > 0 && height > 7 + vm->nnics + 1)
		y = tui_detail_nics(vm, y);
	if (height > y + 1)
		tui_detail_vcpus(vm, y, height - y);
}
