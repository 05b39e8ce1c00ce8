#!/bin/bash
# The dashboard driven like a person in tmux at 80x24 with TERM=vt100 and
# NO_COLOR: start a VM with a key and see it running, its statistics and
# its serial console, pause and resume it, stop it gracefully then by force, resize the window, see a VM that
# died as stale, and quit with status 0.  Without a terminal, `termvisor`
# alone still prints its usage and exits 2.
set -u
. "$(dirname "$0")/sandbox-lib.sh"
. "$(dirname "$0")/tui-lib.sh"
cd "$(dirname "$0")/../.."
tv=$(realpath "${BUILD:-build}/termvisor")
guest=$(realpath "${BUILD:-build}/guests/multiboot.elf" 2>/dev/null)
command -v tmux >/dev/null || { echo "tmux not installed"; exit 77; }
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
[ -r "$guest" ] || { echo "multiboot test guest not built"; exit 77; }
vm_sandbox t1
sandbox_hook() {
	[ -n "${vmpid:-}" ] && kill -9 "$vmpid" 2>/dev/null
	[ -n "${hungpid:-}" ] && kill "$hungpid" 2>/dev/null
	t kill-server 2>/dev/null
}

out=$("$tv" </dev/null 2>&1)
rc=$?
[ $rc -eq 2 ] && grep -q "usage" <<<"$out" && grep -q "top" <<<"$out" &&
	ok "termvisor without a terminal: usage, exit 2" ||
	bad "termvisor without a terminal: exit $rc, output: $out"

out=$("$tv" top </dev/null 2>&1)
rc=$?
[ $rc -eq 2 ] && grep -q "needs a terminal" <<<"$out" &&
	ok "termvisor top without a terminal: exit 2" ||
	bad "termvisor top without a terminal: exit $rc, output: $out"

"$tv" vm create t1 --memory 64M --kernel "$guest" >/dev/null ||
	{ echo "FAIL vm create"; exit 1; }
# zz-bad cannot start (its kernel is gone); zz-hung has a control socket
# that accepts and never says a word.
cp "$guest" "$tmp/gone.elf"
"$tv" vm create zz-bad --memory 64M --kernel "$tmp/gone.elf" >/dev/null &&
	"$tv" vm create zz-hung --memory 64M --kernel "$guest" >/dev/null ||
	{ echo "FAIL vm create"; exit 1; }
rm "$tmp/gone.elf"
mkdir -p -m 700 "$XDG_RUNTIME_DIR/termvisor"
hung_socket "$XDG_RUNTIME_DIR/termvisor/zz-hung.sock"
hungpid=$!
t new-session -d -s tui -x 80 -y 24 \
	"env TERM=vt100 NO_COLOR=1 '$tv'; echo \$? >'$tmp/rc'; sleep 600"
expect "dashboard shows the stopped VM" '^t1 +stopped +1 +64M'
expect "host summary line" '^termvisor +[0-9]+ CPUs +mem .*committed +datastore .* free'
expect "help line" 'q quit'

t send-keys -t tui s
expect "s: the VM runs (no disk, no NIC: no rates)" '^t1 +running +1 +64M +[0-9.]+ +- +- +[0-9]+s' 20
vmpid=$(sed -n 's/.*running (pid \([0-9]*\) .*/\1/p' < <("$tv" vm list))
[ -n "$vmpid" ] && ok "vm list agrees: pid $vmpid" || bad "vm list: $("$tv" vm list)"
[ -s "$TERMVISOR_DATASTORE/t1/t1.log" ] || [ -e "$TERMVISOR_DATASTORE/t1/t1.log" ] &&
	ok "the VM logs to t1/t1.log" || bad "no t1/t1.log"

t send-keys -t tui p
expect "p: paused" '^t1 +paused'
t send-keys -t tui p
expect "p again: running" '^t1 +running'

# t asks for a snapshot's name and runs `termvisor snapshot take` in the
# background; Esc at the prompt cancels.
t send-keys -t tui t
expect "t asks for the snapshot's name" 'Snapshot name for t1: _'
t send-keys -t tui -l 'nope'
t send-keys -t tui Escape
expect "Esc cancels the prompt" '^cancelled'
t send-keys -t tui t
t send-keys -t tui -l 'snap1'
t send-keys -t tui Enter
expect "t snap1 Enter: the snapshot is taken" 't1: snapshot snap1: done' 20
"$tv" snapshot list t1 2>&1 | grep -q 'snap1 .*running' &&
	ok "snapshot list has snap1 (running)" ||
	bad "snapshot list: $("$tv" snapshot list t1 2>&1)"
