/*
 * `termvisor switch ...`: run a switch, edit its configuration in the
 * datastore, and ask a running one (show, capture, stop) over its
 * control socket.  Exit status: 0 done, 1 failed, 2 bad usage.
 */
#include "vswitch/vswitch_cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/log.h"
#include "vswitch/vswitch_capture.h"
#include "vswitch/vswitch_client.h"
#include "vswitch/vswitch_conf.h"
#include "vswitch/vswitch_server.h"

#define VSW_CLI_OK	0
#define VSW_CLI_FAIL	1
#define VSW_CLI_USAGE	2

static const char vswitch_cli_usage[] =
    "usage: termvisor switch [--datastore DIR] COMMAND ...\n"
    "  switch run [NAME] [--daemon]   serve switch NAME (default "
    VSW_DEFAULT_SWITCH ")\n"
    "  switch create NAME             a switch configuration in the "
    "datastore\n"
    "  switch portgroup add SWITCH PG [--vlan N | --trunk all|LIST]\n"
    "  switch portgroup rm SWITCH PG\n"
    "  switch set SWITCH KEY=VALUE... (KEY= removes; termvisor.switch(5))\n"
    "  switch list [--json]           configured and running switches\n"
    "  switch show [NAME] [--json]    port groups, ports, MAC table, "
    "counters\n"
    "  switch capture PORTGROUP|PORT -w FILE.pcap [-c COUNT] [-s SWITCH]\n"
    "                 [FILTER...]     pcap of the traffic until Ctrl-C\n"
    "  switch stop [NAME] [--timeout SECONDS]\n"
    "A VM's NIC starts its switch on demand.  See termvisor(1) and\n"
    "termvisor.switch(5).\n";

static const char *vswitch_cli_ds;	/* --datastore, or NULL */
static volatile sig_atomic_t vswitch_cli_intr;

static int
vswitch_cli_help(int argc, char **argv, const char *usage)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 1;
		}
	}
	return 0;
}

static const char *
vswitch_cli_name(const char *n)
{
	return n != NULL ? n : VSW_DEFAULT_SWITCH;
}

static int
vswitch_cli_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "daemon", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage[] =
	    "usage: termvisor switch run [NAME] [--daemon]\n"
	    "Serve switch NAME (default " VSW_DEFAULT_SWITCH ") in the "
	    "foreground, or detached\nwith --daemon (returns once it "
	    "listens; its log goes to NAME.vswitch.log\nin the runtime "
	    "directory).  SIGHUP rereads its configuration.\n";
	bool daemon = false;
	const char *name;
	int c, ret;

	if (vswitch_cli_help(argc, argv, usage))
		return VSW_CLI_OK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d", opts, NULL)) != -1) {
		if (c != 'd') {
			fputs(usage, stderr);
			return VSW_CLI_USAGE;
		}
		daemon = true;
	}
	if (argc - optind > 1) {
		fputs(usage, stderr);
		return VSW_CLI_USAGE;
	}
	name = vswitch_cli_name(optind < argc ? argv[optind] : NULL);
	if (vsw_conf_name_valid(name) < 0) {
		log_warnx("bad switch name '%s'", name);
		return VSW_CLI_USAGE;
	}
	ret = vsw_server_main(name, vswitch_cli_ds, daemon);
	if (ret == -EALREADY && daemon)
		return VSW_CLI_OK;	/* someone else started it: fine */
	if (ret == -EALREADY)
		log_warnx("switch %s runs already (termvisor switch stop %s)",
		    name, name);
	return ret < 0 ? VSW_CLI_FAIL : VSW_CLI_OK;
}

/* Tell a running switch to reread its configuration, if it runs. */
static int
vswitch_cli_reload(const char *name)
{
	char err[512];
	int code;
	json_t *r = vswitch_client_request(name, "reload", NULL, NULL, &code,
	    err, sizeof(err));

	if (r != NULL || code == -ENOENT) {
		json_decref(r);
		return VSW_CLI_OK;
	}
	log_warnx("the configuration is saved, but the running switch "
	    "refused it: %s", err);
	return VSW_CLI_FAIL;
}

