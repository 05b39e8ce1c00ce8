# The VNC test client (tests/vnc/vnc_client.c) on libvncclient, used by
# the VNC end-to-end tests and scripts/bench-vnc.sh; built with the tests
# and for make bench.

VNC_CLIENT := $(BUILD)/tests/vnc-client

$(VNC_CLIENT): tests/vnc/vnc_client.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(OPT) $(WARN) -D_GNU_SOURCE \
		$(shell $(PKG_CONFIG) --cflags libvncclient) -o $@ $< \
		$(shell $(PKG_CONFIG) --libs libvncclient) $(SAN)

tests-build: $(VNC_CLIENT)
bench: $(VNC_CLIENT)
