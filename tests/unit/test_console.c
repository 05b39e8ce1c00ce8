/*
 * The console backend: history ring, non-blocking output, raw mode only
 * on a TTY, the Ctrl-a escapes, bounded input.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include "fake_vm.h"
#include "hv/console.h"

TestSuite(console, .timeout = 20);

Test(console, ring_keeps_the_last_64k)
{
	struct console *c = console_new(NULL, -1, -1);
	uint8_t *out = malloc(100000), *got = malloc(100000);
	uint64_t pos = 0;
	size_t n;

	for (int i = 0; i < 100000; i++)
		out[i] = (uint8_t)(i * 7 + i / 251);
	console_output(c, out, 3);
	cr_assert_eq(console_history(c, got, 100000), 3);
	cr_assert_eq(memcmp(got, out, 3), 0);
	for (size_t off = 3; off < 100000; off += 997)
		console_output(c, out + off, off + 997 > 100000 ?
		    100000 - off : 997);
	n = console_history(c, got, 100000);
	cr_assert_eq(n, 65536);
	cr_assert_eq(memcmp(got, out + 100000 - 65536, 65536), 0);
	n = console_history(c, got, 10);
	cr_assert_eq(n, 10);
	cr_assert_eq(memcmp(got, out + 100000 - 10, 10), 0);
	/* A late reader from position 0 is moved to the oldest byte. */
	n = console_history_from(c, &pos, got, 100000);
	cr_assert_eq(n, 65536);
	cr_assert_eq(pos, 100000);
	cr_assert_eq(console_history_from(c, &pos, got, 10), 0);
	console_output(c, (const uint8_t *)"xy", 2);
	cr_assert_eq(console_history_from(c, &pos, got, 10), 2);
	cr_assert_eq(memcmp(got, "xy", 2), 0);
	console_free(c);
	free(out);
	free(got);
}

Test(console, output_never_blocks_on_a_full_pipe)
{
	int p[2];
	struct console *c;
	static uint8_t chunk[4096];
	uint8_t buf[8192];
	ssize_t n, total = 0;

	cr_assert_eq(pipe(p), 0);
	c = console_new(NULL, -1, p[1]);
	memset(chunk, 'z', sizeof(chunk));
	/* 4 MiB into a 64 KiB pipe nobody reads: must return. */
	for (int i = 0; i < 1024; i++)
		console_output(c, chunk, sizeof(chunk));
	cr_assert_eq(console_history(c, buf, sizeof(buf)), sizeof(buf));
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		total += n;
	cr_assert_geq(total, 4096);
	cr_assert_lt(total, 4 << 20, "the excess was dropped, not blocked on");
	/* The fd writer left our pipe end blocking (its own description). */
	cr_assert_eq(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
	console_free(c);
	close(p[0]);
	close(p[1]);
}

static int
open_pty(int *master)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);

	if (m < 0)
		cr_skip_test("no pseudo-terminals here (/dev/ptmx): %s",
		    strerror(errno));
	cr_assert_eq(grantpt(m), 0);
	cr_assert_eq(unlockpt(m), 0);
	*master = m;
	return open(ptsname(m), O_RDWR | O_NOCTTY);
}

Test(console, raw_mode_on_a_tty_and_restored)
{
	int m, s = open_pty(&m);
	struct termios t;
	struct console *c;

	cr_assert_geq(s, 0);
	tcgetattr(s, &t);
	cr_assert(t.c_lflag & ICANON);
	c = console_new(NULL, s, -1);
	tcgetattr(s, &t);
	cr_assert_eq(t.c_lflag & (ICANON | ECHO | ISIG), 0, "raw");
	console_free(c);
	tcgetattr(s, &t);
	cr_assert(t.c_lflag & ICANON, "restored");
	cr_assert(t.c_lflag & ECHO);
	close(s);
	close(m);
}

Test(console, no_raw_mode_when_not_a_tty)
{
	int p[2], m, s = open_pty(&m);
	struct console *c1, *c2;
	struct termios t, before;

	/* A pipe console must not take the process's one raw-mode slot
	 * (nor fail): a TTY console made next still goes raw. */
	cr_assert_eq(pipe(p), 0);
	tcgetattr(s, &before);
	c1 = console_new(NULL, p[0], -1);
	cr_assert_not_null(c1);
	tcgetattr(s, &t);
	cr_assert(t.c_lflag == before.c_lflag && t.c_iflag == before.c_iflag &&
	    t.c_oflag == before.c_oflag, "pty untouched");
	c2 = console_new(NULL, s, -1);
	cr_assert_not_null(c2);
	tcgetattr(s, &t);
	cr_assert_eq(t.c_lflag & ICANON, 0);
	console_free(c1);
	tcgetattr(s, &t);
	cr_assert_eq(t.c_lflag & ICANON, 0, "freeing the pipe console "
	    "does not restore someone else's terminal");
	console_free(c2);
	close(p[0]);
	close(p[1]);
	close(s);
	close(m);
}

static uint8_t typed[256];
static size_t ntyped;

static void
collect(void *opaque, const uint8_t *buf, size_t len)
{
	memcpy(typed + ntyped, buf, len);
	ntyped += len;
}

Test(console, escape_sequences)
{
	struct vm *vm = fake_vm_new(1 << 20);
	static const char in[] = "ab\x01\x01" "c\x01zq\x01x" "never";
	struct console *c;
	int p[2];

	cr_assert_eq(pipe(p), 0);
	c = console_new(vm, p[0], -1);
	console_set_input(c, collect, NULL);
	console_input_space(c, sizeof(typed));
	cr_assert_eq(write(p[1], in, sizeof(in) - 1), (ssize_t)sizeof(in) - 1);
	/* Ctrl-a x stops the loop through vm_request_exit(). */
	evloop_run(vm->loop);
	cr_assert_eq(atomic_load(&vm->exit_request), VM_EVENT_SIGNAL);
	cr_assert_eq(vm->exit_status, 0);
	/* C-a C-a is one C-a; C-a z passes both; nothing after C-a x. */
	cr_assert_eq(ntyped, 7, "got %zu", ntyped);
	cr_assert_eq(memcmp(typed, "ab\x01" "c\x01zq", 7), 0);
	console_free(c);
	close(p[0]);
	close(p[1]);
	fake_vm_free(vm);
}

Test(console, input_waits_for_room)
{
	struct console *c = console_new(NULL, -1, -1);
	uint8_t big[5000];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	console_set_input(c, collect, NULL);
	cr_assert_eq(console_input(c, big, sizeof(big)), 4096, "bounded");
	cr_assert_eq(ntyped, 0, "no room announced yet");
	console_input_space(c, 16);
	cr_assert_eq(ntyped, 16);
	console_input_space(c, 100);
	cr_assert_eq(ntyped, 116);
	cr_assert_eq(memcmp(typed, big, 116), 0);
	console_free(c);
}

Test(console, a_vanished_reader_leaves_the_ring_working)
{
	struct console *c;
	uint8_t buf[16];
	int p[2];

	signal(SIGPIPE, SIG_IGN);	/* as the VMM does for its sockets */
	cr_assert_eq(pipe(p), 0);
	c = console_new(NULL, -1, p[1]);
	close(p[0]);
	console_output(c, (const uint8_t *)"abc", 3);
	console_output(c, (const uint8_t *)"def", 3);
	cr_assert_eq(console_history(c, buf, sizeof(buf)), 6);
	cr_assert_eq(memcmp(buf, "abcdef", 6), 0);
	console_free(c);
	close(p[1]);
}
