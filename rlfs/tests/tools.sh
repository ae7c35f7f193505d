#!/bin/sh
# SPDX-License-Identifier: MIT
# tools.sh RLFS WORK_DIR: unmodified tools on an rlfs mount (dd buffered and
# O_DIRECT, cp, cat, truncate, fallocate -p, -l and -n, chmod, chown, touch,
# mmap, mkdir, mv, ln, rm),
# each step done the same way to a reference copy on the backing file
# system and compared with cmp, through the mount and, after unmounting,
# on the backing directory itself.
. "$(dirname "$0")/lib.sh"
ref=$T/ref back=$T/back mnt=$T/mnt
mkdir -p "$ref"
mount_rlfs "$back" "$mnt" ${RLFS_OPTS:-}

step() {   # step DESCRIPTION COMMAND... ; COMMAND uses $D as the directory
	what=$1
	shift
	D=$ref; eval "$@" || fail "$what on the reference"
	D=$mnt; eval "$@" || fail "$what on the mount"
	cmp "$ref/f" "$mnt/f" || fail "after $what: the mount differs"
	echo "ok: $what"
}

head -c 3000000 /dev/urandom >"$T/src"
step "cp" 'cp "$T/src" "$D/f"'
step "dd, unaligned buffered write" \
	'dd if="$T/src" of="$D/f" bs=1000 seek=1234 skip=77 count=7 conv=notrunc status=none'
step "dd, O_DIRECT write" \
	'dd if="$T/src" of="$D/f" bs=4096 seek=5 skip=300 count=40 oflag=direct conv=notrunc status=none'
step "dd, O_DIRECT read" \
	'dd if="$D/f" of="$D/g" bs=4096 skip=3 count=100 iflag=direct status=none && cmp "$D/g" "$ref/g"'
step "fallocate -p (punch a hole)" 'fallocate -p -o 5000 -l 100000 "$D/f"'
step "fallocate -p, page-aligned" 'fallocate -p -o 409600 -l 819200 "$D/f"'
step "truncate down, into a page" 'truncate -s 1234567 "$D/f"'
step "truncate up" 'truncate -s 2000000 "$D/f"'
step "fallocate -l (allocate, grow)" 'fallocate -o 1990000 -l 300000 "$D/f"'
step "fallocate -n (keep size)" 'fallocate -n -o 0 -l 4000000 "$D/f"'
step "append" 'cat "$T/src" >>"$D/f"'
# open(O_TRUNC) of a longer file: the shell's >, cp over a file
step "O_TRUNC (> and cp over a longer file)" \
	'seq 1 1000 >"$D/t" && echo new >"$D/t" && [ "$(cat "$D/t")" = new ] &&
	 head -c 5000 "$T/src" >"$D/u" && head -c 100 "$T/src" >"$D/short" &&
	 cp "$D/short" "$D/u" && cmp "$D/u" "$D/short"'
step "dd conv=fsync, past the end" \
	'dd if="$T/src" of="$D/f" bs=65536 seek=100 count=3 conv=notrunc,fsync status=none'
[ "$(stat -c %s "$ref/f")" = "$(stat -c %s "$mnt/f")" ] || fail "sizes differ"
step "chmod, chown, touch -d" \
	'chmod 640 "$D/f" && chown 65534:65534 "$D/f" && touch -d @1700000000 "$D/f"'
[ "$(stat -c '%a %u %g %Y %s' "$ref/f")" = "$(stat -c '%a %u %g %Y %s' "$mnt/f")" ] ||
	fail "attributes differ: $(stat -c '%a %u %g %Y %s' "$ref/f" "$mnt/f")"

# mmap: a store through a shared mapping, msync, munmap.  With --direct-io
# rlfs serves no shared mapping (every read must reach rlfile): ENODEV.
poke='import mmap, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    m[5000:5100] = b"m" * 100
    m.flush()
    m.close()'
case " ${RLFS_OPTS:-} " in
*" --direct-io "*)
	python3 -c "$poke" "$mnt/f" 2>"$T/err" && fail "mmap with --direct-io"
	grep -q "No such device" "$T/err" || fail "mmap: $(cat "$T/err")"
	echo "ok: mmap refused (ENODEV) with --direct-io" ;;
*)
	step "mmap, store, msync" 'python3 -c "$poke" "$D/f"' ;;
esac

# directories and names
step "mkdir, mv, ln, rm" \
	'mkdir -p "$D/d/e" && cp "$D/f" "$D/d/e/x" && mv "$D/d/e/x" "$D/d/y" &&
	 ln "$D/d/y" "$D/d/z" && ln -s y "$D/d/s" && rm "$D/d/z" && cmp "$D/d/s" "$D/f"'
(cd "$ref" && find . | sort) >"$T/ref.list"
(cd "$mnt" && find . | sort) >"$T/mnt.list"
cmp "$T/ref.list" "$T/mnt.list" || fail "the trees differ"
[ "$(readlink "$mnt/d/s")" = y ] || fail "readlink"

# two names, one file: one page cache
exec 3<>"$mnt/f" 4<"$mnt/d/y"
printf 'through fd 3' | dd of="$mnt/f" bs=1 seek=10 conv=notrunc status=none
printf 'through fd 3' | dd of="$ref/f" bs=1 seek=10 conv=notrunc status=none
cmp "$ref/f" "$mnt/f" || fail "a write while the file is open twice"
exec 3>&- 4<&-

unmount_rlfs "$mnt"
cmp "$ref/f" "$back/f" || fail "the backing file differs after unmount"
for t in t u; do
	cmp "$ref/$t" "$back/$t" || fail "after O_TRUNC, the backing $t differs"
done
cmp "$ref/d/y" "$back/d/y" || fail "the backing copy differs after unmount"
echo "tools: all steps agree, through the mount and on the backing directory"
