#include <stdio.h>
#include <string.h>

#include "util/log.h"

int
main(int argc, char **argv)
{
	log_init("termvisor", 0);
	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		printf("usage: termvisor run [options]\n");
		return 0;
	}
	log_warnx("not yet");
	return 2;
}
