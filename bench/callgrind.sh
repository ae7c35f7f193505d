#!/bin/sh
# SPDX-License-Identifier: MIT
# callgrind.sh [RLBENCH]: instructions per uncontended single-page
# lock+unlock pair for every contender, counted by valgrind (deterministic,
# unlike wall time on a shared 2-core machine).  Only bench_pairs_loop()
# and what it calls is counted (--toggle-collect), over PAIRS pairs.
set -eu
rlbench=${1:-build/bench/rlbench}
pairs=20000
command -v valgrind >/dev/null 2>&1 || { echo "callgrind.sh: valgrind not installed" >&2; exit 1; }
printf '%-10s %8s %8s\n' contender "rd Ir" "wr Ir"
for c in $("$rlbench" --list | awk '/^contenders:/ { on = 1; next } on { print $1 }'); do
	line="$c"
	for mode in "" --exclusive; do
		ir=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
			--toggle-collect=bench_pairs_loop "$rlbench" --callgrind "$c" \
			--pairs $pairs $mode 2>&1 | awk '/Collected :/ { print $4 }')
		line="$line $(awk -v ir="$ir" -v n=$pairs 'BEGIN { printf "%.0f", ir / n }')"
	done
	printf '%-10s %8s %8s\n' $line
done
