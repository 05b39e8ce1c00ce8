/*
 * Inside the VNC server: the state its files share (vnc.c: thread,
 * screen and refresh; vnc_listen.c: sockets and password; vnc_input.c:
 * keyboard and pointer).
 */
#ifndef TV_VNC_INT_H
#define TV_VNC_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rfb/rfb.h>

#include "vnc/vnc.h"
#include "vnc/vnc_keymap.h"
#include "vnc/vnc_tiles.h"

/* auto tries displays 0 to VNC_AUTO_DISPLAYS - 1 (ports 5900-5999). */
#define VNC_AUTO_DISPLAYS	100

struct display;
struct i8042;
struct virtio_input;

struct vnc {
	/* The VM served, and its devices: NULL while parked between two
	 * boots.  Read and written on the server thread only (vnc_park and
	 * vnc_start hand a new VM over through hand_*). */
	struct vm *vm;
	struct display *display;	/* NULL: a black screen */
	struct i8042 *kbd;
	struct virtio_input *tablet;
	pthread_mutex_t hand_lock;
	pthread_cond_t hand_done;
	struct vm *hand_vm;
	bool hand_pending;
	/* What it was started for, to tell whether the next boot's
	 * configuration can keep it. */
	char spec[128];
	char password_file[4096];
	char name[64];
	rfbScreenInfoPtr screen;
	struct vnc_shadow shadow;
	uint64_t generation;		/* of the surface the shadow has */
	pthread_t thread;
	bool thread_live;
	atomic_bool stop;
	atomic_bool mode_changed;	/* the display's listener said so */
	int listen_fd;
	bool unix_bound;		/* we created listen.path */
	struct vnc_listen listen;
	char addr[160];
	char password[64];
	char *passwords[2];		/* rfbCheckPasswordByList's list */
	/* Refresh pacing: fast after a change, slower while idle. */
	uint64_t last_change_ns;
	/* Input state, touched on the server thread only. */
	struct vnc_keymap_state keys;
	int ptr_x, ptr_y;
	unsigned ptr_buttons;
};

/* Open the socket l names; writes its address.  fd or -errno. */
int vnc_listen_open(const struct vnc_listen *l, char *addr, size_t addrlen);

/* libvncserver's input hooks (server thread; they take the device lock). */
void vnc_input_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl);
void vnc_input_pointer(int mask, int x, int y, rfbClientPtr cl);

#endif
