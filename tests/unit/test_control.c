/*
 * The control protocol: request parsing and every command's reply, on a
 * VM with vCPUs that never run (null accelerator); then the real socket
 * server on its event loop with the client library talking to it, bad
 * input and a stale socket included.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "null_accel.h"
#include "control/control.h"
#include "devices/acpi_pm.h"
#include "devices/bus.h"
#include "devices/virtio_blk.h"
#include "control/control_client.h"
#include "hv/console.h"
#include "hv/exit.h"
#include "util/evloop.h"
#include "vmfs/blkdev.h"

static struct vm_config cfg;
static struct vm *vm;
static struct control ctl;

static void
setup(void)
{
	vclock_set_fake(true, 5000000000ull);
	vm = null_vm(&cfg, 64 << 20, 2);
	cr_assert_not_null(vm);
	vm->state = VM_RUNNING;
	control_init(&ctl, vm, "t1");
}

static void
teardown(void)
{
	control_fini(&ctl);
	vm_destroy(vm);
	vclock_set_fake(false, 0);
}

TestSuite(control, .init = setup, .fini = teardown, .timeout = 10);

/* The reply to line, which must be a well-formed reply object. */
static json_t *
req(const char *line)
{
	json_t *r = control_cmd_request(&ctl, line, strlen(line));

	cr_assert_not_null(r, "no reply to %s", line);
	cr_assert(json_is_boolean(json_object_get(r, "ok")), "%s", line);
	cr_assert_not_null(json_object_get(r, "id"), "replies carry an id");
	return r;
}

static json_t *
req_ok(const char *line)
{
	json_t *r = req(line);

	cr_assert(json_is_true(json_object_get(r, "ok")), "%s failed: %s",
	    line, json_string_value(json_object_get(json_object_get(r,
	    "error"), "message")));
	cr_assert(json_is_object(json_object_get(r, "result")));
	return r;
}

static void
req_err(const char *line, const char *code)
{
	json_t *r = req(line), *e = json_object_get(r, "error");

	cr_assert(json_is_false(json_object_get(r, "ok")), "%s passed", line);
	cr_assert_str_eq(json_string_value(json_object_get(e, "code")), code,
	    "%s", line);
	cr_assert(json_is_string(json_object_get(e, "message")));
	json_decref(r);
}

Test(control, garbage_is_a_parse_error)
{
	req_err("", "parse-error");
	req_err("{", "parse-error");
	req_err("{\"cmd\": \"status\"} {}", "parse-error");
	req_err("\xff\xfe", "parse-error");
	req_err("{\"cmd\":\"status\",\"cmd\":\"stop\"}", "parse-error");
	/* Found by the fuzzer: the parser's message quotes half a UTF-8
	 * sequence, and a reply that is not UTF-8 could not be sent. */
	req_err("{\"G:\\\xc3\x9c\x04", "parse-error");
}

Test(control, malformed_requests)
{
	req_err("[]", "invalid-request");
	req_err("42", "invalid-request");
	req_err("{\"id\": 1}", "invalid-request");
	req_err("{\"id\": 1, \"cmd\": 7}", "invalid-request");
	req_err("{\"cmd\": \"status\", \"args\": [1]}", "invalid-request");
	req_err("{\"cmd\": \"frobnicate\"}", "unknown-command");
	req_err("{\"cmd\": \"\"}", "unknown-command");
}

Test(control, id_comes_back_whatever_it_is)
{
	json_t *r = req_ok("{\"id\": {\"a\": [1, \"x\"]}, \"cmd\": \"status\"}");
	json_t *want = json_pack("{s:[i,s]}", "a", 1, "x");

	cr_assert(json_equal(json_object_get(r, "id"), want));
	json_decref(want);
	json_decref(r);
	r = req("{\"id\": \"q7\", \"cmd\": \"nope\"}");
	cr_assert_str_eq(json_string_value(json_object_get(r, "id")), "q7");
	json_decref(r);
}

Test(control, status)
{
	json_t *r = req_ok("{\"id\": 1, \"cmd\": \"status\", \"args\": null}");
	json_t *res = json_object_get(r, "result");

	cr_assert_str_eq(json_string_value(json_object_get(res, "name")), "t1");
	cr_assert_str_eq(json_string_value(json_object_get(res, "state")),
	    "running");
	cr_assert_eq(json_integer_value(json_object_get(res, "vcpus")), 2);
	cr_assert_eq(json_integer_value(json_object_get(res, "memory")),
	    64 << 20);
	cr_assert_str_eq(json_string_value(json_object_get(res, "accel")),
	    "null");
	json_decref(r);
}

