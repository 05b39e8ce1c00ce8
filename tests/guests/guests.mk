# Freestanding test guests, one per boot protocol (see tests/guests/README).
# `make test-guests` builds them into $(BUILD)/guests/:
#   bzimage64.bin  bzImage entered at its 64-bit entry (boot protocol 2.14)
#   multiboot.elf  multiboot v1, a.out kludge header in an ELF32
#   pvh.elf        ELF32 with a XEN_ELFNOTE_PHYS32_ENTRY note
#   realmode.bin   bzImage entered at its real-mode setup code
# The shared C (report, devices, memmap, cmdline, cksum, acpi) is built
# once per CPU mode: -m64, -m32 and -m16.

GUEST_SRC := tests/guests
GUEST_OUT := $(BUILD)/guests
# gcc, whatever CC is: -m16 and -mgeneral-regs-only are what these need.
GUEST_CC  ?= gcc
GUEST_LD  ?= ld
GUEST_OBJCOPY ?= objcopy

GUEST_CFLAGS := -std=gnu11 -Os -ffreestanding -nostdlib -fno-pic -fno-pie \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fno-jump-tables \
	-fno-delete-null-pointer-checks -mgeneral-regs-only -MMD -MP \
	-Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wshadow -Wformat=2 \
	-Werror -I$(GUEST_SRC)
GUEST_CFLAGS64 := -m64 -mno-red-zone -mcmodel=small
GUEST_CFLAGS32 := -m32 -march=i686
# Real mode: 32-bit code with operand prefixes; the setup code runs on a
# 386 or later, like Linux's.
GUEST_CFLAGS16 := -m16 -march=i386

GUEST_COMMON := report cmdline cksum memmap devices

.PHONY: test-guests
test-guests: $(GUEST_OUT)/bzimage64.bin $(GUEST_OUT)/multiboot.elf $(GUEST_OUT)/pvh.elf \
	$(GUEST_OUT)/realmode.bin $(GUEST_OUT)/migcount.bin

$(GUEST_OUT)/o64/%.o: $(GUEST_SRC)/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS64) -c -o $@ $<
$(GUEST_OUT)/o32/%.o: $(GUEST_SRC)/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS32) -c -o $@ $<
$(GUEST_OUT)/o16/%.o: $(GUEST_SRC)/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS16) -c -o $@ $<
$(GUEST_OUT)/o16/%.o: $(GUEST_SRC)/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS16) -c -o $@ $<
$(GUEST_OUT)/o64/%.o: $(GUEST_SRC)/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS64) -c -o $@ $<
$(GUEST_OUT)/o32/%.o: $(GUEST_SRC)/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS32) -c -o $@ $<

GUEST_MB_OBJS := $(addprefix $(GUEST_OUT)/o32/,multiboot_head.o multiboot.o acpi.o smp.o smp_trampoline.o \
	$(addsuffix .o,$(GUEST_COMMON)))
$(GUEST_OUT)/multiboot.elf: $(GUEST_MB_OBJS) $(GUEST_SRC)/multiboot.ld
	$(GUEST_LD) -m elf_i386 --build-id=none --no-warn-rwx-segments -z noexecstack -nostdlib -T $(GUEST_SRC)/multiboot.ld \
		-o $@ $(GUEST_MB_OBJS)

# migcount.bin: a bzImage like bzimage64.bin, counting in ring 3 for the
# migration tests (its own payload in the same setup code).
GUEST_MIG_OBJS := $(addprefix $(GUEST_OUT)/o64/,bzimage64_head.o migcount.o report.o)
$(GUEST_OUT)/migcount-payload.elf: $(GUEST_MIG_OBJS) $(GUEST_SRC)/bzimage64.ld
	$(GUEST_LD) -m elf_x86_64 --build-id=none --no-warn-rwx-segments -z noexecstack -nostdlib \
		-T $(GUEST_SRC)/bzimage64.ld -o $@ $(GUEST_MIG_OBJS)
$(GUEST_OUT)/migcount-payload.bin: $(GUEST_OUT)/migcount-payload.elf
	$(GUEST_OBJCOPY) -O binary $< $@
