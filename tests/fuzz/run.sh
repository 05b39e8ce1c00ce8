#!/bin/bash
# Run every fuzz target for a bounded time: tests/fuzz/run.sh BUILD_DIR SECONDS
# Seeds: the .vmx fixtures, small qcow2 images made by qemu-img when it
# is installed, and the test guests' kernels (bzImage, PVH ELF, multiboot)
# when they are built.  Exit 0 if nothing crashed, 1 otherwise (the crashing
# input is kept in BUILD_DIR/fuzz-artifacts/ and named in the output).
set -u
build=${1:-build-fuzz}
secs=${2:-5}
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/fuzz-artifacts" "$work/vmx" "$work/qcow2" "$work/boot"
for k in multiboot.elf pvh.elf bzimage64.bin; do
	cp "$src/${BUILD:-build}/guests/$k" "$work/boot/" 2>/dev/null
done

cp "$src"/tests/fixtures/vmx/*.vmx "$work/vmx/" 2>/dev/null
if command -v qemu-img >/dev/null; then
	qemu-img create -q -f qcow2 -o cluster_size=512 "$work/qcow2/a" 1M
	qemu-img create -q -f qcow2 -o cluster_size=4096,refcount_bits=1 \
		"$work/qcow2/b" 64M
	qemu-img create -q -f qcow2 -b a -F qcow2 -o cluster_size=512 \
		"$work/qcow2/c" 2>/dev/null
	qemu-io -c 'write -P 1 0 8k' -c 'write -z 64k 4k' "$work/qcow2/a" \
		>/dev/null 2>&1
fi

rc=0
for t in "$build"/fuzz_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	corpus="$work/${name#fuzz_}"
	mkdir -p "$corpus"
	if "$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
		-artifact_prefix="$build/fuzz-artifacts/$name-" "$corpus" \
		>"$work/$name.log" 2>&1; then
		echo "$name: $(grep -o 'Done [0-9]* runs.*' "$work/$name.log" | tail -n 1)"
	else
		echo "$name: FAILED"
		tail -n 30 "$work/$name.log"
		rc=1
	fi
done
exit $rc
