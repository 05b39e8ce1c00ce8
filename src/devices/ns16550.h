/*
 * 16550A UART: COM1 (0x3f8, IRQ 4, connected to the VM's console) and
 * optionally COM2 (0x2f8, IRQ 3, no backend).
 */
#ifndef TV_NS16550_H
#define TV_NS16550_H

#include <stddef.h>
#include <stdint.h>

struct vm;
struct console;
struct device_ops;
struct ns16550;

extern const struct device_ops ns16550_ops;

/*
 * A UART at I/O port base raising ISA IRQ irq, registered on vm->pio.
 * console may be NULL (transmit is then discarded).  Returns NULL with
 * *err set on failure.  ns16550_create() is the device-table hook and
 * uses this for COM1/COM2.
 */
struct ns16550 *ns16550_new(struct vm *vm, uint16_t base, unsigned irq,
    struct console *console, int *err);
void ns16550_free(struct ns16550 *u);
/* Bytes from the host side: returns how many fit in the receive FIFO. */
size_t ns16550_receive(struct ns16550 *u, const uint8_t *buf, size_t len);

#endif
