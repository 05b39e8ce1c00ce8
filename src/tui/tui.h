/*
 * The terminal dashboard (`termvisor`, `termvisor top`): every VM of the
 * datastore with its live state, and keys to start, stop and pause them.
 *
 * Shaped as tmux is: the model (tui_vm.c) and the input only set dirty
 * flags; tui.c draws once per pass of its poll loop; tui_list.c draws
 * the VM list.  Nothing here blocks on a VM: control sockets are
 * non-blocking and live in the same poll set, and a VM that does not
 * answer in time is shown as unresponsive.
 */
#ifndef TV_TUI_H
#define TV_TUI_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* How the dashboard sees a VM. */
enum tui_vm_state {
	TUI_VM_STOPPED,
	TUI_VM_STARTING,	/* spawned or locked, no control socket yet */
	TUI_VM_RUNNING,
	TUI_VM_PAUSED,
	TUI_VM_STOPPING,
	TUI_VM_STALE,		/* a dead VM's socket or expired lock */
	TUI_VM_UNRESPONSIVE,	/* connected, but no answer in time */
	TUI_VM_LOCKED,		/* lock held, no socket here: another host */
	TUI_VM_PANICKED,	/* the guest reported a panic (pvpanic) */
	TUI_VM_OTHER,		/* a state this dashboard does not know:
				 * tui_vm.state_str says which */
	TUI_VM_STATES
};

#define TUI_VM_TIMEOUT_MS	3000	/* an answer later than this: unresponsive */
#define TUI_VM_BUF		(256 * 1024)	/* longest line we accept */
#define TUI_HIST		120	/* samples of history, one a second */
#define TUI_CON_RAW	(16 * 1024)	/* console output kept for the pane */
#define TUI_CON_IN	1024	/* typed bytes the guest has not taken */
#define TUI_CON_DETACH	0x1d	/* Ctrl-]: leave the console pane */
#define TUI_NICS	4	/* NICs a VM may have (VMCFG_MAX_NICS) */
#define TUI_NOTE_MS	15000	/* a migration's outcome stays on its row */

/* One of a VM's NICs: from its config, and the link its VM reports. */
struct tui_nic {
	char portgroup[64];
	char mac[18];		/* "" when the config has none */
	int link;		/* 1 up, 0 down, -1 unknown */
	unsigned link_id;	/* nic-link request pending, 0 none */
};

struct json_t;
typedef struct json_t json_t;

struct tui_vm {
	char name[64];
	bool seen;		/* found by the last datastore scan */
	bool config_ok;
	int cpus;
	uint64_t memory;	/* bytes, from the config or the VM */
	struct timespec vmx_mtime;
	enum tui_vm_state state;
	char state_str[16];	/* what the VM said, for TUI_VM_OTHER */
	bool locked, lock_expired;
	long long spawned_ms;	/* when we started it, 0 if not */
	pid_t pid;		/* our `termvisor run` child, 0 none */

	int fd;			/* control socket, -1 when not connected */
	bool greeted;
	long long connected_ms;
	char *buf;
	size_t len;
	unsigned next_id, stats_id;	/* stats_id: pending, 0 none */
	long long stats_sent_ms;
	unsigned action_id;	/* pending pause/stop/...: its reply is shown */
	char action[16];

	double uptime;		/* s, -1 unknown */
	double cpu_time, cpu_uptime;	/* last sample, -1 none */
	double cpu_pct;		/* -1 unknown */
	double exits, exits_uptime;	/* last sample, -1 none */
	struct json_t *stats;	/* the last stats reply, or NULL */
	/* disk (read + written) and network (received + sent) bytes/s,
	 * -1 unknown or no such device */
	double disk_rate, net_rate;
	char vnc_addr[64];	/* where its VNC listens, "" none or unknown */
	/* CPU%, exits/s, disk and network bytes/s: rings of the last
	 * hist_n samples */
	double cpu_hist[TUI_HIST], exit_hist[TUI_HIST];
	double disk_hist[TUI_HIST], net_hist[TUI_HIST];
	int hist_n, hist_at;
	/* The serial console while its pane is open: attached to the
	 * live stream (console-attach), raw output kept bounded and its
	 * cleaned text for drawing; typed bytes not yet taken. */
	unsigned console_id;	/* console-attach pending */
	bool con_attached;
	char *console;
	size_t console_len;
	char *con_raw;
	size_t con_raw_len;
	unsigned con_in_id;	/* console-input pending */
	uint8_t con_in[TUI_CON_IN];
	size_t con_in_len;
	/* A `termvisor snapshot take` or `migrate` we spawned: its pid,
	 * an unlinked file holding its output, and what it does (for the
	 * status line). */
	pid_t job_pid;		/* 0 none */
	int job_fd;		/* -1 none */
	char job[300];
	/* A migration cancelled here: its follower is ended at this time
	 * (ms) if the VM has not said the end by then; 0 none. */
	long long job_kill_ms;
	bool job_cancelled;
	/* Its NICs (from the config; links asked for while it runs). */
	int nnics;
	struct tui_nic nics[TUI_NICS];
	/* A migration's progress or outcome on its row ("migr 45%",
	 * "cancelled"): until note_until (ms), or while one runs (0). */
	char note[16];
	long long note_until;
};

