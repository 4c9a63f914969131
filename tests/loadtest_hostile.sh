#!/usr/bin/env bash
# wechat-loadtest against targets that misbehave (tests/loadtest_hostile_target.js, node):
# slow, silent, closing, truncating, garbled, doubled, interim (103), chunked, Chinese 500s,
# a closed port, and a SIGTERM mid-run. Each run is short (1 s of arrivals) and wrapped in
# `timeout`, so a hang fails this test rather than CI. Every report is read with jq: the exit
# status, the failure kinds, and the generator's books, which must balance whatever the
# target did:
#   arrivals == users_done + unsent;
#   the users that reached a step (users_done for the first, the previous step's ok after)
#   end there ok or failed: ok + failed == reached, never more;
#   skipped == the failures of the earlier steps; users_ok == the last step's ok;
#   stopped == the failures of kind "stopped".
# No speed is asserted (the machine is shared); counts are exact only where deterministic.
#   loadtest_hostile.sh WECHAT_LOADTEST
set -euo pipefail
gen=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target_js=$here/loadtest_hostile_target.js
command -v node > /dev/null || { echo "FAIL: node is not installed (scripts/install-deps.sh)"; exit 1; }
command -v jq > /dev/null || { echo "FAIL: jq is not installed"; exit 1; }
work=$(mktemp -d)
tpid=""
stop_target() {
  if [[ -n $tpid ]]; then
    kill "$tpid" 2> /dev/null || true
    wait "$tpid" 2> /dev/null || true
    tpid=""
  fi
}
trap 'stop_target; rm -rf "$work"' EXIT
fail() { echo "FAIL [$scenario]: $*"; exit 1; }
scenario=setup

start_target() {  # MODE [ARG]: sets $target
  stop_target
  rm -f "$work/port"
  node "$target_js" "$1" "$work/port" ${2:+"$2"} 2> "$work/target.err" &
  tpid=$!
  for _ in $(seq 200); do
    [[ -s $work/port ]] && break
    kill -0 "$tpid" 2> /dev/null || fail "the target ($1) died: $(cat "$work/target.err")"
    sleep 0.05
  done
  [[ -s $work/port ]] || fail "the target ($1) wrote no port"
  target=http://127.0.0.1:$(cat "$work/port")
}

# run NAME GENERATOR-ARGS...: the generator, its report in $work/NAME.json, its exit status
# in $rc, its wall time in $wall (seconds). 30 s at most: a hang is a failure.
run() {
  scenario=$1
  shift
  local t0 t1
  t0=$(date +%s%N)
  set +e
  timeout -k 5 30 "$gen" --target "$target" --quiet --json "$work/$scenario.json" "$@" \
    > "$work/$scenario.out" 2> "$work/$scenario.err"
  rc=$?
  set -e
  t1=$(date +%s%N)
  wall=$(( (t1 - t0) / 1000000 ))  # ms
  report=$work/$scenario.json
  [[ $rc -ne 124 && $rc -ne 137 ]] || fail "the run hung (killed by timeout): $(cat "$work/$scenario.err")"
  [[ -s $work/$scenario.json ]] || fail "no report (exit $rc): $(cat "$work/$scenario.err")"
  report=$work/$scenario.json
}

