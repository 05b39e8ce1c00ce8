#!/bin/bash
# make bench: termvisor and QEMU side by side on this host, in one run.
# Prints medians and ratios (termvisor / reference); never pass/fail.
#
#   scripts/bench.sh BUILD_DIR      (env: RUNS=3, MEM=512M)
#
# Measured: time from process start to the reference guest's marker line;
# CPU-bound loops inside the guest (busybox shell loop, md5sum of a
# stream) against the same loops natively; the VMM's own resident memory
# (RSS minus the guest RAM mapping's RSS) at the marker.
set -u
build=$1
tv=$build/termvisor
runs=${RUNS:-3}
mem=${MEM:-512M}
guest=${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest
kernel=$guest/vmlinuz initrd=$guest/initrd.img
qemu=$(command -v qemu-system-x86_64 || true)
marker=TERMVISOR-GUEST-READY
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; kill $(jobs -p) 2>/dev/null' EXIT

host_kind() {
	if grep -qwE 'vmx|svm' /proc/cpuinfo; then echo "hardware-virtualization host"
	else echo "host whose /dev/kvm emulates guest kernel code (no vmx/svm)"; fi
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# run_until PATTERN TIMEOUT CMD...: start CMD, wait for PATTERN in its
# output; prints "elapsed_ms vmm_overhead_kib" or "fail".
run_until() {
	local pat=$1 limit=$2; shift 2
	local fifo=$tmp/fifo start pid line rss=-
	rm -f "$fifo"; mkfifo "$fifo"
	start=$(now_ms)
	"$@" </dev/null >"$fifo" 2>&1 &
	pid=$!
	exec 3<"$fifo"
	while IFS= read -r -t "$limit" line <&3; do
		case "$line" in
		*"$pat"*)
			local t=$(( $(now_ms) - start ))
			rss=$(vmm_overhead "$pid")
			kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
			exec 3<&-
			echo "$t $rss"; return 0 ;;
		esac
	done
	kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
	exec 3<&-
	echo fail
}

# RSS of the process minus that of its largest mapping (guest RAM), KiB.
vmm_overhead() {
	local k v sz=0 maxsz=0 maxrss=0 total=0
	[ -r "/proc/$1/smaps" ] || { echo -; return; }
	while read -r k v _; do
		if [[ $k =~ ^([0-9a-f]+)-([0-9a-f]+)$ ]]; then
			sz=$(( 16#${BASH_REMATCH[2]} - 16#${BASH_REMATCH[1]} ))
		elif [ "$k" = Rss: ]; then
			total=$((total + v))
			if ((sz > maxsz)); then maxsz=$sz; maxrss=$v; fi
		fi
	done <"/proc/$1/smaps"
	echo $((total - maxrss))
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "fail"; else print a[int((NR + 1) / 2)] }'; }

# measure NAME PATTERN TIMEOUT CMD...: median over $runs, sets M_T, M_RSS
measure() {
	local name=$1 pat=$2 limit=$3; shift 3
	local ts=() rs=() out
	for ((i = 0; i < runs; i++)); do
		out=$(run_until "$pat" "$limit" "$@")
		[ "$out" = fail ] && continue
		ts+=("${out% *}"); rs+=("${out#* }")
	done
	M_T=$(printf '%s\n' "${ts[@]}" | grep . | median)
	M_RSS=$(printf '%s\n' "${rs[@]}" | grep . | median)
	printf '  %-44s %8s ms   VMM overhead %8s KiB\n' "$name" "$M_T" "$M_RSS"
}

ratio() {	# ours theirs
	if [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]]; then
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
	else echo "n/a"; fi
}

tv_cmd() { echo "$tv run --memory $mem --kernel $kernel --initrd $initrd"; }
qemu_cmd() {	# machine accel
	echo "$qemu -M $1 -accel $2 -m $mem -nographic -no-reboot -nodefaults -serial stdio -kernel $kernel -initrd $initrd"
}

[ -r "$kernel" ] || { echo "bench: reference guest missing (make guest)"; exit 1; }
echo "termvisor bench on $(nproc) cores, $(host_kind)"
echo "$(uname -r); QEMU: $($qemu --version 2>/dev/null | head -1)"
echo

echo "== Boot to the guest's marker (median of $runs) =="
append="console=ttyS0 panic=-1 tv.quiet=1"
# shellcheck disable=SC2046
measure "termvisor --accel bt" "$marker" 120 $(tv_cmd) --accel bt --append "$append"; bt=$M_T; btrss=$M_RSS
measure "termvisor --accel bt --bzimage-entry" "$marker" 120 $(tv_cmd) --accel bt --bzimage-entry --append "$append"; btz=$M_T
if [ -n "$qemu" ]; then
	measure "qemu -M pc -accel tcg" "$marker" 120 $(qemu_cmd pc tcg) -append "$append"; qpc=$M_T; qrss=$M_RSS
	measure "qemu -M microvm -accel tcg" "$marker" 120 $(qemu_cmd microvm tcg) -append "$append"; qmv=$M_T
fi
kvm_ok=no
grep -qwE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ] && kvm_ok=yes
if [ $kvm_ok = yes ]; then
	measure "termvisor --accel kvm" "$marker" 120 $(tv_cmd) --accel kvm --append "$append"; kv=$M_T; kvrss=$M_RSS
	measure "qemu -M microvm -accel kvm" "$marker" 120 $(qemu_cmd microvm kvm) -append "$append"; qkv=$M_T; qkvrss=$M_RSS
	measure "qemu -M pc -accel kvm" "$marker" 120 $(qemu_cmd pc kvm) -append "$append"; qkpc=$M_T
fi
echo
echo "  ratio bt / tcg -M pc:            $(ratio "${bt:-}" "${qpc:-}")   (target <= 3)"
echo "  ratio bt / tcg -M microvm:       $(ratio "${bt:-}" "${qmv:-}")"
echo "  ratio bt unpacked / bzImage entry: $(ratio "${bt:-}" "${btz:-}")"
echo "  VMM overhead bt / qemu tcg pc:   $(ratio "${btrss:-}" "${qrss:-}")"
if [ $kvm_ok = yes ]; then
	echo "  ratio kvm / qemu microvm kvm:    $(ratio "${kv:-}" "${qkv:-}")   (target < 1)"
	echo "  ratio kvm / qemu pc kvm:         $(ratio "${kv:-}" "${qkpc:-}")"
	echo "  VMM overhead kvm / qemu kvm:     $(ratio "${kvrss:-}" "${qkvrss:-}")   (target: < 5 MiB)"
else
	echo "  KVM boot: skipped: this host's /dev/kvm emulates guest kernel code"
fi
echo

# The same user-mode loop natively and in a freestanding guest that drops
# to ring 3 (tests/bench/userloop.S): no kernel, so this is the CPU alone.
echo "== CPU-bound user-mode loop, freestanding guest (median of $runs) =="
if gcc -m32 -nostdlib -static -Wl,-Ttext=0x100000 -Wl,--oformat=binary \
	-o "$tmp/userloop.bin" tests/bench/userloop.S 2>/dev/null &&
   gcc -O2 -o "$tmp/userloop-host" tests/bench/userloop-host.c 2>/dev/null; then
	wall() {	# median wall ms of a command; exit 0 or 1 (the guest's
			# debug-exit "pass") counts, anything else is "fail"
		local ts=() s rc
		for ((i = 0; i < runs; i++)); do
			s=$(now_ms)
			timeout 300 "$@" </dev/null >/dev/null 2>&1
			rc=$?
			[ $rc -le 1 ] || continue
			ts+=("$(( $(now_ms) - s ))")
		done
		printf '%s\n' "${ts[@]}" | grep . | median
	}
	nat=$(wall "$tmp/userloop-host")
	ubt=$(wall "$tv" run --accel bt --kernel "$tmp/userloop.bin" --debug-exit -m 16M)
	printf '  %-44s %8s ms\n' "native" "$nat" "termvisor --accel bt" "$ubt"
	if [ $kvm_ok = yes ]; then
		ukv=$(wall "$tv" run --accel kvm --kernel "$tmp/userloop.bin" --debug-exit -m 16M)
		printf '  %-44s %8s ms\n' "termvisor --accel kvm" "$ukv"
		echo "  kvm / native: $(ratio "$ukv" "$nat")   (target: within 3%)"
	else
		echo "  kvm: skipped (no VMX/SVM; this host's KVM does not finish the bare ring-3 loop)"
	fi
	echo "  bt / native: $(ratio "$ubt" "$nat")"
else
	echo "  skipped: cannot build the loop guest (gcc -m32)"
fi
echo

# CPU-bound loops: time from the marker to TV-EXIT is the loop's time.
loop_sh='i=0;while [ $i -lt 300000 ];do i=$((i+1));done'
loop_md5='dd if=/dev/zero bs=1M count=256 2>/dev/null|md5sum'
enc() { printf '%s' "$1" | sed 's/%/%25/g; s/+/%2B/g; s/ /+/g; s/"/%22/g'; }
# inguest NAME CMD...: median time from the marker to the loop's end, one
# boot per sample (both read from the same console stream); also the
# median CPU time (user+sys) the VMM spent in between, which is what to
# compare on a loaded machine (M_T wall ms, M_C CPU ms).  The guest prints
# TV-LOOP-END and sleeps after the loop so the VMM is still there to be
# read (QEMU exits on the guest's power-off at once).
inguest() {
	local name=$1; shift
	local ts=() cs=() fifo=$tmp/fifo2 line t0 c0 start pid
	for ((i = 0; i < runs; i++)); do
		rm -f "$fifo"; mkfifo "$fifo"
		start=$(now_ms); t0=
		"$@" </dev/null >"$fifo" 2>&1 &
		pid=$!
		exec 4<"$fifo"
		while IFS= read -r -t 400 line <&4; do
			case "${line%$'\r'}" in
			*"$marker"*) t0=$(now_ms); c0=$(cpu_ms "$pid") ;;
			TV-LOOP-END)
				[ -n "$t0" ] || break
				ts+=("$(( $(now_ms) - t0 ))")
				cs+=("$(( $(cpu_ms "$pid") - c0 ))")
				break ;;
			esac
		done
		kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
		exec 4<&-
	done
	M_T=$(printf '%s\n' "${ts[@]}" | grep . | median)
	M_C=$(printf '%s\n' "${cs[@]}" | grep . | median)
	printf '  %-44s %8s ms   CPU %8s ms\n' "$name" "$M_T" "$M_C"
}
# CPU time (user+sys, all threads) of a process so far, in ms.
cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$1/stat"
}
native() {
	local ts=() s
	for ((i = 0; i < runs; i++)); do
		s=$(now_ms); busybox sh -c "$1" >/dev/null; ts+=("$(( $(now_ms) - s ))")
	done
	M_T=$(printf '%s\n' "${ts[@]}" | median)
	printf '  %-44s %8s ms\n' "native (busybox on the host)" "$M_T"
}
for w in ${BENCH_LOOPS:-sh md5}; do
	if [ $w = sh ]; then cmd=$loop_sh; label="shell loop (300k iterations)"
	else cmd=$loop_md5; label="md5sum of 256 MiB"; fi
	echo "== CPU-bound: $label =="
	a="console=ttyS0 panic=-1 tv.quiet=1 tv.run=$(enc "$cmd;echo TV-LOOP-END;sleep 2")"
	native "$cmd"; nat=$M_T
	inguest "termvisor --accel bt" $(tv_cmd) --accel bt --append "$a"; ours=$M_T; oursc=$M_C
	[ -n "$qemu" ] && { inguest "qemu -M pc -accel tcg" $(qemu_cmd pc tcg) -append "$a"; tcg=$M_T; tcgc=$M_C; }
	if [ $kvm_ok = yes ]; then
		inguest "termvisor --accel kvm" $(tv_cmd) --accel kvm --append "$a"; kv=$M_T
	fi
	echo "  slowdown vs native: bt $(ratio "${ours:-}" "$nat"), tcg $(ratio "${tcg:-}" "$nat"), kvm $(ratio "${kv:-}" "$nat")"
	echo "  ratio bt / tcg: CPU $(ratio "${oursc:-}" "${tcgc:-}"), wall $(ratio "${ours:-}" "${tcg:-}")   (target <= 3, goal < 1)"
	echo
done
if command -v fio >/dev/null; then "$(dirname "$0")/bench-disk.sh" "$build"; else echo "== Disk: skipped: fio not installed =="; fi
echo
"$(dirname "$0")/bench-net.sh" "$build"
echo
"$(dirname "$0")/bench-vnc.sh" "$build"
echo
"$(dirname "$0")/bench-migrate.sh" "$build"