static int
vswitch_cli_create(int argc, char **argv)
{
	static const char usage[] = "usage: termvisor switch create NAME\n"
	    "Make DATASTORE/switches/NAME.conf (termvisor.switch(5)).\n";
	char err[512];

	if (vswitch_cli_help(argc, argv, usage))
		return VSW_CLI_OK;
	if (argc != 2) {
		fputs(usage, stderr);
		return VSW_CLI_USAGE;
	}
	if (vsw_conf_create(vswitch_cli_ds, argv[1], err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return VSW_CLI_FAIL;
	}
	return VSW_CLI_OK;
}

static int
vswitch_cli_pg(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vlan", required_argument, NULL, 'v' },
		{ "trunk", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage[] =
	    "usage: termvisor switch portgroup add SWITCH PG [--vlan N | "
	    "--trunk all|LIST]\n"
	    "       termvisor switch portgroup rm SWITCH PG\n"
	    "A port group is one network: frames never cross between "
	    "them.  --vlan N\n(1-4094) carries it tagged on trunks; "
	    "--trunk makes a group whose ports\nsee 802.1Q-tagged frames "
	    "of the listed VLANs (\"all\" or like \"10,20-30\").\n";
	const char *trunk = NULL;
	char err[512], *end;
	long vlan = 0;
	int c, ret;

	if (vswitch_cli_help(argc, argv, usage))
		return VSW_CLI_OK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'v') {
			vlan = strtol(optarg, &end, 10);
			if (*end != '\0' || end == optarg) {
				log_warnx("--vlan takes a number");
				return VSW_CLI_USAGE;
			}
		} else if (c == 't') {
			trunk = optarg;
		} else {
			fputs(usage, stderr);
			return VSW_CLI_USAGE;
		}
	}
	if (argc - optind != 3 || (strcmp(argv[optind], "add") != 0 &&
	    strcmp(argv[optind], "rm") != 0)) {
		fputs(usage, stderr);
		return VSW_CLI_USAGE;
	}
	if (strcmp(argv[optind], "add") == 0)
		ret = vsw_conf_pg_add(vswitch_cli_ds, argv[optind + 1],
		    argv[optind + 2], (int)vlan, trunk, err, sizeof(err));
	else
		ret = vsw_conf_pg_rm(vswitch_cli_ds, argv[optind + 1],
		    argv[optind + 2], err, sizeof(err));
	if (ret < 0) {
		log_warnx("%s", err);
		return ret == -EINVAL ? VSW_CLI_USAGE : VSW_CLI_FAIL;
	}
	return vswitch_cli_reload(argv[optind + 1]);
}

static int
vswitch_cli_set(int argc, char **argv)
{
	static const char usage[] =
	    "usage: termvisor switch set SWITCH KEY=VALUE...\n"
	    "Set keys of the switch's configuration (KEY= removes one), for "
	    "example\nuplink=tap:tv0 uplink.portgroup=lan "
	    "vxlan.peers=192.0.2.2; see termvisor.switch(5).\n";
	const char *keys[64], *vals[64];
	char err[512], *eq;
	int i, n = 0, ret;

	if (vswitch_cli_help(argc, argv, usage))
		return VSW_CLI_OK;
	if (argc < 3 || argc - 2 > 64) {
		fputs(usage, stderr);
		return VSW_CLI_USAGE;
	}
	for (i = 2; i < argc; i++, n++) {
		if ((eq = strchr(argv[i], '=')) == NULL || eq == argv[i]) {
			log_warnx("expected KEY=VALUE, not '%s'", argv[i]);
			return VSW_CLI_USAGE;
		}
		*eq = '\0';
		keys[n] = argv[i];
		vals[n] = eq[1] != '\0' ? eq + 1 : NULL;
	}
	ret = vsw_conf_set_many(vswitch_cli_ds, argv[1], keys, vals, n, err,
	    sizeof(err));
	if (ret < 0) {
		log_warnx("%s", err);
		return ret == -EINVAL ? VSW_CLI_USAGE : VSW_CLI_FAIL;
	}
	return vswitch_cli_reload(argv[1]);
}

