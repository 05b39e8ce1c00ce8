/*
 * The .vmx parser and writer.  Syntax first (vmx_parse: lines, quoting,
 * duplicates), meaning second (vmx_to_config: which keys exist and what
 * their values may be), so `vm set` can edit a file whose keys it does
 * not all understand, and every message carries the file and line.
 */
#include "vmfs/vmx.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/pvpanic.h"
#include "hv/vm.h"
#include "vmfs/vmfs.h"
#include "vnc/vnc.h"

static int __attribute__((format(printf, 3, 4)))
vmx_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static void
vmx_line_free(struct vmx_line *l)
{
	free(l->text);
	free(l->key);
	free(l->value);
	free(l->trail);
	memset(l, 0, sizeof(*l));
}

void
vmx_free(struct vmx_doc *doc)
{
	int i;

	for (i = 0; i < doc->n; i++)
		vmx_line_free(&doc->lines[i]);
	free(doc->lines);
	doc->lines = NULL;
	doc->n = doc->cap = 0;
}

static struct vmx_line *
vmx_add_line(struct vmx_doc *doc)
{
	struct vmx_line *nl;

	if (doc->n == doc->cap) {
		nl = realloc(doc->lines, (size_t)(doc->cap ? 2 * doc->cap : 32) *
		    sizeof(*nl));
		if (nl == NULL)
			return NULL;
		doc->lines = nl;
		doc->cap = doc->cap ? 2 * doc->cap : 32;
	}
	memset(&doc->lines[doc->n], 0, sizeof(*nl));
	return &doc->lines[doc->n++];
}

static bool
vmx_key_char(char ch, bool first)
{
	if (first)
		return isalpha((unsigned char)ch);
	return isalnum((unsigned char)ch) || ch == '_' || ch == '.' ||
	    ch == '-' || ch == ':';
}

/* Parse the quoted value at *s into out (unescaped); *s past the quote. */
static int
vmx_unquote(const char **s, char *out, const char *path, int ln,
    const char *key, char *err, size_t errlen)
{
	const char *p = *s;
	size_t n = 0;

	if (*p != '"')
		return vmx_err(err, errlen, "%s:%d: expected '\"' to open the "
		    "value of '%s'", path, ln, key);
	for (p++; *p != '"'; p++) {
		if (*p == '\0')
			return vmx_err(err, errlen, "%s:%d: value of '%s' has no "
			    "closing '\"'", path, ln, key);
		if (*p == '\\') {
			p++;
			if (*p != '"' && *p != '\\')
				return vmx_err(err, errlen, "%s:%d: bad escape in "
				    "value of '%s' (only \\\" and \\\\)", path, ln,
				    key);
		} else if ((unsigned char)*p < 0x20 && *p != '\t') {
			return vmx_err(err, errlen, "%s:%d: control character in "
			    "value of '%s'", path, ln, key);
		}
		out[n++] = *p;
	}
	out[n] = '\0';
	*s = p + 1;
	return 0;
}

/* One line: blank, comment, or key = "value" [# comment]. */
static int
vmx_parse_line(struct vmx_line *l, const char *path, char *val, char *err,
    size_t errlen)
{
	const char *p = l->text, *k;
	char key[256];
	size_t kn;
	int ret;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	for (k = p; vmx_key_char(*p, p == k); p++)
		;
	kn = (size_t)(p - k);
	if (kn == 0 || kn >= sizeof(key))
		return vmx_err(err, errlen, "%s:%d: expected a key (a letter, "
		    "then letters, digits, '_', '.', '-' or ':')", path,
		    l->lineno);
	memcpy(key, k, kn);
	key[kn] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p++ != '=')
		return vmx_err(err, errlen, "%s:%d: expected '=' after key '%s'",
		    path, l->lineno, key);
	while (*p == ' ' || *p == '\t')
		p++;
	if ((ret = vmx_unquote(&p, val, path, l->lineno, key, err, errlen)) < 0)
		return ret;
	k = p;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0' && *p != '#')
		return vmx_err(err, errlen, "%s:%d: unexpected text after the "
		    "value of '%s' (comments start with '#')", path, l->lineno,
		    key);
	l->key = strdup(key);
	l->value = strdup(val);
	l->trail = strdup(k);
	return l->key && l->value && l->trail ? 0 : -ENOMEM;
}

static int
vmx_find(const struct vmx_doc *doc, const char *key)
{
	int i;

	for (i = 0; i < doc->n; i++)
		if (doc->lines[i].key != NULL &&
		    strcasecmp(doc->lines[i].key, key) == 0)
			return i;
	return -1;
}