$(GUEST_OUT)/o16/migcount_setup.o: $(GUEST_SRC)/bzimage64_setup.S $(GUEST_OUT)/migcount-payload.bin
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS16) -DPAYLOAD_BIN='"$(GUEST_OUT)/migcount-payload.bin"' \
		-c -o $@ $<
$(GUEST_OUT)/migcount.elf: $(GUEST_OUT)/o16/migcount_setup.o $(GUEST_SRC)/bzimage64_setup.ld
	$(GUEST_LD) -m elf_i386 --build-id=none --no-warn-rwx-segments -z noexecstack -nostdlib \
		-T $(GUEST_SRC)/bzimage64_setup.ld -o $@ $<
$(GUEST_OUT)/migcount.bin: $(GUEST_OUT)/migcount.elf
	$(GUEST_OBJCOPY) -O binary $< $@

GUEST_PVH_OBJS := $(addprefix $(GUEST_OUT)/o32/,pvh_head.o pvh.o acpi.o smp.o smp_trampoline.o \
	$(addsuffix .o,$(GUEST_COMMON)))
$(GUEST_OUT)/pvh.elf: $(GUEST_PVH_OBJS) $(GUEST_SRC)/pvh.ld
	$(GUEST_LD) -m elf_i386 --build-id=none --no-warn-rwx-segments -z noexecstack -nostdlib -T $(GUEST_SRC)/pvh.ld \
		-o $@ $(GUEST_PVH_OBJS)

GUEST_RM_OBJS := $(addprefix $(GUEST_OUT)/o16/,realmode_head.o realmode.o \
	$(addsuffix .o,$(GUEST_COMMON)))
$(GUEST_OUT)/realmode.elf: $(GUEST_RM_OBJS) $(GUEST_SRC)/realmode.ld
	$(GUEST_LD) -m elf_i386 --build-id=none --no-warn-rwx-segments -z noexecstack -nostdlib \
		-T $(GUEST_SRC)/realmode.ld -o $@ $(GUEST_RM_OBJS)
$(GUEST_OUT)/realmode.bin: $(GUEST_OUT)/realmode.elf
	$(GUEST_OBJCOPY) -O binary $< $@

GUEST_BZ_OBJS := $(addprefix $(GUEST_OUT)/o64/,bzimage64_head.o bzimage64.o acpi.o smp.o smp_trampoline.o \
	$(addsuffix .o,$(GUEST_COMMON)))
$(GUEST_OUT)/bzimage64-payload.elf: $(GUEST_BZ_OBJS) $(GUEST_SRC)/bzimage64.ld
	$(GUEST_LD) -m elf_x86_64 --build-id=none --no-warn-rwx-segments -z noexecstack -nostdlib \
		-T $(GUEST_SRC)/bzimage64.ld -o $@ $(GUEST_BZ_OBJS)
$(GUEST_OUT)/bzimage64-payload.bin: $(GUEST_OUT)/bzimage64-payload.elf
	$(GUEST_OBJCOPY) -O binary $< $@
# The setup sectors carry the payload (.incbin), so they follow it.
$(GUEST_OUT)/o16/bzimage64_setup.o: $(GUEST_SRC)/bzimage64_setup.S $(GUEST_OUT)/bzimage64-payload.bin
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS16) -DPAYLOAD_BIN='"$(GUEST_OUT)/bzimage64-payload.bin"' \
		-c -o $@ $<
$(GUEST_OUT)/bzimage64.elf: $(GUEST_OUT)/o16/bzimage64_setup.o $(GUEST_SRC)/bzimage64_setup.ld
	$(GUEST_LD) -m elf_i386 --build-id=none --no-warn-rwx-segments -z noexecstack -nostdlib \
		-T $(GUEST_SRC)/bzimage64_setup.ld -o $@ $<
$(GUEST_OUT)/bzimage64.bin: $(GUEST_OUT)/bzimage64.elf
	$(GUEST_OBJCOPY) -O binary $< $@

include $(GUEST_SRC)/smpstress.mk
include $(GUEST_SRC)/virtiokick.mk
-include $(wildcard $(GUEST_OUT)/o*/*.d)
