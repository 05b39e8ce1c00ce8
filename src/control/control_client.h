/*
 * The client side of the control socket: connect to a running VM by name,
 * send requests, read replies and events.  The CLI's `termvisor vm
 * status|pause|resume|stop|stats NAME` is built on it.
 */
#ifndef TV_CONTROL_CLIENT_H
#define TV_CONTROL_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CONTROL_CLIENT_BUF	(2 * 1024 * 1024)	/* longest reply line */

struct control_conn {
	int fd;
	json_t *greeting;	/* the server's first line */
	unsigned next_id;
	char *buf;		/* CONTROL_CLIENT_BUF bytes */
	size_t len;
};

/*
 * Connect to VM name's control socket and read its greeting (checking the
 * protocol version).  0, or -errno with err set for the user: -ENOENT no
 * such VM is running, -ECONNREFUSED a stale socket of a VM that died,
 * -EPROTO not a termvisor socket or another protocol version.
 */
int control_client_open(struct control_conn *cc, const char *name, char *err,
    size_t errlen);
void control_client_close(struct control_conn *cc);

/*
 * Send cmd with args (may be NULL; reference stolen) and wait up to
 * timeout_ms for its reply, skipping events.  0 with *result set (a new
 * reference), or -errno with err set: -EREMOTEIO when the VM answered
 * with an error (err has its message).
 */
int control_client_call(struct control_conn *cc, const char *cmd,
    json_t *args, int timeout_ms, json_t **result, char *err, size_t errlen);

/*
 * Read the next line as JSON, waiting up to timeout_ms.  The object (new
 * reference), or NULL: errno ETIMEDOUT, EPIPE for end of stream, EPROTO.
 */
json_t *control_client_read(struct control_conn *cc, int timeout_ms);

/*
 * Spawn `termvisor run [--datastore DS] NAME` detached (its own session,
 * stdin /dev/null, output appended to DS/NAME/NAME.log, whose path goes
 * to log).  datastore NULL: the default.  The child's pid, or -errno.
 */
int control_client_spawn(const char *datastore, const char *name, char *log,
    size_t loglen);

/* Is sub one of the running-VM subcommands of `termvisor vm`? */
bool control_client_handles(const char *sub);
/* `termvisor vm SUB ...` with argv[0] = SUB; the exit status (0 ok,
 * 1 failed or not running, 2 usage). */
int control_client_main(int argc, char **argv);

#endif
