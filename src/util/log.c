#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *log_prog = "termvisor";
static int log_verbose;
static FILE *log_out;

void
log_init(const char *progname, int verbosity)
{
	if (progname != NULL)
		log_prog = progname;
	log_verbose = verbosity;
}

void
log_set_file(FILE *f)
{
	log_out = f;
}

int
log_verbosity(void)
{
	return log_verbose;
}

static void
log_vprint(const char *fmt, va_list ap, int err)
{
	FILE *f = log_out != NULL ? log_out : stderr;
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (err >= 0)
		fprintf(f, "%s: %s: %s\n", log_prog, buf, strerror(err));
	else
		fprintf(f, "%s: %s\n", log_prog, buf);
	fflush(f);
}

void
log_warn(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vprint(fmt, ap, err);
	va_end(ap);
	errno = err;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprint(fmt, ap, -1);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	log_vprint(fmt, ap, -1);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_verbose < 2)
		return;
	va_start(ap, fmt);
	log_vprint(fmt, ap, -1);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vprint(fmt, ap, err);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprint(fmt, ap, -1);
	va_end(ap);
	exit(1);
}
