/*
 * Small uniform logging, after OpenBSD vmd: log_warn adds the errno text,
 * log_warnx does not; fatal/fatalx exit.  Messages go to stderr (or the
 * file set with log_set_file) prefixed with the program name.
 */
#ifndef TV_LOG_H
#define TV_LOG_H

#include <stdio.h>
#include <stdnoreturn.h>

enum log_level { LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_init(const char *progname, int verbosity);
void log_set_file(FILE *f);
int log_verbosity(void);
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Rate-limited debug log for guest mistakes (unclaimed I/O and the like):
 * the first few of each call site are printed, the rest are counted.
 */
#define log_guest_once(...) do {                                   \
		static unsigned log_once_count_;                  \
		if (log_once_count_++ < 4)                         \
			log_debug(__VA_ARGS__);                    \
	} while (0)

/* Assertions that stay on in release builds: only for our own bugs. */
#define TV_ASSERT(c) do {                                          \
		if (!(c))                                          \
			fatalx("assertion failed: %s (%s:%d)", #c, \
			    __FILE__, __LINE__);                   \
	} while (0)

#endif
