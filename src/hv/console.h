/*
 * The serial console backend: what the guest's first UART prints goes to
 * the host (stdout in the foreground, and a ring buffer so a late attach
 * sees the boot log); what the host types goes to the UART's receiver.
 */
#ifndef TV_CONSOLE_H
#define TV_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

struct console;
struct vm;

/*
 * A console writing to out_fd (-1: ring buffer only) and reading from
 * in_fd (-1: no input; raw mode is set when it is a TTY).  The input fd
 * is watched on vm->loop when vm is non-NULL.
 */
struct console *console_new(struct vm *vm, int in_fd, int out_fd);
void console_free(struct console *c);
/* Guest output (UART transmit). */
void console_output(struct console *c, const uint8_t *buf, size_t len);
/* Where host input goes (the UART's receive path); called with the
 * device lock held. */
void console_set_input(struct console *c,
    void (*fn)(void *opaque, const uint8_t *buf, size_t len), void *opaque);
/* Copy up to len bytes of the most recent output; returns the count. */
size_t console_history(struct console *c, uint8_t *buf, size_t len);

#endif