static long long
vswitch_cli_int(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static const char *
vswitch_cli_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

static void
vswitch_cli_print_pgs(json_t *r)
{
	json_t *pg;
	size_t i;

	printf("\n%-20s %5s %9s %6s %10s %10s\n", "PORTGROUP", "VLAN", "VNI",
	    "PORTS", "FRAMES", "FLOODED");
	json_array_foreach(json_object_get(r, "portgroups"), i, pg) {
		char vlan[16];

		if (json_is_true(json_object_get(pg, "trunk")))
			snprintf(vlan, sizeof(vlan), "trunk");
		else
			snprintf(vlan, sizeof(vlan), "%lld",
			    vswitch_cli_int(pg, "vlan"));
		printf("%-20s %5s %9lld %6zu %10lld %10lld%s\n",
		    vswitch_cli_str(pg, "name"), vlan,
		    vswitch_cli_int(pg, "vni"),
		    json_array_size(json_object_get(pg, "ports")),
		    vswitch_cli_int(pg, "frames"),
		    vswitch_cli_int(pg, "flooded"),
		    json_is_true(json_object_get(pg, "automatic")) ?
		    "  (automatic)" : "");
	}
}

static void
vswitch_cli_print_ports(json_t *r)
{
	json_t *p, *c;
	size_t i;

	printf("\n%4s %-24s %-7s %-14s %-17s %9s %9s %7s\n", "PORT", "NAME",
	    "KIND", "PORTGROUP", "MAC", "RX", "TX", "DROPS");
	json_array_foreach(json_object_get(r, "ports"), i, p) {
		c = json_object_get(p, "counters");
		printf("%4lld %-24s %-7s %-14s %-17s %9lld %9lld %7lld\n",
		    vswitch_cli_int(p, "id"), vswitch_cli_str(p, "name"),
		    vswitch_cli_str(p, "kind"), vswitch_cli_str(p, "portgroup"),
		    vswitch_cli_str(p, "mac"),
		    vswitch_cli_int(c, "rx_packets"),
		    vswitch_cli_int(c, "tx_packets"),
		    vswitch_cli_int(c, "rx_malformed") +
		    vswitch_cli_int(c, "rx_vlan") +
		    vswitch_cli_int(c, "tx_full") +
		    vswitch_cli_int(c, "tx_offload") +
		    vswitch_cli_int(c, "tx_error") +
		    vswitch_cli_int(c, "rx_shaped"));
	}
}

static void
vswitch_cli_print(json_t *r)
{
	json_t *m, *c = json_object_get(r, "counters");
	size_t i;

	printf("switch %s: running, pid %lld, up %lld s, %zu ports, %lld MACs "
	    "(aging %lld s)\n", vswitch_cli_str(r, "switch"),
	    vswitch_cli_int(r, "pid"), vswitch_cli_int(r, "uptime"),
	    json_array_size(json_object_get(r, "ports")),
	    vswitch_cli_int(c, "macs"), vswitch_cli_int(c, "mac_aging"));
	if (vswitch_cli_str(r, "uplink")[0] != '\0')
		printf("uplink %s\n", vswitch_cli_str(r, "uplink"));
	if (vswitch_cli_int(json_object_get(r, "vxlan"), "port") != 0)
		printf("vxlan on UDP port %lld\n", vswitch_cli_int(
		    json_object_get(r, "vxlan"), "port"));
	vswitch_cli_print_pgs(r);
	vswitch_cli_print_ports(r);
	printf("\n%-17s %-20s %4s %5s\n", "MAC", "PORTGROUP", "PORT", "AGE");
	json_array_foreach(json_object_get(r, "macs"), i, m)
		printf("%-17s %-20s %4lld %5lld\n", vswitch_cli_str(m, "mac"),
		    vswitch_cli_str(m, "portgroup"), vswitch_cli_int(m, "port"),
		    vswitch_cli_int(m, "age"));
}

/* A switch that does not run: what its configuration says. */
static json_t *
vswitch_cli_stopped(const char *name, char *err, size_t errlen)
{
	struct vsw_conf c;
	json_t *pgs;
	int i, ret;

	if ((ret = vsw_conf_load(vswitch_cli_ds, name, &c, err, errlen)) < 0)
		return NULL;
	pgs = json_array();
	for (i = 0; i < c.npg; i++)
		json_array_append_new(pgs, json_pack("{s:s, s:i, s:s}", "name",
		    c.pg[i].name, "vlan", c.pg[i].vlan, "trunk",
		    c.pg[i].trunk));
	return json_pack("{s:s, s:b, s:b, s:o, s:s}", "switch", name,
	    "running", 0, "configured", ret == 0, "portgroups", pgs, "uplink",
	    c.uplink);
}

static int
vswitch_cli_show(int argc, char **argv)
{
	static const char usage[] =
	    "usage: termvisor switch show [NAME] [--json]\n"
	    "A running switch's port groups, ports with their counters and "
	    "its MAC\ntable; --json prints the control socket's reply (with "
	    "\"running\": false\nand the configuration when it does not "
	    "run).\n";
	const char *name = NULL;
	char err[512];
	bool json = false;
	json_t *r;
	int i, code;

	if (vswitch_cli_help(argc, argv, usage))
		return VSW_CLI_OK;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (name == NULL && argv[i][0] != '-')
			name = argv[i];
		else {
			fputs(usage, stderr);
			return VSW_CLI_USAGE;
		}
	}
	name = vswitch_cli_name(name);
	r = vswitch_client_request(name, "show", NULL, NULL, &code, err,
	    sizeof(err));
	if (r != NULL)
		json_object_set_new(r, "running", json_true());
	else if (code == -ENOENT && (r = vswitch_cli_stopped(name, err,
	    sizeof(err))) != NULL && !json) {
		printf("switch %s: not running (%zu port groups configured)\n",
		    name, json_array_size(json_object_get(r, "portgroups")));
		json_decref(r);
		return VSW_CLI_OK;
	}
	if (r == NULL) {
		log_warnx("%s", err);
		return VSW_CLI_FAIL;
	}
	if (json) {
		json_dumpf(r, stdout, JSON_INDENT(2));
		putchar('\n');
	} else
		vswitch_cli_print(r);
	json_decref(r);
	return VSW_CLI_OK;
}

