/*
 * The dashboard's main loop, after tmux: input, timers, signals and the
 * VMs' sockets only change the model and set dirty flags; the screen is
 * drawn once per pass of the poll loop, through the same window, so
 * curses sends only what changed (good over a slow SSH link).  SIGWINCH
 * goes through a self-pipe and is debounced into one relayout.
 */
#include "tui/tui.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "util/log.h"
#include "vmfs/vmfs.h"

#define TUI_TICK_MS	1000
#define TUI_RESIZE_MS	50	/* SIGWINCH quiet time before a relayout */
#define TUI_MAX_FDS	256	/* XXX VMs past this many are polled late */
#define TUI_OUTQ_MAX	2048	/* bytes still queued for the terminal */
#define TUI_DEFER_MS	100	/* ... make a redraw wait this long */

struct tui {
	struct tui_model m;
	int sel;
	bool help;		/* the ? page is shown */
	char detail[64];	/* the VM whose statistics are shown, or "" */
	char console[64];	/* the VM whose console is shown, or "" */
	int confirm;		/* 'F' or 'r' waiting for y/n, else 0 */
	char confirm_vm[64];
	struct tui_prompt prompt;	/* open when prompt.what != 0 */
	bool sw_view;		/* the switch view is shown */
	int sw_sel;		/* its selected row */
	bool color;
	bool quit;
	long long next_tick, resize_at;	/* ms; resize_at 0: none */
	long long draw_at;	/* ms: a deferred redraw, 0 none */
};

static int tui_sigpipe[2] = { -1, -1 };

/* SIGWINCH, and the signals that end us: into the self-pipe, so the
 * loop relayouts or leaves through endwin (never a raw-mode terminal). */
static void
tui_sigcatch(int sig)
{
	int e = errno;

	if (write(tui_sigpipe[1], sig == SIGWINCH ? "w" : "q", 1) < 0) {
		/* full pipe: a pass to read it is on its way anyway */
	}
	errno = e;
}

/* One screen at 80x24: 22 lines and the help line's two. */
static const char *const tui_help[] = {
	"termvisor dashboard                        (any key goes back)",
	"  Up/Down, k/j  select a VM",
	"  s  start the VM (termvisor run, detached; output in NAME.log)",
	"  S  stop (the ACPI power button)    F  force stop: power off (y/n)",
	"  p  pause, or resume a paused VM    r  reset (asks y/n)",
	"  t  take a snapshot (asks its name; Esc cancels any question)",
	"  m  migrate: asks ssh://HOST or tcp://HOST:PORT, whether to copy the",
	"     disks too (y/N), then for tcp:// the secret (hidden; @FILE: a file)",
	"  X  cancel the VM's migration (until it switches over)",
	"  l  toggle a NIC's link up/down (asks which, if it has several)",
	"  Enter, d  its statistics, graphs and NICs (again or Esc: back)",
	"  c  its serial console, live; keys go to the guest; Ctrl-] back",
	"  w, Tab  the switch view: switches, port groups, ports, rates;",
	"     C there captures the selected group or port to a pcap file",
	"     (asks the file and a BPF filter); C again stops; w, Esc: back",
	"  ?  this page                       q  quit (the VMs keep running)",
	"",
	"States: running, paused, stopped, starting, stopping; panicked (the",
	"guest panicked); stale (died, left its socket or lock); unresponsive",
	"(no answer in 3 s); locked (lock held, no socket here: another host);",
	"a state this version does not know is shown as the VM says it.",
};

