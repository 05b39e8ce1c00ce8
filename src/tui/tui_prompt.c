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
}

const char *
tui_prompt_label(int what)
{
	return what == TUI_PROMPT_SNAPSHOT ? "Snapshot name" :
	    "Migrate to (ssh://HOST, tcp://HOST:PORT)";
}

enum tui_prompt_res
tui_prompt_key(struct tui_prompt *p, int ch)
{
	switch (ch) {
	case 27:	/* Esc */
	case 7:		/* ^G, as in Emacs */
		p->what = 0;
		return TUI_PROMPT_CANCEL;
	case '\r':
	case '\n':
	case KEY_ENTER:
		if (p->len == 0)
			return TUI_PROMPT_MORE;	/* nothing to run yet */
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