int
vmx_parse(struct vmx_doc *doc, const char *path, const char *text,
    size_t len, char *err, size_t errlen)
{
	const char *p = text, *end = text + len, *nl;
	struct vmx_line *l;
	char *val = malloc(VMX_MAX_LINE);
	int ln = 0, ret = 0, dup;

	memset(doc, 0, sizeof(*doc));
	snprintf(doc->path, sizeof(doc->path), "%s", path);
	if (val == NULL)
		return -ENOMEM;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		ln++;
		if ((size_t)(nl - p) >= VMX_MAX_LINE || memchr(p, '\0',
		    (size_t)(nl - p)) != NULL) {
			ret = vmx_err(err, errlen, "%s:%d: line too long or "
			    "contains a NUL byte", path, ln);
			goto fail;
		}
		if ((l = vmx_add_line(doc)) == NULL ||
		    (l->text = strndup(p, (size_t)(nl - p))) == NULL) {
			ret = -ENOMEM;
			goto fail;
		}
		l->lineno = ln;
		if (nl > p && nl[-1] == '\r')
			l->text[nl - p - 1] = '\0';
		if ((ret = vmx_parse_line(l, path, val, err, errlen)) < 0)
			goto fail;
		if (l->key != NULL && (dup = vmx_find(doc, l->key)) < doc->n - 1) {
			ret = vmx_err(err, errlen, "%s:%d: duplicate key '%s' "
			    "(first set on line %d)", path, ln, l->key,
			    doc->lines[dup].lineno);
			goto fail;
		}
		p = nl + 1;
	}
	free(val);
	return 0;
fail:
	free(val);
	vmx_free(doc);
	return ret;
}

int
vmx_load(struct vmx_doc *doc, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd, ret;

	memset(doc, 0, sizeof(*doc));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || st.st_size > (1 << 20)) {
		close(fd);
		snprintf(err, errlen, "%s: unreadable or larger than 1 MiB", path);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	n = buf ? read(fd, buf, (size_t)st.st_size) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		snprintf(err, errlen, "%s: read failed", path);
		return -EIO;
	}
	ret = vmx_parse(doc, path, buf, (size_t)n, err, errlen);
	free(buf);
	return ret;
}

const char *
vmx_get(const struct vmx_doc *doc, const char *key)
{
	int i = vmx_find(doc, key);

	return i < 0 ? NULL : doc->lines[i].value;
}

/* `key = "value"` with quotes and backslashes escaped. */
static char *
vmx_render(const char *key, const char *value, const char *trail)
{
	size_t n = strlen(key) + 2 * strlen(value) + strlen(trail) + 8;
	char *s = malloc(n), *p;

	if (s == NULL)
		return NULL;
	p = s + sprintf(s, "%s = \"", key);
	for (; *value != '\0'; value++) {
		if (*value == '"' || *value == '\\')
			*p++ = '\\';
		*p++ = *value;
	}
	sprintf(p, "\"%s", trail);
	return s;
}

int
vmx_set(struct vmx_doc *doc, const char *key, const char *value)
{
	int i = vmx_find(doc, key);
	struct vmx_line *l, nl = { 0 };

	if (value == NULL) {
		if (i < 0)
			return 0;
		vmx_line_free(&doc->lines[i]);
		memmove(&doc->lines[i], &doc->lines[i + 1],
		    (size_t)(doc->n - i - 1) * sizeof(*l));
		doc->n--;
		return 0;
	}
	nl.key = strdup(i < 0 ? key : doc->lines[i].key);
	nl.value = strdup(value);
	nl.trail = strdup(i < 0 ? "" : doc->lines[i].trail);
	if (nl.key && nl.value && nl.trail)
		nl.text = vmx_render(nl.key, nl.value, nl.trail);
	if (nl.text == NULL) {
		vmx_line_free(&nl);
		return -ENOMEM;
	}
	if (i >= 0) {
		nl.lineno = doc->lines[i].lineno;
		vmx_line_free(&doc->lines[i]);
		doc->lines[i] = nl;
		return 0;
	}
	if ((l = vmx_add_line(doc)) == NULL) {
		vmx_line_free(&nl);
		return -ENOMEM;
	}
	nl.lineno = doc->n;
	*l = nl;
	return 0;
}

