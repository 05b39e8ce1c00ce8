# Shared by the migration tests: a reference guest that fills a buffer
# with random bytes, prints its checksum, then counts forever while it
# dirties memory, printing the buffer's checksum every 20 counts.
. "$(dirname "$0")/linux-lib.sh"

mig_cmd='dd if=/dev/urandom of=/tmp/buf bs=1M count=8 2>/dev/null; echo "sum0 $(md5sum </tmp/buf)"; i=0; while :; do i=$((i+1)); echo "count $i"; dd if=/dev/urandom of=/tmp/w bs=64k count=4 2>/dev/null; if [ $((i % 20)) = 0 ]; then echo "sum $(md5sum </tmp/buf)"; fi; done'
mig_append="console=ttyS0 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$mig_cmd")"
mig_pids=()

mig_cleanup() {
	for p in "${mig_pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${mig_pids[@]}"; do wait "$p" 2>/dev/null; done
	[ -n "${tmp:-}" ] && rm -rf "$tmp"
}

# The counts in FILE, one per line.  (A count needs a digit: the serial
# stream can stop mid-line, after "count " or part of the number.)
mig_counts() { grep -ao 'count [0-9][0-9]*' "$1" | awk '{print $2}'; }

# mig_check SRC_OUT DST_OUT: the counter continues on the destination
# with no gap and no repeat, and the buffer's checksum never changes.
# The byte stream goes on where the source stopped, mid-line even, so
# the two outputs are read as one (but for the destination's last line,
# which its end may have cut).
mig_check() {
	local last first sum0
	last=$(mig_counts "$1" | tail -n 1)
	first=$(mig_counts "$2" | head -n 1)
	[ -n "$last" ] && [ -n "$first" ] || fail "no counts (source '$last', destination '$first')"
	cat "$1" "$2" | sed '$d' >"$2.all"
	mig_counts "$2.all" | awk 'NR > 1 && $1 != prev + 1 { exit 1 } { prev = $1 }' ||
		fail "a gap or a repeat where the source ($last) handed over to the destination ($first): $(tail -c 60 "$1" | tr '\n' '|') / $(head -c 60 "$2" | tr '\n' '|')"
	sum0=$(grep -ao 'sum0 [0-9a-f]*' "$1" | awk '{print $2}')
	[ -n "$sum0" ] || fail "the source printed no checksum"
	grep -ao 'sum [0-9a-f]*' "$2" | awk '{print $2}' | grep -qv "^$sum0\$" &&
		fail "the buffer's checksum changed after the migration"
	grep -aq "sum $sum0" "$2" || fail "the destination printed no checksum"
	echo "counter $last -> $first, buffer checksum $sum0 intact"
}
