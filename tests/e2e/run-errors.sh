#!/bin/bash
# Bad input to `termvisor run`: each case gets exactly one line on stderr,
# exit status 2, and leaves nothing running.
set -u
tv=${BUILD:-build}/termvisor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

expect2() {	# description, expected text, command...
	local what=$1 text=$2; shift 2
	"$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	local rc=$? lines
	lines=$(wc -l <"$tmp/err")
	if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$text" "$tmp/err"; then
		echo "FAIL $what: exit $rc, $lines stderr lines:"; cat "$tmp/err"
		fails=$((fails + 1))
	else
		echo "ok $what: $(cat "$tmp/err")"
	fi
}

head -c 65536 /dev/urandom >"$tmp/junk"
printf 'tiny' >"$tmp/tiny"
# A real bzImage header is needed for the size checks: the reference guest.
guest=${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest
expect2 "missing kernel" "No such file" "$tv" run --kernel "$tmp/nope" --accel bt
expect2 "unreadable kernel" "not a regular file" "$tv" run --kernel "$tmp" --accel bt
expect2 "not a bzImage" "not a bzImage" "$tv" run --kernel "$tmp/junk" --accel kvm
expect2 "cpus 0" "--cpus 0" "$tv" run --kernel "$tmp/junk" --cpus 0
expect2 "cpus too many" "--cpus 65" "$tv" run --kernel "$tmp/junk" --cpus 65
expect2 "bad memory" "--memory 12Q" "$tv" run --kernel "$tmp/junk" --memory 12Q
expect2 "unknown option" "--frobnicate" "$tv" run --frobnicate
expect2 "unknown command" "unknown command" "$tv" frobnicate
if [ -r "$guest/vmlinuz" ]; then
	head -c $((200 << 20)) /dev/zero >"$tmp/big"
	expect2 "initrd too big" "initrd too big" "$tv" run --accel kvm \
		--kernel "$guest/vmlinuz" --initrd "$tmp/big" --memory 128M
	expect2 "memory too small" "memory too small" "$tv" run --accel kvm \
		--kernel "$guest/vmlinuz" --memory 20M
	expect2 "missing initrd" "initrd" "$tv" run --accel kvm \
		--kernel "$guest/vmlinuz" --initrd "$tmp/nope"
fi
if command -v unshare >/dev/null && [ "$(id -u)" -eq 0 ]; then
	expect2 "no /dev/kvm" "no /dev/kvm" unshare -m sh -c \
	    "mount -t tmpfs none /dev && exec $tv run --accel kvm --kernel $tmp/junk"
fi
# Every case above named a file under $tmp: a survivor would show it.
if pgrep -f "$tmp" >/dev/null; then
	echo "FAIL: a termvisor run process was left behind"
	fails=$((fails + 1))
fi
[ $fails -eq 0 ]