/* The host summary: CPUs, memory committed to live VMs, datastore space. */
static void
tui_draw_host(struct tui *t)
{
	char used[16], total[16], avail[16], size[16], line[256];
	uint64_t committed = 0, ram = 0;
	struct statvfs sv;
	struct sysinfo si;

	for (int i = 0; i < t->m.nvms; i++)
		/* A locked VM runs on another host: not our memory. */
		if (t->m.vms[i].state != TUI_VM_STOPPED &&
		    t->m.vms[i].state != TUI_VM_STALE &&
		    t->m.vms[i].state != TUI_VM_LOCKED)
			committed += t->m.vms[i].memory;
	if (sysinfo(&si) == 0)
		ram = (uint64_t)si.totalram * si.mem_unit;
	tui_vm_fmt_mem(committed, used, sizeof(used));
	tui_vm_fmt_mem(ram, total, sizeof(total));
	if (committed == 0)
		snprintf(used, sizeof(used), "0");
	if (statvfs(t->m.ds, &sv) == 0) {
		tui_vm_fmt_mem((uint64_t)sv.f_bavail * sv.f_frsize, avail,
		    sizeof(avail));
		tui_vm_fmt_mem((uint64_t)sv.f_blocks * sv.f_frsize, size,
		    sizeof(size));
	} else {
		snprintf(avail, sizeof(avail), "?");
		snprintf(size, sizeof(size), "?");
	}
	snprintf(line, sizeof(line), "termvisor  %ld CPUs  mem %s/%s "
	    "committed  datastore %s free of %s  %d VMs",
	    sysconf(_SC_NPROCESSORS_ONLN), used, total, avail, size,
	    t->m.nvms);
	if ((int)strlen(line) > COLS - 1)	/* the same, tighter */
		snprintf(line, sizeof(line), "%ld CPUs  mem %s/%s  disk %s "
		    "free", sysconf(_SC_NPROCESSORS_ONLN), used, total, avail);
	mvaddnstr(0, 0, line, COLS - 1);
}

static void
tui_draw_bottom(struct tui *t)
{
	const char *keys = COLS > 78 ? "s/S/F/p/r  t snap  m migr  X cancel "
	    " l link  w switches  ? help  q quit" : COLS > 58 ?
	    "s/S/F/p/r/t/m/X/l  w switches  ? help  q quit" :
	    "s/S/F/p/r/t/m/X/l/w  ? help  q quit";

	if (t->console[0] != '\0')
		keys = "Ctrl-] back to the list (keys go to the guest)";
	else if (t->sw_view)
		keys = COLS > 60 ? "Up/Down select  C capture/stop  w VMs  "
		    "? help  q quit" : "C capture  w VMs  ? help  q quit";
	char line[512];

	if (t->prompt.what != 0)
		keys = "Enter confirm  Esc cancel";
	if (t->confirm != 0)
		snprintf(line, sizeof(line), "%s %s? (y/n)", t->confirm == 'F' ?
		    "Force stop" : "Reset", t->confirm_vm);
	else if (t->prompt.what != 0)
		/* A secret is never drawn, not even its length. */
		snprintf(line, sizeof(line), "%s for %s: %s_",
		    tui_prompt_label(t->prompt.what), t->prompt.vm,
		    t->prompt.what == TUI_PROMPT_SECRET ? "" : t->prompt.text);
	else
		snprintf(line, sizeof(line), "%s", t->m.msg);
	if (t->confirm != 0 || t->prompt.what != 0)
		attron(A_BOLD);
	mvaddnstr(LINES - 2, 0, line, COLS - 1);
	attroff(A_BOLD);
	attron(A_REVERSE);
	mvaddnstr(LINES - 1, 0, keys, COLS - 1);
	attroff(A_REVERSE);
}

/* VM name, if it is still in the datastore. */
static struct tui_vm *
tui_named(struct tui *t, const char *name)
{
	for (int i = 0; i < t->m.nvms; i++)
		if (strcmp(t->m.vms[i].name, name) == 0)
			return &t->m.vms[i];
	return NULL;
}

static struct tui_vm *
tui_detail_vm(struct tui *t)
{
	return tui_named(t, t->detail);
}

