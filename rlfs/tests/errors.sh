#!/bin/sh
# SPDX-License-Identifier: MIT
# errors.sh RLFS WORK_DIR: rlfs refuses to start with a clear message when
# it cannot work (usage, a missing backing directory, a busy or missing
# mount point, the mount point inside the backing directory, no /dev/fuse,
# not root); and once mounted, bad requests get their errno while the
# daemon keeps serving.
. "$(dirname "$0")/lib.sh"
back=$T/back mnt=$T/mnt
mkdir -p "$back" "$mnt"

refuses() {   # refuses EXIT_CODE MESSAGE_PART COMMAND...
	code=$1 want=$2
	shift 2
	st=0
	mounts=$(grep -c " $mnt " /proc/mounts || true)
	"$@" >"$T/out" 2>&1 || st=$?
	[ $st = "$code" ] || { cat "$T/out"; fail "$*: exit $st, not $code"; }
	grep -q -- "$want" "$T/out" || { cat "$T/out"; fail "$*: no '$want'"; }
	[ "$(grep -c " $mnt " /proc/mounts || true)" = "$mounts" ] ||
		fail "$*: mounted anyway"
	echo "ok: refused ($want)"
}

refuses 2 "missing BACKING_DIR and MOUNTPOINT" "$RLFS"
refuses 2 "missing MOUNTPOINT" "$RLFS" "$back"
refuses 2 "unknown option '--bogus'" "$RLFS" --bogus
refuses 2 "unknown option '--bogus'" "$RLFS" "$back" "$mnt" --bogus
refuses 2 "unexpected argument 'extra'" "$RLFS" "$back" "$mnt" extra
refuses 2 "'bogus' is not range or file" "$RLFS" "$back" "$mnt" --lock=bogus
refuses 2 "'0' is not a whole number from 1 to 60000" "$RLFS" "$back" "$mnt" --writeback-ms=0
refuses 2 "cache-mb: '-5' is not a whole number" "$RLFS" "$back" "$mnt" --cache-mb=-5
refuses 2 "cache-mb: '10x' is not a whole number" "$RLFS" "$back" "$mnt" --cache-mb=10x
refuses 2 "cache-mb: '' is not a whole number" "$RLFS" "$back" "$mnt" --cache-mb=
refuses 2 "is not a whole number from 0 to 1048576" "$RLFS" "$back" "$mnt" --cache-mb=99999999999999999999
refuses 2 "max_threads=0: not a whole number" "$RLFS" "$back" "$mnt" -o max_threads=0
refuses 1 "the backing directory must exist" "$RLFS" "$T/missing" "$mnt"
refuses 1 "the mount point must exist" "$RLFS" "$back" "$T/missing"
refuses 1 "inside the backing directory" "$RLFS" "$back" "$back"
mkdir -p "$back/sub"
refuses 1 "inside the backing directory" "$RLFS" "$back" "$back/sub"
# the mount point holds the backing directory: mounting would hide it
refuses 1 "holds the backing directory" sh -c 'cd "$1" && exec "$2" back .' \
	sh "$T" "$RLFS"
chmod 755 "$T"   # so that nobody reaches rlfs's own check
refuses 1 "not root" setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$RLFS" "$back" "$mnt"
refuses 1 "/dev/fuse" unshare -m sh -c \
	'mount -t tmpfs none /dev && exec "$0" "$@"' "$RLFS" "$back" "$mnt"

mount_rlfs "$back" "$mnt"
refuses 1 "busy" "$RLFS" "$back" "$mnt"

# Bad requests: each gets its errno, and the daemon goes on.
expect_error() {   # expect_error MESSAGE_PART COMMAND...
	want=$1
	shift
	if "$@" >"$T/out" 2>&1; then
		fail "$* succeeded"
	fi
	grep -qi -- "$want" "$T/out" || { cat "$T/out"; fail "$*: no '$want'"; }
	echo "ok: $want"
}
head -c 10000 /dev/urandom >"$mnt/f"
expect_error "Invalid argument" dd if=/dev/zero of="$mnt/f" bs=100 count=1 \
	oflag=direct conv=notrunc status=none
expect_error "Invalid argument" dd if="$mnt/f" of=/dev/null bs=4096 skip=1 \
	count=1 iflag=direct,skip_bytes status=none skip=100
expect_error "not supported" fallocate -z -o 0 -l 4096 "$mnt/f"
expect_error "not supported" fallocate -c -o 0 -l 4096 "$mnt/f"
expect_error "No such file" cat "$mnt/missing"
mkdir "$mnt/d" && touch "$mnt/d/x"
expect_error "not empty" rmdir "$mnt/d"
expect_error "Not a directory" cp "$T/out" "$mnt/d/x/y"
expect_error "File too large" truncate -s 1E "$mnt/f"
# a write past the backing file system's largest file: EFBIG from rlfile
# at once with --direct-io; with the kernel's cache (the default) the
# kernel takes it into its cache, and its write-back's EFBIG comes at close
# as EIO, as on any file system behind a write-back cache (the kernel then
# keeps the size it gave the file: doc/rlfs.md)
cp "$mnt/f" "$mnt/big"
expect_error "File too large\|Input/output error" dd if=/dev/zero of="$mnt/big" \
	bs=1 count=1 seek=1152921504606846976 oflag=seek_bytes conv=notrunc status=none
expect_error "exists" mkdir "$mnt/d"

# still serving, and what was written is there
cmp "$mnt/f" "$back/f" || fail "the file changed"
ls "$mnt" >/dev/null || fail "the daemon stopped serving"
unmount_rlfs "$mnt"
echo "errors: every refusal clear, every bad request answered"
