/*
 * Where a migration stream goes: URIs, TCP with a shared-secret
 * handshake, and ssh as a child process whose pipes carry the stream.
 *
 * The TCP handshake is for trusted networks: it keeps a stray or hostile
 * peer from feeding a VM into the destination or receiving one from the
 * source (both sides prove they hold the secret, HMAC-SHA256 over both
 * sides' fresh random nonces, so a recorded handshake cannot be
 * replayed); it does not encrypt the stream.  ssh:// is the way across
 * networks that are not trusted.
 */
#include "migrate/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <nettle/hmac.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

#define MIGRATE_AUTH_MAGIC	"TVAUTH1"	/* with its NUL: 8 bytes */
#define MIGRATE_NONCE		32

/* "host:port" or "[v6]:port" into u; port required. */
static int
migrate_uri_hostport(const char *s, struct migrate_uri *u, char *err,
    size_t errlen)
{
	const char *colon;
	size_t hl;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL || end[1] != ':')
			goto bad;
		hl = (size_t)(end - s - 1);
		s++;
		colon = end + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			goto bad;
		hl = (size_t)(colon - s);
	}
	if (hl >= sizeof(u->host) || strlen(colon + 1) >= sizeof(u->port) ||
	    colon[1] == '\0' || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1))
		goto bad;
	memcpy(u->host, s, hl);
	u->host[hl] = '\0';
	snprintf(u->port, sizeof(u->port), "%s", colon + 1);
	return 0;
bad:
	snprintf(err, errlen, "expected HOST:PORT, not '%s'", s);
	return -EINVAL;
}

static int
migrate_uri_ssh(const char *s, struct migrate_uri *u, char *err, size_t errlen)
{
	const char *at = strchr(s, '@'), *h = at ? at + 1 : s, *colon;
	size_t hl;

	if (at != NULL) {
		if ((size_t)(at - s) >= sizeof(u->user) || at == s)
			goto bad;
		memcpy(u->user, s, (size_t)(at - s));
	}
	colon = strchr(h, ':');
	hl = colon ? (size_t)(colon - h) : strlen(h);
	if (hl == 0 || hl >= sizeof(u->host) || h[strcspn(h, "/ ")] != '\0')
		goto bad;
	memcpy(u->host, h, hl);
	if (colon != NULL) {
		if (colon[1] == '\0' || strlen(colon + 1) >= sizeof(u->port) ||
		    strspn(colon + 1, "0123456789") != strlen(colon + 1))
			goto bad;
		snprintf(u->port, sizeof(u->port), "%s", colon + 1);
	}
	/* Nothing here may look like an ssh option. */
	if (u->host[0] == '-' || u->user[0] == '-')
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "expected ssh://[USER@]HOST[:PORT], not "
	    "'ssh://%s'", s);
	return -EINVAL;
}

int
migrate_uri_parse(const char *s, bool listen, struct migrate_uri *u, char *err,
    size_t errlen)
{
	memset(u, 0, sizeof(*u));
	if (listen && strcmp(s, "-") == 0) {
		u->kind = MIGRATE_URI_STDIO;
		return 0;
	}
	if (listen && strncmp(s, "tcp:", 4) == 0) {
		u->kind = MIGRATE_URI_TCP;
		s += 4;
		/* tcp:PORT and tcp::PORT listen on loopback only. */
		if (strspn(s, "0123456789") == strlen(s) && *s != '\0') {
			snprintf(u->host, sizeof(u->host), "127.0.0.1");
			snprintf(u->port, sizeof(u->port), "%.15s", s);
			return 0;
		}
		if (s[0] == ':' && migrate_uri_hostport(s, u, err, errlen) == 0) {
			snprintf(u->host, sizeof(u->host), "127.0.0.1");
			return 0;
		}
		return migrate_uri_hostport(s, u, err, errlen);
	}
	if (!listen && strncmp(s, "tcp://", 6) == 0) {
		u->kind = MIGRATE_URI_TCP;
		return migrate_uri_hostport(s + 6, u, err, errlen);
	}
	if (!listen && strncmp(s, "ssh://", 6) == 0) {
		u->kind = MIGRATE_URI_SSH;
		return migrate_uri_ssh(s + 6, u, err, errlen);
	}
	snprintf(err, errlen, listen ? "--incoming %s: expected '-' (stdin) "
	    "or tcp:[ADDR:]PORT" : "%s: expected ssh://[USER@]HOST[:PORT] or "
	    "tcp://HOST:PORT", s);
	return -EINVAL;
}

