# Shared by the reference-guest tests: boot Debian's kernel and run one
# command in it (the guest's tv.run), capturing the serial console.
guest=${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest
tv=${BUILD:-build}/termvisor

need_guest() {
	[ -r "$guest/vmlinuz" ] && [ -r "$guest/initrd.img" ] ||
		{ echo "reference guest not built (make guest)"; exit 77; }
}

# tv.run encoding: '+' is a space, %2B a plus.
tv_enc() { printf '%s' "$1" | sed 's/%/%25/g; s/+/%2B/g; s/ /+/g'; }

# linux_run OUT TIMEOUT COMMAND [termvisor options...]: sets RC.
linux_run() {
	local out=$1 limit=$2 cmd=$3; shift 3
	timeout "$limit" "$tv" run --kernel "$guest/vmlinuz" \
		--initrd "$guest/initrd.img" \
		--append "console=ttyS0 panic=-1 tv.quiet=1 tv.run=$(tv_enc "$cmd")" \
		"$@" </dev/null >"$out" 2>&1
	RC=$?
}

fail() { echo "FAIL: $*"; [ -n "${LOG:-}" ] && tail -n 30 "$LOG"; exit 1; }

# tmux_wait SESSION PATTERN SECONDS HISTORY: 0 once PATTERN shows in the
# pane or its last HISTORY lines of scrollback; else print the pane's tail
# and return 1.
tmux_wait() {
	for ((i = 0; i < $3; i++)); do
		tmux capture-pane -t "$1" -p -S "-$4" | grep -q -- "$2" && return 0
		sleep 1
	done
	tmux capture-pane -t "$1" -p | tail -n 15
	return 1
}

# A private datastore and runtime directory in a new $tmp for a test's
# VMs NAME...: they are stopped and $tmp removed when the script exits.
# Sets tmp and fails; ok and bad report a check and count failures.
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
	rm -rf "$tmp"
}
ok() { echo "ok $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