static void
tui_draw(struct tui *t)
{
	erase();
	if (t->help) {
		for (size_t i = 0; i < sizeof(tui_help) / sizeof(*tui_help) &&
		    (int)i < LINES; i++)
			mvaddnstr((int)i, 0, tui_help[i], COLS - 1);
	} else if (t->console[0] != '\0' && tui_named(t, t->console) != NULL) {
		tui_console_draw(tui_named(t, t->console), LINES - 2);
		if (LINES > 2)
			tui_draw_bottom(t);
	} else if (t->sw_view) {
		tui_sw_draw(&t->m, LINES - 2, t->sw_sel, t->color);
		if (LINES > 2)
			tui_draw_bottom(t);
	} else if (t->detail[0] != '\0' && tui_detail_vm(t) != NULL) {
		tui_detail_draw(tui_detail_vm(t), LINES - 2);
		if (LINES > 2)
			tui_draw_bottom(t);
	} else {
		tui_draw_host(t);
		if (LINES > 4)
			tui_list_draw(&t->m, 2, LINES - 4, t->sel, t->color);
		if (LINES > 2)
			tui_draw_bottom(t);
	}
	move(LINES - 1, 0);
	refresh();
	t->m.dirty = false;
}

static struct tui_vm *
tui_selected(struct tui *t)
{
	if (t->m.nvms == 0) {
		tui_vm_msg(&t->m, "no VM selected");
		return NULL;
	}
	return &t->m.vms[t->sel];
}

/* The detail view follows the selection. */
static void
tui_follow(struct tui *t)
{
	if (t->detail[0] != '\0' && t->sel < t->m.nvms)
		snprintf(t->detail, sizeof(t->detail), "%s",
		    t->m.vms[t->sel].name);
	t->m.dirty = true;
}

/* A y/n answer to a confirmation. */
static void
tui_key_confirm(struct tui *t, int ch)
{
	int what = t->confirm;
	struct tui_vm *vm = NULL;

	t->confirm = 0;
	t->m.dirty = true;
	for (int i = 0; i < t->m.nvms; i++)
		if (strcmp(t->m.vms[i].name, t->confirm_vm) == 0)
			vm = &t->m.vms[i];
	if (ch != 'y' && ch != 'Y') {
		tui_vm_msg(&t->m, "cancelled");
		return;
	}
	if (vm == NULL)
		return;
	if (what == 'F')
		tui_vm_command(&t->m, vm, "stop", true);
	else
		tui_vm_command(&t->m, vm, "reset", false);
}

/* The secret's answer: run `termvisor migrate -s FILE`, FILE being the
 * one named (@FILE) or a pipe holding the typed secret (/dev/fd/3 in
 * the job): never on a command line, never in a file. */
static void
tui_prompt_run_secret(struct tui *t, struct tui_vm *vm)
{
	struct tui_prompt *p = &t->prompt;
	const char *argv[16], *file;
	char what[300];
	int pfd[2] = { -1, -1 };

	tui_prompt_secret(p, &file);
	if (file == NULL) {
		if (pipe2(pfd, O_CLOEXEC) < 0) {
			tui_vm_msg(&t->m, "%s: pipe: %s", vm->name,
			    strerror(errno));
			return;
		}
		/* At most 255 bytes: a pipe takes them without waiting. */
		if (write(pfd[1], p->text, p->len) != (ssize_t)p->len ||
		    write(pfd[1], "\n", 1) != 1) {
			tui_vm_msg(&t->m, "%s: cannot pass the secret: %s",
			    vm->name, strerror(errno));
			close(pfd[0]);
			close(pfd[1]);
			return;
		}
		close(pfd[1]);
		file = "/dev/fd/3";
	}
	if (tui_prompt_migrate_argv(vm->name, p->ctx, file, p->copy_storage,
	    argv, 16) < 0) {
		tui_vm_msg(&t->m, "%s: not a secret file: %s", vm->name, file);
		if (pfd[0] >= 0)
			close(pfd[0]);
		return;
	}
	snprintf(what, sizeof(what), "migrate to %s%s", p->ctx,
	    p->copy_storage ? " with its disks" : "");
	tui_vm_job_fd(&t->m, vm, what, argv, pfd[0]);
}