struct tui_sw;

struct tui_model {
	char ds[PATH_MAX];
	struct tui_vm *vms;	/* sorted by name */
	int nvms;
	bool dirty;		/* something shown changed */
	char msg[256];		/* for the status line */
	bool msg_new;
	struct tui_sw *sws;	/* the host's switches, sorted by name */
	int nsws;
	bool sw_watch;		/* the switch view is open: ask for shows */
};

/* tui_prompt.c: the one-line prompt for a snapshot name or a
 * migration's destination. */
enum { TUI_PROMPT_SNAPSHOT = 't', TUI_PROMPT_MIGRATE = 'm',
	TUI_PROMPT_SECRET = 'K',	/* tcp:// migration's secret, not shown */
	TUI_PROMPT_STORAGE = 'D',	/* copy the disks too? y/N */
	TUI_PROMPT_NIC = 'l',		/* which NIC's link to toggle */
	TUI_PROMPT_CAPFILE = 'C',	/* a capture's pcap file */
	TUI_PROMPT_CAPFILTER = 'B' };	/* its BPF filter, may be empty */
enum tui_prompt_res { TUI_PROMPT_MORE, TUI_PROMPT_DONE, TUI_PROMPT_CANCEL };
struct tui_prompt {
	int what;		/* TUI_PROMPT_*, 0 when closed */
	char vm[64];
	char text[256];
	size_t len;
	/* The answers before this one: the migration's destination, or
	 * the capture's target and file. */
	char ctx[256], ctx2[PATH_MAX];
	bool copy_storage;	/* the migration's y to TUI_PROMPT_STORAGE */
};
void tui_prompt_open(struct tui_prompt *p, int what, const char *vm);
const char *tui_prompt_label(int what);
/* Key ch (a getch() value) typed at the prompt: Enter with some text is
 * DONE, Esc (or ^G) CANCEL and closes it, anything else edits it.  The
 * y/N question takes one key: y or Y is yes (text "y"), n, N or Enter
 * no (text ""), both DONE; other keys are ignored. */
enum tui_prompt_res tui_prompt_key(struct tui_prompt *p, int ch);
/* The command the answer runs, into argv (n entries, NULL-terminated):
 * its argc, or -EINVAL (no answer, or one that looks like an option),
 * -ENOSPC. */
int tui_prompt_argv(const struct tui_prompt *p, const char *ds,
    const char **argv, size_t n);
/* The secret prompt's answer: "@FILE" names a secret file (its path
 * into *file), anything else is the secret itself (*file NULL). */
void tui_prompt_secret(const struct tui_prompt *p, const char **file);
/* `termvisor migrate -q [-s SECRET_FILE] [--copy-storage] VM DEST` into
 * argv (n entries; secret_file NULL: no -s): its argc, or -EINVAL,
 * -ENOSPC. */
int tui_prompt_migrate_argv(const char *vm, const char *dest,
    const char *secret_file, bool copy_storage, const char **argv,
    size_t n);
/* Erase the prompt's text (a secret must not linger in memory). */
void tui_prompt_clear(struct tui_prompt *p);

/* tui_vm.c: the model. */
long long tui_vm_now_ms(void);
/* Rescan the datastore, (re)connect and ask every running VM for its
 * stats; called once a second. */
void tui_vm_tick(struct tui_model *m);
/* Read what vm's socket has for us (poll said readable). */
void tui_vm_input(struct tui_model *m, struct tui_vm *vm);
/* Send a control command ("pause", "resume", "stop", "reset"); force
 * for stop.  The reply lands on the status line. */
