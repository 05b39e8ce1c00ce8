/*
 * isa-debug-exit (QEMU compatible) at vm->cfg->debug_exit_port.
 */
#ifndef TV_DEBUG_EXIT_H
#define TV_DEBUG_EXIT_H

struct device_ops;

extern const struct device_ops debug_exit_ops;

#endif
