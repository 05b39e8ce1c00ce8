/*
 * Control socket client and the `termvisor vm status|pause|resume|stop|
 * stats NAME` commands.  Exit statuses follow termvisor(1): 0 done, 1 the
 * VM is not running (no socket, or a stale one) or refused, 2 usage.
 */
#include "control/control_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "control/control.h"
#include "control/control_stats.h"
#include "util/log.h"
#include "hv/vmconfig.h"
#include "vmfs/vmfs.h"
#include "vmfs/vmfs_lock.h"

#define CONTROL_CLIENT_TIMEOUT	10000	/* ms for a reply */
#define CONTROL_START_TIMEOUT	30000	/* ms for a started VM to run */

int
control_client_open(struct control_conn *cc, const char *name, char *err,
    size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	json_t *v;
	int r;

	memset(cc, 0, sizeof(*cc));
	cc->fd = -1;
	if (control_socket_path(name, sa.sun_path, sizeof(sa.sun_path), NULL,
	    0) < 0) {
		snprintf(err, errlen, "%s: the control socket path is too "
		    "long (set XDG_RUNTIME_DIR to a shorter directory)", name);
		return -ENAMETOOLONG;
	}
	if ((cc->buf = malloc(CONTROL_CLIENT_BUF)) == NULL ||
	    (cc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) < 0) {
		r = cc->buf == NULL ? -ENOMEM : -errno;
		snprintf(err, errlen, "%s", strerror(-r));
		goto fail;
	}
	if (connect(cc->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (r == -ENOENT)
			snprintf(err, errlen, "%s is not running (no control "
			    "socket %s)", name, sa.sun_path);
		else if (r == -ECONNREFUSED)
			snprintf(err, errlen, "%s is not running: %s is a "
			    "stale control socket left by a VM that died",
			    name, sa.sun_path);
		else if (r == -EAGAIN)
			snprintf(err, errlen, "%s is not answering (its "
			    "control socket has a full backlog)", name);
		else
			snprintf(err, errlen, "%s: %s", sa.sun_path,
			    strerror(-r));
		goto fail;
	}
	/* Non-blocking only for connect (a hung VM with a full backlog
	 * would block it); reads are bounded by poll from here on. */
	if (fcntl(cc->fd, F_SETFL, 0) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s", strerror(-r));
		goto fail;
	}
	cc->greeting = control_client_read(cc, CONTROL_CLIENT_TIMEOUT);
	v = json_object_get(json_object_get(cc->greeting, "termvisor"),
	    "protocol");
	if (!json_is_integer(v) || json_integer_value(v) != CONTROL_PROTOCOL) {
		r = -EPROTO;
		snprintf(err, errlen, "%s: %s", sa.sun_path, cc->greeting ==
		    NULL ? "no greeting from the VM (hung or not termvisor)" :
		    "the VM speaks another control protocol version");
		goto fail;
	}
	return 0;
fail:
	control_client_close(cc);
	return r;
}

void
control_client_close(struct control_conn *cc)
{
	if (cc->fd >= 0)
		close(cc->fd);
	cc->fd = -1;
	json_decref(cc->greeting);
	cc->greeting = NULL;
	free(cc->buf);
	cc->buf = NULL;
}

static long long
control_client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A complete line out of the buffer as JSON, or NULL if none yet. */
static json_t *
control_client_take_line(struct control_conn *cc, bool *bad)
{
	char *nl = memchr(cc->buf, '\n', cc->len);
	size_t n;
	json_t *j;

	if (nl == NULL)
		return NULL;
	n = (size_t)(nl - cc->buf);
	j = json_loadb(cc->buf, n, 0, NULL);
	memmove(cc->buf, nl + 1, cc->len - n - 1);
	cc->len -= n + 1;
	*bad = j == NULL || !json_is_object(j);
	if (*bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

json_t *
control_client_read(struct control_conn *cc, int timeout_ms)
{
	long long deadline = control_client_now_ms() + timeout_ms;
	struct pollfd p = { .fd = cc->fd, .events = POLLIN };
	bool bad = false;
	json_t *j;
	ssize_t n;

	for (;;) {
		if ((j = control_client_take_line(cc, &bad)) != NULL)
			return j;
		if (bad || cc->len == CONTROL_CLIENT_BUF) {
			errno = EPROTO;
			return NULL;
		}
		long long left = deadline - control_client_now_ms();
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			errno = ETIMEDOUT;
			return NULL;
		}
		n = read(cc->fd, cc->buf + cc->len, CONTROL_CLIENT_BUF - cc->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = EPIPE;
			return NULL;
		}
		cc->len += (size_t)n;
	}
}

static int
control_client_write(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The reply of request id, skipping events; see control_client_call. */
static int
control_client_reply(struct control_conn *cc, json_int_t id, int timeout_ms,
    json_t **result, char *err, size_t errlen)
{
	json_t *j, *e;

	for (;;) {
		if ((j = control_client_read(cc, timeout_ms)) == NULL) {
			snprintf(err, errlen, "%s", errno == ETIMEDOUT ?
			    "the VM did not answer in time" : errno == EPIPE ?
			    "the VM closed the connection" :
			    "the VM sent something that is not JSON");
			return -errno;
		}
		if (json_integer_value(json_object_get(j, "id")) == id &&
		    json_object_get(j, "ok") != NULL)
			break;
		json_decref(j);	/* an event, or a reply not ours */
	}
	if (json_is_true(json_object_get(j, "ok"))) {
		*result = json_incref(json_object_get(j, "result"));
		json_decref(j);
		return 0;
	}
	e = json_object_get(j, "error");
	snprintf(err, errlen, "%s", json_is_string(json_object_get(e,
	    "message")) ? json_string_value(json_object_get(e, "message")) :
	    "the VM refused the request");
	json_decref(j);
	return -EREMOTEIO;
}

int
control_client_call(struct control_conn *cc, const char *cmd, json_t *args,
    int timeout_ms, json_t **result, char *err, size_t errlen)
{
	json_int_t id = ++cc->next_id;
	json_t *req = json_pack("{s:I, s:s, s:o?}", "id", id, "cmd", cmd,
	    "args", args);
	char *s = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	int r;

	json_decref(req);
	*result = NULL;
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = control_client_write(cc->fd, s, strlen(s));
	if (r == 0)
		r = control_client_write(cc->fd, "\n", 1);
	free(s);
	if (r < 0) {
		snprintf(err, errlen, "cannot send to the VM: %s", strerror(-r));
		return r;
	}
	return control_client_reply(cc, id, timeout_ms, result, err, errlen);
}

int
control_client_spawn(const char *datastore, const char *name, char *log,
    size_t loglen)
{
	char dir[PATH_MAX];
	pid_t pid;
	int fd;

	if (vmfs_vm_dir(datastore, name, dir, sizeof(dir)) < 0 ||
	    (size_t)snprintf(log, loglen, "%s/%s.log", dir, name) >= loglen)
		return -ENAMETOOLONG;
	if ((pid = fork()) < 0)
		return -errno;
	if (pid == 0) {
		/* Its own session: quitting the dashboard or the shell, or
		 * losing the SSH link, leaves the VM running. */
		setsid();
		if ((fd = open("/dev/null", O_RDONLY)) >= 0)
			dup2(fd, 0);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* Nothing else of the caller's: a pipe a script waits on
		 * must not stay open for the VM's lifetime. */
		close_range(3, ~0u, 0);
		if (datastore != NULL)
			execl("/proc/self/exe", "termvisor", "run",
			    "--datastore", datastore, name, (char *)NULL);
		else
			execl("/proc/self/exe", "termvisor", "run", name,
			    (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* --- the CLI --- */

static const char control_client_usage[] =
"usage: termvisor vm start [--datastore DIR] NAME\n"
"       termvisor vm console NAME\n"
"       termvisor vm status [--json] NAME\n"
"       termvisor vm stats [--json] [--watch] NAME\n"
"       termvisor vm pause NAME\n"
"       termvisor vm resume NAME\n"
"       termvisor vm stop [--force] [--timeout SECONDS] NAME\n"
"       termvisor vm reset NAME\n"
"       termvisor vm screenshot NAME FILE.png\n"
"\n"
"Talk to a running VM through its control socket (see termvisor(1),\n"
"CONTROL PROTOCOL).  NAME is the datastore VM's name, or pid-PID for a\n"
"VM run without one.\n"
"\n"
"  start     run the datastore VM NAME detached (its output goes to\n"
"            NAME.log in its directory); returns once it runs\n"
"  console   attach to the VM's serial console: the recent output, then\n"
"            live; what you type goes to the guest; Ctrl-] detaches and\n"
"            leaves the VM running (with stdin not a terminal: the input\n"
"            is sent, and at its end the command leaves once the output\n"
"            has been quiet for a second)\n"
"  status    print the VM's state, vCPUs, memory and uptime\n"
"  stats     per-vCPU CPU time and exits by kind, disk and network\n"
"            counters; --watch: every second with rates, until Ctrl-C\n"
"  pause     stop the vCPUs (the VM keeps its memory and devices)\n"
"  resume    run a paused VM again\n"
"  stop      press the ACPI power button and wait for the guest to power\n"
"            off; after --timeout seconds (default 30) it is forced off\n"
"  reset     restart the guest as a hardware reset would; the VM's\n"
"            control socket and attached consoles stay\n"
"  screenshot write what the VM's display shows to FILE.png\n"
"\n"
"  -d, --datastore DIR  start: the datastore holding NAME\n"
"  -f, --force          stop: power off at once, without asking the guest\n"
"  -t, --timeout S      stop: seconds to wait for the guest (1-86400)\n"
"  -j, --json           status, stats: print the VM's JSON reply\n"
"  -w, --watch          stats: refresh every second (a line a second\n"
"                       when the output is not a terminal)\n"
"  -h, --help           this help\n"
"\n"
"Exit status: 0 done, 1 the VM is not running or refused, 2 usage.\n";

static const char *const control_client_subs[] = {
	"status", "stats", "pause", "resume", "stop", "start", "console",
	"reset",
	"screenshot",
};

bool
control_client_handles(const char *sub)
{
	for (size_t i = 0; i < sizeof(control_client_subs) /
	    sizeof(*control_client_subs); i++)
		if (strcmp(sub, control_client_subs[i]) == 0)
			return true;
	return false;
}

struct control_client_opts {
	const char *sub, *name;
	const char *datastore;	/* start: NULL for the default */
	char file[4096];	/* screenshot: absolute path of FILE */
	bool force, json, watch;
	long timeout;		/* 0: the server's default */
};

/* `vm screenshot NAME FILE`: the VM writes FILE, so it gets an absolute
 * path (the VM's working directory is not ours). */
static int
control_client_parse_shot(int argc, char **argv,
    struct control_client_opts *o)
{
	char cwd[4096];
	const char *f;

	if (optind != argc - 2) {
		log_warnx("usage: termvisor vm screenshot NAME FILE.png");
		return -1;
	}
	o->name = argv[optind];
	f = argv[optind + 1];
	if (vmfs_name_valid(o->name) != 0) {
		log_warnx("'%s' is not a VM name", o->name);
		return -1;
	}
	if (f[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL) {
		log_warn("screenshot: working directory");
		return -1;
	}
	if ((size_t)snprintf(o->file, sizeof(o->file), "%s%s%s",
	    f[0] == '/' ? "" : cwd, f[0] == '/' ? "" : "/", f) >=
	    sizeof(o->file)) {
		log_warnx("screenshot: path too long");
		return -1;
	}
	return 0;
}

/* 0, 1 (--help printed) or -1 (usage error, said on stderr). */
static int
control_client_parse(int argc, char **argv, struct control_client_opts *o)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{ "datastore", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool stop = strcmp(argv[0], "stop") == 0;
	bool info = !strcmp(argv[0], "status") || !strcmp(argv[0], "stats");
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->sub = argv[0];
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "ft:jwd:h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(control_client_usage, stdout);
			return 1;
		}
		if ((c == 'f' || c == 't') && stop) {
			o->force |= c == 'f';
			if (c == 't') {
				errno = 0;
				o->timeout = strtol(optarg, &end, 10);
				if (errno || *end || end == optarg ||
				    o->timeout < 1 || o->timeout > 86400) {
					log_warnx("--timeout %s: expected "
					    "seconds from 1 to 86400", optarg);
					return -1;
				}
			}
		} else if (c == 'j' && info) {
			o->json = true;
		} else if (c == 'w' && strcmp(argv[0], "stats") == 0) {
			o->watch = true;
		} else if (c == 'd' && strcmp(argv[0], "start") == 0) {
			o->datastore = optarg;
		} else {
			log_warnx("vm %s: unknown or incomplete option '%s' "
			    "(see termvisor vm %s --help)", o->sub,
			    argv[optind - 1], o->sub);
			return -1;
		}
	}
	if (strcmp(argv[0], "screenshot") == 0)
		return control_client_parse_shot(argc, argv, o);
	if (optind != argc - 1) {
		log_warnx("usage: termvisor vm %s [options] NAME (see "
		    "termvisor vm %s --help)", o->sub, o->sub);
		return -1;
	}
	o->name = argv[optind];
	if (vmfs_name_valid(o->name) != 0) {
		log_warnx("'%s' is not a VM name", o->name);
		return -1;
	}
	return 0;
}

static void
control_client_print_status(json_t *r)
{
	printf("name:    %s\n", json_string_value(json_object_get(r, "name")));
	printf("state:   %s\n", json_string_value(json_object_get(r, "state")));
	printf("vcpus:   %lld\n", (long long)json_integer_value(
	    json_object_get(r, "vcpus")));
	printf("memory:  %lld MiB\n", (long long)(json_integer_value(
	    json_object_get(r, "memory")) >> 20));
	printf("accel:   %s\n", json_string_value(json_object_get(r, "accel")));
	printf("uptime:  %.0f s\n", json_number_value(json_object_get(r,
	    "uptime")));
	if (json_is_string(json_object_get(r, "vnc_addr")))
		printf("vnc:     %s\n", json_string_value(
		    json_object_get(r, "vnc_addr")));
}

static long long
control_client_int(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static void
control_client_print_stats(json_t *r)
{
	control_stats_print(stdout, r, NULL);
}

/* After a reset was accepted: wait for the "reset" event (the VM is
 * being built again) or the shutdown one (--no-reboot).  0, or 1. */
static int
control_client_wait_reset(struct control_conn *cc, const char *name)
{
	long long deadline = control_client_now_ms() + CONTROL_CLIENT_TIMEOUT;
	const char *ev;
	json_t *j;
	int r = -1;

	while (r < 0 && control_client_now_ms() < deadline) {
		j = control_client_read(cc, (int)(deadline -
		    control_client_now_ms()));
		if (j == NULL && errno != ETIMEDOUT)
			break;
		ev = json_string_value(json_object_get(j, "event"));
		if (ev != NULL && strcmp(ev, "reset") == 0) {
			printf("%s: reset\n", name);
			r = 0;
		} else if (ev != NULL && strcmp(ev, "shutdown") == 0) {
			printf("%s: reset, and not restarted (it runs with "
			    "--no-reboot)\n", name);
			r = 0;
		}
		json_decref(j);
	}
	if (r < 0)
		log_warnx("%s did not reset within %d s", name,
		    CONTROL_CLIENT_TIMEOUT / 1000);
	return r < 0 ? 1 : 0;
}

/* After a stop was accepted: wait for the shutdown event or the end of
 * the connection.  0, or 1 when the VM outlived the wait. */
static int
control_client_wait_gone(struct control_conn *cc, const char *name,
    long wait_s)
{
	long long deadline = control_client_now_ms() + wait_s * 1000;
	json_t *j;

	for (;;) {
		long long left = deadline - control_client_now_ms();

		if (left <= 0) {
			log_warnx("%s did not stop within %ld s", name, wait_s);
			return 1;
		}
		j = control_client_read(cc, (int)left);
		if (j == NULL && errno != ETIMEDOUT)
			return 0;	/* the VM closed the socket: gone */
		if (j != NULL && json_is_string(json_object_get(j, "event")) &&
		    strcmp(json_string_value(json_object_get(j, "event")),
		    "shutdown") == 0) {
			json_decref(j);
			return 0;
		}
		json_decref(j);
	}
}

static int
control_client_run(struct control_conn *cc, const struct control_client_opts *o)
{
	json_t *args = NULL, *res;
	char err[512];
	long wait_s;

	if (strcmp(o->sub, "stop") == 0)
		args = json_pack("{s:b}", "force", o->force);
	if (strcmp(o->sub, "screenshot") == 0)
		args = json_pack("{s:s}", "file", o->file);
	if (args != NULL && o->timeout > 0)
		json_object_set_new(args, "timeout", json_integer(o->timeout));
	if (control_client_call(cc, o->sub, args, CONTROL_CLIENT_TIMEOUT, &res,
	    err, sizeof(err)) < 0) {
		log_warnx("%s: %s", o->name, err);
		return 1;
	}
	if (o->json) {
		char *s = json_dumps(res, JSON_INDENT(2));

		if (s != NULL)
			puts(s);
		free(s);
	} else if (strcmp(o->sub, "status") == 0) {
		control_client_print_status(res);
	} else if (strcmp(o->sub, "stats") == 0) {
		control_client_print_stats(res);
	} else if (strcmp(o->sub, "screenshot") == 0) {
		printf("%s: %lldx%lld screenshot in %s\n", o->name,
		    control_client_int(res, "width"),
		    control_client_int(res, "height"), o->file);
	}
	json_decref(res);
	if (strcmp(o->sub, "stop") == 0) {
		/* The server forces the VM off after its timeout: allow
		 * that, plus time to tear down. */
		wait_s = (o->force ? 0 : o->timeout ? o->timeout :
		    CONTROL_STOP_TIMEOUT) + 15;
		if (control_client_wait_gone(cc, o->name, wait_s) != 0)
			return 1;
		printf("%s: stopped\n", o->name);
	} else if (strcmp(o->sub, "reset") == 0) {
		return control_client_wait_reset(cc, o->name);
	} else if (strcmp(o->sub, "pause") == 0 ||
	    strcmp(o->sub, "resume") == 0) {
		printf("%s: %s\n", o->name, o->sub[0] == 'p' ? "paused" :
		    "running");
	}
	return 0;
}

/* The lines the VM wrote to its log after offset from: the last ones
 * on stderr, to say why it did not start. */
static void
control_client_log_tail(const char *log, off_t from)
{
	char buf[4096], *p;
	ssize_t n;
	int fd = open(log, O_RDONLY | O_CLOEXEC), lines = 0;
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	if (st.st_size - from > (off_t)sizeof(buf) - 1)
		from = st.st_size - (off_t)sizeof(buf) + 1;
	n = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	/* The last 10 lines. */
	for (p = buf + n; p > buf && lines < 10; p--)
		if (p[-1] == '\n' && ++lines == 10)
			break;
	fprintf(stderr, "%s\n", p);
}

/* `vm start`: spawn the VM detached, wait until it runs. */
static int
control_client_start(const struct control_client_opts *o)
{
	struct vm_config cfg;
	struct vmfs_lock_holder h;
	struct control_conn cc;
	char dir[PATH_MAX], log[PATH_MAX + 80], err[512];
	const char *state = NULL;
	struct stat st;
	off_t from = 0;
	long long deadline;
	json_t *res;
	int status;
	pid_t pid;

	vm_config_defaults(&cfg);
	if (vmfs_vm_dir(o->datastore, o->name, dir, sizeof(dir)) < 0 ||
	    vmfs_load_vm(o->datastore, o->name, &cfg) < 0) {
		log_warnx("%s: cannot start: no such VM in the datastore, or "
		    "its configuration is bad (see termvisor vm show %s)",
		    o->name, o->name);
		return 1;
	}
	if (vmfs_lock_query(dir, &h) > 0 && !h.expired) {
		log_warnx("%s is already running (pid %ld on %s)", o->name,
		    h.pid, h.host);
		return 1;
	}
	if (control_client_open(&cc, o->name, err, sizeof(err)) == 0) {
		control_client_close(&cc);
		log_warnx("%s is already running (its control socket "
		    "answers)", o->name);
		return 1;
	}
	snprintf(log, sizeof(log), "%s/%s.log", dir, o->name);
	if (stat(log, &st) == 0)
		from = st.st_size;
	if ((pid = control_client_spawn(o->datastore, o->name, log,
	    sizeof(log))) < 0) {
		log_warnx("%s: cannot start: %s", o->name, strerror(-pid));
		return 1;
	}
	deadline = control_client_now_ms() + CONTROL_START_TIMEOUT;
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			log_warnx("%s did not start (%s %d); from %s:", o->name,
			    WIFEXITED(status) ? "exit status" : "signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) :
			    WTERMSIG(status), log);
			control_client_log_tail(log, from);
			return 1;
		}
		if (control_client_open(&cc, o->name, err, sizeof(err)) == 0) {
			if (control_client_call(&cc, "status", NULL,
			    CONTROL_CLIENT_TIMEOUT, &res, err,
			    sizeof(err)) == 0) {
				state = json_string_value(json_object_get(res,
				    "state"));
				state = state != NULL && strcmp(state,
				    "running") == 0 ? "running" : NULL;
				/* where it listens: "auto" resolved */
				if (json_is_string(json_object_get(res,
				    "vnc_addr")))
					snprintf(cfg.vnc, sizeof(cfg.vnc), "%s",
					    json_string_value(json_object_get(
					    res, "vnc_addr")));
				else	/* none, or auto without a display */
					snprintf(cfg.vnc, sizeof(cfg.vnc),
					    "none");
				json_decref(res);
			}
			control_client_close(&cc);
			if (state != NULL)
				break;
		}
		if (control_client_now_ms() >= deadline) {
			log_warnx("%s: not running after %d s (pid %ld keeps "
			    "starting; see %s)", o->name,
			    CONTROL_START_TIMEOUT / 1000, (long)pid, log);
			return 1;
		}
		poll(NULL, 0, 100);
	}
	if (control_socket_path(o->name, dir, sizeof(dir), NULL, 0) < 0)
		dir[0] = '\0';
	printf("%s running: console `termvisor vm console %s`, control %s, "
	    "log %s, VNC %s\n", o->name, o->name, dir, log,
	    cfg.vnc[0] && strcmp(cfg.vnc, "none") != 0 ? cfg.vnc : "none");
	return 0;
}

/* --- vm console --- */

#define CONSOLE_ESCAPE	0x1d	/* Ctrl-] */
#define CONSOLE_PENDING	4096	/* typed bytes not yet taken */

static struct termios console_saved;
static volatile sig_atomic_t console_raw;

static void
console_restore(void)
{
	if (console_raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &console_saved);
		console_raw = 0;
	}
}

static void
console_on_signal(int sig)
{
	console_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int
console_write_all(int fd, const uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Send the pending typed bytes as one console-input request. */
static int
console_send_input(struct control_conn *cc, const uint8_t *p, size_t n,
    json_int_t *id)
{
	json_t *req = json_pack("{s:I, s:s, s:{s:o}}", "id",
	    (json_int_t)++cc->next_id, "cmd", "console-input", "args", "data",
	    control_bytes_json(p, n));
	char *s = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	int r = s == NULL ? -ENOMEM : control_client_write(cc->fd, s,
	    strlen(s));

	if (r == 0)
		r = control_client_write(cc->fd, "\n", 1);
	json_decref(req);
	free(s);
	*id = (json_int_t)cc->next_id;
	return r;
}

enum { CONSOLE_GOON, CONSOLE_SHUTDOWN, CONSOLE_BAD };

/* One line from the VM: output to print, a reply to our input, the end. */
static int
console_handle(json_t *j, uint8_t *pending, size_t *npending,
    json_int_t *inflight, long long *retry_ms, char *why, size_t whylen)
{
	const char *ev = json_string_value(json_object_get(j, "event"));
	uint8_t out[CONTROL_CONSOLE_CHUNK];
	long n;

	if (ev != NULL && strcmp(ev, "console") == 0) {
		n = control_json_bytes(json_object_get(j, "data"), out,
		    sizeof(out));
		if (n > 0 && console_write_all(STDOUT_FILENO, out,
		    (size_t)n) < 0)
			return CONSOLE_BAD;
		return CONSOLE_GOON;
	}
	if (ev != NULL && strcmp(ev, "reset") == 0) {
		/* The VM is built again behind the same socket: the
		 * console stays attached and shows the new boot. */
		if (isatty(STDERR_FILENO))
			fputs("\r\n[termvisor: the VM reset]\r\n", stderr);
		return CONSOLE_GOON;
	}
	if (ev != NULL && strcmp(ev, "shutdown") == 0) {
		snprintf(why, whylen, "%s", json_is_string(json_object_get(j,
		    "reason")) ? json_string_value(json_object_get(j,
		    "reason")) : "shut down");
		return CONSOLE_SHUTDOWN;
	}
	if (*inflight != 0 && json_integer_value(json_object_get(j, "id")) ==
	    *inflight) {
		json_int_t w = json_integer_value(json_object_get(
		    json_object_get(j, "result"), "written"));

		*inflight = 0;
		if (w < 0 || (size_t)w > *npending)
			w = 0;
		memmove(pending, pending + w, *npending - (size_t)w);
		*npending -= (size_t)w;
		/* The guest has not read what it was sent: try later. */
		if (*npending > 0)
			*retry_ms = control_client_now_ms() + (w > 0 ? 0 : 20);
	}
	return CONSOLE_GOON;
}

static int
control_client_console(struct control_conn *cc, const char *name)
{
	uint8_t pending[CONSOLE_PENDING];
	size_t npending = 0;
	json_int_t inflight = 0;
	long long retry_ms = 0, quiet_ms = 0;
	bool tty = isatty(STDIN_FILENO), in_eof = false, bad = false;
	bool detach = false;	/* Ctrl-]: leave once the input is sent */
	char err[512], why[64] = "";
	struct termios raw;
	json_t *res, *j;
	int r = 0, st = CONSOLE_GOON;

	if (control_client_call(cc, "console-attach", NULL,
	    CONTROL_CLIENT_TIMEOUT, &res, err, sizeof(err)) < 0) {
		log_warnx("%s: %s", name, err);
		return 1;
	}
	json_decref(res);
	if (tty) {
		if (tcgetattr(STDIN_FILENO, &console_saved) < 0) {
			log_warn("%s: the terminal", name);
			return 1;
		}
		signal(SIGINT, console_on_signal);
		signal(SIGTERM, console_on_signal);
		signal(SIGHUP, console_on_signal);
		signal(SIGQUIT, console_on_signal);
		raw = console_saved;
		cfmakeraw(&raw);
		console_raw = 1;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
		atexit(console_restore);
		fprintf(stderr, "Connected to %s; Ctrl-] detaches.\r\n",
		    name);
	}
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = cc->fd, .events = POLLIN },
			{ .fd = STDIN_FILENO, .events = POLLIN },
		};
		long long now = control_client_now_ms();
		int timeout = -1;
		ssize_t n;

		/* Lines already read (with the attach reply, too). */
		while ((j = control_client_take_line(cc, &bad)) != NULL) {
			st = console_handle(j, pending, &npending, &inflight,
			    &retry_ms, why, sizeof(why));
			json_decref(j);
			if (st != CONSOLE_GOON)
				break;
		}
		if (st != CONSOLE_GOON || bad || cc->len == CONTROL_CLIENT_BUF)
			break;
		if (inflight == 0 && npending > 0 && now >= retry_ms) {
			if (console_send_input(cc, pending, npending,
			    &inflight) < 0)
				break;	/* the VM went away: read says why */
		}
		if (inflight == 0 && npending > 0)
			timeout = (int)(retry_ms - now);
		if (in_eof && npending == 0 && inflight == 0) {
			if (detach || now - quiet_ms >= 1000)
				break;
			timeout = (int)(1000 - (now - quiet_ms));
		}
		if (poll(p, in_eof || npending == CONSOLE_PENDING ? 1 : 2,
		    timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(STDIN_FILENO, pending + npending,
			    CONSOLE_PENDING - npending);
			if (n <= 0 && !(n < 0 && errno == EINTR)) {
				in_eof = true;
				quiet_ms = control_client_now_ms();
			} else if (n > 0) {
				uint8_t *esc = memchr(pending + npending,
				    CONSOLE_ESCAPE, (size_t)n);

				if (esc != NULL) {
					/* What came before it still goes. */
					npending = (size_t)(esc - pending);
					detach = in_eof = true;
					quiet_ms = 0;
				} else {
					npending += (size_t)n;
				}
			}
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(cc->fd, cc->buf + cc->len, CONTROL_CLIENT_BUF -
			    cc->len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			cc->len += (size_t)n;
			quiet_ms = control_client_now_ms();
		}
	}
	console_restore();
	if (st == CONSOLE_BAD)
		r = 1;	/* our stdout went away */
	else if (detach && st == CONSOLE_GOON && !bad)
		fprintf(stderr, "\r\nDetached from %s (it keeps running).\n",
		    name);
	else if (st == CONSOLE_SHUTDOWN && strcmp(why, "reset") == 0)
		fprintf(stderr, "\r\n%s: the VM reset and was not restarted "
		    "(it runs with --no-reboot).\n", name);
	else if (st == CONSOLE_SHUTDOWN)
		fprintf(stderr, "\r\n%s: the VM shut down (%s).\n", name,
		    why);
	else if (bad)
		r = 1, log_warnx("%s: the VM sent something that is not JSON",
		    name);
	else if (!in_eof || npending > 0 || inflight != 0)
		fprintf(stderr, "\r\n%s: the VM closed the connection.\n",
		    name);
	return r;
}

int
control_client_main(int argc, char **argv)
{
	struct control_client_opts o;
	struct control_conn cc;
	char err[512];
	int r;

	if ((r = control_client_parse(argc, argv, &o)) != 0)
		return r > 0 ? 0 : 2;
	if (strcmp(o.sub, "start") == 0)
		return control_client_start(&o);
	if (control_client_open(&cc, o.name, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return 1;
	}
	if (strcmp(o.sub, "console") == 0)
		r = control_client_console(&cc, o.name);
	else if (o.watch)
		r = control_stats_watch(&cc, o.name, o.json);
	else
		r = control_client_run(&cc, &o);
	control_client_close(&cc);
	return r;
}