/* Add name to the array unless it is there. */
static void
vswitch_cli_list_add(json_t *names, const char *name)
{
	json_t *v;
	size_t i;

	json_array_foreach(names, i, v)
		if (strcmp(json_string_value(v), name) == 0)
			return;
	json_array_append_new(names, json_string(name));
}

/* Names of "dir/NAME<suffix>" entries. */
static void
vswitch_cli_list_dir(json_t *names, const char *dir, const char *suffix)
{
	size_t n, sl = strlen(suffix);
	struct dirent *de;
	char name[VSW_NAME_MAX];
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		n = strlen(de->d_name);
		if (n <= sl || n - sl >= sizeof(name) ||
		    strcmp(de->d_name + n - sl, suffix) != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - sl), de->d_name);
		if (vsw_conf_name_valid(name) == 0)
			vswitch_cli_list_add(names, name);
	}
	closedir(d);
}

static int
vswitch_cli_list(int argc, char **argv)
{
	static const char usage[] =
	    "usage: termvisor switch list [--json]\n"
	    "Every switch configured in the datastore or running, with its "
	    "state,\nports and port groups; --json gives each as `switch "
	    "show --json` does.\n";
	char path[4096], *slash, err[512];
	json_t *names = json_array(), *all = json_array(), *v, *r;
	bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
	size_t i;
	int code;

	if (vswitch_cli_help(argc, argv, usage))
		return VSW_CLI_OK;
	if (argc > 2 || (argc == 2 && !json)) {
		fputs(usage, stderr);
		return VSW_CLI_USAGE;
	}
	if (vsw_conf_path(vswitch_cli_ds, VSW_DEFAULT_SWITCH, path,
	    sizeof(path)) == 0 && (slash = strrchr(path, '/')) != NULL) {
		*slash = '\0';
		vswitch_cli_list_dir(names, path, ".conf");
	}
	if (vsw_socket_path(NULL, path, sizeof(path)) == 0 &&
	    (slash = strrchr(path, '/')) != NULL) {
		*slash = '\0';
		vswitch_cli_list_dir(names, path, ".vswitch.ctl");
	}
	if (!json)
		printf("%-20s %-8s %6s %11s\n", "SWITCH", "STATE", "PORTS",
		    "PORTGROUPS");
	json_array_foreach(names, i, v) {
		const char *name = json_string_value(v);

		r = vswitch_client_request(name, "show", NULL, NULL, &code,
		    err, sizeof(err));
		if (r != NULL)
			json_object_set_new(r, "running", json_true());
		else
			r = vswitch_cli_stopped(name, err, sizeof(err));
		if (r == NULL)
			r = json_pack("{s:s, s:b, s:s}", "switch", name,
			    "running", 0, "error", err);
		if (!json)
			printf("%-20s %-8s %6zu %11zu\n", name,
			    json_is_true(json_object_get(r, "running")) ?
			    "running" : "stopped",
			    json_array_size(json_object_get(r, "ports")),
			    json_array_size(json_object_get(r,
			    "portgroups")));
		json_array_append_new(all, r);
	}
	if (json) {
		json_dumpf(all, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	json_decref(all);
	json_decref(names);
	return VSW_CLI_OK;
}

static void
vswitch_cli_sigint(int sig)
{
	(void)sig;
	vswitch_cli_intr = 1;
}

/* Wait for capture events until done; Ctrl-C asks the switch to end
 * the capture (so the file is complete when we return). */
static int
vswitch_cli_capture_wait(int fd, const char *file)
{
	struct sigaction sa = { .sa_handler = vswitch_cli_sigint };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	static const char stop[] = "{\"id\":2,\"cmd\":\"capture-stop\"}\n";
	bool asked = false;
	json_t *ev;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		if (vswitch_cli_intr && !asked) {
			asked = true;
			(void)!send(fd, stop, sizeof(stop) - 1, MSG_NOSIGNAL);
		}
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		if ((ev = vswitch_client_read(fd)) == NULL) {
			log_warnx("the switch went away during the capture");
			return VSW_CLI_FAIL;
		}
		if (strcmp(vswitch_cli_str(ev, "event"), "capture-done") == 0) {
			fprintf(stderr, "%lld frames written to %s\n",
			    vswitch_cli_int(ev, "written"), file);
			json_decref(ev);
			return VSW_CLI_OK;
		}
		json_decref(ev);
	}
}

static int
vswitch_cli_capture(int argc, char **argv)
{
	static const char usage[] =
	    "usage: termvisor switch capture PORTGROUP|PORT -w FILE.pcap "
	    "[-c COUNT]\n"
	    "                                [-s SWITCH] [FILTER...]\n"
	    "Write the frames of a port group (as they enter it) or of a "
	    "port (both\ndirections; a port is its number or name as "
	    "`switch show` prints it)\nto FILE.pcap, those matching the "
	    "BPF expression FILTER (tcpdump's\nsyntax), until Ctrl-C or "
	    "COUNT frames.\n";
	char err[512], filter[4096] = "", path[PATH_MAX], *end;
	const char *file = NULL, *sw = NULL, *target;
	long count = 0;
	size_t off = 0;
	json_t *r;
	int c, fd;

	if (vswitch_cli_help(argc, argv, usage))
		return VSW_CLI_OK;
	optind = 1;
	while ((c = getopt(argc, argv, "w:c:s:")) != -1) {
		if (c == 'w')
			file = optarg;
		else if (c == 's')
			sw = optarg;
		else if (c == 'c' && (count = strtol(optarg, &end, 10)) > 0 &&
		    *end == '\0')
			continue;
		else {
			fputs(usage, stderr);
			return VSW_CLI_USAGE;
		}
	}
	if (file == NULL || optind >= argc) {
		fputs(usage, stderr);
		return VSW_CLI_USAGE;
	}
	target = argv[optind++];
	for (; optind < argc; optind++)
		off += (size_t)snprintf(filter + off, off < sizeof(filter) ?
		    sizeof(filter) - off : 0, "%s%s", off ? " " : "",
		    argv[optind]);
	if (off >= sizeof(filter) || vsw_capture_check_filter(filter, err,
	    sizeof(err)) < 0) {
		log_warnx("%s", off >= sizeof(filter) ? "filter too long" : err);
		return VSW_CLI_USAGE;
	}
	/* The switch opens the file: it needs the whole path. */
	if (file[0] == '/')
		snprintf(path, sizeof(path), "%s", file);
	else if (getcwd(path, sizeof(path)) == NULL ||
	    strlen(path) + strlen(file) + 2 > sizeof(path))
		return VSW_CLI_FAIL;
	else
		strcat(strcat(path, "/"), file);
	r = vswitch_client_request(vswitch_cli_name(sw), "capture", json_pack(
	    "{s:s, s:s, s:s, s:I}", "target", target, "file", path, "filter",
	    filter, "count", (json_int_t)count), &fd, NULL, err, sizeof(err));
	if (r == NULL) {
		log_warnx("%s", err);
		return VSW_CLI_FAIL;
	}
	json_decref(r);
	fprintf(stderr, "capturing %s to %s (Ctrl-C stops)\n", target, path);
	c = vswitch_cli_capture_wait(fd, path);
	close(fd);
	return c;
}

/* The pid a running switch wrote in its lock file, or 0. */
static pid_t
vswitch_cli_lock_pid(const char *lockpath)
{
	char buf[32], *end;
	ssize_t n;
	long pid;
	int fd;

	if ((fd = open(lockpath, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	return end != buf && *end == '\n' && pid > 0 ? (pid_t)pid : 0;
}

/*
 * Wait up to ms for a stopped switch to be gone: its process to exit
 * (pidfd readable; a zombie has closed its lock, which is all a new
 * switch needs), or without a pidfd, its control socket to go, which it
 * removes just before it lets go of the lock.  0, or -ETIMEDOUT.
 */
static int
vswitch_cli_stop_wait(int pidfd, const char *ctl, int ms)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int n;

	if (pidfd >= 0) {
		/* No handler is set here: EINTR is a stop and continue. */
		while ((n = poll(&pfd, 1, ms)) < 0 && errno == EINTR)
			;
		return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
	}
	for (int i = 0; i < ms / 10 && access(ctl, F_OK) == 0; i++)
		usleep(10000);
	return access(ctl, F_OK) < 0 ? 0 : -ETIMEDOUT;
}

static int
vswitch_cli_stop(int argc, char **argv)
{
	static const char usage[] =
	    "usage: termvisor switch stop [NAME] [--timeout SECONDS]\n"
	    "Stop a running switch: its NICs see the connection close (and "
	    "reconnect,\nstarting a new switch).  Returns once its process "
	    "has exited (a new\nswitch of that name can start), or fails "
	    "after SECONDS (default 10).\n";
	char err[512], ctl[108], lock[PATH_MAX], *end;
	const char *name = NULL;
	int i, ret, pidfd = -1, secs = 10;
	pid_t pid;
	json_t *r;

	if (vswitch_cli_help(argc, argv, usage))
		return VSW_CLI_OK;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			errno = 0;
			secs = (int)strtol(argv[++i], &end, 10);
			if (errno != 0 || *end != '\0' || end == argv[i] ||
			    secs < 1 || secs > 3600) {
				log_warnx("--timeout takes seconds, 1 to 3600");
				return VSW_CLI_USAGE;
			}
		} else if (name == NULL && argv[i][0] != '-')
			name = argv[i];
		else {
			fputs(usage, stderr);
			return VSW_CLI_USAGE;
		}
	}
	name = vswitch_cli_name(name);
	if (vsw_server_paths(name, ctl, sizeof(ctl), lock, sizeof(lock),
	    NULL, 0) < 0) {
		log_warnx("switch %s: runtime directory path too long", name);
		return VSW_CLI_FAIL;
	}
	/* Its pidfd before asking: the pid cannot be reused under us.  No
	 * pidfd (a switch in another pid namespace, an old kernel): wait
	 * for the control socket instead. */
	if ((pid = vswitch_cli_lock_pid(lock)) > 0)
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if ((r = vswitch_client_request(name, "stop", NULL, NULL, NULL, err,
	    sizeof(err))) == NULL) {
		log_warnx("%s", err);
		ret = VSW_CLI_FAIL;
		goto out;
	}
	json_decref(r);
	ret = VSW_CLI_OK;
	if (vswitch_cli_stop_wait(pidfd, ctl, secs * 1000) < 0) {
		if (pidfd >= 0)
			log_warnx("switch %s (pid %ld) was told to stop but "
			    "still runs after %d s", name, (long)pid, secs);
		else
			log_warnx("switch %s was told to stop but its control "
			    "socket %s is still there after %d s", name, ctl,
			    secs);
		ret = VSW_CLI_FAIL;
	}
out:
	if (pidfd >= 0)
		close(pidfd);
	return ret;
}

int
vswitch_cli_main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "run", vswitch_cli_run }, { "create", vswitch_cli_create },
		{ "portgroup", vswitch_cli_pg }, { "set", vswitch_cli_set },
		{ "show", vswitch_cli_show }, { "capture", vswitch_cli_capture },
		{ "stop", vswitch_cli_stop }, { "list", vswitch_cli_list },
	};

	if (argc >= 2 && strcmp(argv[0], "--datastore") == 0) {
		vswitch_cli_ds = argv[1];
		argc -= 2;
		argv += 2;
	}
	if (argc < 1 || strcmp(argv[0], "--help") == 0 ||
	    strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "help") == 0) {
		fputs(vswitch_cli_usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? VSW_CLI_USAGE : VSW_CLI_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[0], cmds[i].name) == 0)
			return cmds[i].fn(argc, argv);
	log_warnx("unknown switch command '%s' (see termvisor switch --help)",
	    argv[0]);
	return VSW_CLI_USAGE;
}
