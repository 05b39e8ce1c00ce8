/*
 * The NIC side of a switch connection: connect to the host's switch,
 * starting it when nothing listens, and say hello (vswitch_proto.h).
 * Also the small JSON-lines client of a switch's control socket used
 * by `termvisor switch show|capture|stop`.
 */
#ifndef TV_VSWITCH_CLIENT_H
#define TV_VSWITCH_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "vswitch/vswitch_proto.h"

/* How long vswitch_connect waits for a switch it started (ms). */
#define VSWITCH_START_TIMEOUT_MS	5000

/*
 * Connect to switch switch_name (NULL: VSW_DEFAULT_SWITCH), send hello
 * (magic and version are filled in here) and read the welcome into *w.
 * When nothing listens, start the switch (`termvisor switch run NAME
 * --daemon`, detached, its log in the runtime directory) and retry for
 * up to VSWITCH_START_TIMEOUT_MS; two callers racing end up on the same
 * switch.  Returns the connected SOCK_SEQPACKET fd (O_NONBLOCK and
 * FD_CLOEXEC set) once the welcome says 0; otherwise -errno with a
 * sentence in err (the welcome's message when the switch refused).
 * Blocks: call it from the VM's setup or a reconnect thread, not a vCPU.
 */
int vswitch_connect(const char *switch_name, const struct vsw_hello *hello,
    struct vsw_welcome *w, char *err, size_t errlen);

/*
 * The termvisor binary that vswitch_connect starts switches with:
 * $TERMVISOR_BIN, else this process's own executable (right for the
 * VMM, which is termvisor).  Tests set the variable.
 */
int vswitch_client_exe(char *buf, size_t len);

/*
 * Start switch name detached unless it runs: 0 when it listens (started
 * now or before), -errno otherwise.
 */
int vswitch_client_start(const char *name, char *err, size_t errlen);

/*
 * The same without waiting, for a NIC that connects from an event loop
 * and retries: start `termvisor switch run NAME --daemon` detached
 * (double fork, nothing to reap later) and return at once.  Call it
 * when connect() says ENOENT or ECONNREFUSED; calling it again while a
 * switch starts is harmless (the switch's lock lets one run).  0 or
 * -errno (fork failed).
 */
int vswitch_client_spawn(const char *name);

#define VSWITCH_CLIENT_TIMEOUT_S	10	/* for a request's reply */

/*
 * One request on switch name's control socket: connect, send
 * {"cmd": cmd, "args": args} (args stolen, may be NULL), read the reply
 * (at most VSWITCH_CLIENT_TIMEOUT_S s: -ETIMEDOUT's message then).
 * Returns the reply's result (new reference) or NULL with err set
 * ("not running" gives -ENOENT in *code when code is non-NULL).
 * With fdp non-NULL the connection is left open in *fdp for events.
 */
json_t *vswitch_client_request(const char *name, const char *cmd,
    json_t *args, int *fdp, int *code, char *err, size_t errlen);
/* Read one JSON line from a control connection (blocking); NULL at EOF
 * or on a line that is not JSON. */
json_t *vswitch_client_read(int fd);

#endif
