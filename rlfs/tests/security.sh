#!/bin/sh
# SPDX-License-Identifier: MIT
# security.sh RLFS WORK_DIR: an unprivileged user (nobody) against an
# `-o allow_other` mount served by root, with a directory of the backing
# tree that the user can write (pub/, mode 1777).  rlfs must:
#   - never follow a symlink planted in the backing tree, in the middle of a
#     path or at its end, and never reach outside the backing directory
#     (a name swapped for a symlink while the kernel still caches the old
#     attributes; open(O_CREAT) racing a planted symlink);
#   - do every request with the caller's credentials, so that the backing
#     file system enforces ACLs, clears setuid/setgid on an unprivileged
#     write and gives new files a setgid directory's group;
#   - open files with the access the caller asked for (read-only access to
#     immutable files and running programs works);
#   - refuse option injection through the backing directory's name;
#   - serve paths longer than PATH_MAX.
# Race loops are bounded in time (RACE_SECONDS, default 2).
. "$(dirname "$0")/lib.sh"
command -v setfacl >/dev/null || skip "no setfacl (apt-get install acl)"
PY=/usr/bin/python3                  # one that nobody can run
[ -x $PY ] || skip "no $PY"
chmod 755 "$T"                       # nobody must reach the mount
back=$T/back mnt=$T/mnt out=$T/outside
mkdir -p "$back/pub" "$out/dir"
chmod 1777 "$back/pub"
printf 'root secret\n' >"$out/secret" && chmod 600 "$out/secret"
printf 'outside\n' >"$out/public" && chmod 644 "$out/public"
# readable itself, but in a directory only root may enter
printf 'dir secret\n' >"$out/dir/inner" && chmod 644 "$out/dir/inner"
chmod 700 "$out/dir"
mount_rlfs "$back" "$mnt" -o allow_other
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
as_nobody test -d "$mnt/pub" || fail "nobody cannot reach the mount"

intact() {   # intact FILE OWNER:MODE:SIZE
	[ "$(stat -c %u:%a:%s "$1")" = "$2" ] ||
		fail "$1 changed through the mount: $(stat -c %u:%a:%s "$1"), was $2"
}
denied() {   # denied WHAT COMMAND...: the command must fail
	what=$1
	shift
	if as_nobody "$@" >"$T/got" 2>/dev/null; then
		fail "$what: allowed ($(head -c 80 "$T/got"))"
	fi
	echo "ok: $what: refused"
}

# 1. A name the kernel knows as nobody's file, swapped for a symlink in the
# backing tree: the kernel keeps its node of the old file (a second) and
# sends the request on that node; rlfs must not follow the link.  The node
# is nobody's old (now unlinked) file, so nobody may get *that* file: what
# must never come back, or change, is the link's target.
swap_file() {   # swap_file TARGET: pub/f is nobody's file, then a symlink
	rm -f "$back/pub/f"
	as_nobody sh -c "echo mine >'$back/pub/f'"
	as_nobody stat "$mnt/pub/f" >/dev/null
	as_nobody sh -c "rm '$back/pub/f' && ln -s '$1' '$back/pub/f'"
}
not_leaked() {   # not_leaked WHAT TARGET COMMAND...: no byte of TARGET
	what=$1 target=$2
	shift 2
	as_nobody "$@" >"$T/got" 2>/dev/null || true
	if [ -s "$T/got" ] && grep -qF "$(head -n 1 "$target")" "$T/got"; then
		fail "$what: the link's target came back ($(head -c 80 "$T/got"))"
	fi
	echo "ok: $what: not followed"
}
swap_file "$out/secret"; not_leaked "read a root 0600 file through a swapped name" "$out/secret" cat "$mnt/pub/f"
swap_file "$out/public"; not_leaked "read outside the backing directory" "$out/public" cat "$mnt/pub/f"
swap_file "$out/secret"; as_nobody chmod 666 "$mnt/pub/f" 2>/dev/null || true
swap_file "$out/secret"; as_nobody truncate -s 0 "$mnt/pub/f" 2>/dev/null || true
swap_file "$out/secret"; as_nobody sh -c "echo x >>'$mnt/pub/f'" 2>/dev/null || true
intact "$out/secret" 0:600:12
intact "$out/public" 0:644:8
echo "ok: chmod, truncate and write through a swapped name leave the target alone"
# a name the kernel looks up afresh is the symlink itself, which the
# kernel follows as the caller, outside rlfs: denied for the 0600 file
rm -f "$back/pub/f"
ln -s "$out/secret" "$back/pub/fresh"
denied "read a root 0600 file through a planted symlink" cat "$mnt/pub/fresh"
rm -f "$back/pub/fresh"
rm -f "$back/pub/f"
as_nobody mkdir "$back/pub/d"
as_nobody ls "$mnt/pub/d" >/dev/null
as_nobody sh -c "rmdir '$back/pub/d' && ln -s '$out/dir' '$back/pub/d'"
denied "list a directory swapped for a symlink" sh -c "ls '$mnt/pub/d' | grep -q inner"
denied "read through a directory swapped for a symlink" cat "$mnt/pub/d/inner"
rm -f "$back/pub/d"

