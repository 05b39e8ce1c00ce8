#!/bin/bash
# The dashboard's console pane with the reference guest on the software
# CPU, driven in tmux like a person: start the VM with s, open its console
# with c, see the shell's prompt, type a command and see its output in the
# pane, Ctrl-] goes back to the list with the VM still running.
set -u
. "$(dirname "$0")/linux-lib.sh"
. "$(dirname "$0")/tui-lib.sh"
need_guest
command -v tmux >/dev/null || { echo "tmux is not installed"; exit 77; }
tvabs=$(cd "$(dirname "$tv")" && pwd)/$(basename "$tv")
vm_sandbox g
sandbox_hook() { t kill-server 2>/dev/null; }
# wait_for REGEX SECONDS: the pane shows a line matching REGEX; or show it.
wait_for() { wait_screen "$1" "$2" || { show_screen; return 1; }; }
"$tvabs" vm create g --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" \
	--append "console=ttyS0 cryptomgr.notests=1 tv.quiet=1" --accel bt \
	>/dev/null || fail "vm create"
t new-session -d -s tui -x 80 -y 24 "env TERM=vt100 NO_COLOR=1 '$tvabs'; sleep 600"
wait_for '^g +stopped' 10 || fail "the dashboard does not list g"
t send-keys -t tui s
wait_for '^g +running' 30 || fail "s did not start g"
t send-keys -t tui c
wait_for 'serial console \(running, live' 10 || fail "c: no live console pane"
wait_for 'guest:/# *$' 300 || fail "no shell prompt in the console pane"
t send-keys -t tui "echo typed-\$((6*7))" Enter
wait_for '^typed-42$' 60 || fail "the typed command's output is not in the pane"
t send-keys -t tui C-]
wait_for '^g +running' 10 || fail "Ctrl-] did not go back to the list"
"$tvabs" vm status g | grep -q "state: *running" || fail "the VM did not keep running"
echo "ok: s starts, c shows the prompt live, typed command's output in the pane, Ctrl-] back"
