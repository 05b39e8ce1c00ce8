/*
 * `termvisor migrate VM DEST`: ask a running VM (over its control
 * socket) to migrate itself, then follow its progress events with a
 * progress bar until it reports "migrated" or a failure.  The VM
 * process does the work, so closing this command does not stop it
 * (migrate-cancel does, before the switch-over).
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/control_client.h"
#include "run.h"
#include "util/log.h"

static const char migrate_cli_usage[] =
"usage: termvisor migrate [options] VM DEST\n"
"\n"
"Move running VM to another host while it runs (live migration).  DEST is\n"
"  ssh://[USER@]HOST[:PORT]  runs `termvisor run --incoming - VM` there\n"
"                            (a datastore VM, on a datastore both hosts\n"
"                            share, or its default one with\n"
"                            --copy-storage); SSH authenticates and encrypts\n"
"  tcp://HOST:PORT           a `termvisor run --incoming tcp:...` waiting\n"
"                            there; for trusted networks (not encrypted),\n"
"                            with a shared secret (--secret-file)\n"
"\n"
"  -s, --secret-file FILE  secret shared with the destination (tcp://)\n"
"  -d, --max-downtime MS   longest pause of the guest to allow\n"
"                          (default 300)\n"
"  -b, --bandwidth RATE    limit in bytes/s: 500K, 100M, 1G; a bare\n"
"                          number is MiB/s (default: no limit)\n"
"  -e, --ssh COMMAND       ssh command and options (default: ssh)\n"
"      --remote-termvisor PATH  termvisor on the destination host\n"
"      --remote-datastore DIR   the datastore on the destination host\n"
"                          (ssh://; default: the source's, or with\n"
"                          --copy-storage the destination's default)\n"
"  -t, --timeout SEC       give up (the VM keeps running here) after SEC\n"
"  -c, --copy-storage      copy the VM's configuration and disks too, for\n"
"                          a destination with its own datastore (the\n"
"                          directory must not exist there)\n"
"  -q, --quiet             no progress bar\n"
"  -v, --verbose           at the end, where the downtime went\n"
"  -h, --help              this help\n"
"\n"
"Exit status: 0 migrated (the VM runs at DEST and has ended here), 1 the\n"
"migration failed (the VM runs here as before), 2 usage.\n";

struct migrate_cli_opts {
	const char *vm, *dest, *secret_file, *ssh, *remote, *remote_ds;
	uint64_t downtime, bandwidth, timeout;
	bool quiet, verbose, copy_storage;
};

static int
migrate_cli_parse(int argc, char **argv, struct migrate_cli_opts *o)
{
	enum { OPT_REMOTE = 256, OPT_REMOTE_DS };
	static const struct option opts[] = {
		{ "secret-file", required_argument, NULL, 's' },
		{ "max-downtime", required_argument, NULL, 'd' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "ssh", required_argument, NULL, 'e' },
		{ "remote-termvisor", required_argument, NULL, OPT_REMOTE },
		{ "remote-datastore", required_argument, NULL, OPT_REMOTE_DS },
		{ "timeout", required_argument, NULL, 't' },
		{ "copy-storage", no_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "s:d:b:e:t:cqvh", opts, NULL))
	    != -1) {
		switch (c) {
		case 's': o->secret_file = optarg; break;
		case 'e': o->ssh = optarg; break;
		case OPT_REMOTE: o->remote = optarg; break;
		case OPT_REMOTE_DS: o->remote_ds = optarg; break;
		case 'q': o->quiet = true; break;
		case 'c': o->copy_storage = true; break;
		case 'v': o->verbose = true; break;
		case 'h':
			fputs(migrate_cli_usage, stdout);
			return 1;
		case 'd':
		case 't':
			errno = 0;
			if (c == 'd')
				o->downtime = strtoull(optarg, &end, 10);
			else
				o->timeout = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg ||
			    (c == 'd' ? o->downtime : o->timeout) == 0) {
				log_warnx("-%c %s: expected a positive number",
				    c, optarg);
				return -1;
			}
			break;
		case 'b':
			/* Sizes as --memory takes them, but bytes. */
			if ((o->bandwidth = run_parse_size(optarg)) == 0) {
				log_warnx("--bandwidth %s: expected a rate like "
				    "100M or 1G (bytes per second)", optarg);
				return -1;
			}
			break;
		default:
			log_warnx("unknown or incomplete option '%s' (see "
			    "termvisor migrate --help)", argv[optind - 1]);
			return -1;
		}
	}
	if (argc - optind != 2) {
		log_warnx("usage: termvisor migrate [options] VM DEST (see "
		    "termvisor migrate --help)");
		return -1;
	}
	o->vm = argv[optind];
	o->dest = argv[optind + 1];
	return 0;
}

