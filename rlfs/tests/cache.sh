#!/bin/sh
# SPDX-License-Identifier: MIT
# cache.sh RLFS WORK_DIR: --cache-mb bounds the clean pages rlfs keeps.  A
# 96 MiB file is read twice through the mount while it stays open (one
# rlfile all along) with a 4 MiB cache: after a warm-up the daemon's
# resident memory grows by less than a fifth of the file (without a limit,
# by twice the file).  Then the file is rewritten through the mount and
# must read back right, through the mount and on the backing directory.
# Sanitizer builds (RLFS_RSS_CHECK=0) check the data only: their
# allocators keep freed memory.
. "$(dirname "$0")/lib.sh"
back=$T/back mnt=$T/mnt
mkdir -p "$back"
head -c 100663296 /dev/urandom >"$T/src"
cp "$T/src" "$back/big"
mount_rlfs "$back" "$mnt" --cache-mb=${CACHE_MB:-4} --writeback-ms=10
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$(cat "$mnt.pid")/status"; }

# warm up first: FUSE's threads and their buffers, malloc's arenas
head -c 16777216 "$T/src" >"$mnt/warm"
cmp -n 16777216 "$mnt/warm" "$T/src" || fail "warm-up data differs"
rm "$mnt/warm"
before=$(rss)
exec 4<"$mnt/big"                   # keeps the file's rlfile open
cmp "$T/src" "$mnt/big" || fail "data differs through a small cache"
cmp "$T/src" "$mnt/big" || fail "data differs on the second read"
grown=$(($(rss) - before))
echo "rlfs resident memory grew by $grown KiB reading 96 MiB twice through a ${CACHE_MB:-4} MiB cache"
if [ "${RLFS_RSS_CHECK:-1}" = 1 ] && [ "$grown" -gt 20480 ]; then
	fail "the cache is not bounded"
fi

head -c 100663296 /dev/urandom >"$T/src"
dd if="$T/src" of="$mnt/big" bs=1M conv=notrunc,fsync status=none
cmp "$T/src" "$mnt/big" || fail "rewritten data differs through a small cache"
exec 4<&-
unmount_rlfs "$mnt"
cmp "$T/src" "$back/big" || fail "the backing file differs"
echo "cache: bounded, and the data is right"
