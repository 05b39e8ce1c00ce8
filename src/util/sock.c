/*
 * Non-blocking socket helpers (see sock.h).
 */
#include "util/sock.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

bool
sock_flush(int fd, char *buf, size_t *len)
{
	size_t done = 0;
	ssize_t n;

	while (done < *len) {
		n = send(fd, buf + done, *len - done, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	memmove(buf, buf + done, *len - done);
	*len -= done;
	return true;
}
