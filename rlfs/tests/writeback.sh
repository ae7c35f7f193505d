#!/bin/sh
# SPDX-License-Identifier: MIT
# writeback.sh RLFS WORK_DIR: write-back errors are told, dirty data that
# cannot be written is kept, and dirty memory is bounded.
#   1. A backing file system that fills up (a 16 MiB tmpfs): a dd that
#      writes more than fits without fsync fails (at its close, or at a
#      write once half the cache is dirty), never exits 0; every open
#      description hears of the error at its fsync; the dirty pages stay,
#      and once there is room again they reach the disk whole.
#   2. 1 GiB written with dd bs=1M through --cache-mb=64: the daemon's peak
#      resident memory grows by less than the cache plus 48 MiB (it grew by
#      640-820 MB before writers were throttled), and after the close it is
#      back within 16 MiB of where it started.
#   3. With --cache-shared, four files written at once stay within the one
#      limit together.  Sanitizer builds
#      (RLFS_RSS_CHECK=0) check the data only: their allocators keep memory.
. "$(dirname "$0")/lib.sh"
small=$T/small mnt=$T/mnt
mkdir -p "$small"
mount -t tmpfs -o size=16m rlfs-test "$small" || skip "cannot mount a tmpfs"
echo "$small" >>"$T/mounts"   # unmounted by the cleanup too
rss() { awk "/^$1/ { print \$2 }" "/proc/$(cat "$mnt.pid")/status"; }

# 1a. dd of 24 MiB onto 16 MiB, no fsync: the error reaches dd
mount_rlfs "$small" "$mnt" --writeback-ms=50
head -c 25165824 /dev/urandom >"$T/src"
if dd if="$T/src" of="$mnt/f" bs=1M status=none 2>"$T/dd.err"; then
	fail "dd onto a full file system exited 0"
fi
grep -q "No space left" "$T/dd.err" || { cat "$T/dd.err"; fail "dd: not ENOSPC"; }
echo "ok: dd without fsync onto a full file system fails: $(head -n 1 "$T/dd.err")"
rm "$mnt/f"   # and with it the dirty pages rlfs kept for it
# room() waits until the tmpfs has its room back: a removed file's blocks
# go when the kernel forgets its inode (FUSE's FORGET, moments after the
# last name and open), and rlfs closes its descriptor of it
room() {
	for _ in $(seq 200); do
		[ "$(df --output=avail -k "$small" | tail -n 1)" -ge 16000 ] && return 0
		sleep 0.05
	done
	fail "the tmpfs did not get its room back: $(df -k "$small" | tail -n 1)"
}
room

# 1b. two descriptions, one writes; each fsync hears of ENOSPC; the pages
# stay dirty, and once room is made they are written whole
head -c 12582912 /dev/zero >"$small/filler"   # 4 MiB left
head -c 8388608 /dev/urandom >"$T/src"
python3 - "$mnt/g" "$T/src" "$small/filler" <<'EOF' || fail "fsync did not tell of the write-back error"
import errno, os, sys
path, src, filler = sys.argv[1:]
a = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
b = os.open(path, os.O_RDONLY)
data = open(src, "rb").read()
assert os.pwrite(a, data, 0) == len(data)      # 8 MiB: under half the cache
for name, fd in ("the writer", a), ("a reader", b):
    try:
        os.fsync(fd)
        sys.exit(name + "'s fsync succeeded on a full file system")
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
os.unlink(filler)                             # room again
for fd in a, b:
    # the failed write-back of the other's fsync is news to each, once
    # (errseq); after it, fsync succeeds: the pages were written
    try: os.fsync(fd)
    except OSError as e: assert e.errno == errno.ENOSPC, e
    os.fsync(fd)
assert os.pread(b, len(data), 0) == data
os.close(a)
os.close(b)
print("ok: both descriptions heard ENOSPC at fsync; with room, the data went whole")
EOF
cmp "$T/src" "$small/g" || fail "the backing file differs after room was made"
rm "$mnt/g"
room

# 1c. the last close of a file whose pages cannot be written keeps them
head -c 12582912 /dev/zero >"$small/filler"
dd if="$T/src" of="$mnt/h" bs=1M status=none 2>/dev/null &&
	fail "dd onto a full file system exited 0"
rm "$small/filler"
for _ in $(seq 100); do   # the writeback thread retries every 50 ms
	cmp -s "$T/src" "$small/h" && break
	sleep 0.05
done
cmp "$T/src" "$small/h" || fail "dirty pages dropped after a failed last close"
echo "ok: a failed last close kept its dirty pages until they could be written"
unmount_rlfs "$mnt"

# 2. dirty memory bounded
back=$T/back
mount_rlfs "$back" "$mnt" --cache-mb=64
head -c 16777216 /dev/urandom >"$mnt/warm" && rm "$mnt/warm"   # threads, arenas
before=$(rss VmRSS)
dd if=/dev/zero of="$mnt/big" bs=1M count=1024 status=none || fail "dd of 1 GiB"
peak=$(($(rss VmHWM) - before))
for _ in $(seq 40); do   # the kernel sends the release after close returns
	after=$(($(rss VmRSS) - before))
	[ $after -le $((16 * 1024)) ] && break
	sleep 0.05
done
[ "$(stat -c %s "$mnt/big")" = 1073741824 ] || fail "1 GiB written, size $(stat -c %s "$mnt/big")"
echo "rlfs: 1 GiB through --cache-mb=64: peak resident +$((peak / 1024)) MiB, after close +$((after / 1024)) MiB"
if [ "${RLFS_RSS_CHECK:-1}" = 1 ]; then
	[ $peak -le $(((64 + 48) * 1024)) ] || fail "dirty memory not bounded: +$peak KiB"
	[ $after -le $((16 * 1024)) ] || fail "memory kept after close: +$after KiB"
fi
unmount_rlfs "$mnt"
[ "$(stat -c %s "$back/big")" = 1073741824 ] || fail "the backing file is not 1 GiB"
rm -f "$back/big"

# 3. --cache-shared: one limit for all files; 4 files of 256 MiB written at
# once through --cache-mb=64 stay within it together (each alone would be)
mount_rlfs "$back" "$mnt" --cache-mb=64 --cache-shared
head -c 16777216 /dev/urandom >"$mnt/warm" && rm "$mnt/warm"
before=$(rss VmRSS)
writers=""
for i in 1 2 3 4; do
	dd if=/dev/zero of="$mnt/f$i" bs=1M count=256 status=none &
	writers="$writers $!"
done
for p in $writers; do wait $p || fail "a dd through the shared cache failed"; done
peak=$(($(rss VmHWM) - before))
echo "rlfs: 4 x 256 MiB at once through --cache-mb=64 --cache-shared: peak resident +$((peak / 1024)) MiB"
if [ "${RLFS_RSS_CHECK:-1}" = 1 ]; then
	[ $peak -le $(((64 + 48) * 1024)) ] || fail "the shared limit does not hold: +$peak KiB"
fi
for i in 1 2 3 4; do
	[ "$(stat -c %s "$mnt/f$i")" = 268435456 ] || fail "f$i: size $(stat -c %s "$mnt/f$i")"
done
unmount_rlfs "$mnt"
rm -f "$back"/f?
echo "writeback: errors told, dirty pages kept, dirty memory bounded"
