#!/bin/sh
# SPDX-License-Identifier: MIT
# rlctl.sh RLCTL: rlctl as scripts use it, against the etcd member that
# etcd_member started ($RANGELOCK_ETCD_ENDPOINTS): the program runs with
# its token and rlctl exits with its status; --nonblock and --wait give up
# with 1; list shows holders and waiters; a killed rlctl's range is free
# within its TTL; names are distinct; unreachable etcd is 69 within 5 s.
set -u
R=$1
T=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
failed=0 passed=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
now_ms() { date +%s%3N; }
# wait_for FILE: until it exists (a holder has its range), 10 s at most
wait_for() {
	i=0
	while [ ! -e "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -e "$1" ] || bad "$1 never appeared"
}

# the program runs with a decimal token; rlctl exits with its status
"$R" lock obj 0 4096 -- sh -c 'echo "$RANGELOCK_TOKEN" > '"$T"'/token; exit 7'
st=$?
[ $st = 7 ] && ok || bad "exit status $st, not the program's 7"
grep -qE '^[1-9][0-9]*$' "$T/token" && ok || bad "RANGELOCK_TOKEN '$(cat "$T/token")'"
"$R" lock obj 0 1 -- sh -c 'kill -TERM $$'
st=$?
[ $st = 143 ] && ok || bad "a program killed by SIGTERM: $st, not 143"
"$R" lock obj 0 1 -- /nonexistent/program 2>/dev/null
st=$?
[ $st = 127 ] && ok || bad "a program not found: $st, not 127"

# a holder; then --nonblock, --wait, and a waiter that list shows
"$R" lock obj 100 eof -- sh -c 'touch '"$T"'/held; sleep 4' &
holder=$!
wait_for "$T/held"
t0=$(now_ms)
"$R" lock --nonblock obj 0 200 -- touch "$T/ran" 2>"$T/err"
st=$?
[ $st = 1 ] && ok || bad "--nonblock on a held range: $st, not 1"
[ ! -e "$T/ran" ] && ok || bad "--nonblock ran the program"
grep -q busy "$T/err" && ok || bad "--nonblock: no message"
"$R" lock --shared --nonblock obj 0 100 -- true && ok || bad "an adjacent range refused"
t0=$(now_ms)
"$R" lock --wait 1 obj 5000 6000 -- touch "$T/ran" 2>/dev/null
st=$? ms=$(( $(now_ms) - t0 ))
[ $st = 1 ] && [ ! -e "$T/ran" ] && ok || bad "--wait 1: $st (or the program ran)"
[ $ms -ge 950 ] && [ $ms -lt 3000 ] && ok || bad "--wait 1 gave up after $ms ms"
"$R" lock --shared obj 150 160 -- touch "$T/reader" &
reader=$!
sleep 0.5
"$R" list obj >"$T/list"
grep -qP '^obj\t100\teof\texclusive\theld\t[0-9.]+s\t[0-9]+\t\S+' "$T/list" && ok ||
	{ bad "list: no held line"; cat "$T/list"; }
grep -qP '^obj\t150\t160\tshared\twaiting\t' "$T/list" && ok ||
	{ bad "list: no waiting line"; cat "$T/list"; }
[ "$(awk -F'\t' '{ print NF }' "$T/list" | sort -u)" = 8 ] && ok || bad "list: not 8 fields"
"$R" list >"$T/all"
grep -q '^obj	' "$T/all" && ok || bad "list without OBJECT misses obj"
wait $holder $reader
[ -e "$T/reader" ] && ok || bad "the waiting reader never ran"

# names: prefixes of one another, '/' and spaces are different objects
"$R" lock a 0 eof -- sh -c 'touch '"$T"'/a; sleep 3' &
a=$!
wait_for "$T/a"
for n in "a b" "a/b" ab "a/" "/a"; do
	"$R" lock --nonblock "$n" 0 1 -- true && ok || bad "'$n' conflicts with 'a'"
done
"$R" lock --nonblock a 0 1 -- true 2>/dev/null && bad "'a' itself not held" || ok
wait $a

# a killed rlctl's range is free within its TTL (2 s) and a second
"$R" --ttl 2 lock dead 0 10 -- sh -c 'touch '"$T"'/dead; sleep 60' &
victim=$!
wait_for "$T/dead"
kill -KILL $victim
t0=$(now_ms)
"$R" lock dead 0 10 -- true
ms=$(( $(now_ms) - t0 ))
[ $ms -le 3000 ] && ok || bad "the killed holder's range free after $ms ms"
pkill -f 'sleep 60' 2>/dev/null

# SIGTERM to rlctl reaches the program, and the range is released
"$R" lock term 0 10 -- sh -c 'trap "exit 5" TERM; touch '"$T"'/term; while :; do sleep 0.1; done' &
t=$!
wait_for "$T/term"
kill -TERM $t
wait $t
st=$?
[ $st = 5 ] && ok || bad "SIGTERM: rlctl $st, not the program's 5"
"$R" lock --nonblock term 0 10 -- true && ok || bad "SIGTERM left the range held"

# a member that is down is passed over; none answering is 69 within 5 s
"$R" --endpoints "http://127.0.0.1:1,$RANGELOCK_ETCD_ENDPOINTS" lock x 0 1 -- true &&
	ok || bad "a down first endpoint was not passed over"
# a listener that accepts and never answers, beside a refused port
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(30)' >"$T/port" &
mute=$!
i=0; while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
t0=$(now_ms)
"$R" --endpoints "http://127.0.0.1:$(cat "$T/port"),http://127.0.0.1:1" list 2>"$T/err"
st=$? ms=$(( $(now_ms) - t0 ))
[ $st = 69 ] && ok || bad "etcd unreachable: $st, not 69"
[ $ms -le 5500 ] && ok || bad "etcd unreachable: $ms ms to say so"
grep -q 'no etcd member answered' "$T/err" && ok || bad "unreachable: no clear message"
kill $mute

echo "$passed passed, $failed failed"
[ $failed = 0 ]
