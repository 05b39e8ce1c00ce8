/*
 * Where the VNC server listens and with which password: the --vnc /
 * vmx "vnc" specification (good and bad forms), the listening sockets
 * (TCP on loopback, auto, Unix with a stale socket and with something
 * else in the way), the password file and environment, and the same
 * settings through termvisor run's options and a VM's .vmx file; a VM
 * made from the defaults serves VNC on loopback unless it has no display.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "null_accel.h"
#include "hv/vmconfig.h"
#include "run.h"
#include "unit/scratch.h"
#include "vmfs/vmx.h"
#include "vnc/vnc.h"
#include "vnc/vnc_int.h"

static char dir[] = "/tmp/tv-vnc-listen-XXXXXX";

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	unsetenv(VNC_PASSWORD_ENV);
}

static void
teardown(void)
{
	scratch_remove(dir);
	strcpy(dir, "/tmp/tv-vnc-listen-XXXXXX");
}

TestSuite(vnc_listen, .init = setup, .fini = teardown, .timeout = 10);

Test(vnc_listen, good_specifications)
{
	static const struct {
		const char *spec;
		int kind;
		const char *host;
		int display;
	} good[] = {
		{ "none", VNC_NONE, "", 0 },
		{ "", VNC_NONE, "", 0 },
		{ ":0", VNC_TCP, "127.0.0.1", 0 },
		{ "7", VNC_TCP, "127.0.0.1", 7 },
		{ "127.0.0.1:1", VNC_TCP, "127.0.0.1", 1 },
		{ "0.0.0.0:12", VNC_TCP, "0.0.0.0", 12 },
		{ "localhost:3", VNC_TCP, "localhost", 3 },
		{ "[::1]:2", VNC_TCP, "::1", 2 },
		{ ":59635", VNC_TCP, "127.0.0.1", 59635 },
		{ "auto", VNC_AUTO, "127.0.0.1", 0 },
	};
	struct vnc_listen l;
	char err[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(vnc_parse_listen(good[i].spec, &l, err,
		    sizeof(err)), 0, "%s: %s", good[i].spec, err);
		cr_assert_eq((int)l.kind, good[i].kind, "%s", good[i].spec);
		cr_assert_str_eq(l.host, good[i].host, "%s", good[i].spec);
		cr_assert_eq(l.display, good[i].display, "%s", good[i].spec);
	}
	cr_assert_eq(vnc_parse_listen("unix:/run/x.sock", &l, err,
	    sizeof(err)), 0);
	cr_assert_eq((int)l.kind, VNC_UNIX);
	cr_assert_str_eq(l.path, "/run/x.sock");
}

Test(vnc_listen, bad_specifications)
{
	static const char *const bad[] = {
		"127.0.0.1", ":", "host:", ":x", ":-1", ":59636", ":1x",
		"::1:0", "[::1]", "[::1]0", "unix:", "garbage", "1.2.3.4:5:6",
	};
	struct vnc_listen l;
	char err[256], longpath[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(vnc_parse_listen(bad[i], &l, err, sizeof(err)), -1,
		    "%s accepted", bad[i]);
		cr_assert(strstr(err, bad[i]) != NULL, "the message names "
		    "%s: %s", bad[i], err);
	}
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	memcpy(longpath, "unix:/", 6);
	cr_assert_eq(vnc_parse_listen(longpath, &l, err, sizeof(err)), -1,
	    "a path longer than sun_path");
}

/* Can we connect to addr (a sockaddr of len bytes)? */
static bool
reachable(int family, const void *sa, socklen_t len)
{
	int fd = socket(family, SOCK_STREAM, 0);
	bool ok = connect(fd, sa, len) == 0;

	close(fd);
	return ok;
}

