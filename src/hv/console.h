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
/* Restores the terminal and flushes what it can (bounded).  Call while
 * vm->loop still exists; clears vm->console if it is c. */
void console_free(struct console *c);
/* Guest output (UART transmit). */
void console_output(struct console *c, const uint8_t *buf, size_t len);
/* Where host input goes (the UART's receive path); called with the
 * device lock held, and never with more bytes than the receiver last
 * announced with console_input_space(). */
void console_set_input(struct console *c,
    void (*fn)(void *opaque, const uint8_t *buf, size_t len), void *opaque);
/* Copy up to len bytes of the most recent output; returns the count. */
size_t console_history(struct console *c, uint8_t *buf, size_t len);

/*
 * For a live attach (control socket): copy output written since absolute
 * position *pos (0 = the start of the VM's output; positions older than
 * the ring are skipped forward), advance *pos, return the count.  Any
 * thread.
 */
size_t console_history_from(struct console *c, uint64_t *pos, uint8_t *buf,
    size_t len);
/* Host input from somewhere other than in_fd (an attached client); it
 * queues behind the fd's input, bounded: returns how many bytes were
 * taken.  Device lock held. */
size_t console_input(struct console *c, const uint8_t *buf, size_t len);
/*
 * The receiver (UART) can take n more bytes now: queued input up to n is
 * handed to the input function at once, the rest waits in the console
 * (back-pressure: when the queue is full the input fd is not read).
 * Device lock held.
 */
void console_input_space(struct console *c, size_t n);

#endif
