# A private sshd for the ssh:// migration tests: on a loopback port, with
# a generated host key and a throwaway client key (nothing in ~/.ssh).
#
# sshd_start DIR PORT [SSH-OPTION...]: start it with its files in DIR
# (DIR/sshd.pid for the caller's cleanup) and set sshcmd to an ssh
# command line that logs in to it (with the options given, e.g.
# "-o SendEnv=XDG_RUNTIME_DIR", which the server accepts).  1 if it
# cannot be started or reached.
sshd_start() {
	local d=$1 p=$2
	shift 2
	ssh-keygen -q -t ed25519 -N '' -f "$d/hostkey" &&
		ssh-keygen -q -t ed25519 -N '' -f "$d/id" || return 1
	cp "$d/id.pub" "$d/authorized_keys"
	cat >"$d/sshd_config" <<EOF2
Port $p
ListenAddress 127.0.0.1
HostKey $d/hostkey
AuthorizedKeysFile $d/authorized_keys
PidFile $d/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AcceptEnv XDG_RUNTIME_DIR
EOF2
	mkdir -p /run/sshd
	/usr/sbin/sshd -f "$d/sshd_config" -E "$d/sshd.log" || return 1
	sshcmd="ssh -F /dev/null -i $d/id -o IdentitiesOnly=yes -o UserKnownHostsFile=$d/known -o StrictHostKeyChecking=accept-new $*"
	$sshcmd -p "$p" "$(id -un)@127.0.0.1" true || {
		tail -n 5 "$d/sshd.log"
		return 1
	}
}
