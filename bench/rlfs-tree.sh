#!/bin/sh
# SPDX-License-Identifier: MIT
# rlfs-tree.sh [REPS]: what a user does with a file system they keep
# mounted, timed side by side on the plain backing file system, on
# libfuse's passthrough_ll example (built from libfuse3-dev's examples; its
# defaults serve no extended attributes, and with -o xattr it serves them,
# as rlfs does for ACLs) and on rlfs with its defaults, REPS times each
# (default 3), medians printed:
#   untar   tar x of 3 000 small files (1-16 KiB) in 150 directories
#   stat    stat of every entry of that tree (find -exec stat, cold names)
#   read    read every file (find | xargs cat)
#   cp+rm   cp -a of the tree, then rm -rf of both copies
#   write   cp of a 256 MiB file into the mount
#   read256 cold sequential read of it (unmounted and mounted again)
#   rand4k  fio random 4 KiB reads and writes, 4 jobs, buffered, then O_DIRECT
# Each file system is mounted afresh for each repetition.  Rows go to
# bench/results/rlfs-tree.csv.  Needs root, /dev/fuse, fuse3, libfuse3-dev,
# fio, python3.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
rlfs=${RLFS:-$top/build/rlfs/rlfs}
reps=${1:-3}
out=$top/bench/results
examples=/usr/share/doc/libfuse3-dev/examples
[ -x "$rlfs" ] || { echo "rlfs-tree: no $rlfs (make)" >&2; exit 1; }
for tool in fio fusermount3 python3 pkg-config; do
	command -v $tool >/dev/null || { echo "rlfs-tree: $tool missing" >&2; exit 1; }
done
[ -f $examples/passthrough_ll.c ] ||
	{ echo "rlfs-tree: no $examples/passthrough_ll.c (apt-get install libfuse3-dev)" >&2; exit 1; }

T=$(mktemp -d "$top/build/rlfs-tree.XXXXXX")
chmod 755 "$T"
cleanup() {
	mountpoint -q "$T/mnt" && fusermount3 -u "$T/mnt"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 $(pkg-config fuse3 --cflags) $examples/passthrough_ll.c -o "$T/passthrough_ll" \
	$(pkg-config fuse3 --libs) 2>"$T/cc.log" || { cat "$T/cc.log"; exit 1; }
python3 - "$T/tree.tar" <<'PY'
import io, random, sys, tarfile
rnd = random.Random(1)
with tarfile.open(sys.argv[1], "w") as tar:
    for d in range(150):
        info = tarfile.TarInfo("tree/d%03d" % d); info.type = tarfile.DIRTYPE
        info.mode = 0o755; tar.addfile(info)
        for f in range(20):
            data = rnd.randbytes(rnd.randint(1024, 16384))
            info = tarfile.TarInfo("tree/d%03d/f%02d" % (d, f))
            info.size = len(data); info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
PY
head -c $((256 << 20)) /dev/urandom >"$T/big"
mkdir -p "$T/back" "$T/mnt"

mount_fs() {   # mount_fs KIND: the file system under test at $T/mnt
	case $1 in
	ext4) return 0 ;;
	passthrough_ll) "$T/passthrough_ll" -o source="$T/back" "$T/mnt" ;;
	pt_ll-xattr) "$T/passthrough_ll" -o source="$T/back" -o xattr "$T/mnt" ;;
	rlfs) "$rlfs" "$T/back" "$T/mnt" ${RLFS_OPTS:-} 2>>"$T/rlfs.log" ;;
	esac
	for _ in $(seq 100); do mountpoint -q "$T/mnt" && return 0; sleep 0.05; done
	echo "rlfs-tree: $1 did not mount" >&2
	exit 1
}
umount_fs() {
	if mountpoint -q "$T/mnt"; then
		fusermount3 -u "$T/mnt"
		while pgrep -f "$T/mnt" >/dev/null; do sleep 0.05; done
	fi
}
dir_of() { [ "$1" = ext4 ] && echo "$T/back" || echo "$T/mnt"; }
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
secs() {   # secs COMMAND...: wall seconds
	python3 -c 'import subprocess, sys, time
t = time.monotonic(); subprocess.run(sys.argv[1:], check=True)
print("%.3f" % (time.monotonic() - t))' "$@"
}
fio_iops() {   # fio_iops DIR DIRECT: read+write IOPS of the random mix,
	# nan where the file system refuses it (passthrough_ll opens its
	# backing file O_DIRECT with unaligned buffers: EINVAL)
	fio --name=r --directory="$1" --size=64m --numjobs=4 --rw=randrw \
		--bs=4k --direct="$2" --ioengine=psync --runtime=5 --time_based \
		--group_reporting --output-format=json 2>>"$T/fio.log" |
		python3 -c 'import json, sys
try:
    j = json.load(sys.stdin)["jobs"][0]
    ok = j["error"] == 0
except ValueError:
    ok = False
print("%.0f" % (j["read"]["iops"] + j["write"]["iops"]) if ok else "nan")'
}

