/*
 * VM configuration files (NAME.vmx), in the spirit of VMware's: one
 * `key = "value"` per line, `#` comments, blank lines.  A struct vmx_doc
 * keeps every line as written so that setting a key rewrites only that
 * line: comments, order and keys we ignore survive an edit.
 * man/termvisor.vmx.5 documents the keys.
 */
#ifndef TV_VMX_H
#define TV_VMX_H

#include <stddef.h>

#include "hv/vmconfig.h"

#define VMX_MAX_LINE 8192

struct vmx_line {
	char *text;		/* the line as written (no newline) */
	char *key;		/* NULL: blank or comment line */
	char *value;		/* unescaped */
	char *trail;		/* what followed the value ("  # note"), or "" */
	int lineno;
};

struct vmx_doc {
	char path[4096];	/* for messages */
	struct vmx_line *lines;
	int n, cap;
};

/* Split text into lines and check their syntax.  0, or -EINVAL with
 * "FILE:LINE: what was expected" in err. */
int vmx_parse(struct vmx_doc *doc, const char *path, const char *text,
    size_t len, char *err, size_t errlen);
/* Read and parse a file.  0/-errno, err set. */
int vmx_load(struct vmx_doc *doc, const char *path, char *err, size_t errlen);
void vmx_free(struct vmx_doc *doc);

/* The value of key, or NULL. */
const char *vmx_get(const struct vmx_doc *doc, const char *key);
/* Set key to value in place (or append it); value NULL removes the key.
 * 0/-errno. */
int vmx_set(struct vmx_doc *doc, const char *key, const char *value);
/* The file's text (malloc'd, NUL-terminated), or NULL on ENOMEM. */
char *vmx_format(const struct vmx_doc *doc);
/* Write atomically (temp file, fsync, rename).  0/-errno. */
int vmx_save(const struct vmx_doc *doc, const char *path);

/*
 * Check one key's value the way vmx_to_config would.  0, or -EINVAL with
 * a sentence (no file:line) in err.
 */
int vmx_check(const char *key, const char *value, char *err, size_t errlen);
/*
 * Turn a parsed document into a VM config.  Relative paths are resolved
 * against vmdir (NULL: left as written).  Unknown keys outside the
 * foreign namespaces (x-*, guestinfo.*, annotation) are errors.  0, or
 * -EINVAL with "FILE:LINE: problem" in err.
 */
int vmx_to_config(const struct vmx_doc *doc, const char *vmdir,
    struct vm_config *c, char *err, size_t errlen);
/* Set doc's keys from c (for `vm create`).  0/-errno. */
int vmx_from_config(struct vmx_doc *doc, const struct vm_config *c);

#endif