Test(vnc_listen, unix_socket_owner_only_and_stale_replaced)
{
	struct vnc_listen l = { .kind = VNC_UNIX };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char addr[160];
	struct stat st;
	int fd, fd2, blocker;

	snprintf(l.path, sizeof(l.path), "%s/s", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l.path);
	fd = vnc_listen_open(&l, addr, sizeof(addr));
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert_eq(strncmp(addr, "unix:", 5), 0);
	cr_assert_eq(stat(l.path, &st), 0);
	cr_assert_eq(st.st_mode & 0077, 0, "mode %o", st.st_mode & 0777);
	cr_assert(reachable(AF_UNIX, &sa, sizeof(sa)));
	/* A second server on a live socket is refused. */
	cr_assert_eq(vnc_listen_open(&l, addr, sizeof(addr)), -EADDRINUSE);
	/* The first dies without cleaning up: its socket is stale and the
	 * next one takes its place. */
	close(fd);
	fd2 = vnc_listen_open(&l, addr, sizeof(addr));
	cr_assert_geq(fd2, 0, "stale socket not replaced: %s",
	    strerror(-fd2));
	close(fd2);
	/* Something that is no socket is never removed. */
	unlink(l.path);
	blocker = open(l.path, O_CREAT | O_WRONLY, 0600);
	close(blocker);
	cr_assert_eq(vnc_listen_open(&l, addr, sizeof(addr)), -EEXIST);
	cr_assert_eq(access(l.path, F_OK), 0);
}

Test(vnc_listen, tcp_loopback_and_auto_takes_the_next_free)
{
	struct vnc_listen l;
	char addr[160], err[256], want[32];
	int fd1, fd2, port;

	cr_assert_eq(vnc_parse_listen("auto", &l, err, sizeof(err)), 0);
	fd1 = vnc_listen_open(&l, addr, sizeof(addr));
	cr_assert_geq(fd1, 0, "%s", strerror(-fd1));
	cr_assert_eq(sscanf(addr, "127.0.0.1:%d", &port), 1, "%s", addr);
	cr_assert(port >= 5900 && port < 6000);
	/* Taken now: auto moves on, an explicit display is refused. */
	fd2 = vnc_listen_open(&l, addr, sizeof(addr));
	cr_assert_geq(fd2, 0);
	cr_assert_eq(sscanf(addr, "127.0.0.1:%d", &port), 1);
	l.kind = VNC_TCP;
	l.display = port - 5900;
	cr_assert_eq(vnc_listen_open(&l, addr, sizeof(addr)), -EADDRINUSE);
	snprintf(want, sizeof(want), "127.0.0.1:%d", port);
	cr_assert_str_eq(addr, want);
	close(fd1);
	close(fd2);
}

#define RACERS 8

struct racer {
	pthread_barrier_t *go;
	int fd;
	char addr[160];
};

static void *
race_auto(void *arg)
{
	struct racer *r = arg;
	struct vnc_listen l = { .kind = VNC_AUTO, .host = "127.0.0.1" };

	pthread_barrier_wait(r->go);
	r->fd = vnc_listen_open(&l, r->addr, sizeof(r->addr));
	return NULL;
}

/* VMs started together (vm start of several, a test suite): each takes
 * a display of its own, none fails because another got there between a
 * look and a bind. */
