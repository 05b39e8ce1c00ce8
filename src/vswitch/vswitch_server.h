/*
 * The switch process (`termvisor switch run`): one thread, one epoll
 * set serving the NIC socket, the control socket, the uplink TAP, the
 * VXLAN socket, a 1 s tick (MAC aging, capture progress) and signals.
 * vswitch_ctl.c answers the control socket (JSON lines).
 */
#ifndef TV_VSWITCH_SERVER_H
#define TV_VSWITCH_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vswitch/vswitch.h"
#include "vswitch/vswitch_conf.h"

#define VSW_PENDING_MAX		64	/* connections before their hello */
#define VSW_HELLO_TIMEOUT_NS	(5ull * 1000000000ull)
#define VSW_CTL_MAX		16	/* control clients */
#define VSW_CTL_LINE_MAX	(64 * 1024)
#define VSW_CTL_OUT_MAX		(8 * 1024 * 1024)
#define VSW_SOCKBUF		(4 * 1024 * 1024)

enum vsw_ev_kind {
	VSW_EV_LISTEN, VSW_EV_CTL_LISTEN, VSW_EV_PENDING, VSW_EV_PORT,
	VSW_EV_TAP, VSW_EV_VXLAN, VSW_EV_CTL, VSW_EV_SIGNAL, VSW_EV_TICK,
};

/* What an epoll event points at. */
struct vsw_ev {
	enum vsw_ev_kind kind;
	int fd;
	void *ptr;
};

struct vsw_pending {
	struct vsw_ev ev;
	uint64_t deadline;
	struct vsw_pending *next;
};

struct vsw_ctl {
	struct vsw_ev ev;
	char *in;
	size_t inlen;
	char *out;
	size_t outlen, outcap;
	bool want_out, dead, closing;
	struct vsw_capture *cap;	/* its capture, ended with it */
	uint64_t cap_reported;
	struct vsw_ctl *next;
};

struct vsw_server {
	struct vsw sw;
	struct vsw_conf conf;
	char datastore[4096];		/* "" for the default */
	int epfd;
	struct vsw_ev listen, ctl_listen, tap, vxlan, sig, tick;
	char path[108], ctlpath[108], lockpath[4096], logpath[4096];
	int lockfd;
	struct vsw_ev *portev[VSW_MAX_PORTS];	/* by port id */
	struct vsw_pending *pending;
	int npending;
	struct vsw_ctl *ctls;
	int nctls;
	struct vsw_port *uplink;
	bool stop;
	uint64_t start_ns;
	uint64_t hello_bad, vxlan_unknown;
};

/*
 * Run switch name: take its lock (another running switch: -EALREADY),
 * listen, serve until SIGINT/SIGTERM or a stop request.  With daemon,
 * detach first (double fork, setsid, output to the log in the runtime
 * directory) and return in the parent once the child listens (0), or
 * the child failed (-errno).  Returns 0 when stopped.
 */
int vsw_server_main(const char *name, const char *datastore, bool daemon);

/* The control socket and lock paths of switch name. */
int vsw_server_paths(const char *name, char *ctl, size_t ctllen, char *lock,
    size_t locklen, char *log, size_t loglen);

/* vswitch_ctl.c: a new control client on fd; its input; end of it. */
void vsw_ctl_accept(struct vsw_server *s, int fd);
void vsw_ctl_read(struct vsw_server *s, struct vsw_ctl *c);
void vsw_ctl_write(struct vsw_server *s, struct vsw_ctl *c);
void vsw_ctl_tick(struct vsw_server *s);
void vsw_ctl_reap(struct vsw_server *s);
void vsw_ctl_close_all(struct vsw_server *s);
/* The reply object to one request line (for tests). */
json_t *vsw_ctl_request(struct vsw_server *s, struct vsw_ctl *c,
    const char *line, size_t len);
/* What `switch show` prints: the whole switch as JSON. */
json_t *vsw_ctl_show(struct vsw_server *s);

/* vswitch_server.c helpers used by vswitch_ctl.c. */
int vsw_server_reload(struct vsw_server *s, char *err, size_t errlen);
/* Apply a configuration to a running switch (port groups, aging,
 * uplink, peers).  0 or -errno with err. */
int vsw_server_apply(struct vsw_server *s, const struct vsw_conf *c,
    char *err, size_t errlen);

/* TAP uplink (vswitch_tap.c): open IFNAME with a vnet header, up. */
int vsw_tap_open(const char *ifname, char *err, size_t errlen);
/* Read a batch from the TAP port and forward it. */
int vsw_tap_recv(struct vsw *sw, struct vsw_port *p);
/* VXLAN socket (vswitch_vxlan_io in vswitch_tap.c): bind local:port. */
int vsw_vxlan_open(const char *local, int port, char *err, size_t errlen);
/* Add a peer "HOST[:PORT]" as a port.  0 or -errno with err. */
int vsw_vxlan_peer_add(struct vsw *sw, const char *spec, int defport,
    char *err, size_t errlen);
/* Read a batch from the VXLAN socket; unknown senders are counted. */
int vsw_vxlan_recv(struct vsw *sw, uint64_t *unknown);

#endif
