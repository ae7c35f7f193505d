#!/bin/sh
# SPDX-License-Identifier: MIT
# torture_files.sh RLFILE_TORTURE WORK_DIR: the torture never destroys a
# file it did not create.  A file that exists is refused (exit 2, content
# unchanged) by --file and by --path; --force takes over a regular file
# only (never a directory or a symbolic link); a file it creates is removed
# at the end unless --keep; a path it cannot create is an error, not a
# file made elsewhere.  And its run time is bounded by what was asked: the
# largest run the options allow, for one second, ends well within a minute
# (it took 90-182 s, and 1 GB, before the pages started as holes).
set -u
torture=$1
T=$(mktemp -d "$2/torture-files.XXXXXX")
trap 'rm -rf "$T"' EXIT
failed=0 passed=0
check() {   # check WHAT CONDITION...
	what=$1
	shift
	if "$@"; then passed=$((passed + 1)); else echo "FAIL: $what"; failed=$((failed + 1)); fi
}
run() {   # run EXPECTED_EXIT ARGS...: the torture, briefly
	want=$1
	shift
	st=0
	"$torture" --seconds 0.2 "$@" >"$T/out" 2>&1 || st=$?
	[ $st = "$want" ] || { echo "exit $st, not $want: $*"; cat "$T/out"; return 1; }
}

head -c 100000 /dev/urandom >"$T/precious"
cp "$T/precious" "$T/precious.orig"
check "--file on an existing file is refused" run 2 --file "$T/precious"
check "... and says how to go on" grep -q -- "--force" "$T/out"
check "... and leaves it as it was" cmp -s "$T/precious" "$T/precious.orig"
check "--path on an existing file is refused" run 2 --path "$T/precious"
check "... and leaves it as it was" cmp -s "$T/precious" "$T/precious.orig"
ln -s precious "$T/link"
check "--force through a symbolic link is refused" run 2 --force --file "$T/link"
check "... and leaves its target as it was" cmp -s "$T/precious" "$T/precious.orig"
mkdir "$T/dir"
check "--force on a directory is refused" run 2 --force --path "$T/dir"
check "a path that cannot be created is an error" run 2 --file "$T/missing/x"
check "... and nothing is made" test ! -e "$T/missing"

check "a new file is created" run 0 --file "$T/new"
check "... and removed at the end" test ! -e "$T/new"
check "--path: a new file is created" run 0 --path "$T/newp"
check "... and removed at the end" test ! -e "$T/newp"
check "--keep leaves it" run 0 --keep --file "$T/kept"
check "... there" test -f "$T/kept"
check "--force takes over a regular file" run 0 --force --file "$T/precious"
check "... which is then the torture's" test -f "$T/precious"

start=$(date +%s)
check "64 threads of 4096 pages for 1 s" run 0 --seconds 1 --threads 64 \
	--pages-per-thread 4096 --file "$T/big"
took=$(($(date +%s) - start))
echo "the largest run took $took s"
check "... ended within 60 s" test "$took" -lt 60

echo "$passed passed, $failed failed"
[ $failed = 0 ]
