#!/bin/sh
# SPDX-License-Identifier: MIT
# programs.sh RLFS WORK_DIR: programs that map files, on a default rlfs
# mount (no options):
#   - a shared writable mapping, stored through, then read back with
#     read(2) by another process; and a write(2) seen through a mapping
#     made before it;
#   - SQLite in WAL mode (its -shm file is a shared mapping): two processes
#     writing a table in turns, a third reading, an integrity check;
#   - git: clone (packs are mapped), commit, fsck, and a clone from the
#     mount back out.
# Each result is checked through the mount and, after unmounting, on the
# backing directory.
. "$(dirname "$0")/lib.sh"
back=$T/back mnt=$T/mnt
for tool in python3 sqlite3 git; do
	command -v $tool >/dev/null || skip "no $tool (apt-get install $tool)"
done
mount_rlfs "$back" "$mnt" ${RLFS_OPTS:-}

# 1. mappings and read/write agree, both ways
python3 - "$mnt/m" <<'EOF' || fail "a shared mapping and read/write disagree"
import mmap, os, subprocess, sys
path = sys.argv[1]
with open(path, "wb") as f:
    f.write(b"\0" * 65536)
fd = os.open(path, os.O_RDWR)
m = mmap.mmap(fd, 65536, mmap.MAP_SHARED)
m[4096:4096 + 11] = b"hello, mmap"
m.flush()
# another process reads it with read(2)
got = subprocess.run(["dd", "if=" + path, "bs=1", "skip=4096", "count=11",
                      "status=none"], capture_output=True, check=True).stdout
assert got == b"hello, mmap", got
# a write(2) by another process shows in the mapping made before it
subprocess.run(["dd", "of=" + path, "bs=1", "seek=20000", "conv=notrunc",
                "status=none"], input=b"written", check=True)
assert m[20000:20007] == b"written", m[20000:20007]
m.close()
os.close(fd)
print("ok: a shared mapping and read/write agree, both ways")
EOF

# 2. SQLite, WAL mode: writers in turns from two processes, a reader
db=$mnt/t.db
sqlite3 "$db" "PRAGMA journal_mode=WAL; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);" \
	>"$T/mode" 2>&1 || fail "sqlite3: $(cat "$T/mode")"
[ "$(cat "$T/mode")" = wal ] || fail "journal_mode: $(cat "$T/mode")"
writer() {   # writer FIRST: 200 rows, one transaction each, FIRST, FIRST+2, ...
	k=$1
	while [ $k -lt 400 ]; do
		echo "INSERT INTO t VALUES($k, hex(randomblob(100)));"
		k=$((k + 2))
	done | sqlite3 -cmd ".timeout 10000" "$db" || echo fail >"$T/failed"
}
writer 0 & w1=$!
writer 1 & w2=$!
while kill -0 $w1 2>/dev/null || kill -0 $w2 2>/dev/null; do
	sqlite3 -cmd ".timeout 10000" "$db" "SELECT count(*) FROM t;" >/dev/null ||
		echo fail >"$T/failed"
done
wait $w1 $w2
[ ! -f "$T/failed" ] || fail "a SQLite writer or reader failed"
[ "$(sqlite3 "$db" 'SELECT count(*), sum(k) FROM t;')" = "400|79800" ] ||
	fail "SQLite rows: $(sqlite3 "$db" 'SELECT count(*), sum(k) FROM t;')"
[ "$(sqlite3 "$db" 'PRAGMA integrity_check;')" = ok ] || fail "SQLite integrity"
echo "ok: SQLite in WAL mode: two writers, a reader, 400 rows, integrity ok"

# 3. git: clone into the mount, commit there, fsck, clone back out
src=$T/src
git init -q "$src"
for i in $(seq 1 30); do
	head -c 20000 /dev/urandom | base64 >"$src/file$i"
	git -C "$src" add "file$i"
	git -C "$src" -c user.name=t -c user.email=t@t commit -qm "file $i"
done
git -C "$src" gc -q   # one pack, mapped by every later reader
git clone -q --no-local "$src" "$mnt/repo" || fail "git clone onto the mount"
echo change >>"$mnt/repo/file1"
git -C "$mnt/repo" -c user.name=t -c user.email=t@t commit -qam change ||
	fail "git commit on the mount"
git -C "$mnt/repo" gc -q || fail "git gc on the mount"
git -C "$mnt/repo" fsck --strict --no-progress 2>"$T/fsck" || fail "git fsck: $(cat "$T/fsck")"
git clone -q --no-local "$mnt/repo" "$T/out" || fail "git clone from the mount"
[ "$(git -C "$T/out" rev-list --count HEAD)" = 31 ] || fail "the clone back lost commits"
echo "ok: git clone, commit, gc, fsck on the mount, and a clone back"

# after unmounting, the backing directory holds the same
sum() { (cd "$1" && sha256sum m t.db && git -C repo rev-parse HEAD); }
sum "$mnt" >"$T/through"
unmount_rlfs "$mnt"
sum "$back" >"$T/backing"
cmp "$T/through" "$T/backing" || fail "the backing directory differs after unmount"
[ "$(sqlite3 "$back/t.db" 'SELECT count(*) FROM t;')" = 400 ] ||
	fail "SQLite on the backing directory"
echo "programs: mappings, SQLite WAL and git work on a default mount"
