#!/bin/sh
# SPDX-License-Identifier: MIT
# build-debs.sh [OUT_DIR]: build the Debian packages (debian/) from a copy
# of the tree (the files git tracks, and new ones it does not ignore) with
# dpkg-buildpackage -us -uc -b, run lintian on them (errors fail; warnings
# are printed), install them, build and run an outside program against
# /usr with pkg-config and with CMake's find_package, and purge them.  Needs root (it installs) and debhelper, lintian, cmake,
# pkg-config.  The .debs and lintian's report stay in OUT_DIR (default
# /tmp/rangelock-debs).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/rangelock-debs}
rm -rf "$out"
mkdir -p "$out/rangelock"
(cd "$src" && git ls-files -z -co --exclude-standard | xargs -0 tar -cf - ) | tar -xf - -C "$out/rangelock"
(cd "$out/rangelock" && dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1) || {
	tail -40 "$out/build.log"
	echo "FAIL: dpkg-buildpackage (log: $out/build.log)"
	exit 1
}
ls "$out"/*.deb
lintian --tag-display-limit 0 "$out"/*.changes >"$out/lintian.txt" 2>&1 || true
cat "$out/lintian.txt"
if grep -q "^E:" "$out/lintian.txt"; then
	echo "FAIL: lintian reports errors"
	exit 1
fi
apt-get install -y -qq "$out"/*.deb >"$out/install.log" 2>&1 || {
	cat "$out/install.log"
	echo "FAIL: installing the packages"
	exit 1
}
here=$src/tests/install
tmp=$(mktemp -d)
# leave the machine as it was: the packages go again at the end
trap 'rm -rf "$tmp"; apt-get purge -y -qq rangelock-tools librangelock-dev \
	librangelock0 rlctl librangelock-etcd-dev librangelock-etcd0 >/dev/null 2>&1 || true' EXIT
cc -std=c11 -Wall -Werror "$here/consumer.c" $(pkg-config --cflags --libs rangelock) \
	-o "$tmp/by_pc" && "$tmp/by_pc" || { echo "FAIL: pkg-config consumer against /usr"; exit 1; }
cmake -S "$here/find_package" -B "$tmp/fp" >/dev/null && cmake --build "$tmp/fp" >/dev/null &&
	"$tmp/fp/consumer_shared" && "$tmp/fp/consumer_static" ||
	{ echo "FAIL: find_package consumer against /usr"; exit 1; }
cc -std=c11 -Wall -Werror "$src/examples/etcd_ranges.c" \
	$(pkg-config --cflags --libs rangelock-etcd) -o "$tmp/etcd_by_pc" ||
	{ echo "FAIL: pkg-config consumer of rangelock-etcd against /usr"; exit 1; }
rlctl --help >/dev/null || { echo "FAIL: rlctl does not run"; exit 1; }
man -w rangelock_wrlock >/dev/null && man -w rlfs >/dev/null &&
	man -w rangelock_etcd_wrlock >/dev/null && man -w rlctl >/dev/null ||
	{ echo "FAIL: man pages not installed"; exit 1; }
rlfs --help >/dev/null && rlfile-torture --help >/dev/null ||
	{ echo "FAIL: the tools do not run"; exit 1; }
echo "debs: built, lintian without errors, installed, consumers built and run against /usr"