Test(control, stats_count_exits_by_kind)
{
	json_t *r, *v;

	vm->vcpus[1]->exits[VM_EXIT_PIO] = 5;
	vm->vcpus[1]->exits[VM_EXIT_HLT] = 2;
	r = req_ok("{\"id\": 2, \"cmd\": \"stats\"}");
	v = json_array_get(json_object_get(json_object_get(r, "result"),
	    "vcpus"), 1);
	cr_assert_eq(json_array_size(json_object_get(json_object_get(r,
	    "result"), "vcpus")), 2);
	cr_assert_eq(json_integer_value(json_object_get(v, "id")), 1);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(v,
	    "exits"), "pio")), 5);
	cr_assert_eq(json_integer_value(json_object_get(v, "exits_total")), 7);
	cr_assert_null(json_object_get(v, "cpu_time"), "no thread, no time");
	json_decref(r);
}

Test(control, pause_parks_every_vcpu_and_resume_releases_them)
{
	json_decref(req_ok("{\"id\": 1, \"cmd\": \"pause\"}"));
	cr_assert_eq(vm->state, VM_PAUSED);
	for (int i = 0; i < 2; i++)
		cr_assert(atomic_load(&vm->vcpus[i]->requests) &
		    VCPU_REQ_PAUSE);
	req_err("{\"id\": 2, \"cmd\": \"pause\"}", "wrong-state");
	json_decref(req_ok("{\"id\": 3, \"cmd\": \"resume\"}"));
	cr_assert_eq(vm->state, VM_RUNNING);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(atomic_load(&vm->vcpus[i]->requests) &
		    VCPU_REQ_PAUSE, 0);
	req_err("{\"id\": 4, \"cmd\": \"resume\"}", "wrong-state");
}

Test(control, stop_force_powers_off_at_once)
{
	json_decref(req_ok("{\"cmd\": \"stop\", \"args\": {\"force\": true}}"));
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_POWEROFF);
	cr_assert_eq(vm->exit_status, 0);
}

Test(control, stop_presses_the_button_then_forces_after_the_timeout)
{
	json_t *r = req_ok("{\"cmd\": \"stop\", \"args\": {\"timeout\": 3}}");
	uint8_t sts[2];

	cr_assert_eq(json_integer_value(json_object_get(json_object_get(r,
	    "result"), "timeout")), 3);
	json_decref(r);
	cr_assert_eq(vm->state, VM_STOPPING);
	cr_assert_eq(atomic_load(&vm->exit_request), 0, "asked, not forced");
	cr_assert(bus_access(vm->pio, NULL, ACPI_PM1A_EVT_BLK, sts, 2, false));
	cr_assert(sts[1] & 1, "PM1_STS.PWRBTN_STS: the guest sees the press");
	cr_assert(vtimer_armed(&ctl.stop_timer));
	vclock_advance_fake(2900000000ull);
	evloop_run_timers(vm->loop);
	cr_assert_eq(atomic_load(&vm->exit_request), 0);
	/* Asking again with a longer timeout keeps the first deadline. */
	json_decref(req_ok("{\"cmd\": \"stop\", \"args\": {\"timeout\": 60}}"));
	vclock_advance_fake(200000000ull);
	evloop_run_timers(vm->loop);
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_POWEROFF);
}

Test(control, stop_of_a_paused_vm_resumes_it_for_the_guest)
{
	json_decref(req_ok("{\"cmd\": \"pause\"}"));
	json_decref(req_ok("{\"cmd\": \"stop\"}"));
	cr_assert_eq(atomic_load(&vm->vcpus[0]->requests) & VCPU_REQ_PAUSE, 0);
	cr_assert_eq(vm->state, VM_STOPPING);
}

/*
 * A migration source that lost its destination past the hand-over stays
 * paused without its disks' image locks: resuming it (or a graceful
 * stop, which resumes it for the guest) must take them back first, and
 * refuse while another process holds them.
 */
