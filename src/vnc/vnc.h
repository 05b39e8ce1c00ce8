/*
 * The VM's VNC server (libvncserver): serves the display's surface
 * (devices/display.h), feeds the client's keys into the i8042 and its
 * pointer into the virtio-input tablet (the PS/2 mouse when the guest
 * has no tablet driver).
 *
 * Where it listens (vm_config.vnc, --vnc):
 *   none              no server
 *   auto              127.0.0.1, the first free display from :0, if
 *                     the VM has a display (the default)
 *   [ADDR]:DISPLAY    TCP port 5900 + DISPLAY on ADDR (IPv4, a host name
 *                     or [IPv6]); no ADDR means 127.0.0.1
 *   unix:PATH         a Unix socket, created mode 0600
 *
 * The password (VNC authentication; only its first 8 characters count,
 * as the protocol's DES challenge has it) comes from the file
 * vm_config.vnc_password_file, else from the environment variable
 * TERMVISOR_VNC_PASSWORD; with neither, clients are not asked for one.
 */
#ifndef TV_VNC_H
#define TV_VNC_H

#include <stdbool.h>
#include <stddef.h>

struct vm;
struct vm_config;
struct vnc;

#define VNC_PASSWORD_ENV	"TERMVISOR_VNC_PASSWORD"
#define VNC_PORT_BASE		5900

/* A parsed listen specification. */
struct vnc_listen {
	enum { VNC_NONE, VNC_TCP, VNC_AUTO, VNC_UNIX } kind;
	char host[64];		/* VNC_TCP: numeric or name, no brackets */
	int display;		/* VNC_TCP: port - VNC_PORT_BASE */
	char path[108];		/* VNC_UNIX */
};

/* Parse spec (see above) into *l; 0, or -1 with a message in err. */
int vnc_parse_listen(const char *spec, struct vnc_listen *l, char *err,
    size_t errlen);

/*
 * Does the VM configured as c get a VNC server (and so the virtio-input
 * tablet)?  Not with "none", nor with "auto" (the default) when the VM
 * has no display (--display none); an explicit address always does.
 */
bool vnc_wanted(const struct vm_config *c);

/*
 * The password: the first line of file (if file is not empty), else
 * $TERMVISOR_VNC_PASSWORD, else "" (none).  0, or -1 with a message in
 * err (unreadable or empty file).
 */
int vnc_read_password(const char *file, char *pw, size_t len, char *err,
    size_t errlen);

/*
 * Start serving vm's display as vm->cfg says (NULL and no error for
 * "none").  Call after the devices exist; the server runs on its own
 * thread until vnc_stop().  On failure returns NULL with a message
 * logged and *err < 0.
 */
struct vnc *vnc_start(struct vm *vm, int *err);

/* "127.0.0.1:5901" or "unix:/path": where v listens. */
const char *vnc_address(const struct vnc *v);

/* Disconnect every client, stop the thread and free v (NULL is fine).
 * Call before the VM's devices go away. */
void vnc_stop(struct vnc *v);

/*
 * The VM is going away and another will follow (a guest reboot makes a
 * new VM): let go of its devices but keep the clients, so that the next
 * vnc_start() with the same configuration carries on with them (they
 * see the last picture until the new VM's display shows).  Call before
 * the VM is destroyed.
 */
void vnc_park(struct vnc *v);

#endif
