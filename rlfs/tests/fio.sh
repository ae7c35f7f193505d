#!/bin/sh
# SPDX-License-Identifier: MIT
# fio.sh RLFS WORK_DIR JOB_FILE LOCK: a short run of the fio mix (buffered
# and O_DIRECT writers and readers on one file, verify=crc32c) on an rlfs
# mount with --lock=LOCK and --direct-io (every read and write through
# rlfile's locks: with the kernel's cache a buffered read is not atomic
# against a buffered write, doc/rlfs.md); fio's own verification must pass.
. "$(dirname "$0")/lib.sh"
job=$3 lock=$4
command -v fio >/dev/null || skip "no fio (apt-get install fio)"
mount_rlfs "$T/back" "$T/mnt" --lock="$lock" --direct-io
job=$(realpath "$job")
cd "$T"   # where fio leaves its verify state on a failure
FILESIZE=${FILESIZE:-8m} RUNTIME=${RUNTIME:-3} READER_IOPS=${READER_IOPS:-0} \
	fio --directory="$T/mnt" --output="$T/fio.out" "$job" ||
	{ cat "$T/fio.out"; fail "fio failed (verification?) with --lock=$lock"; }
grep -E "^ *(read|write):|err=" "$T/fio.out" | sed 's/^ */  /'
grep -q "err= 0" "$T/fio.out" || fail "no job result"
! grep -E "err= *[1-9]" "$T/fio.out" || fail "a job failed"
unmount_rlfs "$T/mnt"
echo "fio: verify=crc32c passed with --lock=$lock"