Test(vnc_listen, auto_at_once_gets_distinct_displays)
{
	struct racer r[RACERS];
	pthread_t t[RACERS];
	pthread_barrier_t go;

	pthread_barrier_init(&go, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		r[i].go = &go;
		cr_assert_eq(pthread_create(&t[i], NULL, race_auto, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < RACERS; i++) {
		cr_assert_geq(r[i].fd, 0, "racer %d: %s", i,
		    strerror(-r[i].fd));
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(r[i].addr, r[j].addr,
			    "racers %d and %d share %s", i, j, r[i].addr);
	}
	for (int i = 0; i < RACERS; i++)
		close(r[i].fd);
	pthread_barrier_destroy(&go);
}

/* vnc_start for a VM made from the defaults with display d: the server
 * (stopped again) and where it listened, or "" for none. */
static void
start_default(const char *d, char *addr, size_t len)
{
	static struct vm_config c;
	struct vnc *v;
	struct vm *vm;
	int err;

	vm_config_defaults(&c);
	c.memory = 32u << 20;
	snprintf(c.display, sizeof(c.display), "%s", d);
	vm = vm_create(&c, &null_accel_ops, &err);
	cr_assert_not_null(vm, "vm_create: %d", err);
	v = vnc_start(vm, &err);
	cr_assert_eq(err, 0, "vnc_start: %s", strerror(-err));
	snprintf(addr, len, "%s", v != NULL ? vnc_address(v) : "");
	vnc_stop(v);
	vm_destroy(vm);
}

Test(vnc_listen, a_vm_serves_its_display_by_default)
{
	char addr[160];
	int port;

	start_default("std", addr, sizeof(addr));
	cr_assert_eq(sscanf(addr, "127.0.0.1:%d", &port), 1, "'%s'", addr);
	cr_assert(port >= 5900 && port < 5900 + VNC_AUTO_DISPLAYS, "%d", port);
	start_default("none", addr, sizeof(addr));
	cr_assert_str_eq(addr, "", "no display, no VNC");
}

static void
write_file(const char *name, const char *text, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(vnc_listen, password_from_file_then_environment)
{
	char pw[64], err[256], path[128];

	cr_assert_eq(vnc_read_password("", pw, sizeof(pw), err, sizeof(err)), 0);
	cr_assert_str_eq(pw, "", "no file, no environment: none");
	setenv(VNC_PASSWORD_ENV, "from-env", 1);
	cr_assert_eq(vnc_read_password(NULL, pw, sizeof(pw), err, sizeof(err)),
	    0);
	cr_assert_str_eq(pw, "from-env");
	write_file("pw", "s3cret\r\nnot this\n", path, sizeof(path));
	cr_assert_eq(vnc_read_password(path, pw, sizeof(pw), err, sizeof(err)),
	    0);
	cr_assert_str_eq(pw, "s3cret", "the file wins, first line only");
	write_file("empty", "\nsecond\n", path, sizeof(path));
	cr_assert_eq(vnc_read_password(path, pw, sizeof(pw), err, sizeof(err)),
	    -1);
	cr_assert(strstr(err, "first line") != NULL, "%s", err);
	snprintf(path, sizeof(path), "%s/missing", dir);
	cr_assert_eq(vnc_read_password(path, pw, sizeof(pw), err, sizeof(err)),
	    -1);
	cr_assert(strstr(err, "missing") != NULL, "%s", err);
}

static int
parse(struct vm_config *c, struct run_args *a, char *err, int n, ...)
{
	char *argv[16] = { "run", "--kernel", "/dev/null" };
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		argv[i + 3] = va_arg(ap, char *);
	va_end(ap);
	return run_parse_args(n + 3, argv, c, a, err, 256);
}

Test(vnc_listen, run_options)
{
	static struct vm_config c, ds;
	struct run_args a;
	char err[256];

	cr_assert_eq(parse(&c, &a, err, 0), 0);
	cr_assert_str_eq(c.vnc, "auto", "VNC on loopback unless told not to");
	cr_assert(vnc_wanted(&c));
	cr_assert_eq(parse(&c, &a, err, 2, "--display", "none"), 0, "%s", err);
	cr_assert_not(vnc_wanted(&c), "no display, no VNC");
	cr_assert_eq(parse(&c, &a, err, 2, "--vnc", "none"), 0, "%s", err);
	cr_assert_str_eq(c.vnc, "none");
	cr_assert_not(vnc_wanted(&c));
	cr_assert_eq(parse(&c, &a, err, 4, "--display", "none", "--vnc",
	    "unix:/x"), 0, "%s", err);
	cr_assert(vnc_wanted(&c), "an address asked for is served");
	cr_assert_eq(parse(&c, &a, err, 4, "--vnc", ":3",
	    "--vnc-password-file", "/etc/pw"), 0, "%s", err);
	cr_assert_str_eq(c.vnc, ":3");
	cr_assert_str_eq(c.vnc_password_file, "/etc/pw");
	cr_assert(a.set & RUN_SET_VNC);
	cr_assert(a.set & RUN_SET_VNC_PASSWORD);
	cr_assert_eq(parse(&c, &a, err, 2, "--vnc", "nonsense"), -1);
	cr_assert(strstr(err, "nonsense") != NULL, "%s", err);
	/* The command line overrides a datastore VM's settings. */
	vm_config_defaults(&ds);
	snprintf(ds.kernel, sizeof(ds.kernel), "/k");
	snprintf(ds.vnc, sizeof(ds.vnc), "unix:/old");
	cr_assert_eq(parse(&c, &a, err, 2, "--vnc", "auto"), 0);
	cr_assert_eq(run_merge(&ds, &c, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(ds.vnc, "auto");
	cr_assert_str_eq(ds.vnc_password_file, "");
}

Test(vnc_listen, vmx_keys)
{
	static const char good[] =
	    "name = \"a\"\n"
	    "vnc = \":4\"\n"
	    "vnc.passwordFile = \"vnc-password\"\n";
	static const char bad[] =
	    "name = \"b\"\n"
	    "vnc = \"somewhere\"\n";
	static struct vm_config c;
	struct vmx_doc doc = { 0 };
	char err[512];

	cr_assert_eq(vmx_parse(&doc, "good.vmx", good, sizeof(good) - 1, err,
	    sizeof(err)), 0, "%s", err);
	vm_config_defaults(&c);
	cr_assert_eq(vmx_to_config(&doc, "/vms/a", &c, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_str_eq(c.vnc, ":4");
	cr_assert_str_eq(c.vnc_password_file, "/vms/a/vnc-password",
	    "relative to the VM's directory");
	/* And back: vm create writes what it was given. */
	vmx_free(&doc);
	memset(&doc, 0, sizeof(doc));
	cr_assert_eq(vmx_from_config(&doc, &c), 0);
	cr_assert_str_eq(vmx_get(&doc, "vnc"), ":4");
	cr_assert_str_eq(vmx_get(&doc, "vnc.passwordFile"),
	    "/vms/a/vnc-password");
	vmx_free(&doc);
	memset(&doc, 0, sizeof(doc));
	cr_assert_eq(vmx_parse(&doc, "bad.vmx", bad, sizeof(bad) - 1, err,
	    sizeof(err)), 0, "%s", err);
	vm_config_defaults(&c);
	cr_assert_eq(vmx_to_config(&doc, "/vms/b", &c, err, sizeof(err)),
	    -EINVAL);
	cr_assert(strstr(err, "somewhere") != NULL, "%s", err);
	cr_assert_eq(vmx_check("vnc", "unix:/x", err, sizeof(err)), 0);
	vmx_free(&doc);
	/* The default (auto) is not written; none is, and stays none. */
	vm_config_defaults(&c);
	snprintf(c.name, sizeof(c.name), "a");
	memset(&doc, 0, sizeof(doc));
	cr_assert_eq(vmx_from_config(&doc, &c), 0);
	cr_assert_null(vmx_get(&doc, "vnc"));
	vmx_free(&doc);
	snprintf(c.vnc, sizeof(c.vnc), "none");
	memset(&doc, 0, sizeof(doc));
	cr_assert_eq(vmx_from_config(&doc, &c), 0);
	cr_assert_str_eq(vmx_get(&doc, "vnc"), "none");
	vm_config_defaults(&c);
	cr_assert_eq(vmx_to_config(&doc, "/vms/a", &c, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_str_eq(c.vnc, "none");
	cr_assert_not(vnc_wanted(&c));
	cr_assert_eq(vmx_check("vnc", "[::1", err, sizeof(err)), -EINVAL);
	vmx_free(&doc);
}
