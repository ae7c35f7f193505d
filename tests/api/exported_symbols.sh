#!/bin/sh
# SPDX-License-Identifier: MIT
# exported_symbols.sh LIB HEADER MAP: the shared library exports exactly the
# functions the header declares with RANGELOCK_API, all named in the version
# script, and nothing else (no rl_ internals, no libc leftovers).
set -eu
lib=$1 header=$2 map=$3
command -v nm >/dev/null 2>&1 || { echo "nm not installed: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -n 's/^RANGELOCK_API [^(]*[ *]\(rangelock_[a-z_]*\)(.*/\1/p' "$header" | sort > "$tmp/header"
sed -n 's/^[[:space:]]*\(rangelock_[a-z_]*\);$/\1/p' "$map" | sort > "$tmp/map"
nm -D --defined-only "$lib" | awk '{ print $3 }' | sed 's/@.*//' |
	grep -v '^RANGELOCK_[A-Z_]*[0-9.]*$' | sort > "$tmp/lib"
[ -s "$tmp/header" ] || { echo "no RANGELOCK_API declarations found in $header"; exit 1; }
status=0
if ! diff -u "$tmp/header" "$tmp/map"; then
	echo "FAIL: the version script and the header disagree (above)"; status=1
fi
if ! diff -u "$tmp/header" "$tmp/lib"; then
	echo "FAIL: the library's exports and the header disagree (above)"; status=1
fi
echo "$(wc -l < "$tmp/lib") exported symbols checked"
[ $status = 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $status
