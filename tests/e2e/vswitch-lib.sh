# Sourced by tests/e2e/vswitch-*.sh: a private runtime directory and
# datastore, the termvisor binary, cleanup of the switches we started.
tv=$(realpath "${BUILD:-build}/termvisor")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -x "$tv" ] || { echo "termvisor is not built"; exit 77; }
export tv	# for the tests' python (os.environ["tv"])
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
. "$here/sandbox-lib.sh"
vm_sandbox
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
vsw_cleanup_hooks=()
sandbox_hook() {
	local h f
	for h in "${vsw_cleanup_hooks[@]}"; do eval "$h"; done
	# Every switch this test started: by the pid in its lock file.
	for f in "$tmp"/run*/termvisor/*.vswitch.lock; do
		[ -e "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
}
# vsw_udp_echo NS ADDR PORT: in network namespace NS, a UDP service on
# ADDR:PORT that answers every datagram with "echo:" and the datagram
# (the far end of an uplink), ended with the test.
vsw_udp_echo() {
	ip netns exec "$1" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"echo:" + d, a)
' "$2" "$3" &
	vsw_cleanup_hooks+=("kill $! 2>/dev/null")
}
finish() {
	[ $fails -eq 0 ] || { echo "$fails failed"; exit 1; }
	exit 0
}
