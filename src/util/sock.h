/*
 * Small helpers for the non-blocking stream sockets the control
 * servers (the VM's control socket, the switch's) write replies to.
 */
#ifndef TV_SOCK_H
#define TV_SOCK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Send as much of buf[0, *len) as the socket takes now, without
 * blocking or SIGPIPE, and move what is left to the front of buf.
 * Returns false when the peer is gone (the caller drops it), true
 * otherwise (*len is then what still waits for EPOLLOUT).
 */
bool sock_flush(int fd, char *buf, size_t *len);

#endif
