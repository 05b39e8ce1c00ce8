/*
 * The one-line prompt at the bottom of the dashboard (a snapshot's name,
 * a migration's destination) and the command its answer runs.  Kept out
 * of tui.c so the key handling can be tested without a terminal.
 */
#include "tui/tui.h"

#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

void
tui_prompt_open(struct tui_prompt *p, int what, const char *vm)
{
	p->what = what;
	snprintf(p->vm, sizeof(p->vm), "%s", vm);
	p->text[0] = '\0';
	p->len = 0;
	p->ctx[0] = p->ctx2[0] = '\0';
	p->copy_storage = false;
}

void
tui_prompt_clear(struct tui_prompt *p)
{
	explicit_bzero(p->text, sizeof(p->text));
	p->len = 0;
}

const char *
tui_prompt_label(int what)
{
	switch (what) {
	case TUI_PROMPT_SNAPSHOT:
		return "Snapshot name";
	case TUI_PROMPT_SECRET:
		return "Shared secret (not shown; @FILE: a secret file)";
	case TUI_PROMPT_NIC:
		return "Toggle the link of NIC number";
	case TUI_PROMPT_CAPFILE:
		return "Capture to pcap file";
	case TUI_PROMPT_CAPFILTER:
		return "BPF filter (Enter: every frame)";
	case TUI_PROMPT_STORAGE:
		return "Copy the disks too? (y/N)";
	default:
		return "Migrate to (ssh://HOST, tcp://HOST:PORT)";
	}
}

/* The y/N question: one key answers it. */
static enum tui_prompt_res
tui_prompt_yes_no(struct tui_prompt *p, int ch)
{
	switch (ch) {
	case 27:
	case 7:
		p->what = 0;
		return TUI_PROMPT_CANCEL;
	case 'y':
	case 'Y':
		snprintf(p->text, sizeof(p->text), "y");
		p->len = 1;
		return TUI_PROMPT_DONE;
	case 'n':
	case 'N':
	case '\r':
	case '\n':
	case KEY_ENTER:
		p->text[0] = '\0';
		p->len = 0;
		return TUI_PROMPT_DONE;
	default:
		return TUI_PROMPT_MORE;
	}
}

enum tui_prompt_res
tui_prompt_key(struct tui_prompt *p, int ch)
{
	if (p->what == TUI_PROMPT_STORAGE)
		return tui_prompt_yes_no(p, ch);
	switch (ch) {
	case 27:	/* Esc */
	case 7:		/* ^G, as in Emacs */
		p->what = 0;
		return TUI_PROMPT_CANCEL;
	case '\r':
	case '\n':
	case KEY_ENTER:
		/* nothing to run yet; but a filter may be none */
		if (p->len == 0 && p->what != TUI_PROMPT_CAPFILTER)
			return TUI_PROMPT_MORE;
		return TUI_PROMPT_DONE;
	case KEY_BACKSPACE:
	case 127:
	case 8:
		if (p->len > 0)
			p->text[--p->len] = '\0';
		return TUI_PROMPT_MORE;
	case 21:	/* ^U: start over */
		p->len = 0;
		p->text[0] = '\0';
		return TUI_PROMPT_MORE;
	default:
		/* Printable ASCII only: a name or a URI, never a key code. */
		if (ch >= 0x20 && ch < 0x7f && p->len < sizeof(p->text) - 1) {
			p->text[p->len++] = (char)ch;
			p->text[p->len] = '\0';
		}
		return TUI_PROMPT_MORE;
	}
}

int
tui_prompt_argv(const struct tui_prompt *p, const char *ds, const char **argv,
    size_t n)
{
	const char *snap[] = { "termvisor", "snapshot", "take", "-d", ds,
	    p->vm, p->text, NULL };
	/* migrate has no --datastore: the child gets TERMVISOR_DATASTORE. */
	const char *mig[] = { "termvisor", "migrate", "-q", p->vm, p->text,
	    NULL };
	const char **src = p->what == TUI_PROMPT_SNAPSHOT ? snap : mig;
	size_t i;

	if (p->what != TUI_PROMPT_SNAPSHOT && p->what != TUI_PROMPT_MIGRATE)
		return -EINVAL;
	/* A leading '-' would be taken for an option. */
	if (p->len == 0 || p->text[0] == '-')
		return -EINVAL;
	for (i = 0; src[i] != NULL; i++) {
		if (i + 1 >= n)
			return -ENOSPC;
		argv[i] = src[i];
	}
	argv[i] = NULL;
	return (int)i;
}

void
tui_prompt_secret(const struct tui_prompt *p, const char **file)
{
	*file = p->text[0] == '@' && p->text[1] != '\0' ? p->text + 1 : NULL;
}

int
tui_prompt_migrate_argv(const char *vm, const char *dest,
    const char *secret_file, bool copy_storage, const char **argv, size_t n)
{
	const char *src[9];
	size_t i, k = 0;

	/* A leading '-' would be taken for an option. */
	if ((secret_file != NULL && (secret_file[0] == '\0' ||
	    secret_file[0] == '-')) || dest[0] == '-' || dest[0] == '\0' ||
	    vm[0] == '-' || vm[0] == '\0')
		return -EINVAL;
	src[k++] = "termvisor";
	src[k++] = "migrate";
	src[k++] = "-q";
	if (secret_file != NULL) {
		src[k++] = "-s";
		src[k++] = secret_file;
	}
	if (copy_storage)
		src[k++] = "--copy-storage";
	src[k++] = vm;
	src[k++] = dest;
	src[k] = NULL;
	for (i = 0; src[i] != NULL; i++) {
		if (i + 1 >= n)
			return -ENOSPC;
		argv[i] = src[i];
	}
	argv[i] = NULL;
	return (int)i;
}
