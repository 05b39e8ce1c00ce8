# Shared by the VNC tests (sourced after linux-lib.sh): a free display,
# waiting for console markers, and the libvncclient test client.
vnc_client=${BUILD:-build}/tests/vnc-client

need_vnc_client() {
	[ -x "$vnc_client" ] || { echo "no $vnc_client (make tests-build)"; exit 77; }
}

# A display number whose port 5900+N nobody listens on (from 40 up, out
# of the way of desktops and of each other's tests).
vnc_free_display() {
	python3 - <<'EOF'
import random, socket
for d in random.sample(range(40, 99), 59):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 5900 + d))
        print(d)
        break
    except OSError:
        pass
    finally:
        s.close()
EOF
}

# wait_for FILE PATTERN SECONDS PID: 0 once PATTERN is in FILE (CRs
# stripped); 1 if the time runs out or PID exits first.
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		tr -d '\r' <"$1" | grep -Eqa -- "$2" && return 0
		kill -0 "$4" 2>/dev/null || { tr -d '\r' <"$1" | grep -Eqa -- "$2"; return; }
		sleep 0.1
	done
	return 1
}
