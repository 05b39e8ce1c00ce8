# Freestanding test guests (see tests/guests/README).  Filled in by the
# test-guest work; `test-guests` builds them into $(BUILD)/guests/.
.PHONY: test-guests
test-guests:
