#!/bin/sh
# SPDX-License-Identifier: MIT
# check-readme.sh [--timings]: the README keeps its promises.
#   Every file and directory it names or links exists: link targets, and
#   every `path` in backquotes under one of the tree's top directories
#   (build/ and install prefixes are made by the commands, not promised);
#   every example program it names is in examples/.
#   With --timings, it also runs `make run` and `make test` here and checks
#   that each took between half and one and a half times the minutes the
#   README quotes for it ("make run ... (about N min)").
set -eu
cd "$(dirname "$0")/.."
readme=README.md
failed=0 passed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

{
	# [text](target): not a URL, not an anchor
	grep -o '](\([^)#:]*\))' "$readme" | sed 's/^](//; s/)$//'
	# `dir/...` under the tree's top directories
	grep -o '`[a-z.]*/[^` ]*`' "$readme" | tr -d '`' |
		grep -E '^(doc|examples|include|scripts|bench|man|src|tests|rlfile|rlfs|verify|debian|tools|abi|cmake)/' |
		grep -v '[{}*]'
} | sort -u | while read -r path; do
	[ -e "$path" ] && echo ok || echo "FAIL: README names $path, which does not exist"
done >"${TMPDIR:-/tmp}/check-readme.$$"
while read -r line; do
	case $line in ok) ok ;; *) echo "$line"; failed=$((failed + 1)) ;; esac
done <"${TMPDIR:-/tmp}/check-readme.$$"
rm -f "${TMPDIR:-/tmp}/check-readme.$$"
for prog in $(grep -o '`[a-z_]*\.c`' "$readme" | tr -d '`' | sort -u); do
	[ -f "examples/$prog" ] && ok || bad "README names examples/$prog, which does not exist"
done

if [ "${1:-}" = --timings ]; then
	for target in run test; do
		quoted=$(sed -n "s/^make $target .*(about \([0-9][0-9]*\) min.*/\1/p" "$readme")
		[ -n "$quoted" ] || { bad "README quotes no time for make $target"; continue; }
		start=$(date +%s)
		make $target >/dev/null 2>&1 || bad "make $target failed"
		took=$(( $(date +%s) - start ))
		echo "make $target: $took s; the README says about $quoted min"
		[ $((took * 2)) -ge $((quoted * 60)) ] && [ $((took * 2)) -le $((quoted * 180)) ] &&
			ok || bad "make $target took $took s, not about $quoted min"
	done
fi
echo "$passed passed, $failed failed"
[ $failed = 0 ]
