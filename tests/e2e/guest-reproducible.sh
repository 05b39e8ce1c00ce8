#!/bin/bash
# The reference guest's initramfs is reproducible: two builds from the same
# kernel package into two fresh directories give byte-identical initrd.img
# (and the same vmlinuz).  Reuses the .deb that `make guest` downloaded.
set -eu
cd "$(dirname "$0")/../.."
cache=${GUESTDIR:-${XDG_CACHE_HOME:-$HOME/.cache}/termvisor/guest}
deb=$(ls "$cache"/linux-image-6.1.0-*-amd64_*_amd64.deb 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$deb" ]; then
	echo "skip: no kernel package in $cache (run make guest)"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for d in a b; do
	mkdir "$tmp/$d"
	ln "$deb" "$tmp/$d/" 2>/dev/null || cp "$deb" "$tmp/$d/"
done
# The second build starts a second later, so a clock leaking into the
# archive would show.
scripts/mkguest.sh "$tmp/a"
sleep 1
TMPDIR=$tmp scripts/mkguest.sh "$tmp/b"
for f in initrd.img vmlinuz; do
	a=$(sha256sum <"$tmp/a/$f") b=$(sha256sum <"$tmp/b/$f")
	if [ "$a" != "$b" ]; then
		echo "FAIL: two builds of $f differ"
		exit 1
	fi
done
# A second run over an up-to-date build does nothing, quickly.
before=$(stat -c %Y.%s "$tmp/a/initrd.img")
start=$(date +%s%N)
scripts/mkguest.sh "$tmp/a"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$(stat -c %Y.%s "$tmp/a/initrd.img")" != "$before" ] || [ "$ms" -gt 1000 ]; then
	echo "FAIL: rerun of an up-to-date build rebuilt or took ${ms} ms"
	exit 1
fi
echo "initrd.img reproducible ($(wc -c <"$tmp/a/initrd.img") bytes), rerun ${ms} ms"
