#!/bin/bash
# Run the test suites: scripts/run-tests.sh BUILD_DIR unit|fast|slow
# Prints one closing line "N passed, N failed, N skipped" and exits
# non-zero if anything failed.
set -u
build=$1
suite=${2:-fast}
pass=0 fail=0 skip=0
failed=()

run_one() {	# name, command...
	local name=$1; shift
	local log
	log=$(mktemp)
	"$@" >"$log" 2>&1
	local rc=$?
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); echo "PASS $name"
	elif [ $rc -eq 77 ]; then
		skip=$((skip + 1)); echo "SKIP $name: $(tail -n 1 "$log")"
	else
		fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name (exit $rc)"
		tail -n 40 "$log" | sed 's/^/    /'
	fi
	rm -f "$log"
}

# Criterion unit tests: one binary per module (the slow suite comes after
# the fast one, which ran them already).
for t in "$build"/tests/test_*; do
	[ "$suite" = slow ] && break
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" "$t" --jobs 2
done

if [ "$suite" != unit ]; then
	for t in tests/e2e/*.sh; do
		[ -e "$t" ] || continue
		case "$(basename "$t")" in
		*-lib.sh) continue ;;	# sourced by the tests, not a test
		slow-*) [ "$suite" = slow ] || continue ;;
		*) [ "$suite" = slow ] && continue ;;
		esac
		run_one "$(basename "$t" .sh)" env BUILD="$build" bash "$t"
	done
fi

echo
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
