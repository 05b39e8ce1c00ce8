/*
 * The console pane: a VM's serial console, live.  While the pane is open
 * the dashboard is attached (console-attach: the ring's history, then the
 * output as it comes) and every key goes to the guest as a VT100 would
 * send it; Ctrl-] (as in `vm console`) detaches and goes back.
 */
#include "tui/tui.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

size_t
tui_console_clean(const char *in, size_t n, char *out, size_t len)
{
	size_t o = 0, line = 0, i;

	if (len == 0)
		return 0;
	for (i = 0; i < n && o + 1 < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == 0x1b) {
			/* CSI: ESC [ params final(0x40-0x7e); else ESC x */
			if (i + 1 < n && in[i + 1] == '[') {
				for (i += 2; i < n && ((unsigned char)in[i] <
				    0x40 || (unsigned char)in[i] > 0x7e); i++)
					;
			} else {
				i++;
			}
		} else if (c == '\r') {
			/* "progress\rdone": the line is rewritten */
			if (i + 1 < n && in[i + 1] != '\n')
				o = line;
		} else if (c == '\n') {
			out[o++] = '\n';
			line = o;
		} else if (c == '\b') {
			/* line editing echoes "\b \b" over a rubbed-out key */
			if (o > line)
				o--;
		} else if (c == '\t') {
			do
				out[o++] = ' ';
			while ((o - line) % 8 != 0 && o + 1 < len);
		} else if (c >= 0x20 && c < 0x7f) {
			out[o++] = (char)c;
		} else if (c >= 0x80) {
			out[o++] = '?';
		}
	}
	out[o] = '\0';
	return o;
}

size_t
tui_console_key(int ch, uint8_t *buf)
{
	static const struct {
		int key;
		const char *seq;
	} keys[] = {
		{ KEY_UP, "\033[A" }, { KEY_DOWN, "\033[B" },
		{ KEY_RIGHT, "\033[C" }, { KEY_LEFT, "\033[D" },
		{ KEY_HOME, "\033[H" }, { KEY_END, "\033[F" },
		{ KEY_DC, "\033[3~" }, { KEY_IC, "\033[2~" },
		{ KEY_PPAGE, "\033[5~" }, { KEY_NPAGE, "\033[6~" },
		{ KEY_BACKSPACE, "\177" }, { KEY_ENTER, "\r" },
	};

	if (ch >= 0 && ch < 256) {
		buf[0] = (uint8_t)ch;
		return 1;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		if (keys[i].key == ch) {
			memcpy(buf, keys[i].seq, strlen(keys[i].seq));
			return strlen(keys[i].seq);
		}
	return 0;	/* KEY_RESIZE, function keys: nothing to send */
}

/* Rows the line at p takes at width; *next: the line after it, or NULL
 * at the end (a trailing newline opens no row of its own). */
static int
tui_console_rows(const char *p, int width, const char **next)
{
	const char *nl = strchr(p, '\n');
	int len = nl != NULL ? (int)(nl - p) : (int)strlen(p);

	*next = nl != NULL && nl[1] != '\0' ? nl + 1 : NULL;
	return len == 0 ? 1 : (len + width - 1) / width;
}

const char *
tui_console_tail(const char *text, int width, int height)
{
	const char *p, *next;
	int total = 0, skip, r;

	if (width < 1)
		width = 1;
	if (*text == '\0')
		return text;
	for (p = text; p != NULL; p = next)
		total += tui_console_rows(p, width, &next);
	skip = total - height;
	for (p = text; p != NULL && skip > 0; p = next) {
		r = tui_console_rows(p, width, &next);
		if (r > skip)
			return p + skip * width;
		skip -= r;
	}
	return p != NULL ? p : text + strlen(text);
}

void
tui_console_draw(const struct tui_vm *vm, int height)
{
	char title[256];
	const char *p;
	int y = 1, w = COLS - 1;

	snprintf(title, sizeof(title), "%s: serial console (%s%s; keys go "
	    "to the guest, Ctrl-] goes back)", vm->name,
	    tui_vm_state_name(vm->state), vm->con_attached ? ", live" : "");
	attron(A_BOLD);
	mvaddnstr(0, 0, title, COLS - 1);
	attroff(A_BOLD);
	if (vm->console == NULL || w < 1)
		return;
	p = tui_console_tail(vm->console, w, height - 1);
	while (*p != '\0' && y < height) {
		const char *nl = strchr(p, '\n');
		int len = nl != NULL ? (int)(nl - p) : (int)strlen(p);

		do {
			mvaddnstr(y++, 0, p, len < w ? len : w);
			p += len < w ? len : w;
			len -= len < w ? len : w;
		} while (len > 0 && y < height);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}
