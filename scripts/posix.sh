#!/bin/sh
# SPDX-License-Identifier: MIT
# posix.sh RLFS [OUT_DIR]: run pjdfstest, the POSIX file-system conformance
# suite, inside rlfs mounts (`make posix`): one with the defaults (the
# kernel's page cache) and one with --direct-io, side by side, each over a
# backing directory of its own on the file system that holds OUT_DIR
# (default build/posix).
#
# pjdfstest's unmodified source is in ../shared/third_party/pjdfstest
# (PJDFSTEST_SRC overrides); it is built once into OUT_DIR/pjdfstest.  It
# must run as root, with -o allow_other (it switches uids).  Every
# assertion must pass: the plain file systems of these machines pass them
# all, and doc/rlfs.md lists none that rlfs may fail.  Each mount's prove
# output is in OUT_DIR/<mode>.txt.
#
# Needs root, /dev/fuse, autoconf, automake, perl's prove and openssl; exits
# 77 without them (a failure with RLFS_TESTS_REQUIRED=1, as in CI).
set -eu
RLFS=$(realpath "$1")
OUT=$(realpath -m "${2:-build/posix}")
SRC=${PJDFSTEST_SRC:-$(dirname "$0")/../../shared/third_party/pjdfstest}

skip() {
	if [ "${RLFS_TESTS_REQUIRED:-0}" = 1 ]; then
		echo "posix: cannot run: $*" >&2
		exit 1
	fi
	echo "posix: SKIP: $*" >&2
	exit 77
}
[ "$(id -u)" = 0 ] || skip "not root"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -d "$SRC/tests" ] || skip "no pjdfstest source at $SRC"
for tool in autoreconf make prove openssl fusermount3; do
	command -v $tool >/dev/null || skip "no $tool"
done

mkdir -p "$OUT"
if [ ! -x "$OUT/pjdfstest/pjdfstest" ]; then
	echo "posix: building pjdfstest in $OUT/pjdfstest"
	rm -rf "$OUT/pjdfstest"
	cp -a "$SRC" "$OUT/pjdfstest"
	(cd "$OUT/pjdfstest" && autoreconf -ifs && ./configure && make pjdfstest) \
		>"$OUT/pjdfstest-build.log" 2>&1 ||
		{ tail -20 "$OUT/pjdfstest-build.log"; exit 1; }
fi

T=$(mktemp -d "$OUT/run.XXXXXX")
chmod 755 "$T"   # the uids pjdfstest switches to must reach the mounts
modes="default direct-io"
cleanup() {
	for m in $modes; do
		mountpoint -q "$T/$m/mnt" 2>/dev/null &&
			{ fusermount3 -u "$T/$m/mnt" 2>/dev/null || umount -l "$T/$m/mnt"; }
	done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

for m in $modes; do
	mkdir -p "$T/$m/back" "$T/$m/mnt"
	flag=""
	[ $m = direct-io ] && flag=--direct-io
	"$RLFS" "$T/$m/back" "$T/$m/mnt" -f -o allow_other $flag \
		>"$OUT/rlfs-$m.log" 2>&1 &
	echo $! >"$T/$m/pid"
done
for m in $modes; do
	for _ in $(seq 50); do
		mountpoint -q "$T/$m/mnt" && break
		sleep 0.1
	done
	mountpoint -q "$T/$m/mnt" || { cat "$OUT/rlfs-$m.log"; exit 1; }
done

start=$(date +%s)
provers=""
for m in $modes; do
	(cd "$T/$m/mnt" && prove -r "$OUT/pjdfstest/tests" >"$OUT/$m.txt" 2>&1;
	 echo $? >"$T/$m/rc") &
	provers="$provers $!"
done
wait $provers   # not the daemons, which run until unmounted
rc=0
for m in $modes; do
	summary=$(grep -E '^(Files=|Result:)' "$OUT/$m.txt" | tr '\n' ' ')
	echo "posix: rlfs ($m): $summary"
	if [ "$(cat "$T/$m/rc")" != 0 ]; then
		sed -n '/^Test Summary Report/,$p' "$OUT/$m.txt"
		rc=1
	fi
done
echo "posix: $(( $(date +%s) - start )) s for both mounts"
exit $rc
