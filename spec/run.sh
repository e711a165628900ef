#!/bin/sh
# run.sh INTERP PATH... - runs busted specs through the fluxloop interpreter and ends
# with the line CI reads: "N passed, N failed".
interp=$1; shift
out=$(mktemp)
cd "$(dirname "$0")/.." || exit 2
"$interp" /usr/bin/busted --output=TAP "$@" >"$out" 2>&1
status=$?
# Show failures in full, and only a count of what passed.
grep -v '^ok ' "$out"
passed=$(grep -c '^ok ' "$out")
failed=$(grep -c '^not ok ' "$out")
rm -f "$out"
# busted exits non-zero on a load error that yields no "not ok" line: count it as a failure.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