summary() {
  jq -c '{arrivals, users_done, users_ok, unsent, stopped, protocol_errors, interrupted, seconds,
          steps: [.steps[] | {step, sent, ok, failed, skipped}],
          failures: [.failures[] | {kind, count}]}' "$report"
}
jqcheck() {  # EXPRESSION WHAT
  jq -e "$1" "$report" > /dev/null || fail "$2: $(summary)"
}
expect_rc() {
  [[ $rc -eq $1 ]] || fail "exit $rc, not $1: $(summary) $(head -c 2000 "$work/$scenario.err")"
}
# The generator's books, whatever the target did.
books() {
  jqcheck '.arrivals == .users_done + .unsent' "arrivals != users_done + unsent"
  jqcheck '. as $r | [range(0; .steps | length)] | all(. as $i |
             (if $i == 0 then $r.users_done else $r.steps[$i - 1].ok end) as $reached |
             $r.steps[$i].ok + $r.steps[$i].failed <= $reached)' \
    "a step has more users ending on it (ok + failed) than reached it"
  jqcheck '. as $r | [range(0; .steps | length)] | all(. as $i |
             (if $i == 0 then $r.users_done else $r.steps[$i - 1].ok end) as $reached |
             $r.steps[$i].ok + $r.steps[$i].failed == $reached)' \
    "a user that reached a step neither ended there nor went on"
  jqcheck '. as $r | [range(0; .steps | length)] | all(. as $i |
             $r.steps[$i].skipped == ([$r.steps[0:$i][].failed] | add // 0))' \
    "skipped != the failures of the earlier steps"
  jqcheck '.users_ok == .steps[-1].ok' "users_ok != the last step's ok"
  jqcheck '.users_done == .users_ok + ([.steps[].failed] | add)' "users_done != users_ok + failed"
  jqcheck '.stopped == ([.failures[] | select(.kind | test(": (transport: )?stopped$")) | .count] | add // 0)' \
    "stopped != the failures of kind stopped"
  jqcheck '.passed == (all(.checks[]; .passed) and all(.slos[]; .passed))' "passed disagrees with the checks"
}
all_right() {  # every user did every step right, exit 0
  expect_rc 0
  books
  jqcheck '.passed and all(.checks[]; .passed)' "a check failed"
  jqcheck '.arrivals > 0 and .users_ok == .arrivals and .unsent == 0 and .stopped == 0' "not every user right"
  jqcheck '.arrivals as $n | all(.steps[]; .sent == $n and .ok == $n and .failed == 0 and .skipped == 0)' "step counts"
  jqcheck '.failures == [] and .protocol_errors == 0 and .interrupted == false' "failures reported"
}
ok_line() { echo "ok   $scenario: rc $rc, $(( wall ))ms, $(summary)"; }

# 1. A target that answers right: open loop (100 arrivals planned in 1 s) and closed loop.
start_target ok
run ok_open --rate 100/s --duration 1s --step 'GET /a?x=1' --step 'POST /b {"n":${vu}}'
all_right
jqcheck '.mode == "open" and .arrivals >= 90 and .arrivals <= 100' "100 arrivals planned"
ok_line
run ok_closed --connections 4 --duration 1s --step 'GET /a' --step 'POST /b {"n":${vu}}'
all_right
jqcheck '.mode == "closed"' "mode"
ok_line

# 2. Answers 0.9 s late, 3 steps, --timeout 1s: a user needs 2.7 s, the hard stop is 1 s
# (arrivals) + 1 s (timeout) + 1 s: the users still in flight then are counted as stopped
# (a loaded machine may add timeouts), the run fails, the books balance.
start_target slow 0.9
run slow --rate 20/s --duration 1s --timeout 1s --step 'GET /a' --step 'GET /b' --step 'GET /c'
expect_rc 1
books
jqcheck '.stopped > 0 and .users_ok < .arrivals' "no user stopped in flight"
jqcheck 'all(.failures[]; .kind | test("^GET /[abc]: transport: (stopped|timeout)$"))' "failure kinds"
jqcheck '.seconds < 4.5' "the run went past its hard stop"
ok_line

# 3. A target that reads and never answers, 2 connections at most, --timeout 1s: the users
# on them time out, the others wait and are never sent; the run ends at its hard stop
# (1 s + the timeout + 1 s), within the timeout + 2 s after the last arrival.
start_target never
run never --rate 50/s --duration 1s --timeout 1s --max-connections 2 --step 'GET /a'
expect_rc 1
books
jqcheck '.users_ok == 0 and .unsent > 0' "users answered, or none left unsent"
jqcheck '.generator.connects <= .users_done' "connections"
jqcheck 'any(.failures[]; .kind == "GET /a: transport: timeout" and .count >= 2)' "no timeouts"
jqcheck 'all(.failures[]; .kind | test("^GET /a: transport: (stopped|timeout)$"))' "failure kinds"
jqcheck '.seconds <= 4' "the run did not end within timeout + 2 s after the last arrival"
(( wall < 6000 )) || fail "the run took ${wall} ms"
ok_line

