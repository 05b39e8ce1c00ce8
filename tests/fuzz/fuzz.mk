# libFuzzer targets: every tests/fuzz/fuzz_*.c becomes $(FUZZ_BUILD)/fuzz_*,
# linked against the whole library built with clang for fuzzing.
#
#   make fuzz                                   build them
#   tests/fuzz/run.sh build-fuzz 5              every target, 5 s each
#   build-fuzz/fuzz_qcow2 -max_total_time=3600 -rss_limit_mb=2048 DIR
#                                               a long run, corpus in DIR
#
# The library is compiled with -w here: the warning gate is the gcc build
# (-Werror); this build exists to find crashes, and clang's warnings in
# code outside the fuzzed paths must not keep it from linking.

ifndef TV_FUZZ_MK
TV_FUZZ_MK := 1

FUZZ_BUILD ?= build-fuzz
FUZZ_CC    ?= clang
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))

.PHONY: fuzz fuzz-lib
fuzz: $(FUZZ_BINS)

fuzz-lib:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
		OPT="-O1 -g" WARN="-w" SAN="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" \
		$(FUZZ_BUILD)/libtermvisor.a

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c fuzz-lib
	$(FUZZ_CC) -std=gnu11 -O1 -g -D_GNU_SOURCE -Isrc \
		-fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< $(FUZZ_BUILD)/libtermvisor.a \
		$(LDLIBS_ALL)

endif
