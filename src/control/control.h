/*
 * The control socket: each running VM answers on a Unix socket in its
 * runtime directory with JSON lines, as QEMU's QMP does.  On connect the
 * server sends a greeting; then every request line gets one reply line,
 * and state changes are pushed to every client as event lines.  The
 * protocol is described in termvisor(1), CONTROL PROTOCOL.
 *
 * Everything here runs on the VM's event-loop thread with the device lock
 * held (evloop callbacks), so no locking of its own.
 */
#ifndef TV_CONTROL_H
#define TV_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/evloop.h"

#define CONTROL_VERSION		"0.1.0"
#define CONTROL_PROTOCOL	1
/* A request line longer than this closes the connection. */
#define CONTROL_LINE_MAX	(64 * 1024)
/* Replies and events a slow client has not read yet; past it, dropped. */
#define CONTROL_OUT_MAX		(1024 * 1024)
#define CONTROL_MAX_CLIENTS	32
#define CONTROL_STOP_TIMEOUT	30	/* s, graceful stop before forcing */
/* Attached consoles: how often new output is looked for (ns), and the
 * most sent to one client per look. */
#define CONTROL_CONSOLE_POLL	20000000ull
#define CONTROL_CONSOLE_CHUNK	16384

struct vm;
struct control_client;

/*
 * One VM's control server.  Defined here for control_cmd.c and the unit
 * tests, which build one without a socket (control_init).
 */
struct control {
	struct vm *vm;
	char name[64];
	char path[108];		/* sockaddr_un.sun_path */
	int lfd;		/* listening socket, -1 in tests */
	int epfd;		/* our own epoll set, watched by vm->loop */
	bool live;		/* vCPU threads exist (CPU time can be read) */
	uint64_t start_ns;	/* vclock_ns() at start, for the uptime */
	struct vtimer stop_timer;	/* graceful stop: force when it fires */
	struct vtimer console_timer;	/* streams to attached clients */
	struct control_client *clients;
	struct control_client *cur;	/* whose request is being handled */
	int nclients;
	/* A guest reset rebuilds the VM, not the server (control_reset):
	 * the console output of the VMs before, its tail kept here, and
	 * how many bytes came before the current console's first (console
	 * positions of clients count from the first VM's output). */
	uint8_t *hist;
	size_t hist_len;
	uint64_t con_base;
	uint64_t stop_at;	/* a graceful stop's deadline across a reset */
	int resets;
	char vnc_addr[128];	/* where its VNC server listens, "" none */
	bool panicked;		/* paused by a guest panic (on_panic pause) */
};

#define CONTROL_HIST_MAX	(64 * 1024)

/*
 * Where VM name's control socket lives: $XDG_RUNTIME_DIR/termvisor,
 * else /run/termvisor for root, else /tmp/termvisor-UID; NAME.sock in it.
 * With dir non-NULL the directory is written there too.  0, or
 * -ENAMETOOLONG when the path does not fit a Unix socket address.
 */
int control_socket_path(const char *name, char *path, size_t len, char *dir,
    size_t dirlen);

/*
 * Start serving vm's control socket for the VM called name (a datastore
 * name, or NULL for "pid-PID") on vm->loop.  A stale socket left by a
 * dead VM is replaced.  Returns the server, or NULL after logging why
 * (the VM can run without one).
 */
struct control *control_start(struct vm *vm, const char *name);
/* Say where the VM's VNC server listens (status and stats replies);
 * c or addr NULL is fine. */
void control_set_vnc_addr(struct control *c, const char *addr);
/* Tell the clients how the VM ended (an event), close them, remove the
 * socket.  NULL is fine. */
void control_stop(struct control *c, int how, int status);
/*
 * The guest reset and its VM is about to be destroyed and built again:
 * keep the socket, the clients (attached consoles stay attached) and the
 * console's tail, tell the clients ({"event": "reset"}), and leave the
 * old VM's event loop.  Returns c (NULL is fine), for control_rebind.
 */
struct control *control_reset(struct control *c);
/* Serve c again on the new VM vm after control_reset; returns c. */
struct control *control_rebind(struct control *c, struct vm *vm);
/* The last len bytes (at most) of the serial console's output, across
 * resets; the count copied. */
size_t control_console_history(struct control *c, uint8_t *buf, size_t len);

/* A server without a socket, for tests: c is zeroed and set up. */
void control_init(struct control *c, struct vm *vm, const char *name);
/* Undo control_init (cancels the stop timer). */
void control_fini(struct control *c);

/* Send ev (a JSON object; reference stolen) to every client. */
void control_event(struct control *c, json_t *ev);
/* Send the {"event": "state", ...} event for the VM's current state. */
void control_event_state(struct control *c);
/* The VM's state as the protocol names it ("running", "paused", ...). */
const char *control_state_name(int state);
/* c's VM's state as the protocol names it: control_state_name's, or
 * "panicked" while a guest panic keeps it paused. */
const char *control_state(const struct control *c);

/*
 * Handle one request line (without its newline) and return the reply
 * object (never NULL unless out of memory).  Bad JSON, a bad request or
 * a failing command all give an error reply.  In control_cmd.c.
 */
json_t *control_cmd_request(struct control *c, const char *line, size_t len);

/*
 * Attach cl (the client whose request is being handled, c->cur) to the
 * serial console: from now on it gets {"event": "console", "data": ...}
 * events with the output, starting with what the ring still holds.
 * 0, or -EINVAL when there is no such client (no connection).
 */
int control_console_attach(struct control *c, struct control_client *cl);
/* Stop sending cl console events; 0, or -EINVAL without a client. */
int control_console_detach(struct control *c, struct control_client *cl);
/* Send attached clients the console output they have not had yet. */
void control_console_pump(struct control *c);

/*
 * Console bytes as a JSON string and back: byte b is the character
 * U+00bb (ISO 8859-1), so any bytes go through JSON unchanged.
 * control_bytes_json returns a new reference or NULL; control_json_bytes
 * writes at most len bytes and returns the count, or -1 when the string
 * holds a character above U+00FF.
 */
json_t *control_bytes_json(const uint8_t *buf, size_t len);
long control_json_bytes(const json_t *s, uint8_t *buf, size_t len);

/* The stop timer's callback: a graceful stop ran out of time, so the VM
 * is powered off.  In control_cmd.c. */
void control_cmd_stop_timeout(void *opaque);

#endif
