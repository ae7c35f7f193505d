#!/bin/sh
# SPDX-License-Identifier: MIT
# cli.sh VERSION MAN_DIR NAME=BINARY:SOURCE...: every tool keeps the one
# command-line convention (tools/cli.h) and its man page names every option
# it accepts:
#   --help and --version exit 0 (the version is the project's);
#   an unknown option, a bad value or a missing argument exits 2 with a
#   message that names it;
#   each long option of the source (getopt_long's table, rlfs's fuse_opt
#   table) is in --help and in the man page.
set -u
version=$1 man=$2
shift 2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
failed=0 passed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

# usage_error NAME WANT COMMAND...: exit 2, WANT in the output
usage_error() {
	name=$1 want=$2
	shift 2
	st=0
	"$@" >"$T/out" 2>&1 || st=$?
	if [ $st != 2 ]; then
		bad "$name $*: exit $st, not 2"; cat "$T/out"
	elif ! grep -qF -- "$want" "$T/out"; then
		bad "$name $*: the message does not name '$want'"; cat "$T/out"
	else
		ok
	fi
}

for tool in "$@"; do
	name=${tool%%=*} rest=${tool#*=}
	bin=${rest%%:*} src=${rest#*:}
	page=$man/$name.1
	"$bin" --help >"$T/help" 2>/dev/null && grep -q "usage: $name" "$T/help" &&
		ok || bad "$name --help: not exit 0 with its usage"
	"$bin" --version >"$T/version" 2>&1 && \
		[ "$(head -n 1 "$T/version")" = "$name (rangelock) $version" ] &&
		ok || { bad "$name --version: not '$name (rangelock) $version'"; cat "$T/version"; }
	usage_error "$name" "--bogus" "$bin" --bogus
	grep -q "^\.TH .*\"rangelock $version\"" "$page" && ok ||
		bad "$page: not of rangelock $version"
	# the options the source accepts
	{
		sed -n 's/^[[:space:]]*{ "\([a-z-]*\)", [a-z_]*argument.*/--\1/p' "$src"
		sed -n 's/^[[:space:]]*OPT("\(--[a-z-]*\).*/\1/p' "$src"
	} | sort -u >"$T/options"
	[ -s "$T/options" ] || bad "$src: no option found"
	sed 's/\\-/-/g; s/\\f[BIRP]//g' "$page" >"$T/page"
	while read -r o; do
		grep -q -- "$o\([^a-z-]\|$\)" "$T/help" && ok || bad "$name: $o not in --help"
		grep -q -- "$o\([^a-z-]\|$\)" "$T/page" && ok || bad "$name: $o not in $page"
	done <"$T/options"
	case $name in
	rlbench)
		usage_error "$name" "--threads: '0'" "$bin" --threads 0
		usage_error "$name" "--threads: '1024'" "$bin" --smoke --threads 1024
		usage_error "$name" "--reps: 'abc'" "$bin" --reps abc
		usage_error "$name" "--readers 0 --writers 0" "$bin" --readers 0 --writers 0
		usage_error "$name" "no workload 'nope'" "$bin" --workload nope
		usage_error "$name" "unexpected argument 'extra'" "$bin" extra
		;;
	rlfile-torture)
		usage_error "$name" "--seed: 'abc'" "$bin" --seed abc
		usage_error "$name" "--mix weight: 'abc'" "$bin" --mix read=abc
		usage_error "$name" "no operation 'nope'" "$bin" --mix nope=1
		usage_error "$name" "--cache-pages: '-1'" "$bin" --cache-pages -1
		usage_error "$name" "--threads: '65'" "$bin" --threads 65
		usage_error "$name" "--seconds: '0'" "$bin" --seconds 0
		usage_error "$name" "--lock: 'bogus'" "$bin" --lock=bogus
		usage_error "$name" "--seconds" "$bin" --seconds
		;;
	rlctl)
		# usage errors are found before etcd is asked: none runs here
		usage_error "$name" "a command is needed" "$bin"
		usage_error "$name" "unknown command 'nope'" "$bin" nope
		usage_error "$name" "--ttl: '11'" "$bin" --ttl 11 list
		usage_error "$name" "lock needs OBJECT START END -- PROGRAM" "$bin" lock o 0 1
		usage_error "$name" "lock needs OBJECT START END -- PROGRAM" "$bin" lock o 0 1 true
		usage_error "$name" "START must be below END" "$bin" lock o 5 5 -- true
		usage_error "$name" "END: 'x'" "$bin" lock o 0 x -- true
		usage_error "$name" "--wait: 'soon'" "$bin" lock --wait soon o 0 1 -- true
		usage_error "$name" "each other's opposite" "$bin" lock --nonblock --wait 1 o 0 1 -- true
		usage_error "$name" "one OBJECT at most" "$bin" list a b
		usage_error "$name" "--endpoints: an empty URL" "$bin" --endpoints , list
		;;
	rlfs)
		usage_error "$name" "missing BACKING_DIR" "$bin"
		usage_error "$name" "missing MOUNTPOINT" "$bin" "$T"
		;;
	esac
done
echo "$passed passed, $failed failed"
[ $failed = 0 ]
