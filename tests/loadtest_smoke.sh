#!/usr/bin/env bash
# wechat-loadtest against examples/login_server and the standalone mock, for 5 seconds at
# 100 logins/s (no speed is asserted: the machine is shared). Each virtual user logs in and
# posts its wx.getUserInfo payload; the run must pass every check (every answer right, the
# openid and unionid the mock gives each user, one jscode2session per login, no 40163, no
# token storm), write its per-second CSV, and exit 0.
# Then two runs that must fail, so the checks are known to bite: a check that cannot hold
# (exit 1, the wrong answers counted), and a "backend" that exchanges every code twice (the
# mock itself as the target: 40163 and two exchanges per login caught after the run).
#   loadtest_smoke.sh MOCK_WECHAT LOGIN_SERVER WECHAT_LOADTEST
set -euo pipefail
mock=$1 server=$2 gen=$3
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
wait_line() {  # FILE PATTERN
  for _ in $(seq 200); do grep -q "$2" "$1" && return 0; sleep 0.05; done
  fail "no '$2' in $1: $(cat "$1")"
}

appid=wx1000000000000001 secret=loadtest-smoke-secret
"$mock" --port 0 > "$work/mock.out" 2>&1 &
pids+=($!)
wait_line "$work/mock.out" listening
mockbase=$(sed -n 's/^mock_wechat listening on //p' "$work/mock.out")
curl -sf -XPOST "$mockbase/__mock/apps" \
  -d "{\"appid\":\"$appid\",\"secret\":\"$secret\",\"type\":\"miniprogram\",\"open_account\":\"acct\"}" > /dev/null

WECHAT_APPID=$appid WECHAT_SECRET=$secret "$server" --api-base "$mockbase" --port 0 > "$work/server.out" 2> "$work/server.err" &
pids+=($!)
wait_line "$work/server.out" listening
target=$(sed -n 's/^login_server listening on //p' "$work/server.out")

# 1. The run that must pass.
set +e
"$gen" --target "$target" --mock "$mockbase" --appid "$appid" --rate 100/s --duration 5s --warmup 1s \
  --step 'POST /login {"code":"${code}"}' --capture 'token=$.token' --check '$.unionid==${unionid?}' \
  --step 'POST /userinfo {"token":"${token}","encryptedData":"${user_info.encryptedData}","iv":"${user_info.iv}","rawData":"${user_info.rawData}","signature":"${user_info.signature}"}' \
  --check 'exists($.user)' \
  --slo 'p99<5s' --csv "$work/run.csv" --json "$work/run.json" > "$work/run.txt" 2>&1
rc=$?
set -e
cat "$work/run.txt"
[[ $rc -eq 0 ]] || fail "the run against login_server exited $rc"
# Every figure below is read from the JSON report (jq); no speed is asserted.
jqcheck() {  # EXPRESSION WHAT
  jq -e "$1" "$work/run.json" > /dev/null || fail "$2: $(jq -c "$1" "$work/run.json" 2>&1)"
}
jqcheck '.passed == true and all(.checks[]; .passed)' "not every check passed"
for want in "one jscode2session per login" "no 40163" "access-token fetches" "every WeChat errcode"; do
  jqcheck "any(.checks[]; .check | startswith(\"$want\"))" "no check '$want'"
done
jqcheck '[.steps[].step] == ["POST /login", "POST /userinfo"]' "steps"
# 5 s of arrivals at 100/s: 500 users planned, every one answered right on both steps.
jqcheck '.arrivals >= 450' "too few arrivals"
jqcheck '.users_ok == .arrivals and .unsent == 0' "users not all right"
jqcheck '.arrivals as $n | all(.steps[]; .ok == $n and .sent == $n and .failed == 0)' "step counts"
# The 1 s warmup is checked but not measured: the histogram holds fewer answers than were sent.
jqcheck '.steps[0] | .latency.count > 0 and .latency.count < .sent' "warmup excluded from the histogram"
jqcheck '.steps[0].latency | .p50_ms <= .p99_ms and .p99_ms <= .max_ms' "percentiles out of order"
jqcheck '.mint.logins >= .arrivals and .mint.calls >= 1' "minting"
echo "report ok: $(jq -r '"\(.arrivals) users, login p99 \(.steps[0].latency.p99_ms) ms"' "$work/run.json")"
lines=$(wc -l < "$work/run.csv")
[[ $lines -ge 6 ]] || fail "run.csv has $lines lines"
head -1 "$work/run.csv" | grep -q '^second,target_rps,sent,ok,errors,p50_ms' || fail "run.csv header: $(head -1 "$work/run.csv")"

# 2. A check that cannot hold: every answer is wrong, counted, shown, and the exit is 1.
set +e
"$gen" --target "$target" --mock "$mockbase" --appid "$appid" --rate 50/s --duration 1s \
  --step 'POST /login {"code":"${code}"}' --check '$.openid==${user}' --show 2 > "$work/wrong.txt" 2>&1
rc=$?
set -e
cat "$work/wrong.txt"
[[ $rc -eq 1 ]] || fail "a failing check exited $rc, not 1"
grep -q 'FAIL every answer right' "$work/wrong.txt" || fail "the wrong answers were not reported"
[[ $(grep -c 'e.g. ' "$work/wrong.txt") -eq 2 ]] || fail "--show 2 did not show 2 samples"

# 3. A backend that exchanges each code twice: here the mock itself is the target, and each
# user calls jscode2session twice with one code. The answers are 200s; the run fails on the
# mock's counters (40163, two exchanges per login).
set +e
"$gen" --target "$mockbase" --mock "$mockbase" --appid "$appid" --rate 50/s --duration 1s --no-default-checks \
  --step "GET /sns/jscode2session?appid=$appid&secret=$secret&js_code=\${code}&grant_type=authorization_code" \
  --step "GET /sns/jscode2session?appid=$appid&secret=$secret&js_code=\${code}&grant_type=authorization_code" \
  > "$work/twice.txt" 2>&1
rc=$?
set -e
cat "$work/twice.txt"
[[ $rc -eq 1 ]] || fail "exchanging every code twice exited $rc, not 1"
grep -q 'FAIL no 40163' "$work/twice.txt" || fail "40163 not caught"
grep -q 'FAIL one jscode2session per login' "$work/twice.txt" || fail "double exchanges not caught"
grep -q "$secret" "$work/run.txt" "$work/wrong.txt" && fail "the secret appears in a report"
echo "ok"