void tui_vm_command(struct tui_model *m, struct tui_vm *vm, const char *cmd,
    bool force);
/* Spawn `termvisor run NAME` detached, its output to NAME.log. */
void tui_vm_start(struct tui_model *m, struct tui_vm *vm);
/* Run `termvisor ARGV...` (argv[0] is ignored) for vm, detached and
 * never waited for here: what is said as the status line now, its
 * outcome (or the last line it printed) once tui_vm_reap_all sees it
 * exit.  One job a VM at a time. */
void tui_vm_job(struct tui_model *m, struct tui_vm *vm, const char *what,
    const char *const *argv);
/* The same, with fd (>= 0) as the job's fd 3 (a pipe holding a secret
 * it reads as /dev/fd/3); fd is closed here either way. */
void tui_vm_job_fd(struct tui_model *m, struct tui_vm *vm, const char *what,
    const char *const *argv, int fd);
/* Set (up 1/0) NIC nic's link; the reply lands on the status line and
 * in vm->nics. */
void tui_vm_nic_link(struct tui_model *m, struct tui_vm *vm, int nic,
    bool up);
void tui_vm_free(struct tui_model *m);
/* Attach the console pane to vm's serial console (once connected; the
 * output lands in vm->console), or detach it. */
void tui_vm_console(struct tui_vm *vm);
void tui_vm_console_detach(struct tui_vm *vm);
/* Type n bytes on vm's serial console; false when they do not fit
 * behind what the guest has not taken yet. */
bool tui_vm_console_type(struct tui_vm *vm, const uint8_t *buf, size_t n);
/* Collect the VMs we started that exited; a failure goes on the status
 * line with the last line of the VM's log. */
