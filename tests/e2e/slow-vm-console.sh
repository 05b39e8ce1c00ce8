#!/bin/bash
# vm start and vm console in a real terminal (tmux) with the reference
# guest on the software CPU: the shell's prompt comes through the
# console, what is typed reaches the guest's shell, Ctrl-] detaches with
# the VM still running and the terminal's settings restored, and a second
# attach shows the earlier output again.
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
command -v tmux >/dev/null || { echo "tmux is not installed"; exit 77; }
tvabs=$(cd "$(dirname "$tv")" && pwd)/$(basename "$tv")
s=tv-vmcon-$$
vm_sandbox g
sandbox_hook() { tmux kill-session -t $s 2>/dev/null; }
"$tvabs" vm create g --kernel "$guest/vmlinuz" --initrd "$guest/initrd.img" \
	--append "console=ttyS0 cryptomgr.notests=1 tv.quiet=1" --accel bt \
	>/dev/null || fail "vm create"
"$tvabs" vm start g >"$tmp/start" 2>&1 || { cat "$tmp/start"; fail "vm start"; }
grep -q "g running: console" "$tmp/start" || fail "vm start said: $(cat "$tmp/start")"
out=$tmp/tty
tmux new-session -d -s $s -x 100 -y 30 \
	"stty -a >$out.before; $tvabs vm console g; echo EXIT=\$? >>$out; stty -a >$out.after; sleep 120"
wait_for() { tmux_wait "$s" "$1" "$2" 300; }	# pattern seconds
wait_for 'guest:/#' 300 || fail "no shell prompt through vm console"
tmux send-keys -t $s "echo typed-\$((6*7))" Enter
wait_for 'typed-42' 30 || fail "the guest did not run what was typed"
tmux send-keys -t $s C-]
for ((i = 0; i < 30; i++)); do grep -q EXIT= "$out" 2>/dev/null && break; sleep 1; done
grep -q '^EXIT=0' "$out" || fail "Ctrl-]: $(cat "$out" 2>/dev/null)"
sleep 1
cmp -s "$out.before" "$out.after" || fail "terminal settings not restored"
"$tvabs" vm status g | grep -q "state: *running" || fail "the VM did not keep running"
# A second attach: the history has what was typed before.
timeout 30 "$tvabs" vm console g </dev/null >"$tmp/again" 2>&1
grep -q typed-42 "$tmp/again" || fail "no history on a second attach"
"$tvabs" vm stop --force g >/dev/null || fail "vm stop"
echo "ok: prompt, typed input, Ctrl-] detaches (VM runs, tty restored), history on re-attach"