Test(control, resume_takes_the_image_locks_back_or_stays_paused)
{
	char img[] = "/tmp/tv-ctl-disk-XXXXXX", e[512];
	struct blkdev *other;
	int fd = mkstemp(img), err;

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	control_fini(&ctl);
	vm_destroy(vm);
	vm_config_defaults(&cfg);
	cfg.memory = 64 << 20;
	cfg.cpus = 1;
	cfg.ndisks = 1;
	snprintf(cfg.disks[0].path, sizeof(cfg.disks[0].path), "%s", img);
	snprintf(cfg.disks[0].format, sizeof(cfg.disks[0].format), "raw");
	vm = vm_create(&cfg, &null_accel_ops, &err);
	cr_assert_not_null(vm, "vm_create: %s", strerror(-err));
	vm->state = VM_RUNNING;
	control_init(&ctl, vm, "t1");

	json_decref(req_ok("{\"cmd\": \"pause\"}"));
	cr_assert_eq(virtio_blk_inactivate(vm, e, sizeof(e)), 0, "%s", e);
	/* The destination opened the image meanwhile. */
	cr_assert_eq(blkdev_open(&other, img, NULL, 0, e, sizeof(e)), 0, "%s",
	    e);
	req_err("{\"cmd\": \"resume\"}", "disks-busy");
	cr_assert_eq(vm->state, VM_PAUSED);
	cr_assert(atomic_load(&vm->vcpus[0]->requests) & VCPU_REQ_PAUSE);
	req_err("{\"cmd\": \"stop\"}", "disks-busy");
	cr_assert_eq(vm->state, VM_PAUSED);
	/* It went away: this copy may run, with its locks. */
	blkdev_close(other);
	json_decref(req_ok("{\"cmd\": \"resume\"}"));
	cr_assert_eq(vm->state, VM_RUNNING);
	cr_assert_eq(blkdev_open(&other, img, NULL, 0, e, sizeof(e)), -EBUSY,
	    "the running copy holds the image");
	unlink(img);
}

Test(control, stop_arguments_are_checked)
{
	req_err("{\"cmd\": \"stop\", \"args\": {\"force\": \"yes\"}}",
	    "bad-argument");
	req_err("{\"cmd\": \"stop\", \"args\": {\"timeout\": \"5\"}}",
	    "bad-argument");
	req_err("{\"cmd\": \"stop\", \"args\": {\"timeout\": 0}}",
	    "bad-argument");
	req_err("{\"cmd\": \"stop\", \"args\": {\"timeout\": 1e300}}",
	    "bad-argument");
	req_err("{\"cmd\": \"stop\", \"args\": {\"timeout\": -1}}",
	    "bad-argument");
	cr_assert_eq(atomic_load(&vm->exit_request), 0);
	cr_assert_eq(vm->state, VM_RUNNING);
}

Test(control, reset_asks_run_for_a_restart)
{
	json_decref(req_ok("{\"cmd\": \"reset\"}"));
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_RESET);
}

Test(control, console_history_returns_the_last_output)
{
	static const uint8_t out[] = "boot log\r\nlogin: \xff";
	json_t *r, *d;

	cr_assert_not_null(vm->console);
	console_output(vm->console, out, sizeof(out) - 1);
	r = req_ok("{\"cmd\": \"console-history\", \"args\": {\"bytes\": 8}}");
	d = json_object_get(json_object_get(r, "result"), "data");
	cr_assert_str_eq(json_string_value(d), "login: ?", "got [%s]: %s", json_string_value(d),
	    "the tail; bytes that are not UTF-8 become '?'");
	json_decref(r);
	req_err("{\"cmd\": \"console-history\", \"args\": {\"bytes\": -1}}",
	    "bad-argument");
	req_err("{\"cmd\": \"console-history\", \"args\": {\"bytes\": 1e9}}",
	    "bad-argument");
}

Test(control, socket_path_follows_the_runtime_dir)
{
	char path[108], dir[4096], longname[200];

	setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
	cr_assert_eq(control_socket_path("web", path, sizeof(path), dir,
	    sizeof(dir)), 0);
	cr_assert_str_eq(path, "/run/user/7/termvisor/web.sock");
	cr_assert_str_eq(dir, "/run/user/7/termvisor");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(control_socket_path(longname, path, sizeof(path), NULL,
	    0), -ENAMETOOLONG);
}

/* --- the real server, on its event loop in a thread --- */