/* Open the next question of a migration: dest and the disks' answer go
 * along. */
static void
tui_prompt_next(struct tui_prompt *p, int what, const char *dest,
    bool copy_storage)
{
	char name[sizeof(p->vm)], ctx[sizeof(p->ctx)];

	snprintf(ctx, sizeof(ctx), "%s", dest);
	snprintf(name, sizeof(name), "%s", p->vm);
	tui_prompt_clear(p);
	tui_prompt_open(p, what, name);
	snprintf(p->ctx, sizeof(p->ctx), "%s", ctx);
	p->copy_storage = copy_storage;
}

/* The disks' answer: tcp:// asks for the secret next; ssh:// runs. */
static bool
tui_prompt_run_storage(struct tui *t, struct tui_vm *vm)
{
	struct tui_prompt *p = &t->prompt;
	bool copy = p->len > 0;
	const char *argv[16];
	char what[300];

	if (strncmp(p->ctx, "tcp://", 6) == 0) {
		tui_prompt_next(p, TUI_PROMPT_SECRET, p->ctx, copy);
		return false;
	}
	if (vm == NULL)
		return true;
	if (tui_prompt_migrate_argv(vm->name, p->ctx, NULL, copy, argv,
	    16) < 0) {
		tui_vm_msg(&t->m, "%s: not a destination: %s", vm->name,
		    p->ctx);
		return true;
	}
	snprintf(what, sizeof(what), "migrate to %s%s", p->ctx,
	    copy ? " with its disks" : "");
	tui_vm_job(&t->m, vm, what, argv);
	return true;
}

static struct tui_sw *
tui_sw_named(struct tui *t, const char *name)
{
	for (int i = 0; i < t->m.nsws; i++)
		if (strcmp(t->m.sws[i].name, name) == 0)
			return &t->m.sws[i];
	return NULL;
}

/* Enter on a prompt: what its answer does.  false when it asks on (the
 * prompt was opened again for the next answer). */
static bool
tui_prompt_run(struct tui *t)
{
	struct tui_prompt *p = &t->prompt;
	char ctx[sizeof(p->ctx)], what[300], *end;
	struct tui_vm *vm = tui_named(t, p->vm);
	const char *argv[16];
	struct tui_sw *sw;
	long n;

	switch (p->what) {
	case TUI_PROMPT_SECRET:
		if (vm != NULL)
			tui_prompt_run_secret(t, vm);
		return true;
	case TUI_PROMPT_NIC:
		n = strtol(p->text, &end, 10);
		if (vm == NULL)
			return true;
		if (*end != '\0' || n < 0 || n >= vm->nnics)
			tui_vm_msg(&t->m, "%s: no NIC %s (0 to %d)", vm->name,
			    p->text, vm->nnics - 1);
		else
			tui_vm_nic_link(&t->m, vm, (int)n,
			    vm->nics[n].link != 1);
		return true;
	case TUI_PROMPT_CAPFILE:
		/* Next the filter: the target and file go along. */
		snprintf(p->ctx2, sizeof(p->ctx2), "%s", p->text);
		p->what = TUI_PROMPT_CAPFILTER;
		p->text[0] = '\0';
		p->len = 0;
		return false;
	case TUI_PROMPT_CAPFILTER:
		if ((sw = tui_sw_named(t, p->vm)) != NULL)
			tui_sw_capture(&t->m, sw, p->ctx, p->ctx2, p->text);
		return true;
	case TUI_PROMPT_MIGRATE:
		/* Whether the disks go too; then, for tcp://, the secret. */
		if (p->text[0] == '-') {
			tui_vm_msg(&t->m, "%s: not a destination: %s", p->vm,
			    p->text);
			return true;
		}
		snprintf(ctx, sizeof(ctx), "%s", p->text);
		tui_prompt_next(p, TUI_PROMPT_STORAGE, ctx, false);
		return false;
	case TUI_PROMPT_STORAGE:
		return tui_prompt_run_storage(t, vm);
	}
	if (tui_prompt_argv(p, t->m.ds, argv, 16) < 0) {
		tui_vm_msg(&t->m, "%s: not a name or destination: %s",
		    p->vm, p->text);
	} else if (vm != NULL) {
		snprintf(what, sizeof(what), "%s %s", p->what ==
		    TUI_PROMPT_SNAPSHOT ? "snapshot" : "migrate to", p->text);
		tui_vm_job(&t->m, vm, what, argv);
	}
	return true;
}