csv=$T/rows.csv
for rep in $(seq "$reps"); do
	for fs in ext4 passthrough_ll pt_ll-xattr rlfs; do
		rm -rf "$T/back" && mkdir "$T/back"
		cold
		mount_fs $fs
		d=$(dir_of $fs)
		echo "$fs,untar,$(secs tar -xf "$T/tree.tar" -C "$d")" >>"$csv"
		umount_fs; cold; mount_fs $fs
		echo "$fs,stat,$(secs sh -c "find '$d/tree' -exec stat -c %s {} + >/dev/null")" >>"$csv"
		umount_fs; cold; mount_fs $fs
		echo "$fs,read,$(secs sh -c "find '$d/tree' -type f -print0 | xargs -0 cat >/dev/null")" >>"$csv"
		echo "$fs,cp+rm,$(secs sh -c "cp -a '$d/tree' '$d/copy' && rm -rf '$d/tree' '$d/copy'")" >>"$csv"
		echo "$fs,write,$(secs cp "$T/big" "$d/big")" >>"$csv"
		umount_fs; cold; mount_fs $fs
		echo "$fs,read256,$(secs sh -c "cat '$d/big' >/dev/null")" >>"$csv"
		rm -f "$d/big"
		echo "$fs,rand4k,$(fio_iops "$d" 0)" >>"$csv"
		echo "$fs,rand4k-direct,$(fio_iops "$d" 1)" >>"$csv"
		rm -f "$d"/r.*
		umount_fs
		echo "rlfs-tree: run $rep, $fs: done" >&2
	done
done

mkdir -p "$out"
python3 - "$csv" "$out/rlfs-tree.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.reader(open(sys.argv[1])))
with open(sys.argv[2], "w") as f:
    f.write("fs,test,value\n")
    for r in rows:
        f.write(",".join(r) + "\n")
val = {}
for fs, test, v in rows:
    val.setdefault((test, fs), []).append(float(v))
tests = ["untar", "stat", "read", "cp+rm", "write", "read256", "rand4k", "rand4k-direct"]
print("%-14s %9s %15s %12s %9s %12s %12s" % ("test", "ext4", "passthrough_ll",
      "pt_ll-xattr", "rlfs", "rlfs/pt_ll", "rlfs/xattr"))
for t in tests:
    m = {fs: statistics.median(val[(t, fs)])
         for fs in ("ext4", "passthrough_ll", "pt_ll-xattr", "rlfs")}
    unit = "IOPS" if t.startswith("rand") else "s"
    def ratio(base):
        if m[base] != m[base]:   # nan: it cannot run this
            return "n/a"
        return "%.2fx %s" % (m["rlfs"] / m[base], "time" if unit == "s" else "IOPS")
    print("%-14s %9.3g %15.3g %12.3g %9.3g %12s %12s  (%s)" % (t, m["ext4"],
          m["passthrough_ll"], m["pt_ll-xattr"], m["rlfs"],
          ratio("passthrough_ll"), ratio("pt_ll-xattr"), unit))
PY