void tui_vm_reap_all(struct tui_model *m);
/* Set the status line (printf-like). */
void tui_vm_msg(struct tui_model *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *tui_vm_state_name(enum tui_vm_state s);
/* What the STATE column says for vm: its state, or the string a newer
 * VM sent, or the note of a migration (now: tui_vm_now_ms()). */
const char *tui_vm_state_text(const struct tui_vm *vm, long long now);
/* A state string from a VM's status, stats or state event. */
enum tui_vm_state tui_vm_parse_state(const char *s);
/* Is s an error state (drawn as one: red, or bold without colour)? */
bool tui_vm_state_bad(enum tui_vm_state s);
/* Percent of one host CPU used between two samples of (cpu seconds,
 * uptime seconds); -1 when the samples cannot give one. */
double tui_vm_cpu_pct(double cpu0, double up0, double cpu1, double up1);
/* "64M", "1.5G", "512K", "-" for 0 */
void tui_vm_fmt_mem(uint64_t bytes, char *buf, size_t len);
/* "45s", "12m03s", "3h04m", "2d03h", "-" for unknown */
void tui_vm_fmt_uptime(double s, char *buf, size_t len);
/* "12.3", "100", "-" for unknown */
void tui_vm_fmt_pct(double pct, char *buf, size_t len);

/* tui_list.c: the VM list view. */
enum { TUI_COL_NAME, TUI_COL_STATE, TUI_COL_CPUS, TUI_COL_MEMORY,
	TUI_COL_CPU, TUI_COL_DISK, TUI_COL_NET, TUI_COL_UPTIME, TUI_COL_VNC,
	TUI_COLS };
/* Column widths for a screen width cols: 0 for a dropped column.  NAME
 * takes the room left, within bounds. */
void tui_list_layout(int cols, int widths[TUI_COLS]);
/* s cut to at most w columns into buf (a cut ends in '~'). */
void tui_list_fit(const char *s, int w, char *buf, size_t len);
/* One row of the list as text, padded to the layout. */
void tui_list_row(const struct tui_vm *vm, const int widths[TUI_COLS],
    char *buf, size_t len);
void tui_list_header(const int widths[TUI_COLS], char *buf, size_t len);
/* Draw rows [top, ...) of the list from screen line y, sel highlighted. */
void tui_list_draw(const struct tui_model *m, int y, int height, int sel,
    bool color);

/* tui_detail.c: one VM's statistics with history graphs. */
/* The last n samples of the ring hist (hist_n long, next write at at)
 * as a sparkline of width columns in ASCII levels "_.:-=+*#" (blank:
 * no sample yet), scaled to max (max <= 0: the samples' own maximum). */
void tui_detail_spark(const double *hist, int hist_n, int at, double max,
    int width, char *buf, size_t len);
void tui_detail_draw(const struct tui_vm *vm, int height);

/* tui_console.c: the serial console pane. */
/* What key ch (a curses getch() value) sends to a serial terminal, as a
 * VT100 would: its byte count in buf (at most 8), 0 for none. */
size_t tui_console_key(int ch, uint8_t *buf);
/* Guest output as plain lines: escape sequences and control characters
 * dropped, CR and tabs resolved, bytes past ASCII as '?'.  The length
 * written to out (NUL-terminated). */
size_t tui_console_clean(const char *in, size_t n, char *out, size_t len);
/* The last height rows of text wrapped at width: where they start. */
const char *tui_console_tail(const char *text, int width, int height);
void tui_console_draw(const struct tui_vm *vm, int height);

/* tui_sw.c: the host's switches, from their control sockets. */
enum tui_sw_state { TUI_SW_STOPPED, TUI_SW_RUNNING, TUI_SW_UNRESPONSIVE };

struct tui_sw_port {
	int id;
	char name[64], kind[8], portgroup[64], mac[18];
	/* counters of the last show, and their rates since the one
	 * before: packets and bytes a second, -1 unknown */
	double rx_packets, tx_packets, rx_bytes, tx_bytes, drops;
	double rx_pps, tx_pps, rx_bps, tx_bps;
};

struct tui_sw_pg {
	char name[64];
	int vlan;
	bool trunk;
	int nports;
};

/* One JSON-lines connection to a switch's control socket. */
struct tui_sw_conn {
	int fd;			/* -1 none */
	char *buf;
	size_t len;
};

struct tui_sw {
	char name[64];
	bool seen;		/* configured or its socket is there */
	enum tui_sw_state state;
	struct tui_sw_conn c;	/* for show */
	bool pending;		/* a show is unanswered */
	long long sent_ms, sample_ms;	/* when asked, when answered */
	long long pid, uptime;
	char uplink[64];
	struct tui_sw_pg *pgs;
	int npgs;
	struct tui_sw_port *ports;
	int nports;
	/* A capture we started: on its own connection (the switch ends
	 * it when that closes). */
	struct tui_sw_conn cap;
	char cap_target[64], cap_file[PATH_MAX];
	long long cap_written, cap_seen;
	bool cap_on, cap_stopping;
};

/* A row of the switch view: a switch, one of its port groups, or a
 * port (index into its pgs or ports, -1 for the switch row). */
struct tui_sw_row {
	int sw;
	char kind;		/* 's', 'g' or 'p' */
	int i;
};

/* Rescan the switches (configured in the datastore or listening) and,
 * while the view is open (m->sw_watch), ask each running one for its
 * state; a show unanswered in TUI_VM_TIMEOUT_MS: unresponsive. */
void tui_sw_tick(struct tui_model *m);
/* fd of sw (its show or capture connection) is readable. */
void tui_sw_input(struct tui_model *m, struct tui_sw *sw, int fd);
/* Rates between two counter samples dt ms apart: per second, -1 when
 * they cannot give one (no earlier sample, a counter that went back). */
double tui_sw_rate(double before, double now, long long dt_ms);
/* Take a show reply (result object) into sw at time now (ms). */
void tui_sw_show(struct tui_sw *sw, json_t *r, long long now);
/* The view's rows, switch by switch: port groups, each followed by its
 * ports, then ports of no group; their count (at most max). */
int tui_sw_rows(const struct tui_model *m, struct tui_sw_row *rows, int max);
/* One row as text for a screen cols wide. */
void tui_sw_row_text(const struct tui_model *m, const struct tui_sw_row *r,
    int cols, char *buf, size_t len);
void tui_sw_header(int cols, char *buf, size_t len);
void tui_sw_draw(const struct tui_model *m, int height, int sel, bool color);
/* Start capturing target (a port group or port name) of sw to file
 * (made absolute here) with BPF filter (may be ""); or stop it. */
void tui_sw_capture(struct tui_model *m, struct tui_sw *sw,
    const char *target, const char *file, const char *filter);
void tui_sw_capture_stop(struct tui_model *m, struct tui_sw *sw);
void tui_sw_free(struct tui_model *m);

/* tui.c */
int tui_main(int argc, char **argv);

#endif
