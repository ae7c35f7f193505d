#!/bin/sh
# SPDX-License-Identifier: MIT
# plot.sh CSV OUTDIR: draw rlbench's CSV (medians of the repetitions) as PNGs
# with gnuplot: throughput vs threads (disjoint), cost vs held ranges (held),
# and the fair workload's wait-latency distribution per class (fair.png).
set -eu
csv=$1 out=$2
command -v gnuplot >/dev/null 2>&1 || { echo "plot.sh: gnuplot not installed (apt-get install gnuplot-nox); no plots" >&2; exit 0; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median per (workload, params, metric, contender) -> tmp/<workload>.dat lines:
# contender x value
awk -F, 'NR > 1 { print $1 FS $2 FS $3 FS $5 "\t" $7 }' "$csv" |
	sort -t "$(printf '\t')" -k1,1 -k2,2g |
	awk -F '\t' 'function flush() { if (n) print key FS ((n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }
	$1 != key { flush(); key = $1; n = 0 } { v[++n] = $2 } END { flush() }' |
	sed 's/\t/,/' > "$tmp/med"

contenders=$(awk -F, 'NR > 1 { print $5 }' "$csv" | awk '!s[$0]++')
for c in $contenders; do
	# a throughput of 0 is a class starved in the window: not a point
	awk -F, -v c="$c" '$1 == "disjoint" && $4 == c && $5 + 0 > 0 { split($2, p, " "); print p[2], $5 }' "$tmp/med" | sort -n > "$tmp/disjoint.$c"
	awk -F, -v c="$c" '$1 == "held" && $4 == c && $2 ~ /^rd/ && $5 ~ /^[0-9]/ && $5 + 0 > 0 { split($2, p, " "); print (p[2] == 0 ? 1 : p[2]), $5 }' "$tmp/med" | sort -n > "$tmp/held.$c"
	# fair: "writer wait q0.99" -> x = 1 / (1 - q) (the maximum at 10^6), y = us;
	# a class none of whose requests was granted has "inf" waits: not drawn
	for cls in writer reader; do
		awk -F, -v c="$c" -v cls="$cls" '$1 == "fair" && $4 == c && index($3, cls " wait q") == 1 &&
			$5 ~ /^[0-9]/ && $5 + 0 > 0 {
			q = substr($3, length(cls) + 8) + 0
			print (q >= 1 ? 1e6 : 1 / (1 - q)), $5 }' "$tmp/med" | sort -g > "$tmp/fair$cls.$c"
	done
done

# gnuplot's plot list for the files tmp/<prefix>.<contender> that have
# points; with none (no contender had a number), an empty frame that says so
# (gnuplot refuses a plot whose every point is undefined)
# Each contender keeps one colour in every plot and panel (its place in the
# CSV); one with no point in a fair panel is named in its title (starved()).
plot_lines() { # file-prefix
	sep="" i=0
	for c in $contenders; do
		i=$((i + 1))
		if [ -s "$tmp/$1.$c" ]; then
			printf '%s"%s" using 1:2 with linespoints lt %d title "%s"' \
				"$sep" "$tmp/$1.$c" $i "$c"
			sep=", "
		fi
	done
	[ -n "$sep" ] || printf '[1:1e6] [0.01:1e6] -1 title "no request of this class was granted"'
}
# the contenders a panel has no point of (starved there), for its title
starved() { # file-prefix
	list=""
	for c in $contenders; do
		grep -q "^$c\$" "$tmp/ran" 2>/dev/null || continue
		[ -s "$tmp/$1.$c" ] || list="$list${list:+, }$c"
	done
	[ -n "$list" ] && printf ' (starved, no point: %s)' "$list"
	return 0
}
# the contenders that ran the fair workload
awk -F, '$1 == "fair" { print $4 }' "$tmp/med" | sort -u > "$tmp/ran"

gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced
set grid
set key outside right
set output "$out/disjoint.png"
set title "disjoint: threads on their own pages, exclusive 1-page lock+unlock (2 cores)"
set xlabel "threads"; set ylabel "Mops/s (aggregate)"; set logscale x 2
plot $(plot_lines disjoint)
set output "$out/held.png"
set title "held: one shared 1-page lock+unlock while N other ranges are held (N=0 drawn at 1)"
set xlabel "ranges held"; set ylabel "ns per pair"; set logscale x 10; set logscale y 10
plot $(plot_lines held)
set output "$out/fair.png"
set terminal pngcairo size 1100,520 noenhanced
set multiplot layout 1,2 title "fair: wait for the lock, by percentile (4 readers, 1 writer; 2 cores)"
set key inside top left
set xlabel "percentile"; set ylabel "wait (us)"; set logscale x 10; set logscale y 10
set xtics ("50%%" 2, "90%%" 10, "99%%" 100, "99.9%%" 1000, "99.99%%" 10000, "max" 1e6)
set title "writers$(starved fairwriter)"
plot $(plot_lines fairwriter)
set title "readers$(starved fairreader)"
plot $(plot_lines fairreader)
unset multiplot
GP
echo "plot.sh: wrote $out/disjoint.png $out/held.png $out/fair.png"
