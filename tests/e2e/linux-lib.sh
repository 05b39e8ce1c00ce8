# Shared by the reference-guest tests: boot Debian's kernel and run one
# command in it (the guest's tv.run), capturing the serial console.
guest=${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest
tv=${BUILD:-build}/termvisor
. "$(dirname "${BASH_SOURCE[0]}")/sandbox-lib.sh"

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