static void *
loop_thread(void *arg)
{
	evloop_run(arg);
	return NULL;
}

static int
raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Read one line from fd (2 s at most) into buf. */
static void
raw_line(int fd, char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t n = 0;

	while (n + 1 < len) {
		cr_assert_gt(poll(&p, 1, 2000), 0, "no line from the server");
		if (read(fd, buf + n, 1) != 1)
			break;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
}

Test(control, socket_serves_clients_and_survives_bad_input)
{
	char dir[64] = "/tmp/tv-ctl-XXXXXX", line[4096], err[256];
	struct control_conn cc, cc2;
	struct control *srv;
	pthread_t th;
	json_t *res;
	char *big;
	int fd;

	vclock_set_fake(false, 0);
	cr_assert_not_null(mkdtemp(dir));
	setenv("XDG_RUNTIME_DIR", dir, 1);
	cr_assert_eq(control_client_open(&cc, "sock1", err, sizeof(err)),
	    -ENOENT);
	srv = control_start(vm, "sock1");
	cr_assert_not_null(srv);
	srv->live = false;	/* null vCPUs have no threads */
	pthread_create(&th, NULL, loop_thread, vm->loop);

	cr_assert_eq(control_client_open(&cc, "sock1", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_str_eq(json_string_value(json_object_get(cc.greeting, "vm")),
	    "sock1");
	cr_assert_eq(control_client_open(&cc2, "sock1", err, sizeof(err)), 0);

	/* Garbage, then a line over the limit: error replies, then the
	 * server hangs up on that client only. */
	fd = raw_connect(srv->path);
	raw_line(fd, line, sizeof(line));
	cr_assert(strstr(line, "\"protocol\":1") != NULL, "%s", line);
	cr_assert_eq(write(fd, "\x01garbage\n", 9), 9);
	raw_line(fd, line, sizeof(line));
	cr_assert(strstr(line, "parse-error") != NULL, "%s", line);
	big = malloc(CONTROL_LINE_MAX + 10);
	memset(big, '{', CONTROL_LINE_MAX + 10);
	cr_assert_eq(send(fd, big, CONTROL_LINE_MAX + 10, MSG_NOSIGNAL),
	    CONTROL_LINE_MAX + 10);
	free(big);
	raw_line(fd, line, sizeof(line));
	cr_assert(strstr(line, "line-too-long") != NULL, "%s", line);
	raw_line(fd, line, sizeof(line));
	cr_assert_str_eq(line, "", "then EOF");
	close(fd);

	/* A half message then a hang-up: nothing to answer, nothing stuck. */
	fd = raw_connect(srv->path);
	cr_assert_eq(write(fd, "{\"cmd\": \"sta", 12), 12);
	close(fd);

	cr_assert_eq(control_client_call(&cc, "pause", NULL, 2000, &res, err,
	    sizeof(err)), 0, "%s", err);
	json_decref(res);
	/* The other client hears about it as an event. */
	res = control_client_read(&cc2, 2000);
	cr_assert_str_eq(json_string_value(json_object_get(res, "event")),
	    "state");
	cr_assert_str_eq(json_string_value(json_object_get(res, "state")),
	    "paused");
	json_decref(res);
	cr_assert_eq(control_client_call(&cc2, "pause", NULL, 2000, &res, err,
	    sizeof(err)), -EREMOTEIO);
	cr_assert(strstr(err, "paused") != NULL, "%s", err);
	cr_assert_eq(control_client_call(&cc2, "status", NULL, 2000, &res, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(json_string_value(json_object_get(res, "state")),
	    "paused");
	json_decref(res);

	evloop_stop(vm->loop);
	pthread_join(th, NULL);
	control_stop(srv, VM_EVENT_POWEROFF, 0);
	res = control_client_read(&cc, 2000);
	cr_assert_str_eq(json_string_value(json_object_get(res, "event")),
	    "shutdown");
	json_decref(res);
	control_client_close(&cc);
	control_client_close(&cc2);
	rmdir(strcat(dir, "/termvisor"));
}

Test(control, stale_socket_is_reported_then_replaced)
{
	char dir[64] = "/tmp/tv-ctl-XXXXXX", path[108], err[256];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control_conn cc;
	struct control *srv;
	int fd;

	cr_assert_not_null(mkdtemp(dir));
	setenv("XDG_RUNTIME_DIR", dir, 1);
	cr_assert_eq(control_socket_path("dead", path, sizeof(path), NULL, 0),
	    0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert_eq(mkdir(strcat(strcpy(err, dir), "/termvisor"), 0700), 0);
	/* A socket bound and closed: what a VM that died leaves behind. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	cr_assert_eq(control_client_open(&cc, "dead", err, sizeof(err)),
	    -ECONNREFUSED);
	cr_assert(strstr(err, "stale") != NULL, "%s", err);
	srv = control_start(vm, "dead");
	cr_assert_not_null(srv, "the stale socket is replaced");
	control_stop(srv, VM_EVENT_POWEROFF, 0);
	cr_assert_eq(access(path, F_OK), -1, "removed at stop");
	strcat(dir, "/termvisor");
	rmdir(dir);
}

Test(control, a_client_that_never_reads_is_dropped_not_waited_for)
{
	char dir[64] = "/tmp/tv-ctl-XXXXXX", line[4096], err[256], buf[65536];
	static uint8_t out[60000];
	struct control_conn cc;
	struct pollfd p;
	struct control *srv;
	pthread_t th;
	size_t got = 0;
	json_t *res;
	ssize_t n;
	int fd, small = 4096;

	vclock_set_fake(false, 0);
	memset(out, 'x', sizeof(out));
	console_output(vm->console, out, sizeof(out));
	cr_assert_not_null(mkdtemp(dir));
	setenv("XDG_RUNTIME_DIR", dir, 1);
	srv = control_start(vm, "slow");
	cr_assert_not_null(srv);
	pthread_create(&th, NULL, loop_thread, vm->loop);
	fd = raw_connect(srv->path);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	raw_line(fd, line, sizeof(line));
	/* ~60 KiB per reply: 40 of them overflow the 1 MiB budget. */
	for (int i = 0; i < 40; i++)
		cr_assert_eq(write(fd, "{\"cmd\":\"console-history\"}\n", 26),
		    26);
	/* The VM still answers others at once. */
	cr_assert_eq(control_client_open(&cc, "slow", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(control_client_call(&cc, "status", NULL, 2000, &res, err,
	    sizeof(err)), 0, "%s", err);
	json_decref(res);
	/* Reading now finds the end: the server gave up on this client. */
	for (;;) {
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		cr_assert_gt(poll(&p, 1, 2000), 0, "not dropped after %zu bytes", got);
		if ((n = read(fd, buf, sizeof(buf))) <= 0)
			break;
		got += (size_t)n;
	}
	cr_assert_lt(got, 40 * sizeof(out), "dropped before all replies");
	close(fd);
	control_client_close(&cc);
	evloop_stop(vm->loop);
	pthread_join(th, NULL);
	control_stop(srv, VM_EVENT_POWEROFF, 0);
	strcat(dir, "/termvisor");
	rmdir(dir);
}

Test(control, console_bytes_go_through_json_unchanged)
{
	uint8_t all[256], back[300];
	json_t *j, *big;
	long n;

	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	j = control_bytes_json(all, sizeof(all));
	cr_assert_not_null(j, "every byte, NUL and 0xff included");
	n = control_json_bytes(j, back, sizeof(back));
	cr_assert_eq(n, 256);
	cr_assert_arr_eq(back, all, 256);
	cr_assert_eq(control_json_bytes(j, back, 10), 10, "bounded by len");
	json_decref(j);
	big = json_string("\xc4\x80");	/* U+0100: not a byte */
	cr_assert_eq(control_json_bytes(big, back, sizeof(back)), -1);
	json_decref(big);
}

Test(control, console_input_reaches_the_console_and_checks_its_data)
{
	json_t *r;

	r = req_ok("{\"cmd\": \"console-input\", \"args\": "
	    "{\"data\": \"ls\\r\\u0003\\u00ff\"}}");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(r,
	    "result"), "written")), 5, "five bytes queued");
	json_decref(r);
	req_err("{\"cmd\": \"console-input\"}", "bad-argument");
	req_err("{\"cmd\": \"console-input\", \"args\": {\"data\": 3}}",
	    "bad-argument");
	req_err("{\"cmd\": \"console-input\", \"args\": "
	    "{\"data\": \"\\u0100\"}}", "bad-argument");
	/* Without a connection there is nobody to stream to. */
	req_err("{\"cmd\": \"console-attach\"}", "unsupported");
}

/* The next console event on cc, its data appended to acc. */
static void
console_event(struct control_conn *cc, char *acc, size_t len)
{
	uint8_t b[CONTROL_CONSOLE_CHUNK + 1];
	json_t *j;
	long n;

	for (;;) {
		j = control_client_read(cc, 2000);
		cr_assert_not_null(j, "no console event");
		if (json_is_string(json_object_get(j, "event")) &&
		    strcmp(json_string_value(json_object_get(j, "event")),
		    "console") == 0)
			break;
		json_decref(j);
	}
	n = control_json_bytes(json_object_get(j, "data"), b, sizeof(b) - 1);
	cr_assert_geq(n, 0);
	b[n] = '\0';
	strncat(acc, (char *)b, len - strlen(acc) - 1);
	json_decref(j);
}

Test(control, console_attach_streams_history_then_live_output)
{
	char dir[64] = "/tmp/tv-ctl-XXXXXX", err[256], acc[4096] = "";
	struct control_conn cc;
	struct control *srv;
	pthread_t th;
	json_t *res;

	vclock_set_fake(false, 0);
	console_output(vm->console, (const uint8_t *)"boot log\r\n", 10);
	cr_assert_not_null(mkdtemp(dir));
	setenv("XDG_RUNTIME_DIR", dir, 1);
	srv = control_start(vm, "con1");
	cr_assert_not_null(srv);
	srv->live = false;
	pthread_create(&th, NULL, loop_thread, vm->loop);
	cr_assert_eq(control_client_open(&cc, "con1", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(control_client_call(&cc, "console-attach", NULL, 2000,
	    &res, err, sizeof(err)), 0, "%s", err);
	json_decref(res);
	while (strstr(acc, "boot log\r\n") == NULL)
		console_event(&cc, acc, sizeof(acc));
	cr_assert_str_eq(acc, "boot log\r\n", "the history first");
	/* Then what the guest prints from now on, as it prints it. */
	console_output(vm->console, (const uint8_t *)"login: \xff", 8);
	while (strlen(acc) < 18)
		console_event(&cc, acc, sizeof(acc));
	cr_assert_str_eq(acc, "boot log\r\nlogin: \xff");
	/* Input on the same connection still gets replies. */
	cr_assert_eq(control_client_call(&cc, "console-input",
	    json_pack("{s:s}", "data", "root\r"), 2000, &res, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(json_integer_value(json_object_get(res, "written")), 5);
	json_decref(res);

	evloop_stop(vm->loop);
	pthread_join(th, NULL);
	/* The last output comes before the shutdown event. */
	console_output(vm->console, (const uint8_t *)"bye", 3);
	control_stop(srv, VM_EVENT_POWEROFF, 0);
	console_event(&cc, acc, sizeof(acc));
	cr_assert(strstr(acc, "bye") != NULL, "%s", acc);
	res = control_client_read(&cc, 2000);
	cr_assert_str_eq(json_string_value(json_object_get(res, "event")),
	    "shutdown");
	json_decref(res);
	control_client_close(&cc);
	strcat(dir, "/termvisor");
	rmdir(dir);
}

Test(control, console_detach_stops_the_stream_and_keeps_the_connection)
{
	char dir[64] = "/tmp/tv-ctl-XXXXXX", err[256], acc[4096] = "";
	struct control_conn cc;
	struct control *srv;
	pthread_t th;
	json_t *res;

	vclock_set_fake(false, 0);
	cr_assert_not_null(mkdtemp(dir));
	setenv("XDG_RUNTIME_DIR", dir, 1);
	srv = control_start(vm, "con2");
	cr_assert_not_null(srv);
	srv->live = false;
	pthread_create(&th, NULL, loop_thread, vm->loop);
	cr_assert_eq(control_client_open(&cc, "con2", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(control_client_call(&cc, "console-attach", NULL, 2000,
	    &res, err, sizeof(err)), 0, "%s", err);
	json_decref(res);
	console_output(vm->console, (const uint8_t *)"one\n", 4);
	while (strstr(acc, "one\n") == NULL)
		console_event(&cc, acc, sizeof(acc));
	cr_assert_eq(control_client_call(&cc, "console-detach", NULL, 2000,
	    &res, err, sizeof(err)), 0, "%s", err);
	json_decref(res);
	console_output(vm->console, (const uint8_t *)"two\n", 4);
	res = control_client_read(&cc, 300);
	cr_assert_null(res, "a detached client got %s", res ? json_dumps(res,
	    0) : "");
	cr_assert_eq(errno, ETIMEDOUT);
	/* The connection still answers, and can attach again. */
	cr_assert_eq(control_client_call(&cc, "status", NULL, 2000, &res, err,
	    sizeof(err)), 0, "%s", err);
	json_decref(res);
	cr_assert_eq(control_client_call(&cc, "console-attach", NULL, 2000,
	    &res, err, sizeof(err)), 0, "%s", err);
	json_decref(res);
	acc[0] = '\0';
	while (strstr(acc, "two\n") == NULL)
		console_event(&cc, acc, sizeof(acc));

	evloop_stop(vm->loop);
	pthread_join(th, NULL);
	control_stop(srv, VM_EVENT_POWEROFF, 0);
	control_client_close(&cc);
	strcat(dir, "/termvisor");
	rmdir(dir);
}

Test(control, a_reset_keeps_the_socket_the_clients_and_the_console)
{
	char dir[64] = "/tmp/tv-ctl-XXXXXX", err[256], acc[4096] = "";
	struct vm_config cfg2;
	struct control_conn cc, cc2;
	struct control *srv;
	struct vm *vm2;
	pthread_t th;
	json_t *res;

	vclock_set_fake(false, 0);
	cr_assert_not_null(mkdtemp(dir));
	setenv("XDG_RUNTIME_DIR", dir, 1);
	srv = control_start(vm, "rst1");
	cr_assert_not_null(srv);
	srv->live = false;
	pthread_create(&th, NULL, loop_thread, vm->loop);
	cr_assert_eq(control_client_open(&cc, "rst1", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(control_client_call(&cc, "console-attach", NULL, 2000,
	    &res, err, sizeof(err)), 0, "%s", err);
	json_decref(res);
	console_output(vm->console, (const uint8_t *)"before\n", 7);
	while (strstr(acc, "before\n") == NULL)
		console_event(&cc, acc, sizeof(acc));
	evloop_stop(vm->loop);
	pthread_join(th, NULL);

	/* run.c: the guest reset, its VM goes and a new one comes. */
	cr_assert_eq(control_reset(srv), srv);
	res = control_client_read(&cc, 2000);
	cr_assert_str_eq(json_string_value(json_object_get(res, "event")),
	    "reset");
	json_decref(res);
	vm2 = null_vm(&cfg2, 32 << 20, 1);
	cr_assert_not_null(vm2);
	vm2->state = VM_RUNNING;
	cr_assert_eq(control_rebind(srv, vm2), srv);
	pthread_create(&th, NULL, loop_thread, vm2->loop);

	/* The attached client goes on with the new VM's output. */
	console_output(vm2->console, (const uint8_t *)"after\n", 6);
	while (strstr(acc, "after\n") == NULL)
		console_event(&cc, acc, sizeof(acc));
	cr_assert_str_eq(acc, "before\nafter\n");
	cr_assert_eq(control_client_call(&cc, "status", NULL, 2000, &res, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(json_integer_value(json_object_get(res, "vcpus")), 1,
	    "the new VM answers");
	json_decref(res);
	/* The same socket takes new clients; the history spans the reset. */
	cr_assert_eq(control_client_open(&cc2, "rst1", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(control_client_call(&cc2, "console-history", NULL, 2000,
	    &res, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(json_string_value(json_object_get(res, "data")),
	    "before\nafter\n");
	json_decref(res);
	/* A second attach replays both too. */
	cr_assert_eq(control_client_call(&cc2, "console-attach", NULL, 2000,
	    &res, err, sizeof(err)), 0, "%s", err);
	json_decref(res);
	acc[0] = '\0';
	while (strstr(acc, "after\n") == NULL)
		console_event(&cc2, acc, sizeof(acc));
	cr_assert_str_eq(acc, "before\nafter\n");

	evloop_stop(vm2->loop);
	pthread_join(th, NULL);
	control_stop(srv, VM_EVENT_POWEROFF, 0);
	control_client_close(&cc);
	control_client_close(&cc2);
	vm_destroy(vm2);
	strcat(dir, "/termvisor");
	rmdir(dir);
}
