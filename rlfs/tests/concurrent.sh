#!/bin/sh
# SPDX-License-Identifier: MIT
# concurrent.sh RLFS WORK_DIR TORTURE LOCK SECONDS: processes writing,
# punching, truncating and reading overlapping regions of one file on an
# rlfs mount, buffered and O_DIRECT (rlfile-torture --path, with its
# oracle), under --lock=LOCK.  Then the file must be the same on the backing
# directory after unmounting.  With LOCK=none the oracle must find races
# (within five runs): the proof that the test can fail.  RLFS_OPTS adds
# rlfs options, TORTURE_MIX the torture's --mix.
. "$(dirname "$0")/lib.sh"
torture=$3 lock=$4 seconds=$5
back=$T/back mnt=$T/mnt

if [ "$lock" = none ]; then
	mount_rlfs "$back" "$mnt" --lock=none ${RLFS_OPTS:-}
	for seed in 1 2 3 4 5; do
		if "$torture" --path "$mnt/t.dat" --threads 4 --seconds "$seconds" \
			--seed $seed --expect-violations; then
			unmount_rlfs "$mnt"
			exit 0
		fi
	done
	fail "no race found without a lock in five runs"
fi

mount_rlfs "$back" "$mnt" --lock="$lock" ${RLFS_OPTS:-}
"$torture" --path "$mnt/t.dat" --keep --threads 4 --seconds "$seconds" \
	${TORTURE_MIX:+--mix "$TORTURE_MIX"} ||
	fail "the oracle found violations with --lock=$lock ${RLFS_OPTS:-}"
"$torture" --path "$mnt/t8.dat" --threads 8 --pages-per-thread 4 \
	--seconds "$seconds" ${TORTURE_MIX:+--mix "$TORTURE_MIX"} ||
	fail "8 processes, --lock=$lock ${RLFS_OPTS:-}"
cp "$mnt/t.dat" "$T/seen"
unmount_rlfs "$mnt"
cmp "$T/seen" "$back/t.dat" || fail "the backing file differs after unmount"
echo "concurrent: --lock=$lock clean, and the backing file agrees"
