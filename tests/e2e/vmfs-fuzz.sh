#!/bin/bash
# A short fuzz run of the .vmx parser and the qcow2 metadata reader
# (tests/fuzz/): a few seconds each, so `make check` catches regressions.
# Skips when clang's libFuzzer is not available.
set -u
cd "$(dirname "$0")/../.." || exit 1
fb=${FUZZ_BUILD:-build-fuzz}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)'\
' { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! command -v clang >/dev/null ||
	! clang -fsanitize=fuzzer -o "$probe/p" "$probe/p.c" >/dev/null 2>&1; then
	echo "clang with libFuzzer (-fsanitize=fuzzer) is not available"
	exit 77
fi
if ! make --no-print-directory -s -f GNUmakefile -f tests/fuzz/fuzz.mk \
	FUZZ_BUILD="$fb" fuzz >"$probe/build.log" 2>&1; then
	tail -n 30 "$probe/build.log"
	echo "building the fuzz targets failed"
	exit 1
fi
tests/fuzz/run.sh "$fb" "${FUZZ_SECONDS:-4}"
