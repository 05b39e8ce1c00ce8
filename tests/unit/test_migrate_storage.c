/*
 * The destination's side of a migration that brings its storage
 * (migrate_incoming_storage), over a real loopback TCP connection with a
 * fake source in a thread: a good stream creates the VM's directory
 * (its .vmx with the disks' paths made local, its disks with the data),
 * built hidden and renamed when complete; a hostile or truncated one is
 * refused and leaves nothing behind, and no file outside the directory
 * is ever written.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include "migrate/migrate.h"
#include "unit/scratch.h"
#include "util/log.h"

#define SECRET	"storage test secret"
#define DSIZE	(1u << 20)

static char dir[] = "/tmp/test_migrate_storage.XXXXXX";
static char ds[128], vmdir[160];

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(ds, sizeof(ds), "%s/ds", dir);
	snprintf(vmdir, sizeof(vmdir), "%s/vm1", ds);
	log_set_file(fopen("/dev/null", "w"));
	/* The fake source may write to a destination that has closed. */
	signal(SIGPIPE, SIG_IGN);
}

static void
teardown(void)
{
	scratch_remove(dir);
}

TestSuite(migrate_storage, .init = setup, .fini = teardown);

static int
free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), p;

	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	p = ntohs(a.sin_port);
	close(fd);
	return p;
}

/* What the fake source sends; variations make it hostile. */
struct src {
	int port;
	const char *vmx;
	const char *file;	/* the disk's file name */
	uint64_t chunk_off;	/* where its one data chunk goes */
	bool stop_early;	/* close after the disk header */
	bool nack_seen;
	char err[256];		/* what went wrong on the source's side */
};

/* Best effort: a destination that refused may have closed already. */
static void
put_rec(struct migrate_chan *ch, int type, const void *p, size_t n)
{
	(void)migrate_rec_send(ch, type, p, n);
}

static void *
src_thread(void *arg)
{
	struct src *s = arg;
	struct migrate_hello h = { .version = 2, .ram_size = 8 << 20,
	    .nvcpus = 1, .name = "vm1", .flags = MIGRATE_HELLO_DISKS,
	    .ndisks = 1 };
	struct migrate_disk_hdr d = { .index = 0,
	    .chunk_shift = MIGRATE_CHUNK_SHIFT, .virtual_size = DSIZE,
	    .format = "raw" };
	struct migrate_blocks b;
	struct migrate_uri u;
	struct migrate_chan ch;
	uint8_t buf[256], *data = malloc(1u << MIGRATE_CHUNK_SHIFT), *rb = NULL;
	char uri[64], err[256];
	size_t cap = 0, len;
	int type;

	snprintf(d.file, sizeof(d.file), "%s", s->file);
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", s->port);
	/* No assertions in this thread: it reports through s->err. */
	if (migrate_uri_parse(uri, false, &u, err, sizeof(err)) < 0) {
		snprintf(s->err, sizeof(s->err), "uri: %.200s", err);
		goto out;
	}
	for (int i = 0; migrate_tcp_connect(&u, &ch) < 0; i++) {
		if (i == 100) {
			snprintf(s->err, sizeof(s->err), "never listened");
			goto out;
		}
		usleep(20000);
	}
	ch.timeout_ms = 5000;
	if (migrate_auth_client(&ch, SECRET) < 0) {
		snprintf(s->err, sizeof(s->err), "auth: %.200s", ch.err);
		migrate_chan_close(&ch);
		goto out;
	}
	(void)migrate_chan_write(&ch, MIGRATE_MAGIC, 8);
	put_rec(&ch, MIGRATE_REC_HELLO, buf, migrate_hello_encode(&h, buf,
	    sizeof(buf)));
	put_rec(&ch, MIGRATE_REC_CONFIG, s->vmx, strlen(s->vmx));
	/* Encoded by hand: the header encoder would not refuse a bad name,
	 * the destination must. */
	put_rec(&ch, MIGRATE_REC_DISK, buf, migrate_disk_hdr_encode(&d, buf,
	    sizeof(buf)));
	if (s->stop_early) {
		shutdown(ch.wfd, SHUT_WR);
	} else {
		memset(data, 0xc3, 1u << MIGRATE_CHUNK_SHIFT);
		if (migrate_blocks_init(&b, MIGRATE_CHUNK_SHIFT) < 0)
			abort();
		migrate_blocks_reset(&b, 0);
		migrate_blocks_add(&b, s->chunk_off, data,
		    1u << MIGRATE_CHUNK_SHIFT, false);
		/* A good header, then an offset past the disk: the walk
		 * refuses the record before writing anything. */
		put_rec(&ch, MIGRATE_REC_BLOCKS, b.buf, b.len);
		migrate_blocks_free(&b);
		put_rec(&ch, MIGRATE_REC_DISKS_DONE, NULL, 0);
	}
	/* Whatever the destination answers, until it closes. */
	while (migrate_rec_recv(&ch, &type, &rb, &cap, &len, 4096) == 0)
		s->nack_seen |= type == MIGRATE_REC_NACK;
	migrate_chan_close(&ch);
	free(rb);
out:
	free(data);
	return NULL;
}