static json_t *
migrate_cli_args(const struct migrate_cli_opts *o)
{
	json_t *a = json_pack("{s:s}", "uri", o->dest);
	struct migrate_uri u;
	char secret[256], err[512];

	if (migrate_uri_parse(o->dest, false, &u, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		goto fail;
	}
	if (u.kind == MIGRATE_URI_TCP) {
		if (o->secret_file == NULL) {
			log_warnx("tcp:// needs --secret-file (the destination "
			    "uses the same one)");
			goto fail;
		}
		if (migrate_secret_read(o->secret_file, secret,
		    sizeof(secret), err, sizeof(err)) < 0) {
			log_warnx("%s", err);
			goto fail;
		}
		/* Only over the owner-only control socket, to our own VM. */
		json_object_set_new(a, "secret", json_string(secret));
		explicit_bzero(secret, sizeof(secret));
	}
	if (o->ssh != NULL)
		json_object_set_new(a, "ssh", json_string(o->ssh));
	if (o->remote != NULL)
		json_object_set_new(a, "remote_termvisor",
		    json_string(o->remote));
	if (o->remote_ds != NULL)
		json_object_set_new(a, "remote_datastore",
		    json_string(o->remote_ds));
	if (o->downtime)
		json_object_set_new(a, "max_downtime_ms",
		    json_integer((json_int_t)o->downtime));
	if (o->bandwidth)
		json_object_set_new(a, "bandwidth",
		    json_integer((json_int_t)o->bandwidth));
	if (o->copy_storage)
		json_object_set_new(a, "copy_storage", json_true());
	if (o->timeout)
		json_object_set_new(a, "timeout_ms",
		    json_integer((json_int_t)(o->timeout * 1000)));
	return a;
fail:
	json_decref(a);
	return NULL;
}

static json_int_t
migrate_cli_int(json_t *ev, const char *k)
{
	json_t *v = json_object_get(ev, k);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* One progress event: a bar on a terminal, a line per round otherwise. */
static void
migrate_cli_bar(json_t *ev, bool tty, int *last_round)
{
	json_int_t total = migrate_cli_int(ev, "total_pages"),
	    sent = migrate_cli_int(ev, "pages_sent"),
	    round = migrate_cli_int(ev, "round");
	int pct = total > 0 ? (int)(sent * 100 / total) : 0, w = 30, fill;
	json_t *disk = json_object_get(ev, "disk");
	char bar[64], dl[128] = "";

	if (json_is_object(disk)) {
		json_int_t dt = migrate_cli_int(disk, "total_bytes"),
		    dc = migrate_cli_int(disk, "copied_bytes");

		/* The first copy of the disks comes before any page. */
		if (sent == 0 && dt > 0)
			pct = (int)(dc * 100 / dt);
		snprintf(dl, sizeof(dl), ", disks %.1f/%.1f MiB, %lld dirty "
		    "chunks", (double)dc / 1048576.0, (double)dt / 1048576.0,
		    (long long)migrate_cli_int(disk, "dirty_chunks"));
	}

	if (pct > 99)
		pct = 99;	/* the last pages go after the pause */
	fill = pct * w / 100;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(w - fill));
	bar[w] = '\0';
	if (!tty && round == *last_round && (dl[0] == '\0' || sent > 0))
		return;
	*last_round = (int)round;
	if (dl[0] != '\0' && sent == 0) {
		/* The disks' first copy: no round of pages yet. */
		printf("%s[%s] %3d%% %6.1f MiB sent, copying the disks%s%s",
		    tty ? "\r" : "", bar, pct,
		    (double)migrate_cli_int(ev, "bytes") / 1048576.0, dl,
		    tty ? "\033[K" : "\n");
		fflush(stdout);
		return;
	}
	printf("%s[%s] %3d%% %6.1f MiB sent, round %d, %.1f MiB dirty, "
	    "dirty %.1f MiB/s, link %.1f MiB/s, downtime ~%lld ms%s%s",
	    tty ? "\r" : "", bar, pct,
	    (double)migrate_cli_int(ev, "bytes") / 1048576.0, (int)round,
	    (double)migrate_cli_int(ev, "remaining_pages") * 4096 / 1048576.0,
	    (double)migrate_cli_int(ev, "dirty_rate") / 1048576.0,
	    (double)migrate_cli_int(ev, "bandwidth") / 1048576.0,
	    (long long)migrate_cli_int(ev, "expected_downtime_ms"), dl,
	    tty ? "\033[K" : "\n");
	fflush(stdout);
}

static double
migrate_cli_ms(json_t *parts, const char *k)
{
	json_t *v = json_object_get(parts, k);

	return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* The "migrated" event's downtime_parts, one line (ms). */
static void
migrate_cli_parts(json_t *ev)
{
	json_t *p = json_object_get(ev, "downtime_parts");

	if (!json_is_object(p))
		return;
	printf("downtime parts (ms): stop vCPUs %.1f (before the pause), "
	    "device state %.1f (%lld KiB), last RAM %.1f (%lld pages, "
	    "dirty log %.1f), "
	    "send state %.1f, destination load %.1f, wait %.1f, lock "
	    "release %.1f, destination lock %.1f, wait %.1f\n",
	    migrate_cli_ms(p, "stop_vcpus"), migrate_cli_ms(p, "device_state"),
	    (long long)migrate_cli_int(p, "state_bytes") / 1024,
	    migrate_cli_ms(p, "last_ram"),
	    (long long)migrate_cli_int(p, "last_ram_pages"),
	    migrate_cli_ms(p, "last_ram_log"),
	    migrate_cli_ms(p, "send_state"), migrate_cli_ms(p, "dest_load"),
	    migrate_cli_ms(p, "ready_wait"), migrate_cli_ms(p, "lock_release"),
	    migrate_cli_ms(p, "dest_lock"), migrate_cli_ms(p, "go_wait"));
}

/* With the storage: what the disks cost. */
static void
migrate_cli_disks(json_t *ev)
{
	json_t *d = json_object_get(ev, "disk");
	json_int_t cs;

	if (!json_is_object(d))
		return;
	cs = migrate_cli_int(d, "chunk_size");
	printf("disks: %.1f MiB, %lld chunks of %lld KiB sent (%lld as zeros; "
	    "%lld chunks of zeros left out), %lld rounds of writes\n",
	    (double)migrate_cli_int(d, "total_bytes") / 1048576.0,
	    (long long)migrate_cli_int(d, "sent_chunks"), (long long)(cs / 1024),
	    (long long)migrate_cli_int(d, "zero_chunks"),
	    (long long)migrate_cli_int(d, "skipped_chunks"),
	    (long long)migrate_cli_int(d, "rounds"));
}

/* Follow events until the outcome; the exit status. */
static int
migrate_cli_follow(struct control_conn *cc, const struct migrate_cli_opts *o)
{
	bool tty = isatty(STDOUT_FILENO);
	int last_round = -1;

	for (;;) {
		json_t *ev = control_client_read(cc, 1000);
		const char *name, *status;

		if (ev == NULL && errno == ETIMEDOUT)
			continue;
		if (ev == NULL) {
			if (tty && !o->quiet)
				putchar('\n');
			log_warnx("%s: the VM went away without saying how the "
			    "migration ended (see its log)", o->vm);
			return 1;
		}
		name = json_string_value(json_object_get(ev, "event"));
		status = json_string_value(json_object_get(ev, "status"));
		if (name != NULL && strcmp(name, "migrated") == 0) {
			if (tty && !o->quiet)
				putchar('\n');
			printf("migrated %s to %s: %.1f MiB in %.2f s, %d "
			    "rounds, downtime %lld ms\n", o->vm, o->dest,
			    (double)migrate_cli_int(ev, "bytes") / 1048576.0,
			    (double)migrate_cli_int(ev, "total_ms") / 1000.0,
			    (int)migrate_cli_int(ev, "rounds"),
			    (long long)migrate_cli_int(ev, "downtime_ms"));
			migrate_cli_disks(ev);
			if (o->verbose)
				migrate_cli_parts(ev);
			json_decref(ev);
			return 0;
		}
		if (name != NULL && strcmp(name, "migration") == 0 &&
		    status != NULL && strcmp(status, "failed") == 0) {
			if (tty && !o->quiet)
				putchar('\n');
			log_warnx("migration of %s failed: %s; %s", o->vm,
			    json_string_value(json_object_get(ev, "error")),
			    json_string_value(json_object_get(ev, "outcome")));
			json_decref(ev);
			return 1;
		}
		if (name != NULL && strcmp(name, "migration") == 0 &&
		    !o->quiet)
			migrate_cli_bar(ev, tty, &last_round);
		json_decref(ev);
	}
}

int
migrate_cli_main(int argc, char **argv)
{
	struct migrate_cli_opts o;
	struct control_conn cc;
	json_t *args, *res = NULL;
	char err[512];
	int r;

	if ((r = migrate_cli_parse(argc, argv, &o)) != 0)
		return r < 0 ? 2 : 0;
	if ((args = migrate_cli_args(&o)) == NULL)
		return 2;
	if (control_client_open(&cc, o.vm, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		json_decref(args);
		return 1;
	}
	if (control_client_call(&cc, "migrate", args, 10000, &res, err,
	    sizeof(err)) < 0) {
		log_warnx("%s: %s", o.vm, err);
		control_client_close(&cc);
		return 1;
	}
	json_decref(res);
	r = migrate_cli_follow(&cc, &o);
	control_client_close(&cc);
	return r;
}
