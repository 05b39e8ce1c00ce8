# Shared by the dashboard tests (tui.sh, tui-net.sh, tui-migrate-storage.sh,
# slow-tui-*.sh): the dashboard runs in session tui of a tmux server of
# the test's own, on $tmp/tmux (the test ends it with `t kill-server`),
# and these read its pane.
t() { tmux -S "$tmp/tmux" "$@"; }
# screen: the pane's text now; show_screen: indented, after a failure.
screen() { t capture-pane -p -t tui 2>/dev/null; }
show_screen() { screen | sed 's/^/	| /'; }
# wait_screen REGEX [SECONDS]: poll until the pane shows a line matching
# REGEX (10 s by default).
wait_screen() {
	local i
	for ((i = 0; i < ${2:-10} * 10; i++)); do
		screen | grep -Eq -- "$1" && return 0
		sleep 0.1
	done
	return 1
}
# expect WHAT REGEX [SECONDS]: ok WHAT once the pane shows REGEX, else
# bad, with the pane.
expect() {
	if wait_screen "$2" "${3:-10}"; then
		ok "$1"
	else
		bad "$1: no line matching '$2' on the screen:"
		show_screen
	fi
}

# hung_socket PATH: a Unix socket at PATH that accepts connections and
# never answers (a hung VM or switch), in the background: $! is its pid.
hung_socket() {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(8)
held = []
while True:
    held.append(s.accept()[0])
' "$1" &
}