int
migrate_secret_read(const char *path, char *buf, size_t len, char *err,
    size_t errlen)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "secret file %s: %s", path,
		    strerror(errno));
		return -errno;
	}
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (n == 0 || strlen(buf) != n) {
		snprintf(err, errlen, "secret file %s: empty or binary (put "
		    "a random text line in it, e.g. openssl rand -hex 32)",
		    path);
		return -EINVAL;
	}
	return 0;
}

static void
migrate_tcp_tune(int fd)
{
	int one = 1;

	/* The small hand-over records must not wait for Nagle.  Buffer
	 * sizes stay autotuned: a big send buffer only hides from the
	 * bandwidth estimate what the destination has yet to take. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int
migrate_tcp_connect(const struct migrate_uri *u, struct migrate_chan *ch)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int fd = -1, r;

	migrate_chan_init(ch, -1, -1);
	if ((r = getaddrinfo(u->host, u->port, &hints, &res)) != 0) {
		snprintf(ch->err, sizeof(ch->err), "%s: %s", u->host,
		    gai_strerror(r));
		return -EHOSTUNREACH;
	}
	r = -ECONNREFUSED;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		r = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(ch->err, sizeof(ch->err), "cannot connect to %s:%s: "
		    "%s", u->host, u->port, strerror(-r));
		return r;
	}
	migrate_tcp_tune(fd);
	ch->rfd = ch->wfd = fd;
	return 0;
}

int
migrate_tcp_listen(const struct migrate_uri *u, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE }, *res;
	int fd, one = 1, r;

	if ((r = getaddrinfo(u->host[0] ? u->host : NULL, u->port, &hints,
	    &res)) != 0) {
		snprintf(err, errlen, "%s: %s", u->host, gai_strerror(r));
		return -EADDRNOTAVAIL;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
	    res->ai_protocol);
	/*
	 * What the destination has received but not yet applied, it applies
	 * while the guest is stopped: bound it (the accepted socket inherits
	 * this; the kernel doubles it).  The source waits for its own send
	 * queue to drain before the switch-over (migrate_src.c), so this is
	 * all that can be left.  1 MiB still fills a LAN's pipe.
	 */
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ MIGRATE_RCVBUF },
		    sizeof(int));
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, 4) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot listen on %s:%s: %s", u->host,
		    u->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return r;
	}
	freeaddrinfo(res);
	return fd;
}

void
migrate_hmac(const char *key, const void *msg, size_t len, uint8_t out[32])
{
	struct hmac_sha256_ctx ctx;

	hmac_sha256_set_key(&ctx, strlen(key), (const uint8_t *)key);
	hmac_sha256_update(&ctx, len, msg);
	hmac_sha256_digest(&ctx, 32, out);
}

/* MAC over role, then the two nonces in the given order. */
static void
migrate_auth_mac(const char *secret, const char *role, const uint8_t *a,
    const uint8_t *b, uint8_t out[32])
{
	uint8_t msg[16 + 2 * MIGRATE_NONCE];

	memset(msg, 0, 16);
	memcpy(msg, role, strlen(role) < 16 ? strlen(role) : 16);
	memcpy(msg + 16, a, MIGRATE_NONCE);
	memcpy(msg + 16 + MIGRATE_NONCE, b, MIGRATE_NONCE);
	migrate_hmac(secret, msg, sizeof(msg), out);
}