char *
vmx_format(const struct vmx_doc *doc)
{
	size_t n = 1, off = 0;
	char *s;
	int i;

	for (i = 0; i < doc->n; i++)
		n += strlen(doc->lines[i].text) + 1;
	if ((s = malloc(n)) == NULL)
		return NULL;
	for (i = 0; i < doc->n; i++)
		off += (size_t)sprintf(s + off, "%s\n", doc->lines[i].text);
	s[off] = '\0';
	return s;
}

int
vmx_save(const struct vmx_doc *doc, const char *path)
{
	char tmp[4200], *s = vmx_format(doc);
	size_t len;
	int fd, ret = 0;

	if (s == NULL)
		return -ENOMEM;
	len = strlen(s);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(s);
		return -errno;
	}
	if (write(fd, s, len) != (ssize_t)len || fsync(fd) < 0)
		ret = -EIO;
	close(fd);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
	free(s);
	return ret;
}

/* --- meaning --- */

static bool
vmx_foreign(const char *key)
{
	return strncasecmp(key, "x-", 2) == 0 ||
	    strncasecmp(key, "guestinfo.", 10) == 0 ||
	    strcasecmp(key, "annotation") == 0;
}

static int
vmx_bool(const char *v, bool *out)
{
	static const char *yes[] = { "true", "yes", "on", "1" };
	static const char *no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, 0;
	}
	return -EINVAL;
}

static int
vmx_uint(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;

	if (!isdigit((unsigned char)v[0]))
		return -EINVAL;
	errno = 0;
	*out = strtoull(v, &end, 0);
	if (errno != 0 || *end != '\0' || *out < min || *out > max)
		return -EINVAL;
	return 0;
}