/* Run the destination against s; its result, *pre on success. */
static int
receive(struct src *s, struct migrate_pre **pre)
{
	struct migrate_incoming in = { .secret = SECRET, .timeout_ms = 3000 };
	char uri[32];
	pthread_t t;
	int r;

	s->port = free_port();
	snprintf(uri, sizeof(uri), "tcp:%d", s->port);
	in.uri = uri;
	in.vmdir = vmdir;
	cr_assert_eq(pthread_create(&t, NULL, src_thread, s), 0);
	r = migrate_incoming_storage(&in, vmdir, pre);
	if (r == 0)
		migrate_incoming_abort(*pre, "the test is done");
	pthread_join(t, NULL);
	cr_assert_str_eq(s->err, "", "the source: %s", s->err);
	return r;
}

/* The names in ds (hidden ones too), sorted, space-separated. */
static void
listing(const char *path, char *out, size_t len)
{
	struct dirent **e;
	int n = scandir(path, &e, NULL, alphasort);

	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strcmp(e[i]->d_name, ".") != 0 &&
		    strcmp(e[i]->d_name, "..") != 0)
			snprintf(out + strlen(out), len - strlen(out), "%s ",
			    e[i]->d_name);
		free(e[i]);
	}
	if (n >= 0)
		free(e);
}

static const char good_vmx[] = "name = \"vm1\"\nmemsize = \"8\"\n"
    "kernel = \"/boot/vmlinuz\"\ndisk0.path = \"/srv/elsewhere/d.img\"\n"
    "disk0.format = \"raw\"\n";

Test(migrate_storage, a_good_stream_makes_the_directory)
{
	struct src s = { .vmx = good_vmx, .file = "d.img",
	    .chunk_off = 3u << MIGRATE_CHUNK_SHIFT };
	struct migrate_incoming in = { .secret = SECRET, .timeout_ms = 3000 };
	struct migrate_pre *pre = NULL;
	char uri[32], path[256], names[512], text[1024];
	uint8_t chunk[16];
	pthread_t t;
	FILE *f;
	int fd;
	size_t n;

	s.port = free_port();
	snprintf(uri, sizeof(uri), "tcp:%d", s.port);
	in.uri = uri;
	in.vmdir = vmdir;
	cr_assert_eq(pthread_create(&t, NULL, src_thread, &s), 0);
	cr_assert_eq(migrate_incoming_storage(&in, vmdir, &pre), 0);
	cr_assert_not_null(pre);
	/* Renamed into place; nothing hidden left. */
	listing(ds, names, sizeof(names));
	cr_assert_str_eq(names, "vm1 ");
	listing(vmdir, names, sizeof(names));
	cr_assert_str_eq(names, "d.img vm1.vmx ");
	/* The disk's path is its file here now. */
	snprintf(path, sizeof(path), "%s/vm1.vmx", vmdir);
	cr_assert_not_null(f = fopen(path, "r"));
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	cr_assert(strstr(text, "disk0.path = \"d.img\"") != NULL, "%s", text);
	cr_assert(strstr(text, "/srv/elsewhere") == NULL, "%s", text);
	cr_assert(strstr(text, "kernel = \"/boot/vmlinuz\"") != NULL);
	/* The data where it was sent, zeros elsewhere, the disk's size. */
	snprintf(path, sizeof(path), "%s/d.img", vmdir);
	cr_assert_geq(fd = open(path, O_RDONLY), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_END), DSIZE);
	cr_assert_eq(pread(fd, chunk, sizeof(chunk), 3u << MIGRATE_CHUNK_SHIFT),
	    (ssize_t)sizeof(chunk));
	cr_assert_eq(chunk[0], 0xc3);
	cr_assert_eq(pread(fd, chunk, sizeof(chunk), 0), (ssize_t)sizeof(chunk));
	cr_assert_eq(chunk[0], 0);
	close(fd);
	/* Given up before the VM ran: removed, and the source told. */
	migrate_incoming_abort(pre, "the test is done");
	pthread_join(t, NULL);
	cr_assert_str_eq(s.err, "", "the source: %s", s.err);
	cr_assert(s.nack_seen);
	listing(ds, names, sizeof(names));
	cr_assert_str_eq(names, "");
}

