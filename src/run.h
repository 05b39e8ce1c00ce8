#ifndef TV_RUN_H
#define TV_RUN_H

#include <stddef.h>
#include <stdint.h>

struct vm_config;

/*
 * Parse `termvisor run` arguments (argv[0] is "run") into cfg, starting
 * from defaults.  Returns 0, 1 when --help was printed, or -1 with a
 * one-line message in err.
 */
int run_parse_args(int argc, char **argv, struct vm_config *cfg, char *err,
    size_t errlen);
/* "512M", "2G", "1024" (MiB): bytes, or 0 on a malformed size. */
uint64_t run_parse_size(const char *s);
/* The reference guest's cache directory (make guest puts it there). */
void run_guest_dir(char *buf, size_t len);
/* `termvisor run ...`: the process's exit status. */
int run_main(int argc, char **argv);

#endif
