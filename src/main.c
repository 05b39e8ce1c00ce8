/*
 * termvisor: one binary, several commands (see termvisor(1)).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control/control_client.h"
#include "migrate/migrate.h"
#include "migrate/snapshot.h"
#include "run.h"
#include "tui/tui.h"
#include "util/log.h"
#include "vmfs/vmfs.h"
#include "vswitch/vswitch_cli.h"

#define TERMVISOR_VERSION "0.1.0"

static const char main_usage[] =
"usage: termvisor COMMAND [options]\n"
"\n"
"Commands:\n"
"  top                 the dashboard (also: termvisor with no arguments)\n"
"  run [options] [NAME]  run a virtual machine in the foreground\n"
"  vm SUBCOMMAND       create, list, show, set, rm VMs in the datastore;\n"
"                      start one detached; status, stats, pause, resume,\n"
"                      stop, reset a running VM\n"
"  disk SUBCOMMAND     create, info, check, snapshot disk images\n"
"  migrate VM DEST     move a running VM to another host (ssh:// or tcp://)\n"
"  switch SUBCOMMAND   the virtual switch: run, create, portgroup, set,\n"
"                      show, capture, stop\n"
"  snapshot SUBCOMMAND take, list, revert, delete a VM's snapshots\n"
"  version             print the version\n"
"\n"
"termvisor COMMAND --help describes each command; see termvisor(1).\n";

int
main(int argc, char **argv)
{
	log_init("termvisor", 0);
	/* A reader of our output that goes away must not kill the VM: the
	 * write fails with EPIPE and the console keeps its history. */
	signal(SIGPIPE, SIG_IGN);
	/* No arguments on a terminal: the dashboard; in a script, usage. */
	if ((argc < 2 && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) ||
	    (argc >= 2 && strcmp(argv[1], "top") == 0))
		return tui_main(argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(main_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return run_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "vm") == 0 && argc > 2 &&
	    control_client_handles(argv[2]))
		return control_client_main(argc - 2, argv + 2);
	if (strcmp(argv[1], "vm") == 0)
		return vmfs_cli_vm(argc - 2, argv + 2);
	if (strcmp(argv[1], "migrate") == 0)
		return migrate_cli_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "disk") == 0)
		return vmfs_cli_disk(argc - 2, argv + 2);
	if (strcmp(argv[1], "switch") == 0)
		return vswitch_cli_main(argc - 2, argv + 2);
	if (strcmp(argv[1], "snapshot") == 0)
		return snapshot_cli_main(argc - 2, argv + 2);
	if (strcmp(argv[1], "version") == 0 ||
	    strcmp(argv[1], "--version") == 0) {
		printf("termvisor %s\n", TERMVISOR_VERSION);
		return 0;
	}
	log_warnx("unknown command '%s' (see termvisor --help)", argv[1]);
	return 2;
}
