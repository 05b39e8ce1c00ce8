/*
 * Start on demand with the real binary: several NICs connecting at once
 * to a switch that does not run yet end up on one switch; the control
 * socket's show and stop; a NIC refused for a port group a switch
 * without autocreate does not have.  Skips when build/termvisor (next
 * to this test's directory) is missing.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vswitch/vswitch_client.h"
#include "vswitch/vswitch_conf.h"

static char tmp[] = "/tmp/tv-vswc-XXXXXX";

static void
setup(void)
{
	char exe[PATH_MAX], bin[PATH_MAX + 32], rt[PATH_MAX], ds[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	/* BUILD/tests/test_vswitch_client -> BUILD/termvisor */
	snprintf(bin, sizeof(bin), "%s/../termvisor", dirname(exe));
	if (access(bin, X_OK) < 0)
		cr_skip_test("%s is not built", bin);
	cr_assert_not_null(realpath(bin, exe));
	setenv("TERMVISOR_BIN", exe, 1);
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(rt, sizeof(rt), "%s/run", tmp);
	snprintf(ds, sizeof(ds), "%s/ds", tmp);
	cr_assert_eq(mkdir(rt, 0700), 0);
	setenv("XDG_RUNTIME_DIR", rt, 1);
	setenv("TERMVISOR_DATASTORE", ds, 1);
}

/*
 * A starter that lost the race may become a switch after the test
 * stopped the winner, in a directory about to be removed: kill every
 * termvisor whose environment names this test's runtime directory.
 */
static void
kill_ours(void)
{
	char path[64], comm[32], env[65536], needle[PATH_MAX + 32];
	struct dirent *de;
	size_t nl;
	ssize_t n;
	DIR *d;
	int fd;

	nl = (size_t)snprintf(needle, sizeof(needle), "XDG_RUNTIME_DIR=%s/run",
	    tmp) + 1;			/* with its NUL: the whole entry */
	if ((d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		if ((fd = open(path, O_RDONLY)) < 0)
			continue;
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		if (n <= 0 || strncmp(comm, "termvisor", 9) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
		if ((fd = open(path, O_RDONLY)) < 0)
			continue;
		n = read(fd, env, sizeof(env));
		close(fd);
		if (n > 0 && memmem(env, (size_t)n, needle, nl) != NULL)
			kill(pid, SIGKILL);
	}
	closedir(d);
}

static void
teardown(void)
{
	char cmd[PATH_MAX];
	json_t *r;

	r = vswitch_client_request("race", "stop", NULL, NULL, NULL, cmd,
	    sizeof(cmd));
	json_decref(r);
	r = vswitch_client_request("strict", "stop", NULL, NULL, NULL, cmd,
	    sizeof(cmd));
	json_decref(r);
	r = vswitch_client_request("spawned", "stop", NULL, NULL, NULL, cmd,
	    sizeof(cmd));
	json_decref(r);
	usleep(100000);
	kill_ours();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	(void)!system(cmd);
}

TestSuite(vswitch_client, .init = setup, .fini = teardown, .timeout = 30);

static struct vsw_hello
hello(const char *pg, int i)
{
	struct vsw_hello h = { .mac = { 0x52, 0x54, 0, 0, 1, (uint8_t)i } };

	snprintf(h.portgroup, sizeof(h.portgroup), "%s", pg);
	snprintf(h.vm, sizeof(h.vm), "racer%d", i);
	snprintf(h.nic, sizeof(h.nic), "net0");
	return h;
}

Test(vswitch_client, racing_nics_start_one_switch)
{
	enum { N = 4 };
	int i, st, res[2];
	pid_t pids[N];
	char err[256], c;
	json_t *r, *ports;

	/* Each racer connects, reports, and keeps its port until killed. */
	cr_assert_eq(pipe(res), 0);
	for (i = 0; i < N; i++) {
		if ((pids[i] = fork()) == 0) {
			struct vsw_hello h = hello("lan", i);
			struct vsw_welcome w;
			int fd = vswitch_connect("race", &h, &w, err,
			    sizeof(err));

			if (fd < 0)
				fprintf(stderr, "racer %d: %s\n", i, err);
			c = fd >= 0 ? 'y' : 'n';
			(void)!write(res[1], &c, 1);
			for (;;)
				pause();
		}
	}
	for (i = 0; i < N; i++) {
		cr_assert_eq(read(res[0], &c, 1), 1);
		cr_assert_eq(c, 'y', "every racer connected");
	}
	r = vswitch_client_request("race", "show", NULL, NULL, NULL, err,
	    sizeof(err));
	cr_assert_not_null(r, "%s", err);
	ports = json_object_get(r, "ports");
	cr_assert_eq(json_array_size(ports), N, "one switch has every NIC");
	json_decref(r);
	for (i = 0; i < N; i++) {
		kill(pids[i], SIGKILL);
		cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
	}
}

Test(vswitch_client, a_strict_switch_refuses_unknown_groups)
{
	struct vsw_hello h = hello("nosuch", 1);
	struct vsw_welcome w;
	char err[256];
	int fd;

	cr_assert_eq(vsw_conf_create(NULL, "strict", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(vsw_conf_set(NULL, "strict", "autocreate", "no", err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(vsw_conf_pg_add(NULL, "strict", "lan", 0, NULL, err,
	    sizeof(err)), 0, "%s", err);
	fd = vswitch_connect("strict", &h, &w, err, sizeof(err));
	cr_assert_eq(fd, -ENOENT, "%d: %s", fd, err);
	cr_assert(strstr(err, "nosuch") != NULL, "%s", err);
	h = hello("lan", 2);
	fd = vswitch_connect("strict", &h, &w, err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);
	cr_assert_gt(w.port, 0);
	close(fd);
}

Test(vswitch_client, spawn_returns_at_once_and_the_switch_comes_up)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vsw_hello h = hello("lan", 3);
	struct vsw_welcome w;
	char err[256];
	int fd = -1, i;

	cr_assert_eq(vsw_socket_path("spawned", sa.sun_path,
	    sizeof(sa.sun_path)), 0);
	cr_assert_eq(vswitch_client_spawn("spawned"), 0);
	cr_assert_eq(vswitch_client_spawn("spawned"), 0, "twice is fine");
	/* What a NIC's retry timer does: connect until it listens. */
	for (i = 0; i < 250; i++) {
		fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(20000);
	}
	cr_assert_geq(fd, 0, "the spawned switch listens within 5 s");
	close(fd);
	fd = vswitch_connect("spawned", &h, &w, err, sizeof(err));
	cr_assert_geq(fd, 0, "%s", err);
	close(fd);
	/* Let the second starter finish (it finds the lock taken), so
	 * teardown does not race it. */
	sleep(1);
}