/* A key at the prompt: Enter runs the command, Esc cancels. */
static void
tui_key_prompt(struct tui *t, int ch)
{
	t->m.dirty = true;
	switch (tui_prompt_key(&t->prompt, ch)) {
	case TUI_PROMPT_MORE:
		return;
	case TUI_PROMPT_CANCEL:
		tui_prompt_clear(&t->prompt);
		tui_vm_msg(&t->m, "cancelled");
		return;
	case TUI_PROMPT_DONE:
		break;
	}
	if (tui_prompt_run(t)) {
		tui_prompt_clear(&t->prompt);
		t->prompt.what = 0;
	}
}

/* A key in the console pane: to the guest, but Ctrl-] goes back. */
static void
tui_key_console(struct tui *t, int ch)
{
	struct tui_vm *vm = tui_named(t, t->console);
	uint8_t b[8];
	size_t n = tui_console_key(ch, b);

	if (ch == TUI_CON_DETACH || vm == NULL) {
		if (vm != NULL)
			tui_vm_console_detach(vm);
		t->console[0] = '\0';
		t->m.dirty = true;
		return;
	}
	if (n == 0)
		return;
	if (!vm->con_attached)
		tui_vm_msg(&t->m, "%s: the console is not attached (the VM is "
		    "%s)", vm->name, tui_vm_state_name(vm->state));
	else if (!tui_vm_console_type(vm, b, n))
		tui_vm_msg(&t->m, "%s: the guest is not reading its console",
		    vm->name);
}

/* l: toggle a NIC's link; which one is asked when there are several. */
static void
tui_key_link(struct tui *t, struct tui_vm *vm)
{
	if (vm->nnics == 0) {
		tui_vm_msg(&t->m, "%s has no NIC", vm->name);
	} else if (vm->nnics == 1) {
		tui_vm_nic_link(&t->m, vm, 0, vm->nics[0].link != 1);
	} else {
		tui_prompt_open(&t->prompt, TUI_PROMPT_NIC, vm->name);
		t->m.dirty = true;
	}
}

static void
tui_sw_open(struct tui *t, bool open)
{
	t->sw_view = open;
	t->m.sw_watch = open;
	t->m.dirty = true;
	if (open)
		tui_sw_tick(&t->m);	/* ask now, not at the next tick */
}

/* C in the switch view: capture the selected group or port, or stop
 * the switch's capture. */
static void
tui_key_capture(struct tui *t)
{
	struct tui_sw_row rows[512];
	int n = tui_sw_rows(&t->m, rows, 512);
	const struct tui_sw_row *r;
	struct tui_sw *sw;

	if (t->sw_sel >= n) {
		tui_vm_msg(&t->m, "no switch selected");
		return;
	}
	r = &rows[t->sw_sel];
	sw = &t->m.sws[r->sw];
	if (sw->cap.fd >= 0) {
		tui_sw_capture_stop(&t->m, sw);
		return;
	}
	if (r->kind == 's') {
		tui_vm_msg(&t->m, "select a port group or a port to capture");
		return;
	}
	tui_prompt_open(&t->prompt, TUI_PROMPT_CAPFILE, sw->name);
	snprintf(t->prompt.ctx, sizeof(t->prompt.ctx), "%s", r->kind == 'g' ?
	    sw->pgs[r->i].name : sw->ports[r->i].name);
	t->m.dirty = true;
}

