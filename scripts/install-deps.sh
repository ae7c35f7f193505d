#!/bin/sh
# SPDX-License-Identifier: MIT
# install-deps.sh [--optional PKG...]: make sure the build tools are there.
# On a fresh Debian machine, as root, install what is missing with apt-get;
# otherwise say exactly what to run.  With --optional, install the named
# packages if possible and only warn if not (plots, callgrind).
set -eu
optional=no
if [ "${1:-}" = --optional ]; then
	optional=yes
	shift
	missing=""
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
else
	missing=""
	command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
	command -v cc >/dev/null 2>&1 || missing="$missing gcc"
	command -v make >/dev/null 2>&1 || missing="$missing make"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: installing$missing" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
elif [ $optional = yes ]; then
	echo "install-deps: optional$missing not installed; run: sudo apt-get install$missing" >&2
else
	echo "install-deps: missing$missing; run: sudo apt-get install$missing" >&2
	exit 1
fi
