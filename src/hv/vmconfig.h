/*
 * What a VM is made of, however it was described: `termvisor run`
 * options, or a VM's configuration file in the datastore (src/vmfs).
 */
#ifndef TV_VMCONFIG_H
#define TV_VMCONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define VMCFG_MAX_DISKS 8
#define VMCFG_MAX_NICS 4

struct vmcfg_disk {
	char path[4096];
	char format[8];		/* "raw", "qcow2", "" = probe */
	bool readonly;
	char serial[21];
};

struct vmcfg_nic {
	char portgroup[64];
	uint8_t mac[6];
	bool mac_set;
	int queues;		/* queue pairs; 0: min(cpus, 4) */
};

struct vm_config {
	char name[64];
	uint64_t memory;	/* bytes */
	int cpus;
	/* CPUID model: "" or "host" (all the accelerator has),
	 * "baseline" (x86-64 as first defined, on either accelerator,
	 * so that snapshots move between them). */
	char cpu[16];
	char accel[8];		/* "kvm", "bt", "auto" */
	char kernel[4096];
	char initrd[4096];
	char append[4096];
	bool no_reboot;
	bool bzimage_entry;	/* run a bzImage's own decompressor rather
				 * than unpacking it on the host */
	bool debug_exit;	/* isa-debug-exit at port 0xf4 */
	int debug_exit_port;
	int ndisks;
	struct vmcfg_disk disks[VMCFG_MAX_DISKS];
	int nnics;
	struct vmcfg_nic nics[VMCFG_MAX_NICS];
	char vnc[128];		/* "127.0.0.1:0", "unix:PATH", "none" */
	char vnc_password_file[4096];	/* "": $TERMVISOR_VNC_PASSWORD or none */
	char serial[16];	/* "stdio" (COM1 on stdin/stdout) or "none" */
	/* Restore: guest RAM is this file's bytes from ram_file_offset,
	 * mapped copy-on-write (MAP_PRIVATE: the file is never written;
	 * a snapshot file is not changed after it is taken).  "": fresh. */
	char ram_file[4096];
	uint64_t ram_file_offset;
	/* A migration's destination while the source still runs the VM on
	 * the same images: its disks open without their image locks until
	 * virtio_blk_activate() (see blkdev_unlock()). */
	bool disks_inactive;
	char display[8];	/* "std" (bochs-display + VGA text) or "none" */
	char on_panic[8];	/* "pause", "stop", "reset", "none" (pvpanic.h) */
	char rng[4];		/* virtio-rng: "on" (the default) or "off" */
	int verbose;
};

void vm_config_defaults(struct vm_config *c);

#endif