/* A key in the switch view; false for one it leaves to the list's. */
static bool
tui_key_sw(struct tui *t, int ch)
{
	struct tui_sw_row rows[512];
	int n = tui_sw_rows(&t->m, rows, 512);

	switch (ch) {
	case KEY_UP:
	case 'k':
		if (t->sw_sel > 0)
			t->sw_sel--;
		break;
	case KEY_DOWN:
	case 'j':
		if (t->sw_sel < n - 1)
			t->sw_sel++;
		break;
	case 'C':
		tui_key_capture(t);
		break;
	case 'w':
	case '\t':
	case 27:	/* Esc */
		tui_sw_open(t, false);
		break;
	case 'q':
	case '?':
	case 12:
	case KEY_RESIZE:
		return false;
	default:
		tui_vm_msg(&t->m, "w goes back to the VMs (? for help)");
		break;
	}
	t->m.dirty = true;
	return true;
}

static void
tui_key(struct tui *t, int ch)
{
	struct tui_vm *vm;

	if (t->help) {
		t->help = false;
		t->m.dirty = true;
		return;
	}
	if (t->confirm != 0) {
		tui_key_confirm(t, ch);
		return;
	}
	if (t->prompt.what != 0) {
		tui_key_prompt(t, ch);
		return;
	}
	if (t->console[0] != '\0') {
		tui_key_console(t, ch);
		return;
	}
	if (t->sw_view && tui_key_sw(t, ch))
		return;
	switch (ch) {
	case 'q':
		t->quit = true;
		break;
	case KEY_UP:
	case 'k':
		if (t->sel > 0)
			t->sel--;
		tui_follow(t);
		break;
	case KEY_DOWN:
	case 'j':
		if (t->sel < t->m.nvms - 1)
			t->sel++;
		tui_follow(t);
		break;
	case '\r':
	case '\n':
	case KEY_ENTER:
	case 'd':
	case 27:	/* Esc */
		if (t->detail[0] != '\0')
			t->detail[0] = '\0';
		else if (ch != 27 && (vm = tui_selected(t)) != NULL)
			snprintf(t->detail, sizeof(t->detail), "%s", vm->name);
		t->m.dirty = true;
		break;
	case 'c':
		if ((vm = tui_selected(t)) != NULL) {
			snprintf(t->console, sizeof(t->console), "%s", vm->name);
			tui_vm_console(vm);
			t->m.dirty = true;
		}
		break;
	case '?':
		t->help = true;
		t->m.dirty = true;
		break;
	case KEY_RESIZE:
		break;
	case 's':
		if ((vm = tui_selected(t)) != NULL)
			tui_vm_start(&t->m, vm);
		break;
	case 'S':
		if ((vm = tui_selected(t)) != NULL)
			tui_vm_command(&t->m, vm, "stop", false);
		break;
	case 'p':
		if ((vm = tui_selected(t)) != NULL)
			tui_vm_command(&t->m, vm, vm->state == TUI_VM_PAUSED ?
			    "resume" : "pause", false);
		break;
	case 'F':
	case 'r':
		if ((vm = tui_selected(t)) != NULL) {
			t->confirm = ch;
			snprintf(t->confirm_vm, sizeof(t->confirm_vm), "%s",
			    vm->name);
			t->m.dirty = true;
		}
		break;
	case 'w':
	case '\t':
		tui_sw_open(t, true);
		break;
	case 'X':
		if ((vm = tui_selected(t)) != NULL)
			tui_vm_command(&t->m, vm, "migrate-cancel", false);
		break;
	case 'l':
		if ((vm = tui_selected(t)) != NULL)
			tui_key_link(t, vm);
		break;
	case 't':
	case 'm':
		if ((vm = tui_selected(t)) != NULL) {
			tui_prompt_open(&t->prompt, ch == 't' ?
			    TUI_PROMPT_SNAPSHOT : TUI_PROMPT_MIGRATE, vm->name);
			t->m.dirty = true;
		}
		break;
	case 12:	/* ^L: redraw everything */
		clearok(curscr, TRUE);
		t->m.dirty = true;
		break;
	default:
		tui_vm_msg(&t->m, "unknown key (? for help)");
		break;
	}
}

