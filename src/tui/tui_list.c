/*
 * The VM list: one row per VM, columns that shrink and then drop out on
 * narrow terminals (NAME keeps at least a few characters; VNC goes
 * first, then UPTIME, NET, DISK and CPUS).  DISK and NET are bytes per
 * second, read and written or received and sent together.
 */
#include "tui/tui.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "control/control_stats.h"

static const char *const tui_list_titles[TUI_COLS] = {
	"NAME", "STATE", "CPUS", "MEMORY", "CPU%", "DISK", "NET", "UPTIME",
	"VNC",
};
/* Natural widths ("unresponsive", "1.5G", "199.5", "12.3M", "12m03s",
 * "127.0.0.1:5901"); NAME is flexible between its min and max. */
static const int tui_list_widths[TUI_COLS] = { 0, 12, 4, 6, 5, 5, 5, 7,
	14 };
/* Which column goes first when the screen is too narrow. */
static const int tui_list_drop[] = { TUI_COL_VNC, TUI_COL_UPTIME,
	TUI_COL_NET, TUI_COL_DISK, TUI_COL_CPUS, TUI_COL_CPU, TUI_COL_MEMORY };
#define TUI_LIST_NAME_MIN	8
#define TUI_LIST_NAME_MAX	32

/* Room the fixed columns take, a space before each. */
static int
tui_list_fixed(const int widths[TUI_COLS])
{
	int sum = 0;

	for (int c = 1; c < TUI_COLS; c++)
		if (widths[c] > 0)
			sum += widths[c] + 1;
	return sum;
}

void
tui_list_layout(int cols, int widths[TUI_COLS])
{
	size_t d = 0;
	int name;

	memcpy(widths, tui_list_widths, sizeof(tui_list_widths));
	/* One column spare at the right: writing the last cell of a
	 * line would scroll some terminals. */
	cols--;
	while (cols - tui_list_fixed(widths) < TUI_LIST_NAME_MIN &&
	    d < sizeof(tui_list_drop) / sizeof(*tui_list_drop))
		widths[tui_list_drop[d++]] = 0;
	name = cols - tui_list_fixed(widths);
	if (name > TUI_LIST_NAME_MAX)
		name = TUI_LIST_NAME_MAX;
	if (name < 1)
		name = 1;
	widths[TUI_COL_NAME] = name;
	/* STATE shrinks last, and never below "stopped" */
	if (cols - tui_list_fixed(widths) < name && widths[TUI_COL_STATE] > 7)
		widths[TUI_COL_STATE] = 7;
}

void
tui_list_fit(const char *s, int w, char *buf, size_t len)
{
	size_t n = strlen(s);

	if (w <= 0 || len == 0) {
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	if ((size_t)w >= len)
		w = (int)len - 1;
	if (n <= (size_t)w) {
		snprintf(buf, len, "%s", s);
		return;
	}
	memcpy(buf, s, (size_t)w - 1);
	buf[w - 1] = '~';
	buf[w] = '\0';
}

/* Append cell s in a column of width w (right-aligned if right). */
static void
tui_list_cell(char *buf, size_t len, const char *s, int w, bool right,
    bool first)
{
	char cut[256];
	size_t at = strlen(buf);

	if (w <= 0 || at >= len)
		return;
	tui_list_fit(s, w, cut, sizeof(cut));
	snprintf(buf + at, len - at, right ? "%s%*s" : "%s%-*s",
	    first ? "" : " ", w, cut);
}

static void
tui_list_cells(const char *const cells[TUI_COLS],
    const int widths[TUI_COLS], char *buf, size_t len)
{
	buf[0] = '\0';
	for (int c = 0; c < TUI_COLS; c++)
		tui_list_cell(buf, len, cells[c], widths[c],
		    c != TUI_COL_NAME && c != TUI_COL_STATE && c != TUI_COL_VNC,
		    c == 0);
}

void
tui_list_header(const int widths[TUI_COLS], char *buf, size_t len)
{
	tui_list_cells(tui_list_titles, widths, buf, len);
}

void
tui_list_row(const struct tui_vm *vm, const int widths[TUI_COLS], char *buf,
    size_t len)
{
	char cpus[16], mem[16], pct[16], up[16], disk[16], net[16];
	bool live = vm->fd >= 0 && vm->greeted;
	const char *cells[TUI_COLS];

	snprintf(cpus, sizeof(cpus), vm->cpus > 0 ? "%d" : "-", vm->cpus);
	tui_vm_fmt_mem(vm->memory, mem, sizeof(mem));
	tui_vm_fmt_pct(live ? vm->cpu_pct : -1, pct, sizeof(pct));
	tui_vm_fmt_uptime(live ? vm->uptime : -1, up, sizeof(up));
	control_stats_fmt_rate(live ? vm->disk_rate : -1, disk, sizeof(disk));
	control_stats_fmt_rate(live ? vm->net_rate : -1, net, sizeof(net));
	cells[TUI_COL_NAME] = vm->name;
	cells[TUI_COL_STATE] = vm->config_ok || vm->state != TUI_VM_STOPPED ?
	    tui_vm_state_text(vm, tui_vm_now_ms()) : "bad config";
	cells[TUI_COL_CPUS] = cpus;
	cells[TUI_COL_MEMORY] = mem;
	cells[TUI_COL_CPU] = pct;
	cells[TUI_COL_DISK] = disk;
	cells[TUI_COL_NET] = net;
	cells[TUI_COL_UPTIME] = up;
	cells[TUI_COL_VNC] = live && vm->vnc_addr[0] ? vm->vnc_addr : "-";
	tui_list_cells(cells, widths, buf, len);
}

/* Colour pair for a state (1 good, 2 bad, 3 in between); 0 none. */
static int
tui_list_pair(enum tui_vm_state s)
{
	switch (s) {
	case TUI_VM_RUNNING:
		return 1;
	case TUI_VM_STALE:
	case TUI_VM_UNRESPONSIVE:
	case TUI_VM_PANICKED:
		return 2;
	case TUI_VM_PAUSED:
	case TUI_VM_STARTING:
	case TUI_VM_STOPPING:
	case TUI_VM_OTHER:
		return 3;
	default:
		return 0;
	}
}

void
tui_list_draw(const struct tui_model *m, int y, int height, int sel,
    bool color)
{
	int widths[TUI_COLS], top = 0, i;
	char line[1024];

	tui_list_layout(COLS, widths);
	tui_list_header(widths, line, sizeof(line));
	attron(A_BOLD);
	mvaddnstr(y, 0, line, COLS - 1);
	attroff(A_BOLD);
	if (--height <= 0)
		return;
	y++;
	if (m->nvms == 0) {
		mvaddnstr(y, 0, "No VMs in the datastore (termvisor vm create "
		    "NAME --kernel FILE).", COLS - 1);
		return;
	}
	if (sel >= height)
		top = sel - height + 1;
	for (i = top; i < m->nvms && i - top < height; i++) {
		const struct tui_vm *vm = &m->vms[i];
		int pair = color ? tui_list_pair(vm->state) : 0;
		/* Without colour an error state is bold. */
		attr_t a = (i == sel ? A_REVERSE : 0) |
		    (pair ? COLOR_PAIR(pair) : 0) | (!color &&
		    tui_vm_state_bad(vm->state) ? A_BOLD : 0);

		tui_list_row(vm, widths, line, sizeof(line));
		attron(a);
		mvaddnstr(y + i - top, 0, line, COLS - 1);
		attroff(a);
	}
}
