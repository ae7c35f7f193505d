# SPDX-License-Identifier: MIT
# lib.sh - sourced by rlfs's tests: mount rlfs under a temporary directory
# and always unmount it, whatever happens to the test.
#
#   . lib.sh RLFS_BINARY WORK_DIR   sets $RLFS, $T (a fresh directory under
#                                   WORK_DIR) and a trap that unmounts and
#                                   removes everything on exit
#   mount_rlfs BACKING MNT [rlfs options]   start rlfs -f, wait for the mount
#   unmount_rlfs MNT                        fusermount3 -u, wait for rlfs
#   wait_rlfs MNT                           wait for rlfs (stopped otherwise)
#   fail MESSAGE                            print and exit 1
#
# A test skips (exit 77) when it cannot mount: not root, no /dev/fuse, no
# fusermount3.  With RLFS_TESTS_REQUIRED=1 (CI) that is a failure instead.
# A watchdog unmounts everything after RLFS_TEST_LIMIT seconds (default
# 150, below CTest's timeout, whose SIGKILL no trap survives), so that a
# hung test fails instead of leaving a mount behind.
set -eu
RLFS=$1
T=$(mktemp -d "$2/rlfs-test.XXXXXX")
rlfs_pids=""

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	if [ "${RLFS_TESTS_REQUIRED:-0}" = 1 ]; then
		fail "cannot run: $* (RLFS_TESTS_REQUIRED=1)"
	fi
	echo "SKIP: $*" >&2
	exit 77
}

[ "$(id -u)" = 0 ] || skip "not root"
[ -c /dev/fuse ] || skip "no /dev/fuse"
command -v fusermount3 >/dev/null || skip "no fusermount3 (apt-get install fuse3)"

# Unmount (lazily) and stop every rlfs this test started: in the watchdog,
# which cannot see the test's variables, from the files mount_rlfs writes.
unmount_all() {
	[ -f "$T/mounts" ] || return 0
	while read -r m; do
		if mountpoint -q "$m"; then
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		fi
		kill "$(cat "$m.pid" 2>/dev/null)" 2>/dev/null || true
	done <"$T/mounts"
}

(
	# its sleep must not hold CTest's output pipe open after the test
	trap 'kill $nap 2>/dev/null; exit 0' TERM
	sleep "${RLFS_TEST_LIMIT:-150}" >/dev/null 2>&1 &
	nap=$!
	wait $nap || exit 0
	echo "FAIL: $0: still running after ${RLFS_TEST_LIMIT:-150} s; unmounting" >&2
	unmount_all
) &
watchdog=$!

cleanup() {
	rc=$?
	kill "$watchdog" 2>/dev/null || true
	unmount_all
	for p in $rlfs_pids; do
		wait "$p" 2>/dev/null || true
	done
	# files a test made immutable or append-only ($UNPROTECT)
	[ -z "${UNPROTECT:-}" ] || chattr -i -a $UNPROTECT 2>/dev/null || true
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_rlfs() {
	backing=$1 mnt=$2
	shift 2
	mkdir -p "$backing" "$mnt"
	# as from a terminal: SIGINT stops it (a script's &-jobs ignore it)
	env --default-signal=INT "$RLFS" "$backing" "$mnt" -f "$@" 2>>"$T/rlfs.log" &
	rlfs_pids="$rlfs_pids $!"
	echo $! >"$mnt.pid"
	echo "$mnt" >>"$T/mounts"
	for _ in $(seq 200); do   # 10 s: sanitizer builds start slowly
		mountpoint -q "$mnt" && return 0
		kill -0 $! 2>/dev/null || break
		sleep 0.05
	done
	cat "$T/rlfs.log" >&2
	fail "rlfs did not mount $mnt"
}

# Unmount MNT and wait for its daemon, which must exit 0.
unmount_rlfs() {
	fusermount3 -u "$1" || fail "fusermount3 -u $1"
	wait_rlfs "$1"
}

# Wait for MNT's daemon to exit (after an unmount or a signal); it must
# exit 0 and leave nothing mounted.
wait_rlfs() {
	pid=$(cat "$1.pid")
	st=0
	wait "$pid" || st=$?
	[ $st = 0 ] || { cat "$T/rlfs.log" >&2; fail "rlfs on $1 exited with $st"; }
	! mountpoint -q "$1" || fail "$1 still mounted"
}
