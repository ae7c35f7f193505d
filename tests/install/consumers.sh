#!/bin/sh
# SPDX-License-Identifier: MIT
# consumers.sh CMAKE SOURCE_DIR BUILD_DIR: install the built library into a
# temporary prefix, then build and run an outside program against it three
# ways -- pkg-config, find_package (shared and static), and vendoring with
# add_subdirectory -- and check that `man rangelock` renders from the prefix,
# and that the installed tools start (their run path finds the library).
set -eu
cmake=$1 src=$2 build=$3
here=$src/tests/install
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
pass=0 fail=0
check() { # name command...
	name=$1; shift
	if "$@" > "$tmp/out" 2>&1; then
		pass=$((pass + 1)); echo "ok   $name"
	else
		fail=$((fail + 1)); echo "FAIL $name"; cat "$tmp/out"
	fi
}

"$cmake" --install "$build" --prefix "$prefix" > "$tmp/install.log"
libdir=$(dirname "$(find "$prefix" -name 'librangelock.so.0' | head -n 1)")

by_pkg_config() {
	command -v pkg-config >/dev/null || { echo "pkg-config not installed"; return 1; }
	flags=$(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs rangelock)
	cc -std=c11 -Wall -Werror "$here/consumer.c" $flags -o "$tmp/by_pc" &&
		LD_LIBRARY_PATH="$libdir" "$tmp/by_pc"
}
by_find_package() {
	"$cmake" -S "$here/find_package" -B "$tmp/fp" -DCMAKE_PREFIX_PATH="$prefix" &&
		"$cmake" --build "$tmp/fp" &&
		"$tmp/fp/consumer_shared" && "$tmp/fp/consumer_static" &&
		! ldd "$tmp/fp/consumer_static" | grep -q librangelock
}
by_add_subdirectory() {
	"$cmake" -S "$here/vendored" -B "$tmp/vd" -DRANGELOCK_SOURCE_DIR="$src" &&
		"$cmake" --build "$tmp/vd" && "$tmp/vd/consumer_vendored"
}
man_renders() {
	command -v man >/dev/null || { echo "man not installed"; return 1; }
	for page in rangelock rangelock_init rangelock_destroy rangelock_wrlock \
		    rangelock_timedwrlock rangelock_trywrlock rangelock_unlock \
		    rangelock_downgrade rangelock_version; do
		MANPATH="$prefix/share/man" MANWIDTH=80 man -P cat "$page" > "$tmp/man.txt" &&
			grep -qi "$page" "$tmp/man.txt" || { echo "man $page failed"; return 1; }
	done
}
# the tools start from the prefix as they are, with no LD_LIBRARY_PATH:
# their run path is relative to where they are ($ORIGIN)
tools_start() {
	for tool in rlbench rlfile-torture rlfs; do
		[ -x "$prefix/bin/$tool" ] || { [ $tool = rlfs ] && continue; echo "$tool not installed"; return 1; }
		env -u LD_LIBRARY_PATH "$prefix/bin/$tool" --version || return 1
		MANPATH="$prefix/share/man" MANWIDTH=80 man -P cat "$tool" >/dev/null ||
			{ echo "man $tool failed"; return 1; }
	done
}
# librangelock-etcd, where it was built: its example through pkg-config,
# and rlctl from the prefix (nothing here needs etcd running)
etcd_consumer() {
	[ -f "$libdir/pkgconfig/rangelock-etcd.pc" ] || { echo "not built: skipped"; return 0; }
	flags=$(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs rangelock-etcd)
	cc -std=c11 -Wall -Werror "$src/examples/etcd_ranges.c" $flags -o "$tmp/etcd_pc" &&
		env -u LD_LIBRARY_PATH "$prefix/bin/rlctl" --version &&
		MANPATH="$prefix/share/man" MANWIDTH=80 man -P cat rangelock_etcd_wrlock >/dev/null &&
		MANPATH="$prefix/share/man" MANWIDTH=80 man -P cat rlctl >/dev/null
}
check "pkg-config --cflags --libs rangelock" by_pkg_config
check "pkg-config rangelock-etcd, rlctl and their pages" etcd_consumer
check "the installed tools start, and their pages render" tools_start
check "find_package(rangelock): rangelock::rangelock, ::rangelock_static" by_find_package
check "add_subdirectory(rangelock source tree)" by_add_subdirectory
check "man rangelock (and every page) from the prefix" man_renders
echo "$pass passed, $fail failed"
[ $fail = 0 ]