/* Compare MACs in time that does not depend on where they differ. */
static bool
migrate_mac_equal(const uint8_t *a, const uint8_t *b)
{
	uint8_t d = 0;

	for (int i = 0; i < 32; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

static int
migrate_nonce(uint8_t *p)
{
	return getrandom(p, MIGRATE_NONCE, 0) == MIGRATE_NONCE ? 0 : -EIO;
}

int
migrate_auth_client(struct migrate_chan *ch, const char *secret)
{
	uint8_t hello[8 + MIGRATE_NONCE], mine[MIGRATE_NONCE], mac[32],
	    want[32], verdict;
	int r;

	if ((r = migrate_chan_read(ch, hello, sizeof(hello))) < 0)
		return r;
	if (memcmp(hello, MIGRATE_AUTH_MAGIC, 8) != 0) {
		snprintf(ch->err, sizeof(ch->err), "the destination does not "
		    "speak termvisor's migration handshake");
		return -EPROTO;
	}
	if ((r = migrate_nonce(mine)) < 0)
		return r;
	migrate_auth_mac(secret, "client", hello + 8, mine, mac);
	if ((r = migrate_chan_write(ch, mine, sizeof(mine))) < 0 ||
	    (r = migrate_chan_write(ch, mac, sizeof(mac))) < 0 ||
	    (r = migrate_chan_read(ch, &verdict, 1)) < 0)
		return r;
	if (verdict != 'Y') {
		snprintf(ch->err, sizeof(ch->err), "the destination refused "
		    "our secret (not the same secret file on both sides?)");
		return -EACCES;
	}
	if ((r = migrate_chan_read(ch, mac, sizeof(mac))) < 0)
		return r;
	migrate_auth_mac(secret, "server", mine, hello + 8, want);
	if (!migrate_mac_equal(mac, want)) {
		snprintf(ch->err, sizeof(ch->err), "the destination does not "
		    "know the secret: refusing to send it the VM");
		return -EACCES;
	}
	return 0;
}

int
migrate_auth_server(struct migrate_chan *ch, const char *secret)
{
	uint8_t hello[8 + MIGRATE_NONCE], theirs[MIGRATE_NONCE], mac[32],
	    want[32];
	int r;

	memcpy(hello, MIGRATE_AUTH_MAGIC, 8);
	if ((r = migrate_nonce(hello + 8)) < 0)
		return r;
	if ((r = migrate_chan_write(ch, hello, sizeof(hello))) < 0 ||
	    (r = migrate_chan_read(ch, theirs, sizeof(theirs))) < 0 ||
	    (r = migrate_chan_read(ch, mac, sizeof(mac))) < 0)
		return r;
	migrate_auth_mac(secret, "client", hello + 8, theirs, want);
	if (!migrate_mac_equal(mac, want)) {
		migrate_chan_write(ch, "N", 1);
		snprintf(ch->err, sizeof(ch->err), "the source does not know "
		    "the secret");
		return -EACCES;
	}
	migrate_auth_mac(secret, "server", theirs, hello + 8, mac);
	if ((r = migrate_chan_write(ch, "Y", 1)) < 0 ||
	    (r = migrate_chan_write(ch, mac, sizeof(mac))) < 0)
		return r;
	return 0;
}

int
migrate_spawn(char *const argv[], struct migrate_chan *ch)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, r;
	sigset_t none, dfl;
	pid_t pid;

	migrate_chan_init(ch, -1, -1);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	/* The VM process blocks SIGTERM and friends in every thread (its
	 * signalfd takes them) and ignores SIGPIPE: ssh must not inherit
	 * that, or it could not be stopped. */
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
	r = -posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (r < 0)
		goto fail;
	close(in[0]);
	close(out[1]);
	ch->wfd = in[1];
	ch->rfd = out[0];
	ch->child = pid;
	return 0;
fail:
	snprintf(ch->err, sizeof(ch->err), "cannot run %s: %s", argv[0],
	    strerror(-r));
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return r;
}