static void
tui_relayout(struct tui *t)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 &&
	    ws.ws_col > 0)
		resizeterm(ws.ws_row, ws.ws_col);
	t->resize_at = 0;
	t->m.dirty = true;
}

static void
tui_signal(struct tui *t)
{
	char b[64];
	ssize_t n;

	while ((n = read(tui_sigpipe[0], b, sizeof(b))) > 0) {
		if (memchr(b, 'q', (size_t)n) != NULL)
			t->quit = true;
		/* Several SIGWINCH while a window is dragged: one
		 * relayout once they stop. */
		if (memchr(b, 'w', (size_t)n) != NULL)
			t->resize_at = tui_vm_now_ms() + TUI_RESIZE_MS;
	}
}

static int
tui_poll_timeout(struct tui *t)
{
	long long now = tui_vm_now_ms(), next = t->next_tick;

	if (t->resize_at != 0 && t->resize_at < next)
		next = t->resize_at;
	if (t->draw_at != 0 && t->draw_at < next)
		next = t->draw_at;
	return next <= now ? 0 : (int)(next - now);
}

/* One pass: wait for something, handle it.  Drawing is the caller's. */
static void
tui_pass(struct tui *t)
{
	struct pollfd p[TUI_MAX_FDS];
	struct tui_vm *who[TUI_MAX_FDS];
	struct tui_sw *sws[TUI_MAX_FDS];
	int n = 2, i, ch;

	p[0] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = tui_sigpipe[0], .events = POLLIN };
	for (i = 0; i < t->m.nvms && n < TUI_MAX_FDS; i++)
		if (t->m.vms[i].fd >= 0) {
			who[n] = &t->m.vms[i];
			sws[n] = NULL;
			p[n++] = (struct pollfd){ .fd = t->m.vms[i].fd,
			    .events = POLLIN };
		}
	for (i = 0; i < t->m.nsws && n < TUI_MAX_FDS - 1; i++) {
		struct tui_sw *sw = &t->m.sws[i];

		if (sw->c.fd >= 0) {
			who[n] = NULL;
			sws[n] = sw;
			p[n++] = (struct pollfd){ .fd = sw->c.fd, .events =
			    POLLIN };
		}
		if (sw->cap.fd >= 0) {
			who[n] = NULL;
			sws[n] = sw;
			p[n++] = (struct pollfd){ .fd = sw->cap.fd, .events =
			    POLLIN };
		}
	}
	if (poll(p, (nfds_t)n, tui_poll_timeout(t)) < 0 && errno != EINTR)
		t->quit = true;
	if (p[1].revents & POLLIN)
		tui_signal(t);
	/* VMs first: a key may change the list under them. */
	for (i = 2; i < n; i++)
		if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    who[i] != NULL)
			tui_vm_input(&t->m, who[i]);
		else if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
			tui_sw_input(&t->m, sws[i], p[i].fd);
	if (p[0].revents & (POLLHUP | POLLERR))
		t->quit = true;	/* the terminal went away */
	if (p[0].revents & POLLIN)
		while (!t->quit && (ch = getch()) != ERR)
			tui_key(t, ch);
	if (t->resize_at != 0 && tui_vm_now_ms() >= t->resize_at)
		tui_relayout(t);
	if (tui_vm_now_ms() >= t->next_tick) {
		tui_vm_tick(&t->m);
		tui_sw_tick(&t->m);
		t->next_tick = tui_vm_now_ms() + TUI_TICK_MS;
	}
	/* (Re)attach the open pane: after a reconnect, too. */
	if (t->console[0] != '\0' && tui_named(t, t->console) != NULL)
		tui_vm_console(tui_named(t, t->console));
	if (t->sel >= t->m.nvms)
		t->sel = t->m.nvms > 0 ? t->m.nvms - 1 : 0;
	if (t->sw_view) {
		struct tui_sw_row rows[512];
		int nr = tui_sw_rows(&t->m, rows, 512);

		if (t->sw_sel >= nr)
			t->sw_sel = nr > 0 ? nr - 1 : 0;
	}
}