# 2. open(O_CREAT) racing a symlink planted under the name it creates: the
# file the link points to must stay root's, unchanged.
printf 'target\n' >"$out/target" && chmod 600 "$out/target"
as_nobody $PY - "$back/pub/race" "$mnt/pub/race" "$out/target" \
	"${RACE_SECONDS:-2}" <<'EOF' || fail "the O_CREAT race could not run"
import os, sys, time
link, name, target, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
end = time.monotonic() + secs
pid = os.fork()
if pid == 0:                        # the attacker: plant, remove, plant...
    while time.monotonic() < end:
        try: os.symlink(target, link)
        except OSError: pass
        try: os.unlink(link)
        except OSError: pass
    os._exit(0)
opens = 0
while time.monotonic() < end:       # the victim: create, remove, create...
    try:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)); opens += 1
    except OSError: pass
    try: os.unlink(name)
    except OSError: pass
os.waitpid(pid, 0)
print("O_CREAT race: %d creates in %.0f s" % (opens, secs))
EOF
intact "$out/target" 0:600:7
rm -f "$back/pub/race"
echo "ok: open(O_CREAT) against a planted symlink"

# 3. The caller's credentials.  An ACL that denies nobody, on a file the
# mode bits let everyone read, and on a directory everyone may write:
printf 'acl\n' >"$back/acl" && chmod 644 "$back/acl"
setfacl -m u:nobody:--- "$back/acl"
denied "read a file whose ACL denies the caller" cat "$mnt/acl"
# ... and one that denies a group the caller is in (its supplementary
# groups count: without them, "other" would grant the read)
printf 'group acl\n' >"$back/gacl" && chmod 644 "$back/gacl"
setfacl -m g:users:--- "$back/gacl"
if setpriv --reuid=65534 --regid=65534 --groups=100 cat "$mnt/gacl" >/dev/null 2>&1; then
	fail "read a file whose ACL denies a supplementary group of the caller"
fi
echo "ok: an ACL that denies a supplementary group of the caller: refused"
mkdir "$back/acld" && chmod 777 "$back/acld"
setfacl -m u:nobody:r-x "$back/acld"
denied "create in a directory whose ACL denies it" touch "$mnt/acld/x"
# setuid and setgid are cleared by an unprivileged write
cp /bin/true "$back/suid" && chmod 6757 "$back/suid"
as_nobody sh -c "printf x >>'$mnt/suid'" || fail "nobody cannot write a 6757 file"
[ "$(stat -c %a "$back/suid")" = 757 ] ||
	fail "setuid/setgid kept after an unprivileged write: $(stat -c %a "$back/suid")"
