#!/bin/sh
# SPDX-License-Identifier: MIT
# cache.sh RLFS WORK_DIR: --cache-mb bounds rlfs's memory.  A 96 MiB file
# written and read twice through the mount while it stays open (one rlfile
# all along), with a 4 MiB cache: the daemon's resident memory grows by
# less than half the file (without a limit it grows by twice the file), and
# the data is right.  Sanitizer builds (RLFS_RSS_CHECK=0) check the data
# only: their allocators keep freed memory.
. "$(dirname "$0")/lib.sh"
back=$T/back mnt=$T/mnt
mount_rlfs "$back" "$mnt" --cache-mb=${CACHE_MB:-4} --writeback-ms=10
head -c 100663296 /dev/urandom >"$T/src"
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$(cat "$mnt.pid")/status"; }
ls "$mnt" >/dev/null
before=$(rss)
exec 4<>"$mnt/big"                  # keeps the file's rlfile open
dd if="$T/src" of="$mnt/big" bs=1M conv=notrunc,fsync status=none
cmp "$T/src" "$mnt/big" || fail "data differs through a small cache"
cmp "$T/src" "$mnt/big" || fail "data differs on the second read"
grown=$(($(rss) - before))
exec 4<&-
echo "rlfs resident memory grew by $grown KiB for 96 MiB through a ${CACHE_MB:-4} MiB cache"
if [ "${RLFS_RSS_CHECK:-1}" = 1 ] && [ "$grown" -gt 49152 ]; then
	fail "the cache is not bounded"
fi
unmount_rlfs "$mnt"
cmp "$T/src" "$back/big" || fail "the backing file differs"
echo "cache: bounded, and the data is right"
