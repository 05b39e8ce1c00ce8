#!/bin/bash
# vm stats with the multiboot test guest (its VNC on a Unix socket,
# which vm start and vm status report): the table, --json, and --watch:
# a line a second without a terminal until SIGINT (exit 0), a top-like
# screen in a terminal (tmux), and the end of the VM ends the watch.
set -u
. "$(dirname "$0")/sandbox-lib.sh"
need_test_guest multiboot.elf
vm_sandbox st
sandbox_hook() { tmux -S "$tmp/tmux" kill-server 2>/dev/null; }

"$tv" vm create st --memory 64M --kernel "$kernel" --vnc "unix:$tmp/vnc" \
	>/dev/null && "$tv" vm start st >"$tmp/out" || { echo "FAIL vm start"; exit 1; }
grep -q "VNC unix:$tmp/vnc$" "$tmp/out" && ok "vm start says where VNC listens" ||
	bad "vm start: $(cat "$tmp/out")"
"$tv" vm status st | grep -q "^vnc: *unix:$tmp/vnc$" && ok "vm status too" ||
	bad "vm status: $("$tv" vm status st)"
"$tv" vm stats st >"$tmp/out" 2>&1 && grep -q "^st: running, up" "$tmp/out" &&
	grep -q "^ *vcpu  *cpu-s" "$tmp/out" && ok "vm stats: the table" ||
	bad "vm stats: $(cat "$tmp/out")"
"$tv" vm stats --json st | python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d["devices"], list) and d["vcpus"]' &&
	ok "vm stats --json: vcpus and devices" || bad "vm stats --json"
"$tv" vm status --watch st >/dev/null 2>&1
[ $? -eq 2 ] && ok "--watch is for stats only (exit 2)" || bad "vm status --watch"

# Without a terminal: a line a second, until SIGINT, then exit 0.
timeout --preserve-status -s INT 3.5 "$tv" vm stats st --watch >"$tmp/w" 2>&1
rc=$?
n=$(grep -cE '^[0-9]{2}:[0-9]{2}:[0-9]{2} st running cpu ([0-9.]+%|-) exits/s [0-9]+ disk-rd/s - disk-wr/s - net-rx/s - net-tx/s -$' "$tmp/w")
[ $rc -eq 0 ] && [ "$n" -ge 3 ] && [ "$n" -le 5 ] &&
	ok "--watch without a terminal: $n lines in 3.5 s, exit 0 on SIGINT" ||
	bad "--watch: exit $rc, $n lines: $(cat "$tmp/w")"
grep -qE 'cpu [0-9.]+%' <(sed -n 2p "$tmp/w") && ok "... the second line has a CPU%" ||
	bad "no CPU% on the second line: $(sed -n 2p "$tmp/w")"

# In a terminal: redrawn in place, as top.
if command -v tmux >/dev/null; then
	tmux -S "$tmp/tmux" new-session -d -s w -x 100 -y 30 \
		"'$tv' vm stats --watch st; echo EXIT=\$?; sleep 60"
	for _ in $(seq 50); do
		tmux -S "$tmp/tmux" capture-pane -p -t w | grep -q 'Ctrl-C quits' && break
		sleep 0.1
	done
	scr=$(tmux -S "$tmp/tmux" capture-pane -p -t w)
	grep -q '^st: running, up .*, CPU .*exits/s' <<<"$scr" &&
		[ "$(grep -c '^st: running' <<<"$scr")" -eq 1 ] &&
		ok "--watch in a terminal: one screen, redrawn" ||
		bad "--watch in a terminal: $scr"
	tmux -S "$tmp/tmux" send-keys -t w C-c
	for _ in $(seq 30); do
		tmux -S "$tmp/tmux" capture-pane -p -t w | grep -q 'EXIT=' && break
		sleep 0.1
	done
	tmux -S "$tmp/tmux" capture-pane -p -t w | grep -q 'EXIT=0' &&
		ok "... Ctrl-C: exit 0" || bad "Ctrl-C: $(tmux -S "$tmp/tmux" capture-pane -p -t w | tail -3)"
fi

# The VM going away ends the watch with 0.
"$tv" vm stats st --watch >"$tmp/w" 2>&1 &
wpid=$!
sleep 1.5
"$tv" vm stop --force st >/dev/null
for _ in $(seq 50); do kill -0 $wpid 2>/dev/null || break; sleep 0.1; done
if kill -0 $wpid 2>/dev/null; then
	kill $wpid; bad "--watch outlived the VM"
else
	wait $wpid
	rc=$?
	[ $rc -eq 0 ] && grep -q "st: the VM shut down" "$tmp/w" &&
		ok "the VM's end ends --watch (exit 0)" || bad "--watch at the end: exit $rc: $(tail -2 "$tmp/w")"
fi

[ $fails -eq 0 ] && echo "vm-stats-watch: all passed" && exit 0
echo "vm-stats-watch: $fails failed"
exit 1
