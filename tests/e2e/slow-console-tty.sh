#!/bin/bash
# The serial console in a real terminal (tmux): the reference guest's
# shell answers what is typed, Ctrl-C reaches the guest, Ctrl-a x ends
# the VM with status 0 and the terminal's settings come back.
set -u
. "$(dirname "$0")/linux-lib.sh"
need_guest
command -v tmux >/dev/null || { echo "tmux is not installed"; exit 77; }
s=tv-console-$$
out=$(mktemp)
trap 'tmux kill-session -t $s 2>/dev/null; rm -f "$out"' EXIT
tvabs=$(cd "$(dirname "$tv")" && pwd)/$(basename "$tv")
tmux new-session -d -s $s -x 100 -y 30 \
	"stty -a >$out.before; $tvabs run --accel bt --kernel $guest/vmlinuz --initrd $guest/initrd.img --append 'console=ttyS0 tv.quiet=1'; echo EXIT=\$? >>$out; stty -a >$out.after; sleep 60"
wait_for() { tmux_wait "$s" "$1" "$2" 200; }	# pattern seconds
wait_for 'guest:/#' 300 || fail "no shell prompt"
tmux send-keys -t $s "echo typed-\$((6*7))" Enter
wait_for 'typed-42' 30 || fail "the guest did not run what was typed"
tmux send-keys -t $s "sleep 100" Enter
sleep 2
tmux send-keys -t $s C-c
tmux send-keys -t $s "echo after-\$((1+1))" Enter
wait_for 'after-2' 30 || fail "Ctrl-C did not reach the guest's shell"
tmux send-keys -t $s C-a x
for ((i = 0; i < 30; i++)); do grep -q EXIT= "$out" && break; sleep 1; done
grep -q '^EXIT=0' "$out" || fail "Ctrl-a x: $(cat "$out")"
sleep 1
cmp -s "$out.before" "$out.after" || fail "terminal settings not restored"
rm -f "$out.before" "$out.after"
echo "ok: typed input, Ctrl-C in the guest, Ctrl-a x exits 0, tty restored"
