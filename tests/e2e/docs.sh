#!/bin/bash
# The man pages are clean under mandoc -Tlint, and every command answers
# --help with its usage on stdout and exit status 0.
set -u
tv=${BUILD:-build}/termvisor
fails=0
if ! command -v mandoc >/dev/null; then
	echo "mandoc is not installed"; exit 77
fi
if ! out=$(mandoc -Tlint -Wwarning man/*.[1-9] 2>&1) || [ -n "$out" ]; then
	echo "FAIL mandoc -Tlint:"; echo "$out"; fails=$((fails + 1))
fi
for cmd in "" "run" "vm" "disk" "vm create" "disk create"; do
	# shellcheck disable=SC2086
	if ! out=$("$tv" $cmd --help 2>&1) || ! grep -qi "usage" <<<"$out"; then
		echo "FAIL: termvisor $cmd --help"; echo "$out" | head -5
		fails=$((fails + 1))
	fi
done
[ $fails -eq 0 ]