echo "ok: an unprivileged write clears setuid and setgid"
# a setgid directory's group goes to what is created in it
mkdir "$back/sg" && chgrp 100 "$back/sg" && chmod 2777 "$back/sg"
as_nobody touch "$mnt/sg/f" && as_nobody mkdir "$mnt/sg/sub" ||
	fail "nobody cannot create in a 2777 directory"
[ "$(stat -c %u:%g "$back/sg/f")" = 65534:100 ] ||
	fail "a file in a setgid directory: $(stat -c %u:%g "$back/sg/f"), not 65534:100"
[ "$(stat -c %g:%a "$back/sg/sub")" = 100:2755 ] ||
	fail "a directory in a setgid directory: $(stat -c %g:%a "$back/sg/sub"), not 100:2755"
echo "ok: setgid directories give their group"
# the caller's umask was applied by the kernel; rlfs adds none of its own
as_nobody sh -c "umask 0; : >'$mnt/pub/m'"
[ "$(stat -c %a "$back/pub/m")" = 666 ] ||
	fail "created with mode $(stat -c %a "$back/pub/m"), not 666"

# 4. Read-only opens are read-only: immutable files, append-only files and
# running programs can be read.
printf 'immutable\n' >"$back/immut" && printf 'append\n' >"$back/app"
immutable_ok=yes
UNPROTECT="$back/immut $back/app"   # lib.sh's cleanup: chattr -i -a
chattr +i "$back/immut" 2>/dev/null && chattr +a "$back/app" 2>/dev/null ||
	immutable_ok=no
if [ $immutable_ok = yes ]; then
	got=$(cat "$mnt/immut" 2>&1 || true; cat "$mnt/app" 2>&1 || true)
	[ "$got" = "immutable
append" ] || fail "reading immutable and append-only files: $got"
	echo "ok: immutable and append-only files can be read"
else
	echo "note: the backing file system has no chattr +i; not tested"
fi
cp /bin/sleep "$back/sleeper"
"$back/sleeper" 30 &
sleeper=$!
sleep 0.2
cmp "$mnt/sleeper" "$back/sleeper" || { kill $sleeper; fail "a running program cannot be read"; }
kill $sleeper; wait $sleeper 2>/dev/null || true
echo "ok: a running program can be read"

# 5. Paths longer than PATH_MAX (21 levels of 200-character names).
$PY - "$mnt" "$back" <<'EOF' || fail "a path longer than PATH_MAX"
import os, sys
name = "d" * 200
os.chdir(sys.argv[1])
for _ in range(21):
    os.mkdir(name); os.chdir(name)
with open("deep", "w") as f: f.write("deep\n")
os.rename("deep", "deeper"); os.chmod("deeper", 0o640)
assert open("deeper").read() == "deep\n"
assert os.stat("deeper").st_mode & 0o777 == 0o640
os.chdir(sys.argv[2])
for _ in range(21): os.chdir(name)
assert open("deeper").read() == "deep\n"
print("ok: a path of %d bytes" % (21 * 201 + 6))
EOF
unmount_rlfs "$mnt"

# 6. Mount options cannot be injected through the backing directory's name.
inj="$T/inj,allow_other,suid,dev"
mount_rlfs "$inj" "$T/mnt2"
opts=$(findmnt -no VFS-OPTIONS,FS-OPTIONS "$T/mnt2")
case "$opts" in
*allow_other*) fail "option injected through the backing directory's name: $opts" ;;
esac
case "$opts" in
*nosuid*nodev*) ;;
*) fail "nosuid,nodev lost through the backing directory's name: $opts" ;;
esac
[ "$(findmnt -no SOURCE "$T/mnt2")" = "rlfs:$inj" ] ||
	fail "the source is $(findmnt -no SOURCE "$T/mnt2"), not rlfs:$inj"
unmount_rlfs "$T/mnt2"
echo "ok: the backing directory's name is not options"
echo "security: every attack refused"