# 4. Connection: close after every answer, 2 steps, 2 connections at most: each user goes on
# to its second step on a new connection; one connection per request.
start_target close
run close --rate 100/s --duration 1s --max-connections 2 --step 'GET /a' --step 'GET /b'
all_right
jqcheck '.generator.connects == 2 * .arrivals' "not one connection per request"
ok_line

# 5. Answers with no length, ended by the close.
start_target eof
run eof --rate 100/s --duration 1s --step 'GET /a' --step 'GET /b'
all_right
ok_line

# 6. An answer cut short (a head promising 100 bytes, 5 of them, close), and bytes that are
# not HTTP: every user fails its first step (a transport failure), the second is skipped.
for mode in midclose garbage; do
  start_target $mode
  run $mode --rate 100/s --duration 1s --step 'GET /a' --step 'GET /b'
  expect_rc 1
  books
  jqcheck '.users_ok == 0 and .unsent == 0 and .protocol_errors == 0' "users right, or unsent"
  jqcheck '.arrivals as $n | .steps[0].failed == $n and .steps[1].sent == 0 and .steps[1].skipped == $n' "step counts"
  case $mode in
    midclose) want='^GET /a: transport: connection closed' ;;
    garbage) want='^GET /a: transport: bad answer' ;;
  esac
  jqcheck ".arrivals as \$n | [.failures[] | select(.kind | test(\"$want\")) | .count] | add == \$n" "failure kind"
  ok_line
done

# 7. A 103 Early Hints before each 200: skipped, the 200 is the answer.
start_target early
run early --rate 100/s --duration 1s --step 'GET /a' --step 'GET /b'
all_right
ok_line

# 8. Two answers to each request: a protocol error of the target's, counted against the
# step whose request got them (or, when the second arrives in a later read, as bytes with
# no request outstanding); the connection is closed before anything else is sent on it, so
# a user's next step goes out on a new connection and is answered right.
start_target extra
run extra_one --rate 50/s --duration 1s --step 'GET /a'
expect_rc 1
books
jqcheck '.protocol_errors > 0 and .passed == false' "no protocol error"
jqcheck 'any(.failures[]; .kind | test("protocol"))' "no protocol failure kind"
ok_line
run extra_two --rate 50/s --duration 1s --step 'GET /a' --step 'GET /b'
expect_rc 1
books
jqcheck '.protocol_errors > 0 and .passed == false' "no protocol error"
jqcheck '.steps[1].ok == .steps[1].sent' "the second step was not answered on a clean connection"
jqcheck 'any(.failures[]; .kind | test("protocol"))' "no protocol failure kind"
ok_line

# 9. A 500 with a JSON error in Chinese (264 bytes), the report on stdout (--json -): valid
# JSON (and UTF-8: the kind and samples are cut on character boundaries), exit 1, each user
# failed with a kind naming the status and the error.
start_target chinese
scenario=chinese
set +e
timeout -k 5 30 "$gen" --target "$target" --rate 50/s --duration 1s --json - \
  --step 'POST /login {"code":"x"}' > "$work/chinese.json" 2> "$work/chinese.err"
rc=$?
set -e
wall=0
report=$work/chinese.json
jq -e . "$report" > /dev/null || fail "stdout is not one JSON document: $(head -c 500 "$report")"
iconv -f UTF-8 -t UTF-8 "$report" > /dev/null || fail "stdout is not UTF-8"
grep -q 'POST /login' "$work/chinese.err" || fail "no text report on stderr: $(head -c 500 "$work/chinese.err")"
expect_rc 1
books
jqcheck '.arrivals as $n | .users_ok == 0 and .steps[0].failed == $n' "step counts"
jqcheck '.arrivals as $n | .failures | length == 1 and .[0].count == $n and
         (.[0].kind | startswith("POST /login: status 500 (服务器内部错误")) and
         all(.[0].samples[]; startswith("HTTP 500: "))' "failure kind"
