#!/bin/sh
# SPDX-License-Identifier: MIT
# abi-check.sh LIBRARY: compare the built shared library's ABI with the
# committed description of the last release (abi/librangelock.so.0.abi,
# made by abidw from the tagged release).  Fails on an incompatible change
# (a symbol removed, a type or a signature changed) unless the SONAME
# changed too, which is then a new major version whose description must be
# committed.  Compatible additions (a new symbol) pass and are shown.
# Needs libabigail's abidiff (Debian: abigail-tools).
set -eu
lib=$1
here=$(cd "$(dirname "$0")/.." && pwd)
base=$here/abi/librangelock.so.0.abi
command -v abidiff >/dev/null || { echo "abi-check: no abidiff (apt-get install abigail-tools)"; exit 1; }
st=0
abidiff --no-show-locs "$base" "$lib" >/tmp/abi-check.$$ 2>&1 || st=$?
cat /tmp/abi-check.$$
rm -f /tmp/abi-check.$$
want=$(sed -n "s/.*soname='\([^']*\)'.*/\1/p" "$base" | head -n 1)
have=$(objdump -p "$lib" | awk '/SONAME/ { print $2 }')
if [ $((st & 3)) != 0 ]; then
	echo "abi-check: abidiff failed ($st)"
	exit 1
elif [ $((st & 8)) != 0 ] && [ "$have" = "$want" ]; then
	echo "abi-check: incompatible ABI change with the same SONAME ($have): bump the major version, or keep the ABI"
	exit 1
elif [ $((st & 8)) != 0 ]; then
	echo "abi-check: incompatible change, SONAME $want -> $have: commit a new abi/ description"
elif [ $((st & 4)) != 0 ]; then
	echo "abi-check: compatible changes only (SONAME $have)"
else
	echo "abi-check: ABI unchanged since the release (SONAME $have)"
fi
