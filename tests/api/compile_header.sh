#!/bin/sh
# SPDX-License-Identifier: MIT
# compile_header.sh COMPILER STD SOURCE INCLUDE_DIR LIB_DIR [FLAGS]: build
# SOURCE with COMPILER in standard STD, -Wall -Wextra -Wpedantic -Werror and
# FLAGS, link it against the library and run it.  Exit 77 (skipped) if
# COMPILER is absent.
set -eu
cc=$1 std=$2 src=$3 inc=$4 libdir=$5 flags=${6:-}
command -v "$cc" >/dev/null 2>&1 || { echo "$cc not installed: skipped"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cc" -std="$std" -Wall -Wextra -Wpedantic -Werror $flags -I"$inc" "$src" \
	-L"$libdir" -lrangelock -o "$tmp/prog"
LD_LIBRARY_PATH="$libdir" "$tmp/prog"
