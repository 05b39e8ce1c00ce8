# SMP stress guest (tests/guests/smpstress.c): a bzImage like bzimage64.bin,
# same head, setup code and link script, another 64-bit payload.
GUEST_SS_OBJS := $(addprefix $(GUEST_OUT)/o64/,bzimage64_head.o smpstress.o \
	smpstress_trampoline.o report.o cmdline.o devices.o)
$(GUEST_OUT)/smpstress-payload.elf: $(GUEST_SS_OBJS) $(GUEST_SRC)/bzimage64.ld
	$(GUEST_LD) -m elf_x86_64 --build-id=none --no-warn-rwx-segments -z noexecstack -nostdlib \
		-T $(GUEST_SRC)/bzimage64.ld -o $@ $(GUEST_SS_OBJS)
$(GUEST_OUT)/smpstress-payload.bin: $(GUEST_OUT)/smpstress-payload.elf
	$(GUEST_OBJCOPY) -O binary $< $@
$(GUEST_OUT)/o16/smpstress_setup.o: $(GUEST_SRC)/bzimage64_setup.S $(GUEST_OUT)/smpstress-payload.bin
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_CFLAGS16) -DPAYLOAD_BIN='"$(GUEST_OUT)/smpstress-payload.bin"' \
		-c -o $@ $<
$(GUEST_OUT)/smpstress.elf: $(GUEST_OUT)/o16/smpstress_setup.o $(GUEST_SRC)/bzimage64_setup.ld
	$(GUEST_LD) -m elf_i386 --build-id=none --no-warn-rwx-segments -z noexecstack -nostdlib \
		-T $(GUEST_SRC)/bzimage64_setup.ld -o $@ $<
$(GUEST_OUT)/smpstress.bin: $(GUEST_OUT)/smpstress.elf
	$(GUEST_OBJCOPY) -O binary $< $@
test-guests: $(GUEST_OUT)/smpstress.bin
