# Shared by the e2e tests that run VMs (linux-lib.sh sources it; tests
# that do not boot the reference guest source it alone): the test
# guests, a private datastore and runtime directory cleaned up at exit,
# the ok/bad report lines, and the polls the tests wait with.

# need_test_guest FILE: sets tv to the termvisor binary and kernel to the
# test guest FILE (make test-guests) in $BUILD, or skips the test.
need_test_guest() {
	tv=$(realpath "${BUILD:-build}/termvisor")
	kernel=$(realpath "${BUILD:-build}/guests/$1" 2>/dev/null)
	[ -r "$kernel" ] || { echo "test guests not built (make test-guests)"; exit 77; }
}

# vm_sandbox NAME...: a new $tmp holding TERMVISOR_DATASTORE and
# XDG_RUNTIME_DIR for the test's VMs NAME...  When the script exits the
# VMs are stopped, then sandbox_hook runs if the script defines one
# (for what else it started: background pids, a tmux server, a switch),
# then $tmp is removed (kept and named with KEEP=1).  Sets tmp and fails.
vm_sandbox() {
	tmp=$(mktemp -d)
	sandbox_vms="$*"
	trap vm_sandbox_cleanup EXIT
	export TERMVISOR_DATASTORE="$tmp/ds" XDG_RUNTIME_DIR="$tmp/run"
	mkdir -m 700 "$XDG_RUNTIME_DIR"
	fails=0
}
vm_sandbox_cleanup() {
	local v
	for v in $sandbox_vms; do "$tv" vm stop --force "$v" >/dev/null 2>&1; done
	declare -F sandbox_hook >/dev/null && sandbox_hook
	[ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
# vm_stop_ended NAME: stop VM NAME by force and wait (up to 30 s) until
# no process of the sandbox's datastore is left, so that nothing the old
# one still prints is read as coming from the next.
vm_stop_ended() {
	local i
	"$tv" vm stop --force "$1" >/dev/null 2>&1
	for ((i = 0; i < 300; i++)); do
		pgrep -f -- "$tmp/ds" >/dev/null || break
		sleep 0.1
	done
}
# ok WHAT and bad WHAT report a check; bad counts it in $fails.
ok() { echo "ok $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }

# wait_count PARSER FROM N SECONDS: poll until `PARSER FROM` (the test's
# reading of its guest's log from byte offset FROM) prints N or more.
wait_count() {
	local i
	for ((i = 0; i < $4 * 5; i++)); do
		[ "$("$1" "$2")" -ge "$3" ] && return 0
		sleep 0.2
	done
	return 1
}

# wait_file FILE REGEX SECONDS: poll until a line of FILE matches REGEX.
wait_file() {
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		grep -aq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}
# wait_log REGEX SECONDS: the same on $log, the VM's.
wait_log() { wait_file "$log" "$1" "$2"; }

# wait_until SECONDS CMD...: poll until CMD succeeds, ten times a second.
wait_until() {
	local n=$(($1 * 10)) i
	shift
	for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
	return 1
}

# port: a free TCP port on the loopback; listening PORT: something
# listens there now (a migration's destination, once it has read its
# datastore).
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
listening() { grep -qi ":$(printf %04X "$1") 00000000:0000 0A" /proc/net/tcp; }