static int
vmx_mac(const char *v, uint8_t mac[6])
{
	unsigned b[6];
	char tail;
	int i;

	if (strlen(v) != 17 || sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0],
	    &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -EINVAL;
	if (b[0] & 1)		/* multicast: not a NIC's address */
		return -EINVAL;
	for (i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

static bool
vmx_portgroup_ok(const char *v)
{
	size_t i, n = strlen(v);

	if (n == 0 || n >= 64)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && !strchr("_.-", v[i]))
			return false;
	return true;
}

/* diskN.field / nicN.field: N and field, or -1. */
static int
vmx_indexed(const char *key, const char *prefix, int max, const char **field)
{
	size_t n = strlen(prefix);

	if (strncasecmp(key, prefix, n) != 0 || !isdigit((unsigned char)key[n]) ||
	    key[n + 1] != '.')
		return -1;
	if (key[n] - '0' >= max)
		return -2;
	*field = key + n + 2;
	return key[n] - '0';
}

static int
vmx_path(char *dst, size_t len, const char *vmdir, const char *v)
{
	int n;

	if (v[0] == '\0' || v[0] == '/' || vmdir == NULL)
		n = snprintf(dst, len, "%s", v);
	else
		n = snprintf(dst, len, "%s/%s", vmdir, v);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int
vmx_apply_disk(struct vm_config *c, int i, const char *f, const char *v,
    const char *vmdir, char *err, size_t errlen)
{
	struct vmcfg_disk *d = &c->disks[i];
	size_t k;

	if (strcasecmp(f, "path") == 0) {
		if (v[0] == '\0' || vmx_path(d->path, sizeof(d->path), vmdir, v))
			return vmx_err(err, errlen, "expected a file name");
	} else if (strcasecmp(f, "format") == 0) {
		if (strcmp(v, "raw") != 0 && strcmp(v, "qcow2") != 0)
			return vmx_err(err, errlen, "expected raw or qcow2, got "
			    "'%s'", v);
		snprintf(d->format, sizeof(d->format), "%s", v);
	} else if (strcasecmp(f, "readonly") == 0) {
		if (vmx_bool(v, &d->readonly) < 0)
			return vmx_err(err, errlen, "expected TRUE or FALSE, got "
			    "'%s'", v);
	} else if (strcasecmp(f, "serial") == 0) {
		for (k = 0; v[k] != '\0'; k++)
			if (!isprint((unsigned char)v[k]))
				break;
		if (v[k] != '\0' || k >= sizeof(d->serial))
			return vmx_err(err, errlen, "expected at most 20 printable "
			    "characters");
		snprintf(d->serial, sizeof(d->serial), "%s", v);
	} else {
		return vmx_err(err, errlen, "unknown disk setting (path, format, "
		    "readonly, serial)");
	}
	if (i + 1 > c->ndisks)
		c->ndisks = i + 1;
	return 0;
}

static int
vmx_apply_nic(struct vm_config *c, int i, const char *f, const char *v,
    char *err, size_t errlen)
{
	struct vmcfg_nic *n = &c->nics[i];

	if (strcasecmp(f, "portgroup") == 0) {
		if (!vmx_portgroup_ok(v))
			return vmx_err(err, errlen, "expected a port group name "
			    "(letters, digits, '_', '.', '-'; up to 63)");
		snprintf(n->portgroup, sizeof(n->portgroup), "%s", v);
	} else if (strcasecmp(f, "mac") == 0) {
		if (vmx_mac(v, n->mac) < 0)
			return vmx_err(err, errlen, "expected a unicast MAC like "
			    "52:54:00:12:34:56, got '%s'", v);
		n->mac_set = true;
	} else if (strcasecmp(f, "queues") == 0) {
		uint64_t q;

		/* virtio-net's limit (VIRTIO_NET_MAX_PAIRS) */
		if (vmx_uint(v, 1, 8, &q) < 0)
			return vmx_err(err, errlen, "expected a number of queue "
			    "pairs (1..8), got '%s'", v);
		n->queues = (int)q;
	} else {
		return vmx_err(err, errlen, "unknown NIC setting (portgroup, mac, "
		    "queues)");
	}
	if (i + 1 > c->nnics)
		c->nnics = i + 1;
	return 0;
}

static int
vmx_apply_str(char *dst, size_t len, const char *v, char *err, size_t errlen)
{
	if (strlen(v) >= len)
		return vmx_err(err, errlen, "value longer than %zu bytes",
		    len - 1);
	snprintf(dst, len, "%s", v);
	return 0;
}

/* One key into c; a sentence without file:line in err. */
static int
vmx_apply(struct vm_config *c, const char *k, const char *v,
    const char *vmdir, char *err, size_t errlen)
{
	const char *f;
	uint64_t u;
	int i;

	if (strcasecmp(k, "name") == 0) {
		if (vmfs_name_valid(v) < 0)
			return vmx_err(err, errlen, "expected a VM name (1-63 "
			    "characters, no '/', not only dots, no control "
			    "characters)");
		return vmx_apply_str(c->name, sizeof(c->name), v, err, errlen);
	}
	if (strcasecmp(k, "memsize") == 0) {
		/* the limits of termvisor run --memory */
		if (vmx_uint(v, 4, 1ull << 20, &u) < 0)
			return vmx_err(err, errlen, "expected a number of MiB "
			    "(4..1048576), got '%s'", v);
		c->memory = u << 20;
		return 0;
	}
	if (strcasecmp(k, "numvcpus") == 0) {
		if (vmx_uint(v, 1, VM_MAX_VCPUS, &u) < 0)
			return vmx_err(err, errlen, "expected a vCPU count "
			    "(1..%d), got '%s'", VM_MAX_VCPUS, v);
		c->cpus = (int)u;
		return 0;
	}
	if (strcasecmp(k, "cpu") == 0) {
		if (strcmp(v, "host") && strcmp(v, "baseline"))
			return vmx_err(err, errlen, "expected host or baseline, "
			    "got '%s'", v);
		return vmx_apply_str(c->cpu, sizeof(c->cpu), v, err, errlen);
	}
	if (strcasecmp(k, "accel") == 0) {
		if (strcmp(v, "kvm") && strcmp(v, "bt") && strcmp(v, "auto"))
			return vmx_err(err, errlen, "expected kvm, bt or auto, "
			    "got '%s'", v);
		return vmx_apply_str(c->accel, sizeof(c->accel), v, err, errlen);
	}
	if (strcasecmp(k, "kernel") == 0 || strcasecmp(k, "initrd") == 0) {
		if (vmx_path(tolower((unsigned char)k[0]) == 'k' ? c->kernel :
		    c->initrd, sizeof(c->kernel), vmdir, v) < 0)
			return vmx_err(err, errlen, "path too long");
		return 0;
	}
	if (strcasecmp(k, "append") == 0)
		return vmx_apply_str(c->append, sizeof(c->append), v, err, errlen);
	if (strcasecmp(k, "vnc") == 0) {
		struct vnc_listen l;

		if (vnc_parse_listen(v, &l, err, errlen) < 0)
			return -EINVAL;
		return vmx_apply_str(c->vnc, sizeof(c->vnc), v, err, errlen);
	}
	if (strcasecmp(k, "vnc.passwordFile") == 0) {
		if (vmx_path(c->vnc_password_file, sizeof(c->vnc_password_file),
		    vmdir, v) < 0)
			return vmx_err(err, errlen, "path too long");
		return 0;
	}
	if (strcasecmp(k, "display") == 0) {
		if (strcmp(v, "std") != 0 && strcmp(v, "none") != 0)
			return vmx_err(err, errlen, "expected std or none, got "
			    "'%s'", v);
		return vmx_apply_str(c->display, sizeof(c->display), v, err,
		    errlen);
	}
	if (strcasecmp(k, "rng") == 0) {
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
			return vmx_err(err, errlen, "expected on or off, got "
			    "'%s'", v);
		return vmx_apply_str(c->rng, sizeof(c->rng), v, err, errlen);
	}
	if (strcasecmp(k, "on_panic") == 0) {
		if (pvpanic_parse_action(v) < 0)
			return vmx_err(err, errlen, "expected pause, stop, reset "
			    "or none, got '%s'", v);
		return vmx_apply_str(c->on_panic, sizeof(c->on_panic), v, err,
		    errlen);
	}
	if (strcasecmp(k, "serial") == 0) {
		if (strcmp(v, "stdio") != 0 && strcmp(v, "none") != 0)
			return vmx_err(err, errlen, "expected stdio or none, got "
			    "'%s'", v);
		return vmx_apply_str(c->serial, sizeof(c->serial), v, err, errlen);
	}
	if (strcasecmp(k, "no_reboot") == 0 || strcasecmp(k, "debug_exit") == 0) {
		if (vmx_bool(v, strcasecmp(k, "no_reboot") == 0 ? &c->no_reboot :
		    &c->debug_exit) < 0)
			return vmx_err(err, errlen, "expected TRUE or FALSE, got "
			    "'%s'", v);
		return 0;
	}
	if (strcasecmp(k, "debug_exit.port") == 0) {
		if (vmx_uint(v, 0, 0xffff, &u) < 0)
			return vmx_err(err, errlen, "expected an I/O port "
			    "(0..0xffff), got '%s'", v);
		c->debug_exit_port = (int)u;
		return 0;
	}
	if ((i = vmx_indexed(k, "disk", VMCFG_MAX_DISKS, &f)) >= 0)
		return vmx_apply_disk(c, i, f, v, vmdir, err, errlen);
	if (i != -2 && (i = vmx_indexed(k, "nic", VMCFG_MAX_NICS, &f)) >= 0)
		return vmx_apply_nic(c, i, f, v, err, errlen);
	if (i == -2)
		return vmx_err(err, errlen, "index too large (disk0..disk%d, "
		    "nic0..nic%d)", VMCFG_MAX_DISKS - 1, VMCFG_MAX_NICS - 1);
	return vmx_err(err, errlen, "unknown key (see termvisor.vmx(5); "
	    "private keys must start with x- or guestinfo.)");
}

int
vmx_check(const char *key, const char *value, char *err, size_t errlen)
{
	struct vm_config *c;
	int ret;

	if (vmx_foreign(key))
		return 0;
	if ((c = malloc(sizeof(*c))) == NULL)
		return -ENOMEM;
	vm_config_defaults(c);
	ret = vmx_apply(c, key, value, NULL, err, errlen);
	free(c);
	return ret;
}

/* Every diskN and nicN up to the highest must be complete. */
static int
vmx_check_devices(const struct vmx_doc *doc, const struct vm_config *c,
    char *err, size_t errlen)
{
	int i;

	for (i = 0; i < c->ndisks; i++)
		if (c->disks[i].path[0] == '\0')
			return vmx_err(err, errlen, "%s: disk%d has no disk%d.path "
			    "(disks are numbered from 0 without gaps)", doc->path,
			    i, i);
	for (i = 0; i < c->nnics; i++)
		if (c->nics[i].portgroup[0] == '\0')
			return vmx_err(err, errlen, "%s: nic%d has no "
			    "nic%d.portgroup (NICs are numbered from 0 without "
			    "gaps)", doc->path, i, i);
	if (c->name[0] == '\0')
		return vmx_err(err, errlen, "%s: no 'name' key", doc->path);
	return 0;
}

int
vmx_to_config(const struct vmx_doc *doc, const char *vmdir,
    struct vm_config *c, char *err, size_t errlen)
{
	const struct vmx_line *l;
	char msg[512];
	int i;

	vm_config_defaults(c);
	for (i = 0; i < doc->n; i++) {
		l = &doc->lines[i];
		if (l->key == NULL || vmx_foreign(l->key))
			continue;
		if (vmx_apply(c, l->key, l->value, vmdir, msg, sizeof(msg)) < 0)
			return vmx_err(err, errlen, "%s:%d: %s: %s", doc->path,
			    l->lineno, l->key, msg);
	}
	return vmx_check_devices(doc, c, err, errlen);
}

static int
vmx_set_idx(struct vmx_doc *doc, const char *pfx, int i, const char *f,
    const char *v)
{
	char key[64];

	snprintf(key, sizeof(key), "%s%d.%s", pfx, i, f);
	return vmx_set(doc, key, v);
}

static int
vmx_from_devices(struct vmx_doc *doc, const struct vm_config *c)
{
	const struct vmcfg_nic *n;
	char mac[32];
	int i, ret = 0;

	for (i = 0; i < c->ndisks && ret == 0; i++) {
		ret = vmx_set_idx(doc, "disk", i, "path", c->disks[i].path);
		if (ret == 0 && c->disks[i].format[0])
			ret = vmx_set_idx(doc, "disk", i, "format",
			    c->disks[i].format);
		if (ret == 0 && c->disks[i].readonly)
			ret = vmx_set_idx(doc, "disk", i, "readonly", "TRUE");
		if (ret == 0 && c->disks[i].serial[0])
			ret = vmx_set_idx(doc, "disk", i, "serial",
			    c->disks[i].serial);
	}
	for (i = 0; i < c->nnics && ret == 0; i++) {
		n = &c->nics[i];
		ret = vmx_set_idx(doc, "nic", i, "portgroup", n->portgroup);
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
		    n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4],
		    n->mac[5]);
		if (ret == 0 && n->mac_set)
			ret = vmx_set_idx(doc, "nic", i, "mac", mac);
		snprintf(mac, sizeof(mac), "%d", n->queues);
		if (ret == 0 && n->queues > 0)
			ret = vmx_set_idx(doc, "nic", i, "queues", mac);
	}
	return ret;
}

