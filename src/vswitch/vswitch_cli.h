/*
 * `termvisor switch ...` (termvisor(1)): argv[0] is the subcommand word
 * ("run", "show", ...), optionally after "--datastore DIR".
 * Exit status: 0 done, 1 failed, 2 bad usage.
 */
#ifndef TV_VSWITCH_CLI_H
#define TV_VSWITCH_CLI_H

int vswitch_cli_main(int argc, char **argv);

#endif