expect "the VM still runs" '^t1 +running'
# m asks for the destination; a failed start says why, the VM runs on.
t send-keys -t tui m
expect "m asks for the destination" 'Migrate to .* for t1: _'
t send-keys -t tui -l 'tcp://127.0.0.1:1'
t send-keys -t tui Enter
# then whether the disks go too (Enter: no)
expect "m asks whether to copy the disks" 'Copy the disks too\? \(y/N\) for t1: _'
t send-keys -t tui Enter
# tcp:// asks for the shared secret, and never shows it.
expect "tcp:// asks for the secret" 'Shared secret .* for t1: _'
t send-keys -t tui -l 'hunter2-secret'
expect "... typed, not shown" 'Shared secret .* for t1: _$' 2
screen | grep -q hunter2 && bad "the secret is on the screen" || ok "the secret is not on the screen"
t send-keys -t tui Enter
expect "m: a migration that cannot start says why" 't1: migrate to tcp://127.0.0.1:1 failed: .*migration of t1 failed' 20
screen | grep -q 'failed: .*secret' && bad "the secret did not reach migrate: $(screen | grep secret)" ||
	ok "... the secret reached it (no complaint about it)"
ps -eo args | grep -q '[h]unter2' && bad "the secret is on a command line" || ok "the secret is on no command line"
expect "... and the VM runs on" '^t1 +running'

t send-keys -t tui Enter
expect "Enter: the VM's statistics" '^t1 +running +1 vCPU +64M +up [0-9]'
expect "... with a CPU% graph" '^CPU% +[0-9.]+% \|[ _.:=+*#-]+\|$' 5
expect "... disk and network graphs" '^net +- +\|[ _.:=+*#-]+\|$' 5
expect "... and the per-vCPU table" '^ +0 +[0-9.]+ +[0-9]+ '
t send-keys -t tui Enter
expect "Enter again: the list" '^NAME +STATE'

t send-keys -t tui c
expect "c: the guest's serial console" '^checks [0-9]+ passed, 0 failed$'
expect "... to its last line" 'did not end the VM; halting$'
expect "... live, keys going to the guest" 'serial console \(running, live; keys go'
t send-keys -t tui q
expect "... q too (not a quit)" 'serial console \(running, live' 2
t send-keys -t tui C-]
expect "Ctrl-]: the list" '^NAME +STATE'

t send-keys -t tui '?'
expect "? shows the help page" 'force stop'
t send-keys -t tui x
expect "any key goes back" '^NAME +STATE'

# This guest ignores the ACPI power button: a graceful stop stays
# "stopping" until the force.
t send-keys -t tui S
expect "S: stopping" '^t1 +(stopping|stopped)'
t send-keys -t tui F
expect "F asks first" 'Force stop t1\? \(y/n\)'
t send-keys -t tui y
expect "F y: stopped" '^t1 +stopped' 20
for _ in $(seq 50); do kill -0 "$vmpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$vmpid" 2>/dev/null && bad "the VMM (pid $vmpid) is still there" ||
	ok "the VMM is gone"

t resize-window -t tui -x 50 -y 15
expect "50x15: the list redraws without VNC, UPTIME and NET" '^NAME +STATE +CPUS +MEMORY +CPU% +DISK$'
expect "50x15: the help line is on the last row" 'q quit' 3
[ "$(screen | wc -l)" -eq 15 ] && ok "15 rows" || bad "rows: $(screen | wc -l)"
t resize-window -t tui -x 120 -y 30
expect "120x30: all columns again" '^NAME +STATE +CPUS +MEMORY +CPU% +DISK +NET +UPTIME +VNC'
expect "120x30: the row is there" '^t1 +stopped'

# A VM that dies leaves its socket behind: stale, never a hang.
t send-keys -t tui s
expect "s again: running" '^t1 +running' 20
vmpid=$(sed -n 's/.*running (pid \([0-9]*\) .*/\1/p' < <("$tv" vm list))
[ -n "$vmpid" ] && kill -9 "$vmpid"
expect "a killed VM shows stale" '^t1 +stale'

expect "a VM that never answers is unresponsive" '^zz-hung +unresponsive' 10
t send-keys -t tui '?'
expect "... and the keys still work" 'force stop' 2
t send-keys -t tui x
t send-keys -t tui j
t send-keys -t tui s
expect "a VM that cannot start says why" 'zz-bad exited \(status [0-9]+\): .+' 10

t send-keys -t tui q
for _ in $(seq 50); do [ -s "$tmp/rc" ] && break; sleep 0.1; done
[ "$(cat "$tmp/rc" 2>/dev/null)" = 0 ] && ok "q quits with status 0" ||
	bad "q: exit status '$(cat "$tmp/rc" 2>/dev/null)'"

# ^C leaves through endwin too, not with the terminal left raw.
rm -f "$tmp/rc"
t new-window -t tui "env TERM=vt100 '$tv' top; echo \$? >'$tmp/rc'; stty -a >'$tmp/stty'; sleep 600"
expect "termvisor top shows the list" '^t1 +'
t send-keys -t tui C-c
for _ in $(seq 50); do [ -s "$tmp/stty" ] && break; sleep 0.1; done
[ "$(cat "$tmp/rc" 2>/dev/null)" = 0 ] && grep -q ' icanon' "$tmp/stty" &&
	grep -q ' echo ' "$tmp/stty" && ok "^C quits and restores the terminal" ||
	bad "^C: exit '$(cat "$tmp/rc" 2>/dev/null)', $(grep -o ' -\?icanon\| -\?echo ' "$tmp/stty" | tr -d '\n')"

[ $fails -eq 0 ] && echo "tui: all passed" || echo "tui: $fails failed"
[ $fails -eq 0 ]
