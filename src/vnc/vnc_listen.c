/*
 * Where the VNC server listens and with which password: parsing the
 * --vnc specification, opening the listening socket (TCP or Unix), and
 * reading the password.  See vnc.h.
 */
#include "vnc/vnc.h"
#include "vnc/vnc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "hv/vmconfig.h"

#define VNC_DISPLAY_MAX		(65535 - VNC_PORT_BASE)
#define VNC_LOOPBACK		"127.0.0.1"

static int
vnc_parse_display(const char *s, int *display)
{
	char *end;
	long n;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || n > VNC_DISPLAY_MAX)
		return -1;
	*display = (int)n;
	return 0;
}

/* "[v6]:N", "host:N", ":N" or "N" into l's host and display. */
static int
vnc_parse_tcp(const char *spec, struct vnc_listen *l)
{
	const char *colon, *host = spec;
	size_t hlen;

	if (*spec == '[') {
		if ((colon = strstr(spec, "]:")) == NULL)
			return -1;
		host = spec + 1;
		hlen = (size_t)(colon - host);
		colon++;
	} else if ((colon = strrchr(spec, ':')) != NULL) {
		hlen = (size_t)(colon - spec);
		if (memchr(spec, ':', hlen) != NULL)
			return -1;	/* a bare IPv6 address needs brackets */
	} else {
		colon = spec - 1;
		hlen = 0;
	}
	if (hlen >= sizeof(l->host))
		return -1;
	memcpy(l->host, host, hlen);
	l->host[hlen] = '\0';
	if (hlen == 0)
		snprintf(l->host, sizeof(l->host), "%s", VNC_LOOPBACK);
	return vnc_parse_display(colon + 1, &l->display);
}

int
vnc_parse_listen(const char *spec, struct vnc_listen *l, char *err,
    size_t errlen)
{
	memset(l, 0, sizeof(*l));
	if (spec == NULL || *spec == '\0' || strcmp(spec, "none") == 0)
		return 0;
	if (strcmp(spec, "auto") == 0) {
		l->kind = VNC_AUTO;
		snprintf(l->host, sizeof(l->host), "%s", VNC_LOOPBACK);
		return 0;
	}
	if (strncmp(spec, "unix:", 5) == 0) {
		if (spec[5] == '\0' || strlen(spec + 5) >= sizeof(l->path)) {
			snprintf(err, errlen, "vnc %s: expected unix:PATH with "
			    "a path of 1 to %zu bytes", spec,
			    sizeof(l->path) - 1);
			return -1;
		}
		l->kind = VNC_UNIX;
		snprintf(l->path, sizeof(l->path), "%s", spec + 5);
		return 0;
	}
	if (vnc_parse_tcp(spec, l) < 0) {
		snprintf(err, errlen, "vnc %s: expected ADDR:DISPLAY (display "
		    "0 to %d, port 5900 + DISPLAY; [ADDR] for IPv6), "
		    "unix:PATH, auto or none", spec, VNC_DISPLAY_MAX);
		return -1;
	}
	l->kind = VNC_TCP;
	return 0;
}

bool
vnc_wanted(const struct vm_config *c)
{
	if (c->vnc[0] == '\0' || strcmp(c->vnc, "none") == 0)
		return false;
	return strcmp(c->vnc, "auto") != 0 || strcmp(c->display, "none") != 0;
}

/* Bind and listen on host:port; the socket, or -errno (-EADDRINUSE when
 * the port is taken). */
static int
vnc_listen_tcp(const char *host, int port)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	    .ai_socktype = SOCK_STREAM }, *res, *ai;
	char serv[16];
	int fd = -1, err = -EADDRNOTAVAIL, one = 1;

	snprintf(serv, sizeof(serv), "%d", port);
	if (getaddrinfo(host, serv, &hints, &res) != 0)
		return -EADDRNOTAVAIL;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 16) == 0)
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : err;
}

/* A socket file nobody answers on is left from a VM that died: take its
 * place.  Anything else at path is refused. */
static int
vnc_unix_stale(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	return unlink(path) < 0 ? -errno : 0;
}

static int
vnc_listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, err;

	if ((err = vnc_unix_stale(path)) < 0)
		return err;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* Only our user may connect: the socket is the screen and keyboard. */
	old = umask(0077);
	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (err < 0 || listen(fd, 16) < 0)
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

/* host:port, with brackets around an IPv6 address. */
static void
vnc_listen_name(char *addr, size_t addrlen, const char *host, int port)
{
	bool v6 = strchr(host, ':') != NULL;

	snprintf(addr, addrlen, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
	    port);
}

int
vnc_listen_open(const struct vnc_listen *l, char *addr, size_t addrlen)
{
	int fd = -EINVAL;

	switch (l->kind) {
	case VNC_UNIX:
		snprintf(addr, addrlen, "unix:%s", l->path);
		return vnc_listen_unix(l->path);
	case VNC_TCP:
		fd = vnc_listen_tcp(l->host, VNC_PORT_BASE + l->display);
		vnc_listen_name(addr, addrlen, l->host,
		    VNC_PORT_BASE + l->display);
		return fd;
	case VNC_AUTO:
		for (int d = 0; d < VNC_AUTO_DISPLAYS; d++) {
			fd = vnc_listen_tcp(l->host, VNC_PORT_BASE + d);
			vnc_listen_name(addr, addrlen, l->host,
			    VNC_PORT_BASE + d);
			if (fd != -EADDRINUSE)
				return fd;
		}
		return fd;
	default:
		return -EINVAL;
	}
}

int
vnc_read_password(const char *file, char *pw, size_t len, char *err,
    size_t errlen)
{
	const char *env = getenv(VNC_PASSWORD_ENV);
	ssize_t n;
	int fd;

	pw[0] = '\0';
	if (file == NULL || *file == '\0') {
		if (env != NULL)
			snprintf(pw, len, "%s", env);
		return 0;
	}
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "VNC password file %s: %s", file,
		    strerror(errno));
		return -1;
	}
	n = read(fd, pw, len - 1);
	close(fd);
	if (n < 0)
		n = 0;
	pw[n] = '\0';
	pw[strcspn(pw, "\r\n")] = '\0';
	if (pw[0] == '\0') {
		snprintf(err, errlen, "VNC password file %s: no password on "
		    "its first line", file);
		return -1;
	}
	return 0;
}
