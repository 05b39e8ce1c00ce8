/*
 * Where a switch's socket lives (see vswitch_proto.h).
 */
#include "vswitch/vswitch_proto.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/un.h>

#include "control/control.h"

int
vsw_socket_path(const char *name, char *path, size_t len)
{
	char sock[PATH_MAX], dir[PATH_MAX];
	int n, err;

	if (name == NULL)
		name = VSW_DEFAULT_SWITCH;
	/* Reuse the control sockets' rules for the directory. */
	if ((err = control_socket_path(name, sock, sizeof(sock), dir,
	    sizeof(dir))) < 0)
		return err;
	n = snprintf(path, len, "%s/%s.vswitch", dir, name);
	if (n < 0 || (size_t)n >= len ||
	    (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int
vsw_errf(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}