ok_line

# 9b. A 500 whose error names a new request id each time: a kind per answer would grow the
# failure table without bound; past 64 kinds the rest are folded into one, every failure
# still counted.
start_target uniqueerror
run uniqueerror --rate 200/s --duration 1s --step 'GET /a'
expect_rc 1
books
jqcheck '.failures | length == 65' "failure kinds not bounded at 64 + 1"
jqcheck '.arrivals as $n | ([.failures[].count] | add) == $n' "a failure lost when folding"
jqcheck 'any(.failures[]; .kind == "(other kinds: more than 64)" and (.samples[0] | startswith("GET /a: status 500")))' \
  "no folded kind"
ok_line

# 10. A chunked 200 over several writes, a few ms apart.
start_target chunked
run chunked --rate 100/s --duration 1s --step 'GET /a' --step 'GET /b'
all_right
ok_line

# 11. A target that closes a keep-alive connection idle for 100 ms; users arrive every 200 ms,
# so each finds its idle connection closed and must open another. Passes, unless a user took
# the connection just as the target closed it (the keep-alive race, a transport failure on
# the first step; reported, not failed).
start_target closeidle 100
run closeidle --rate 5/s --duration 1s --step 'GET /a' --step 'GET /b'
books
if [[ $rc -eq 0 ]]; then
  all_right
else
  expect_rc 1
  jqcheck 'all(.failures[]; .kind | test("^GET /[ab]: transport: "))' "failures other than the keep-alive race"
  echo "note $scenario: the keep-alive race was hit: $(summary)"
fi
ok_line

# 12. Nothing listening (a port just freed): every user fails to connect, in the open and
# the closed loop; the run ends on time (nothing to wait for).
stop_target
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
target=http://127.0.0.1:$port
for loop in open closed; do
  if [[ $loop == open ]]; then how=(--rate 100/s); else how=(--connections 4); fi
  run "down_$loop" "${how[@]}" --duration 1s --step 'GET /a' --step 'GET /b'
  expect_rc 1
  books
  jqcheck '.arrivals > 0 and .users_ok == 0 and .steps[0].sent == 0 and .steps[0].failed == .users_done' "step counts"
  jqcheck '.generator.connects == 0 and .generator.connect_errors > 0' "connections"
  jqcheck 'all(.failures[]; .kind | test("transport: connect"))' "failure kinds"
  jqcheck '.seconds < 2' "the run did not end on time"
  (( wall < 4000 )) || fail "the run took ${wall} ms"
  ok_line
done

# 13. SIGTERM a second into a 10 s run (answers 0.3 s late, so users are in flight): the
# run ends (the answers in flight get 1 s), exits 1, and still writes its report, which
# says it was interrupted.
start_target slow 0.3
scenario=sigterm
rm -f "$work/sigterm.json"
t0=$(date +%s%N)
timeout -k 5 30 "$gen" --target "$target" --quiet --json "$work/sigterm.json" --rate 50/s --duration 10s \
  --step 'GET /a' --step 'GET /b' > "$work/sigterm.out" 2> "$work/sigterm.err" &
gpid=$!
sleep 1
kill -TERM $gpid
set +e
wait $gpid
rc=$?
set -e
wall=$(( ($(date +%s%N) - t0) / 1000000 ))
report=$work/sigterm.json
[[ -s $report ]] || fail "no report after SIGTERM (exit $rc): $(cat "$work/sigterm.err")"
expect_rc 1
books
jqcheck '.interrupted == true and .passed == false' "not marked interrupted"
jqcheck 'any(.checks[]; .check == "the run played its whole plan" and .passed == false)' "no interrupted check"
jqcheck '.arrivals > 0 and .arrivals < 500 and .seconds < 5' "the run went on after SIGTERM"
grep -q 'interrupted' "$work/sigterm.err" || fail "nothing said on stderr: $(cat "$work/sigterm.err")"
ok_line

stop_target
echo "ok"
