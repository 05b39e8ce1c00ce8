#!/bin/sh
# Install (as root) or name (otherwise) the Debian 12 packages termvisor
# needs to build, test and benchmark.  Quiet when everything is there.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev mandoc cpio busybox-static
libcriterion-dev libjansson-dev liburing-dev zlib1g-dev liblzma-dev libncurses-dev
libvncserver-dev libpcap-dev qemu-system-x86 qemu-utils e2fsprogs libpng-dev console-setup-linux
novnc websockify chromium chromium-driver
dpkg-dev kmod tmux python3 fio tshark nettle-dev openssh-server openssh-client vncsnapshot libjpeg-turbo-progs iperf3"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "termvisor needs these Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 2
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
