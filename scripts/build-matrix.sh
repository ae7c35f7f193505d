#!/bin/sh
# SPDX-License-Identifier: MIT
# build-matrix.sh [DIR]: build everything in every configuration a user or
# a distribution uses (gcc and clang; Debug, RelWithDebInfo, Release,
# MinSizeRel; Debian's dpkg-buildflags with hardening=+all and LTO) with
# -Werror, and fail on any warning, at compile or link time (LTO warns at
# link time, where -Werror does not reach).  Builds only: `make test` runs
# the tests.  CI runs it; DIR (default /tmp/rangelock-matrix) holds the
# build trees and logs.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/rangelock-matrix}
mkdir -p "$out"
status=0

build() {   # build NAME CC [cmake args...]; CFLAGS/LDFLAGS from the caller
	name=$1 cc=$2
	shift 2
	rm -rf "$out/$name"
	if CC=$cc cmake -S "$src" -B "$out/$name" -DRANGELOCK_WERROR=ON "$@" \
		>"$out/$name.log" 2>&1 &&
	   cmake --build "$out/$name" -j "$(nproc)" >>"$out/$name.log" 2>&1 &&
	   ! grep -q "warning:" "$out/$name.log"; then
		echo "ok: $name"
	else
		grep -E "warning:|error:" "$out/$name.log" | head -20
		echo "FAIL: $name (log: $out/$name.log)"
		status=1
	fi
}

for cc in gcc clang; do
	for type in Debug RelWithDebInfo Release MinSizeRel; do
		build "$cc-$type" $cc -DCMAKE_BUILD_TYPE=$type
	done
done
# Debian's flags, as debhelper passes them (CPPFLAGS folded into CFLAGS)
for cc in gcc clang; do
	flags=$(DEB_BUILD_MAINT_OPTIONS="hardening=+all optimize=+lto" \
		DEB_CFLAGS_MAINT_STRIP="-ffat-lto-objects" dpkg-buildflags --get CFLAGS)
	cpp=$(DEB_BUILD_MAINT_OPTIONS="hardening=+all" dpkg-buildflags --get CPPFLAGS)
	ld=$(DEB_BUILD_MAINT_OPTIONS="hardening=+all optimize=+lto" dpkg-buildflags --get LDFLAGS)
	[ $cc = gcc ] && flags="$flags -ffat-lto-objects"
	CFLAGS="$flags $cpp" LDFLAGS="$ld" build "$cc-debian-hardening-lto" $cc \
		-DCMAKE_BUILD_TYPE=None
done
[ $status = 0 ] && echo "build-matrix: every configuration warning-free"
exit $status
