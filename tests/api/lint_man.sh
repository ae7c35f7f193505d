#!/bin/sh
# SPDX-License-Identifier: MIT
# lint_man.sh MANDIR: every page (3 and 1) formats with groff -ww and man --warnings
# without a single warning; every .so link points at a page that exists.
set -eu
dir=$1
command -v groff >/dev/null 2>&1 || { echo "groff not installed: skipped"; exit 77; }
pass=0 fail=0
for page in "$dir"/*.3 "$dir"/*.1; do
	if head -n 1 "$page" | grep -q '^\.so '; then
		target=$(sed -n 's/^\.so man3\///p' "$page")
		if [ -f "$dir/$target" ]; then pass=$((pass + 1)); else
			echo "FAIL: $page links to missing $target"; fail=$((fail + 1)); fi
		continue
	fi
	out=$(groff -ww -man -z "$page" 2>&1)
	if command -v man >/dev/null 2>&1; then
		out="$out$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)"
	fi
	if [ -n "$out" ]; then
		echo "FAIL: $page:"; echo "$out"; fail=$((fail + 1))
	else
		pass=$((pass + 1))
	fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
