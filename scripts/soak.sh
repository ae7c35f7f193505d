#!/bin/sh
# SPDX-License-Identifier: MIT
# soak.sh BUILD_DIR [SECONDS]: the long runs that held up under an
# adversarial review (issue 16), bounded: each step runs SECONDS (default
# 60; rlfs's torture runs twice, with 4 and 8 processes), so the whole takes
# about 16 x SECONDS plus setup (17 minutes at 60).  `make soak` runs
# it; `make test` runs each of these for a few seconds.
#   1. the shadow-overlap stress: 256 threads; 32 threads flipping between
#      the fast and the precise path; debug mode, oversubscribed; 64
#      threads on a new lock every 25 ms, so that its table grows under
#      load once a phase; 32 threads with one range in two up to 320
#      pages, held over several blocks' slots, in both tables; processes
#      sharing a lock, one killed every 20 ms (8 and 32 of them)
#   2. rlfile's torture with the range lock, on tmpfs (/dev/shm) and on the
#      build directory's file system, with a small evicting cache, and
#      with loads and stores through a real mapping (--mmap; skipped where
#      userfaultfd cannot serve one)
#   3. rlfs (root, /dev/fuse): the multi-process torture on a mount, and
#      fio's verifying mix, in both lock modes
# Any failure stops it with a non-zero exit.
set -eu
B=$(cd "$1" && pwd)
S=${2:-60}
R=$(cd "$(dirname "$0")/.." && pwd)
step() { echo "== soak: $*"; "$@"; }

step "$B/tests/stress" --threads 256 --seconds "$S"
step "$B/tests/stress" --threads 32 --ragged 5 --base 1000 --units 48 --seconds "$S"
step "$B/tests/stress" --threads 16 --debug --seconds "$S"
step "$B/tests/stress" --threads 64 --phase 25 --ragged 4 --base 40 --units 256 --seconds "$S"
step "$B/tests/stress" --threads 32 --long 2 --long-pages 320 --units 1024 --phase 40 --held 50 --base 1000 --seconds "$S"
step "$B/tests/stress_processes" --procs 8 --kills $((S * 50)) --seconds "$S"
step "$B/tests/stress_processes" --procs 32 --kills $((S * 50)) --pages 256 --seconds "$S"
shm=$(mktemp -d /dev/shm/rl-soak.XXXXXX)
trap 'rm -rf "$shm" "$B/rl-soak.dat"' EXIT
step "$B/rlfile/rlfile-torture" --lock=range --threads 8 --seconds "$S" --file "$shm/t.dat"
step "$B/rlfile/rlfile-torture" --lock=range --threads 8 --seconds "$S" --file "$B/rl-soak.dat"
step "$B/rlfile/rlfile-torture" --lock=range --threads 8 --seconds "$S" --cache-pages 64 \
	--file "$B/rl-soak.dat"
rc=0
step "$B/rlfile/rlfile-torture" --lock=range --mmap --threads 8 --seconds "$S" \
	--cache-pages 64 --file "$B/rl-soak.dat" || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 77 ] || exit "$rc"
if [ -x "$B/rlfs/rlfs" ] && [ "$(id -u)" = 0 ] && [ -c /dev/fuse ]; then
	for lock in range file; do
		step sh "$R/rlfs/tests/concurrent.sh" "$B/rlfs/rlfs" "$B/rlfs" \
			"$B/rlfile/rlfile-torture" $lock "$S"
	done
	for lock in range file; do
		RUNTIME=$S RLFS_TEST_LIMIT=$((S + 120)) step sh "$R/rlfs/tests/fio.sh" \
			"$B/rlfs/rlfs" "$B/rlfs" "$R/rlfs/fio/mix.fio" $lock
	done
else
	echo "== soak: rlfs steps skipped (needs root, /dev/fuse and a built rlfs)"
fi
echo "soak: every step passed ($S s each)"
