/*
 * The bzImage setup header (Linux x86 boot protocol, Documentation/
 * arch/x86/boot.rst), for the guests that are bzImage files.  Include
 * from a .S file at the very start of the image's first section (file
 * offset 0); it fills the boot sector area and the header up to 0x26c
 * and then jumps to ENTRY.  The linker script defines setup_sects,
 * syssize and init_size.
 */
.macro BZ_HEADER version, loadflags, xloadflags, entry
	.org	0x1f1
	.byte	setup_sects		/* setup_sects: 512-byte sectors after the first */
	.word	0			/* root_flags */
	.long	syssize			/* syssize: payload in 16-byte units */
	.word	0			/* ram_size (obsolete) */
	.word	0xffff			/* vid_mode: NORMAL_VGA */
	.word	0			/* root_dev */
	.word	0xaa55			/* boot_flag */
	/* 0x200: the real-mode entry point, CS = setup segment + 0x20. */
	.byte	0xeb, \entry - 1f	/* jmp short ENTRY */
1:	.ascii	"HdrS"
	.word	\version
	.long	0			/* realmode_swtch */
	.word	0x1000			/* start_sys_seg (obsolete) */
	.word	bz_version_string - 0x200
	.byte	0			/* type_of_loader: the loader fills it */
	.byte	\loadflags
	.word	0			/* setup_move_size */
	.long	0x100000		/* code32_start */
	.long	0			/* ramdisk_image */
	.long	0			/* ramdisk_size */
	.long	0			/* bootsect_kludge */
	.word	0			/* heap_end_ptr */
	.byte	0			/* ext_loader_ver */
	.byte	0			/* ext_loader_type */
	.long	0			/* cmd_line_ptr */
	.long	0x7fffffff		/* initrd_addr_max */
	.long	0x200000		/* kernel_alignment */
	.byte	0			/* relocatable_kernel: load at 1 MiB */
	.byte	12			/* min_alignment */
	.word	\xloadflags
	.long	2047			/* cmdline_size */
	.long	0			/* hardware_subarch: PC */
	.quad	0			/* hardware_subarch_data */
	.long	0			/* payload_offset */
	.long	0			/* payload_length */
	.quad	0			/* setup_data */
	.quad	0x100000		/* pref_address */
	.long	init_size		/* init_size */
	.long	0			/* handover_offset */
bz_version_string:
	.asciz	"termvisor test guest"
.endm

/* loadflags */
#define LOADED_HIGH	0x01
#define CAN_USE_HEAP	0x80
/* xloadflags */
#define XLF_KERNEL_64	0x01
