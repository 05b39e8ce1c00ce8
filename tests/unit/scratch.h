/*
 * Scaffolding for the unit tests that work in a scratch directory and
 * run shell commands (qemu-img, qemu-io): include after criterion.h.
 */
#ifndef TV_TEST_SCRATCH_H
#define TV_TEST_SCRATCH_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* Remove the scratch directory and everything in it. */
static inline void
scratch_remove(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* Run a shell command; its exit status (-1 if it did not exit). */
static inline int __attribute__((format(printf, 1, 2)))
sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