/* Curses on the terminal; 0, or -1 when TERM is unknown. */
static int
tui_setup(struct tui *t)
{
	const char *term = getenv("TERM");

	/* newterm, unlike initscr, lets us say what is wrong and return. */
	if (newterm(NULL, stdout, stdin) == NULL) {
		log_warnx("cannot drive terminal type '%s' (set TERM, e.g. "
		    "TERM=vt100)", term != NULL ? term : "");
		return -1;
	}
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	/* Long enough for an arrow key split over a slow link. */
	set_escdelay(100);
	curs_set(0);
	t->color = getenv("NO_COLOR") == NULL && has_colors();
	if (t->color) {
		start_color();
		use_default_colors();
		init_pair(1, COLOR_GREEN, -1);
		init_pair(2, COLOR_RED, -1);
		init_pair(3, COLOR_YELLOW, -1);
	}
	return 0;
}

/*
 * May we draw now?  Over a slow link the last screen may still sit in
 * the terminal's output queue: drawing on top of it only grows the
 * backlog, so wait (as tmux does) and draw the newest state once.
 */
static bool
tui_link_ready(struct tui *t)
{
	int queued;

	if (ioctl(STDOUT_FILENO, TIOCOUTQ, &queued) == 0 &&
	    queued > TUI_OUTQ_MAX) {
		t->draw_at = tui_vm_now_ms() + TUI_DEFER_MS;
		return false;
	}
	t->draw_at = 0;
	return true;
}

int
tui_main(int argc, char **argv)
{
	static const int sigs[] = { SIGWINCH, SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = tui_sigcatch };
	struct tui t = { .sel = 0 };
	FILE *devnull;

	if (argc > 1) {
		log_warnx("usage: termvisor [top]");
		return 2;
	}
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		log_warnx("the dashboard needs a terminal (for scripts: "
		    "termvisor vm list, vm status NAME)");
		return 2;
	}
	if (vmfs_datastore_default(t.m.ds, sizeof(t.m.ds)) < 0) {
		log_warnx("cannot find the datastore (set TERMVISOR_DATASTORE)");
		return 1;
	}
	if (pipe2(tui_sigpipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_warn("pipe");
		return 1;
	}
	/* Installed before initscr, so curses leaves them to us. */
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(*sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	if (tui_setup(&t) < 0)
		return 1;
	/* Warnings (a bad config...) would scribble over the screen. */
	if ((devnull = fopen("/dev/null", "we")) != NULL)
		log_set_file(devnull);
	tui_vm_tick(&t.m);
	t.next_tick = tui_vm_now_ms() + TUI_TICK_MS;
	t.m.dirty = true;
	while (!t.quit) {
		if (t.m.dirty && tui_link_ready(&t))
			tui_draw(&t);
		tui_pass(&t);
	}
	endwin();
	log_set_file(stderr);
	if (devnull != NULL)
		fclose(devnull);
	tui_vm_free(&t.m);
	tui_sw_free(&t.m);
	close(tui_sigpipe[0]);
	close(tui_sigpipe[1]);
	return 0;
}
