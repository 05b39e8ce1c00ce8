#!/bin/bash
# Disk benchmark (issue 3): the same fio jobs inside the reference guest on
# termvisor's virtio-blk, inside the same guest on QEMU's virtio-blk
# (aio=io_uring, cache=$QCACHE), and on the host against the same raw image.
# Prints IOPS / bandwidth and the ratios termvisor/host, termvisor/QEMU.
# Never pass/fail: a run that fails or times out shows "n/a".
#
#   scripts/bench-disk.sh BUILD_DIR
#	env: RUNTIME=5 (seconds per job)  SIZE=512 (MiB of image)
#	     ACCEL=bt (termvisor)  QACCEL=tcg (QEMU)  QCACHE=writeback
#	     (QEMU's cache mode: writeback, its default, is what termvisor
#	     does, through the host's page cache; none is O_DIRECT)
#	     TMPDIR (image's home;
#	     must allow O_DIRECT, so not a tmpfs)
#
# The guest runs fio from a second initramfs built here: the reference
# guest's initrd.img (uncompressed newc cpio, scripts/mkguest.sh) with a
# second cpio archive appended holding the host's /usr/bin/fio, every
# library ldd names and the dynamic loader, at their host paths.  The
# kernel unpacks concatenated archives one after the other.
set -u
build=${1:?usage: bench-disk.sh BUILD_DIR}
tv=$build/termvisor
runtime=${RUNTIME:-5}
size=${SIZE:-512}
accel=${ACCEL:-bt}
qaccel=${QACCEL:-tcg}
qcache=${QCACHE:-writeback}
guest=${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest
kernel=$guest/vmlinuz base_initrd=$guest/initrd.img
qemu=$(command -v qemu-system-x86_64 || true)
fio=$(command -v fio || true)

[ -n "$fio" ] || { echo "bench-disk: skipped: fio not installed"; exit 0; }
if [ ! -r "$kernel" ] || [ ! -r "$base_initrd" ]; then
	echo "bench-disk: skipped: reference guest missing (make guest)"; exit 0
fi
[ -x "$tv" ] || { echo "bench-disk: skipped: $tv not built"; exit 0; }

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/tv-bench-disk.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
img=$tmp/disk.img initrd=$tmp/initrd-fio.img

# The jobs: name and fio options.  One fio process runs them in turn
# (stonewall), each time-based for $runtime seconds.
jobs=(
	"rr4k-qd1   --rw=randread  --bs=4k --iodepth=1"
	"rr4k-qd32  --rw=randread  --bs=4k --iodepth=32"
	"rw4k-qd1   --rw=randwrite --bs=4k --iodepth=1"
	"rw4k-qd32  --rw=randwrite --bs=4k --iodepth=32"
	"sr1m-qd8   --rw=read      --bs=1M --iodepth=8"
	"sw1m-qd8   --rw=write     --bs=1M --iodepth=8"
)
fio_args() {	# FILE: the fio command line (without "fio")
	local j a
	a="--output-format=terse --terse-version=3 --thread --direct=1"
	# The guest's TSC is no clock fio can calibrate on a software CPU.
	a="$a --clocksource=clock_gettime"
	a="$a --ioengine=libaio --time_based --runtime=$runtime --filename=$1"
	a="$a --randrepeat=0 --norandommap"
	for j in "${jobs[@]}"; do
		# shellcheck disable=SC2086
		set -- $j
		a="$a --name=$1 --stonewall ${*:2}"
	done
	echo "$a"
}

# The image: real data blocks (not a sparse or fallocated file, whose
# reads the host file system answers without any I/O).
dd if=/dev/zero of="$img" bs=1M count="$size" conv=fsync status=none ||
	{ echo "bench-disk: cannot write $img"; exit 1; }

# The guest's initramfs: the reference one plus a cpio of fio and its libraries.
mkinitrd() {
	local stage=$tmp/stage f real
	mkdir -p "$stage/usr/bin" || return 1
	cp -L "$fio" "$stage/usr/bin/fio" || return 1
	for f in $(ldd "$fio" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }'); do
		real=$(readlink -f "$f") || return 1
		mkdir -p "$stage$(dirname "$f")" && cp -L "$real" "$stage$f" || return 1
	done
	cp "$base_initrd" "$initrd" &&
		(cd "$stage" && find . -mindepth 1 | sed 's|^\./||' |
			cpio -o -H newc -R 0:0 --quiet) >>"$initrd"
}
mkinitrd || { echo "bench-disk: cannot build the fio initramfs"; exit 1; }

enc() { printf '%s' "$1" | sed 's/%/%25/g; s/+/%2B/g; s/ /+/g; s/"/%22/g'; }
# quiet: no kernel message can split a result line on the console.
# The disk's interrupts (virtio-blk's MSI-X vectors) before and after, to
# count interrupts per request: a ratio the host's load does not skew.
irqs='echo IRQ $(grep virtio /proc/interrupts | grep -v config | tr -s " " | cut -d" " -f3- | awk "{ s += \$1 + \$2 } END { print s }")'
append="console=ttyS0 panic=-1 quiet tv.quiet=1 tv.run=$(enc "$irqs; fio $(fio_args /dev/vda); $irqs")"

# Results: R[platform.job]="iops kib/s" from fio's terse v3 lines
# (field 3 job name, 7/8 read KiB/s and IOPS, 48/49 write KiB/s and IOPS).
declare -A R
parse() {	# PLATFORM FILE
	local name bw iops
	while IFS=' ' read -r name bw iops; do
		R[$1.$name]="$iops $bw"
	done < <(tr -d '\r' <"$2" | grep -aE '^3;fio-' |
		awk -F';' '{ if ($8 > 0 || $7 > 0) print $3, $7, $8; else print $3, $48, $49 }')
	# Interrupts per request over the whole run: the IRQ lines' difference
	# over every job's requests (read and write KiB / block size: fields 6
	# and 47 are the KiB each job moved).
	R[$1.irq]=$(tr -d '\r' <"$2" | awk -F';' '
		/^IRQ [0-9]+$/ { split($0, w, " "); if (n++ == 0) a = w[2]; else b = w[2] }
		/^3;fio-/ { bs = ($3 ~ /1m/) ? 1024 : 4; reqs += ($6 + $47) / bs }
		END { if (n == 2 && reqs > 0) printf "%.2f", (b - a) / reqs; else print "n/a" }')
}
# Time limit of a guest run: boot plus every job plus fio's own start.
limit=$(( 240 + ${#jobs[@]} * (runtime + 20) ))

echo "== Disk: fio in the guest on virtio-blk vs the host (${size} MiB raw image, ${runtime} s per job) =="
echo "  fio $($fio --version 2>/dev/null), ioengine=libaio, direct=1; guest: 1G RAM, 2 vCPUs"

# Host: fio on the image itself.
out=$tmp/host.out
# shellcheck disable=SC2046	# fio_args is a list of words
if timeout $((limit / 2)) "$fio" $(fio_args "$img") >"$out" 2>&1; then :
else echo "  host fio failed or timed out: $(tail -n 2 "$out" | tr '\n' ' ')"; fi
parse host "$out"

# termvisor.
out=$tmp/tv.out
timeout -k 5 "$limit" "$tv" run --accel "$accel" --kernel "$kernel" --initrd "$initrd" \
	--memory 1G --cpus 2 --disk "$img,format=raw" --append "$append" \
	</dev/null >"$out" 2>&1
rc=$?
parse tv "$out"
grep -aq '^3;fio-' "$out" || echo "  termvisor run failed (rc $rc): $(tr -d '\r' <"$out" | tail -n 3 | tr '\n' ' ')"

# QEMU: aio=io_uring if this QEMU has it, else threads.
qaio=n/a
if [ -n "$qemu" ]; then
	qaio=io_uring
	timeout 5 "$qemu" -M none -nodefaults -display none -S \
		-drive "file=$img,format=raw,if=none,id=d0,aio=io_uring,cache=$qcache" \
		</dev/null >/dev/null 2>&1
	[ $? = 124 ] || qaio=threads
	out=$tmp/qemu.out
	timeout -k 5 "$limit" "$qemu" -M pc -accel "$qaccel" -m 1G -smp 2 -nographic \
		-no-reboot -nodefaults -serial stdio -kernel "$kernel" -initrd "$initrd" \
		-append "$append" \
		-drive "file=$img,format=raw,if=none,id=d0,aio=$qaio,cache=$qcache" \
		-device virtio-blk-pci,drive=d0 </dev/null >"$out" 2>&1
	rc=$?
	parse qemu "$out"
	grep -aq '^3;fio-' "$out" || echo "  QEMU run failed (rc $rc): $(tr -d '\r' <"$out" | tail -n 3 | tr '\n' ' ')"
fi
echo "  termvisor: --accel $accel, through the page cache; QEMU: -accel $qaccel, aio=$qaio, cache=$qcache"
echo

ratio() {	# ours theirs
	if [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]]; then
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
	else echo "n/a"; fi
}
cell() {	# PLATFORM JOB: "IOPS" for 4k jobs, "MiB/s" for 1M jobs
	local v=${R[$1.$2]:-}
	if [ -z "$v" ]; then echo n/a
	elif [[ $2 == *4k* ]]; then echo "${v% *}"
	else echo $(( ${v#* } / 1024 )); fi
}
printf '  %-10s %6s %10s %10s %10s %9s %9s\n' job unit termvisor qemu host tv/host tv/qemu
for j in "${jobs[@]}"; do
	j=${j%% *}
	unit=IOPS; [[ $j == *4k* ]] || unit=MiB/s
	t=$(cell tv "$j") q=$(cell qemu "$j") h=$(cell host "$j")
	printf '  %-10s %6s %10s %10s %10s %9s %9s\n' "$j" "$unit" "$t" "$q" "$h" \
		"$(ratio "$t" "$h")" "$(ratio "$t" "$q")"
done
echo "  interrupts per request, all jobs: termvisor ${R[tv.irq]:-n/a}, QEMU ${R[qemu.irq]:-n/a}"
t=$(cell tv rr4k-qd32) q=$(cell qemu rr4k-qd32) h=$(cell host rr4k-qd32)
echo "  target: rr4k-qd32 tv/host >= 0.80 (now $(ratio "$t" "$h")), tv/qemu >= 1 (now $(ratio "$t" "$q"))"
echo
