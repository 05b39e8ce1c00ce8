# virtio kick guest (tests/guests/virtiokick.c): multiboot, like
# multiboot.elf, with its own main.
GUEST_VK_OBJS := $(addprefix $(GUEST_OUT)/o32/,multiboot_head.o virtiokick.o report.o cmdline.o)
$(GUEST_OUT)/virtiokick.elf: $(GUEST_VK_OBJS) $(GUEST_SRC)/multiboot.ld
	$(GUEST_LD) -m elf_i386 --build-id=none --no-warn-rwx-segments -z noexecstack -nostdlib \
		-T $(GUEST_SRC)/multiboot.ld -o $@ $(GUEST_VK_OBJS)
test-guests: $(GUEST_OUT)/virtiokick.elf