/* A refused stream: an error, the source told, nothing left. */
static void
refused(struct src *s, const char *what)
{
	struct migrate_pre *pre = NULL;
	char names[512];

	cr_assert_lt(receive(s, &pre), 0, "%s: accepted", what);
	cr_assert(s->nack_seen, "%s: the source was not told", what);
	listing(ds, names, sizeof(names));
	cr_assert_str_eq(names, "", "%s: left %s", what, names);
	listing(dir, names, sizeof(names));
	cr_assert_str_eq(names, "ds ", "%s: wrote beside it: %s", what, names);
}

Test(migrate_storage, a_file_name_out_of_the_directory_is_refused)
{
	struct src s = { .vmx = good_vmx, .file = "../evil" };

	refused(&s, "../evil");
	s = (struct src){ .vmx = good_vmx, .file = ".hidden" };
	refused(&s, ".hidden");
	s = (struct src){ .vmx = good_vmx, .file = "vm1.vmx" };
	refused(&s, "the .vmx's name");
	s = (struct src){ .vmx = good_vmx, .file = "lease" };
	refused(&s, "the lease's name");
}

Test(migrate_storage, a_chunk_past_the_disk_is_refused)
{
	struct src s = { .vmx = good_vmx, .file = "d.img",
	    .chunk_off = DSIZE };

	refused(&s, "chunk at the disk's end");
}

Test(migrate_storage, a_stream_cut_short_is_refused)
{
	struct src s = { .vmx = good_vmx, .file = "d.img", .stop_early = true };

	refused(&s, "cut after the disk header");
}

Test(migrate_storage, a_configuration_naming_other_disks_is_refused)
{
	struct src s = { .vmx = "name = \"vm1\"\nmemsize = \"8\"\n"
	    "disk0.path = \"a.img\"\ndisk1.path = \"/dev/sda\"\n",
	    .file = "a.img" };

	refused(&s, "a second disk that does not come");
	s = (struct src){ .vmx = "this is not = = a vmx\n\"", .file = "a.img" };
	refused(&s, "not a .vmx");
}

Test(migrate_storage, a_vm_already_there_is_not_overwritten)
{
	struct src s = { .vmx = good_vmx, .file = "d.img" };
	struct migrate_pre *pre = NULL;
	char path[256], names[512];
	FILE *f;

	/* Made between the check in run.c and the rename: refused there. */
	cr_assert_eq(mkdir(ds, 0755), 0);
	cr_assert_eq(mkdir(vmdir, 0755), 0);
	snprintf(path, sizeof(path), "%s/keep", vmdir);
	cr_assert_not_null(f = fopen(path, "w"));
	fclose(f);
	cr_assert_lt(receive(&s, &pre), 0);
	listing(vmdir, names, sizeof(names));
	cr_assert_str_eq(names, "keep ");
	listing(ds, names, sizeof(names));
	cr_assert_str_eq(names, "vm1 ");
}