int
vmx_from_config(struct vmx_doc *doc, const struct vm_config *c)
{
	char num[32];
	int ret;

	if ((ret = vmx_set(doc, "name", c->name)) < 0)
		return ret;
	snprintf(num, sizeof(num), "%" PRIu64, c->memory >> 20);
	if ((ret = vmx_set(doc, "memsize", num)) < 0)
		return ret;
	snprintf(num, sizeof(num), "%d", c->cpus);
	if ((ret = vmx_set(doc, "numvcpus", num)) < 0)
		return ret;
	if ((c->kernel[0] && (ret = vmx_set(doc, "kernel", c->kernel)) < 0) ||
	    (c->initrd[0] && (ret = vmx_set(doc, "initrd", c->initrd)) < 0) ||
	    (c->append[0] && (ret = vmx_set(doc, "append", c->append)) < 0) ||
	    (strcmp(c->accel, "auto") != 0 &&
	    (ret = vmx_set(doc, "accel", c->accel)) < 0) ||
	    (c->cpu[0] && strcmp(c->cpu, "host") != 0 &&
	    (ret = vmx_set(doc, "cpu", c->cpu)) < 0) ||
	    (strcmp(c->vnc, "auto") != 0 &&
	    (ret = vmx_set(doc, "vnc", c->vnc)) < 0) ||
	    (c->vnc_password_file[0] && (ret = vmx_set(doc,
	    "vnc.passwordFile", c->vnc_password_file)) < 0) ||
	    (strcmp(c->display, "none") == 0 &&
	    (ret = vmx_set(doc, "display", "none")) < 0) ||
	    (strcmp(c->rng, "off") == 0 &&
	    (ret = vmx_set(doc, "rng", "off")) < 0) ||
	    (c->on_panic[0] && strcmp(c->on_panic, "pause") != 0 &&
	    (ret = vmx_set(doc, "on_panic", c->on_panic)) < 0) ||
	    (c->serial[0] && strcmp(c->serial, "none") != 0 &&
	    (ret = vmx_set(doc, "serial", c->serial)) < 0) ||
	    (c->no_reboot && (ret = vmx_set(doc, "no_reboot", "TRUE")) < 0) ||
	    (c->debug_exit && (ret = vmx_set(doc, "debug_exit", "TRUE")) < 0))
		return ret;
	return vmx_from_devices(doc, c);
}
