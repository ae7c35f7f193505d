#!/bin/sh
# SPDX-License-Identifier: MIT
# rlfs-fio.sh [REPS] [FILESIZE] [RUNTIME]: the fio mix (rlfs/fio/mix.fio:
# buffered and O_DIRECT writers and readers on one file, verify=crc32c) on
# two rlfs mounts side by side, --lock=range and --lock=file (both with
# --direct-io, so that every request reaches the lock), alternating,
# REPS times (default 3, 64m, 10 s), in two scenarios: buffered readers as
# fast as they go, and capped at 5000 IOPS each (the same read load for both
# locks).  Prints IOPS and completion-latency percentiles per job class,
# medians over the runs, and writes every run to bench/results/rlfs-fio.csv.
# Needs root, /dev/fuse, fuse3, fio, python3.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
rlfs=${RLFS:-$top/build/rlfs/rlfs}
reps=${1:-3} size=${2:-64m} runtime=${3:-10}
out=$top/bench/results
mkdir -p "$out"
[ -x "$rlfs" ] || { echo "rlfs-fio: no $rlfs (make; apt-get install libfuse3-dev)" >&2; exit 1; }
for tool in fio fusermount3 python3; do
	command -v $tool >/dev/null || { echo "rlfs-fio: $tool missing" >&2; exit 1; }
done

T=$(mktemp -d "$top/build/rlfs-fio.XXXXXX")
pids=""
cleanup() {
	for lock in range file; do
		mountpoint -q "$T/mnt-$lock" && fusermount3 -u "$T/mnt-$lock"
	done
	for p in $pids; do wait "$p" || true; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for lock in range file; do
	mkdir -p "$T/back-$lock" "$T/mnt-$lock"
	"$rlfs" "$T/back-$lock" "$T/mnt-$lock" -f --lock=$lock --direct-io 2>>"$T/rlfs.log" &
	pids="$pids $!"
done
for lock in range file; do
	for _ in $(seq 100); do mountpoint -q "$T/mnt-$lock" && break; sleep 0.05; done
	mountpoint -q "$T/mnt-$lock" || { cat "$T/rlfs.log"; exit 1; }
done

scenarios="0 5000"   # READER_IOPS: no cap, then capped
echo "rlfs-fio: $(nproc) CPUs, $(uname -r), $(fio --version), file $size, $runtime s per run, $reps runs per lock and scenario"
for cap in $scenarios; do
	for rep in $(seq "$reps"); do
		for lock in range file; do
			(cd "$T" && FILESIZE=$size RUNTIME=$runtime READER_IOPS=$cap \
				fio --directory="$T/mnt-$lock" --output-format=json \
				--output="$T/$cap.$lock.$rep.json" "$top/rlfs/fio/mix.fio") ||
				{ echo "rlfs-fio: fio failed on --lock=$lock" >&2; exit 1; }
			echo "  reader cap $cap IOPS (0: none), run $rep, --lock=$lock: done"
		done
	done
done

python3 - "$T" "$reps" "$out/rlfs-fio.csv" $scenarios <<'PY'
import json, statistics, sys
tmp, reps, csv_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
caps = [int(c) for c in sys.argv[4:]]
# class -> (fio job name, the direction it is measured in)
classes = [("buffered write", "buffered-writer", "write"),
           ("direct write", "direct-writer", "write"),
           ("buffered read", "buffered-reader", "read"),
           ("direct read", "direct-reader", "read")]
rows = []   # cap, lock, rep, class, iops, p50 us, p99 us
for cap in caps:
    for lock in ("range", "file"):
        for rep in range(1, reps + 1):
            text = open(f"{tmp}/{cap}.{lock}.{rep}.json").read()
            jobs = json.loads(text[text.index("{"):])["jobs"]   # after warnings
            for cls, name, rw in classes:
                js = [j[rw] for j in jobs if j["jobname"] == name]
                pct = [j["clat_ns"]["percentile"] for j in js]
                rows.append((cap, lock, rep, cls, sum(j["iops"] for j in js),
                             statistics.median(p["50.000000"] for p in pct) / 1e3,
                             max(p["99.000000"] for p in pct) / 1e3))
with open(csv_path, "w") as f:
    f.write("reader_iops_cap,lock,run,class,iops,p50_us,p99_us\n")
    for r in rows:
        f.write("%d,%s,%d,%s,%.0f,%.1f,%.1f\n" % r)
def med(cap, lock, cls, i):
    return statistics.median(r[i] for r in rows
                             if r[0] == cap and r[1] == lock and r[3] == cls)
for cap in caps:
    print("\nbuffered readers %s:" % ("capped at %d IOPS each" % cap if cap else "not capped"))
    print("| job class | range IOPS | file IOPS | range/file | p50 range / file (us) | p99 range / file (us) |")
    print("|---|---:|---:|---:|---:|---:|")
    for cls, _, _ in classes:
        r, f = med(cap, "range", cls, 4), med(cap, "file", cls, 4)
        print("| %s | %.0f | %.0f | %.2fx | %.0f / %.0f | %.0f / %.0f |" % (
            cls, r, f, r / f, med(cap, "range", cls, 5), med(cap, "file", cls, 5),
            med(cap, "range", cls, 6), med(cap, "file", cls, 6)))
print("\nmedians of %d runs each; every run in %s" % (reps, csv_path))
PY
