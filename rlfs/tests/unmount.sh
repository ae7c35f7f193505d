#!/bin/sh
# SPDX-License-Identifier: MIT
# unmount.sh RLFS WORK_DIR: stopping rlfs loses nothing.  SIGTERM and
# SIGINT while a file is still open with dirty pages in rlfile's cache
# (written by a process that has not closed it: a close writes back;
# write-back otherwise held off for a minute): rlfs unmounts, writes them
# back and exits 0.  SIGKILL after fsync: what fsync covered is on the
# backing disk.  Without -f, rlfs becomes a daemon and fusermount3 -u ends
# it.
. "$(dirname "$0")/lib.sh"
back=$T/back mnt=$T/mnt
head -c 300000 /dev/urandom >"$T/data"

# write_open FILE SOURCE OFFSET: write SOURCE into FILE at OFFSET from a
# process that keeps FILE open (no close, so no write-back at close) until
# killed; returns once the data is written.  Its pid: $writer.
write_open() {
	rm -f "$T/written"
	python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
data, off = open(sys.argv[2], "rb").read(), int(sys.argv[3])
for i in range(0, len(data), 7000):
    os.pwrite(fd, data[i:i + 7000], off + i)
open(sys.argv[4], "w").close()
time.sleep(60)' "$1" "$2" "$3" "$T/written" &
	writer=$!
	for _ in $(seq 200); do [ -f "$T/written" ] && return 0; sleep 0.05; done
	fail "the writer did not write $1"
}

for sig in TERM INT; do
	mount_rlfs "$back" "$mnt" --writeback-ms=60000
	exec 3<>"$mnt/$sig"
	write_open "$mnt/$sig" "$T/data" 0
	cmp "$T/data" "$mnt/$sig" || fail "SIG$sig: written data unreadable"
	[ "$(stat -c %s "$back/$sig")" = 300000 ] || fail "SIG$sig: no size on disk"
	kill -s $sig "$(cat "$mnt.pid")"
	wait_rlfs "$mnt"
	kill $writer; wait $writer 2>/dev/null || true
	exec 3<&-
	cmp "$T/data" "$back/$sig" || fail "SIG$sig lost dirty pages"
	echo "ok: SIG$sig unmounted and wrote back an open file's dirty pages"
done

mount_rlfs "$back" "$mnt" --writeback-ms=60000
exec 3<>"$mnt/kill"
dd if="$T/data" of="$mnt/kill" bs=4096 count=40 conv=fsync status=none
# more writes after the fsync, beside what it covered (the kernel's cache
# may write them back at any moment, so over the synced range they could
# not tell a loss from a later write)
head -c 40960 /dev/zero >"$T/zeros"
write_open "$mnt/kill" "$T/zeros" 163840
kill -s KILL "$(cat "$mnt.pid")"
wait "$(cat "$mnt.pid")" 2>/dev/null || true
kill $writer; wait $writer 2>/dev/null || true
exec 3<&-
umount -l "$mnt"
head -c 163840 "$T/data" | cmp -n 163840 - "$back/kill" ||
	fail "SIGKILL lost data that fsync had returned for"
echo "ok: SIGKILL after fsync kept what fsync covered"

# as a daemon: rlfs returns once mounted; fusermount3 -u stops the daemon
"$RLFS" "$back" "$mnt" || fail "rlfs as a daemon: exit $?"
mountpoint -q "$mnt" || fail "the daemon did not mount"
daemon=$(pgrep -f "^$RLFS $back $mnt\$") || fail "no daemon process"
echo "$daemon" >"$mnt.pid"   # for the watchdog and the cleanup
head -c 5000 "$T/data" >"$mnt/daemon"
fusermount3 -u "$mnt"
for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.05; done
! kill -0 "$daemon" 2>/dev/null || fail "the daemon outlived fusermount3 -u"
head -c 5000 "$T/data" | cmp - "$back/daemon" || fail "the daemon lost a write"
echo "ok: as a daemon, stopped by fusermount3 -u, with its data written back"
