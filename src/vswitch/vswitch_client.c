/*
 * Client side of the switch: the NIC's connect-and-hello with start on
 * demand, and the control socket's request/reply for the CLI.
 *
 * Start on demand is race-free because the switch arbitrates: every
 * caller that finds nobody listening runs `termvisor switch run NAME
 * --daemon`, which returns once a switch listens; only the one that
 * takes the switch's lock file becomes it, the others are told it runs
 * already.  Then everyone connects to the one socket.
 */
#include "vswitch/vswitch_proto.h"
#include "vswitch/vswitch_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vswitch/vswitch_server.h"

static uint64_t
vswitch_client_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
vswitch_client_exe(char *buf, size_t len)
{
	const char *e = getenv("TERMVISOR_BIN");
	int n;

	/* /proc/self/exe works even when the binary was replaced since. */
	n = snprintf(buf, len, "%s", e != NULL && e[0] == '/' ? e :
	    "/proc/self/exe");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* In a forked child: become `termvisor switch run NAME --daemon`.  Only
 * async-signal-safe calls: the VMM has threads.  stderr (the VM's log)
 * is kept for the starter's messages; nothing else of the VM's (disk
 * images, its lock) may leak into a switch that outlives it. */
static void __attribute__((noreturn))
vswitch_client_exec(const char *exe, char *const argv[], int null)
{
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	syscall(SYS_close_range, 3u, ~0u, 0u);
	execv(exe, argv);
	_exit(127);
}

int
vswitch_client_start(const char *name, char *err, size_t errlen)
{
	char exe[PATH_MAX], nm[VSW_NAME_MAX];
	char *argv[] = { "termvisor", "switch", "run", nm, "--daemon", NULL };
	int null, st, ret;
	pid_t pid;

	snprintf(nm, sizeof(nm), "%s", name ? name : VSW_DEFAULT_SWITCH);
	if ((ret = vswitch_client_exe(exe, sizeof(exe))) < 0)
		return vsw_errf(err, errlen, ret, "termvisor binary "
		    "path too long");
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return -errno;
	if ((pid = fork()) < 0) {
		ret = -errno;
		close(null);
		return vsw_errf(err, errlen, ret, "fork: %s",
		    strerror(-ret));
	}
	if (pid == 0)
		vswitch_client_exec(exe, argv, null);
	close(null);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	return vsw_errf(err, errlen, -ECHILD, "could not start "
	    "switch %s with %s (exit %d; see its log in the runtime "
	    "directory)", nm, exe, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int
vswitch_client_spawn(const char *name)
{
	char exe[PATH_MAX], nm[VSW_NAME_MAX];
	char *argv[] = { "termvisor", "switch", "run", nm, "--daemon", NULL };
	int null, st, ret;
	pid_t pid;

	snprintf(nm, sizeof(nm), "%s", name ? name : VSW_DEFAULT_SWITCH);
	if ((ret = vswitch_client_exe(exe, sizeof(exe))) < 0)
		return ret;
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return -errno;
	if ((pid = fork()) < 0) {
		ret = -errno;
		close(null);
		return ret;
	}
	if (pid == 0) {
		/* The starter's parent exits at once, so the caller reaps it
		 * now and never waits for the switch. */
		if (fork() != 0)
			_exit(0);
		vswitch_client_exec(exe, argv, null);
	}
	close(null);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return 0;
}

/* Hello and welcome on a connected socket. */
static int
vswitch_client_hello(int fd, const struct vsw_hello *hello,
    struct vsw_welcome *w, char *err, size_t errlen)
{
	struct timeval tv = { .tv_sec = 5 };
	struct vsw_hello h = *hello;
	int big = VSW_SOCKBUF;
	uint8_t buf[sizeof(*w) + 1];
	ssize_t n;

	h.magic = VSW_MAGIC;
	h.version = VSW_VERSION;
	/* A switch that hangs must not hang the VM forever. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send(fd, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
		return vsw_errf(err, errlen, -errno, "sending the "
		    "hello: %s", strerror(errno));
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return vsw_errf(err, errlen, -errno, "waiting for "
		    "the welcome: %s", strerror(errno));
	if (n != (ssize_t)sizeof(*w))
		return vsw_errf(err, errlen, -EPROTO, "the switch "
		    "answered %zd bytes, not a welcome", n);
	memcpy(w, buf, sizeof(*w));
	w->message[sizeof(w->message) - 1] = '\0';
	if (w->magic != VSW_MAGIC || w->version != VSW_VERSION)
		return vsw_errf(err, errlen, -EPROTO, "the switch "
		    "speaks another protocol (version %u)", w->version);
	if (w->status < 0)
		return vsw_errf(err, errlen, w->status < -4095 ?
		    -EPROTO : w->status, "the switch refused the NIC: %s",
		    w->message);
	tv.tv_sec = 0;
	/* The socket is the NIC's transmit queue (AF_UNIX charges queued
	 * messages to the sender's buffer): make it deep. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int
vswitch_connect(const char *switch_name, const struct vsw_hello *hello,
    struct vsw_welcome *w, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *name = switch_name ? switch_name : VSW_DEFAULT_SWITCH;
	uint64_t deadline = vswitch_client_ms() + VSWITCH_START_TIMEOUT_MS;
	bool started = false;
	int fd, ret, e;

	if ((ret = vsw_socket_path(name, sa.sun_path,
	    sizeof(sa.sun_path))) < 0)
		return vsw_errf(err, errlen, ret, "switch name '%s' "
		    "makes too long a socket path", name);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return vsw_errf(err, errlen, -errno,
			    "socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		e = errno;
		close(fd);
		if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN)
			return vsw_errf(err, errlen, -e, "switch "
			    "%s (%s): %s", name, sa.sun_path, strerror(e));
		if (!started && e != EAGAIN) {
			if ((ret = vswitch_client_start(name, err,
			    errlen)) < 0)
				return ret;
			started = true;
			continue;
		}
		if (vswitch_client_ms() > deadline)
			return vsw_errf(err, errlen, -ETIMEDOUT,
			    "switch %s does not answer on %s", name,
			    sa.sun_path);
		usleep(20000);
	}
	if ((ret = vswitch_client_hello(fd, hello, w, err, errlen)) < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

json_t *
vswitch_client_read(int fd)
{
	char *buf = NULL, *nl, *nb;
	size_t cap = 0, len = 0;
	ssize_t n;
	json_t *j;

	/* Peek for the newline, then take exactly the line: the rest
	 * stays in the socket for the next call, no state kept here. */
	for (;;) {
		if (len + 65536 > cap) {
			cap = cap ? 2 * cap : 65536;
			if (cap > 64u << 20 || (nb = realloc(buf, cap)) ==
			    NULL)
				goto fail;
			buf = nb;
		}
		n = recv(fd, buf + len, cap - len, MSG_PEEK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (size_t)n <= len)
			goto fail;
		if ((nl = memchr(buf + len, '\n', (size_t)n - len)) != NULL)
			break;
		/* No newline yet: consume what we have and go on. */
		if (recv(fd, buf + len, (size_t)n - len, 0) != n - (ssize_t)len)
			goto fail;
		len = (size_t)n;
	}
	n = nl - buf + 1;
	if (recv(fd, buf + len, (size_t)n - len, 0) != n - (ssize_t)len)
		goto fail;
	j = json_loadb(buf, (size_t)n - 1, 0, NULL);
	free(buf);
	return j;
fail:
	free(buf);
	return NULL;
}

/* Bound the reply's wait (0: none, as events are waited for). */
static int
vswitch_client_timeout(int fd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

json_t *
vswitch_client_request(const char *name, const char *cmd, json_t *args,
    int *fdp, int *code, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	json_t *req, *rep = NULL, *res = NULL;
	char *line = NULL;
	int fd = -1, e;
	size_t n;

	if (code != NULL)
		*code = 0;
	req = json_pack("{s:i, s:s, s:o}", "id", 1, "cmd", cmd, "args",
	    args != NULL ? args : json_object());
	if (vsw_server_paths(name, sa.sun_path, sizeof(sa.sun_path), NULL, 0,
	    NULL, 0) < 0 || req == NULL || (line = json_dumps(req,
	    JSON_COMPACT)) == NULL) {
		vsw_errf(err, errlen, -EINVAL, "bad switch name");
		goto out;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		e = errno;
		if (code != NULL)
			*code = e == ENOENT || e == ECONNREFUSED ? -ENOENT : -e;
		vsw_errf(err, errlen, -e, "switch %s is not running"
		    " (%s: %s)", name, sa.sun_path, strerror(e));
		goto out;
	}
	/* A switch that is stuck (stopped, or wedged) must not hang the
	 * command that asks it something. */
	if ((e = vswitch_client_timeout(fd, VSWITCH_CLIENT_TIMEOUT_S)) < 0) {
		vsw_errf(err, errlen, e, "switch %s: %s", name, strerror(-e));
		goto out;
	}
	n = strlen(line);
	line[n] = '\n';		/* json_dumps left room for the NUL */
	errno = 0;
	if (send(fd, line, n + 1, MSG_NOSIGNAL) != (ssize_t)(n + 1) ||
	    (rep = vswitch_client_read(fd)) == NULL) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			vsw_errf(err, errlen, -ETIMEDOUT, "switch %s did not "
			    "answer within %d s", name,
			    VSWITCH_CLIENT_TIMEOUT_S);
		else
			vsw_errf(err, errlen, -EIO, "switch %s did not "
			    "answer", name);
		goto out;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		vsw_errf(err, errlen, -EINVAL, "%s", json_string_value(
		    json_object_get(json_object_get(rep, "error"),
		    "message")) ?: "the switch refused");
		goto out;
	}
	res = json_incref(json_object_get(rep, "result"));
	if (fdp != NULL) {
		/* Events come when they come. */
		if ((e = vswitch_client_timeout(fd, 0)) < 0) {
			vsw_errf(err, errlen, e, "switch %s: %s", name,
			    strerror(-e));
			json_decref(res);
			res = NULL;
			goto out;
		}
		*fdp = fd;
		fd = -1;
	}
out:
	if (fd >= 0)
		close(fd);
	json_decref(req);
	json_decref(rep);
	free(line);
	return res;
}
