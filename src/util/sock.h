/*
 * Small helpers for the non-blocking stream sockets of the control
 * servers (the VM's control socket, the switch's) and their clients.
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

/*
 * A non-blocking, close-on-exec connection to the Unix stream socket at
 * path.  On a Unix socket such a connect finishes at once or fails with
 * EAGAIN (a hung server's full backlog): it never waits.  The socket,
 * or -errno.
 */
int sock_connect_unix(const char *path);

#endif
