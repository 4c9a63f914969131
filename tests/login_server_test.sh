#!/usr/bin/env bash
# examples/login_server, used the way a mini program uses its backend: against its embedded
# mock, then against a standalone mock_wechat through --api-base.
#   login_server_test.sh LOGIN_SERVER MOCK_WECHAT
set -euo pipefail
server=$1 mock=$2
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
appid=wx1000000000000009
secret=login-server-secret-1234
field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];console.log(v===undefined?"":typeof v==="string"?v:JSON.stringify(v))})' "$1"; }
json='Content-Type: application/json'  # login_server takes JSON only (415 otherwise)
auth='X-No-Auth: 1'                     # the embedded mock's admin token, when it has one
admin_token_of() { sed -n 's/.*; admin token \([0-9a-f]*\);.*/\1/p' "$1"; }
wait_line() { for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; fail "no '$2' in $1: $(cat "$1")"; }

check_flow() {  # BASE_OF_LOGIN_SERVER MOCK_BASE
  local base=$1 mockbase=$2
  code=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/login" -d "{\"appid\":\"$appid\",\"user\":\"alice\"}" | field code)
  login=$(curl -s -XPOST -H "$json" "$base/login" -d "{\"code\":\"$code\"}")
  token=$(field token <<< "$login")
  openid=$(field openid <<< "$login")
  [[ ${#token} -ge 32 && -n $openid ]] || fail "login: $login"
  grep -qi "session_key" <<< "$login" && fail "the session_key left the server: $login"
  # The same code again within the double-submit window: the same session, not a new one.
  again=$(curl -s -XPOST -H "$json" "$base/login" -d "{\"code\":\"$code\"}")
  [[ $(field openid <<< "$again") == "$openid" && $(field token <<< "$again") == "$token" ]] || fail "double submit: $again"

  info=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/user_info" -d "{\"appid\":\"$appid\",\"user\":\"alice\"}")
  req=$(node -e 'const i=JSON.parse(process.argv[1]);console.log(JSON.stringify({token:process.argv[2],encryptedData:i.encryptedData,iv:i.iv,rawData:i.rawData,signature:i.signature}))' "$info" "$token")
  status=$(curl -s -o "$work/userinfo" -w '%{http_code}' -XPOST -H "$json" "$base/userinfo" -d "$req")
  [[ $status == 200 ]] || fail "userinfo $status: $(cat "$work/userinfo")"
  [[ $(field user < "$work/userinfo" | field openId) == "$openid" ]] || fail "userinfo: $(cat "$work/userinfo")"
  [[ -n $(field unionid < "$work/userinfo") ]] || fail "no unionid after consent: $(cat "$work/userinfo")"
  # Today's WeChat: an anonymous profile that still carries the ids.
  [[ $(field user < "$work/userinfo" | field nickName) == "微信用户" ]] || fail "not anonymous: $(cat "$work/userinfo")"
  # wx.getUserProfile data: no ids inside; accepted, the unionid comes from the session.
  prof=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/user_profile" -d "{\"appid\":\"$appid\",\"user\":\"alice\"}")
  req=$(node -e 'const i=JSON.parse(process.argv[1]);console.log(JSON.stringify({token:process.argv[2],encryptedData:i.encryptedData,iv:i.iv,rawData:i.rawData,signature:i.signature}))' "$prof" "$token")
  status=$(curl -s -o "$work/profile" -w '%{http_code}' -XPOST -H "$json" "$base/userinfo" -d "$req")
  [[ $status == 200 ]] || fail "getUserProfile data $status: $(cat "$work/profile")"
  [[ -z $(field user < "$work/profile" | field openId) ]] || fail "an openId from getUserProfile data: $(cat "$work/profile")"
  [[ $(field unionid < "$work/profile") == $(field unionid < "$work/userinfo") ]] || fail "profile: $(cat "$work/profile")"
  # POST /unionid: today's rules give it from the session (a bound app).
  ans=$(curl -s -XPOST -H "$json" "$base/unionid" -d "{\"token\":\"$token\"}")
  [[ $(field channel <<< "$ans") == session && -n $(field unionid <<< "$ans") ]] || fail "/unionid: $ans"

  # Wrong inputs: typed answers.
  [[ $(curl -s -o /dev/null -w '%{http_code}' -XPOST -H "$json" "$base/login" -d '{"nope":1}') == 400 ]] || fail "bad body"
  [[ $(curl -s -o /dev/null -w '%{http_code}' -XPOST -H "$json" "$base/login" -d '{"code":"not-a-code"}') == 401 ]] || fail "bad code"
  bad=$(sed "s/\"token\":\"[^\"]*\"/\"token\":\"unknown\"/" <<< "$req")
  [[ $(curl -s -o /dev/null -w '%{http_code}' -XPOST -H "$json" "$base/userinfo" -d "$bad") == 401 ]] || fail "unknown token"
  # The device logs in again; the server's key for this token is now stale.
  curl -sf -XPOST -H "$auth" "$mockbase/__mock/login" -d "{\"appid\":\"$appid\",\"user\":\"alice\"}" > /dev/null
  info=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/user_info" -d "{\"appid\":\"$appid\",\"user\":\"alice\"}")
  req=$(node -e 'const i=JSON.parse(process.argv[1]);console.log(JSON.stringify({token:process.argv[2],encryptedData:i.encryptedData,iv:i.iv}))' "$info" "$token")
  status=$(curl -s -o "$work/stale" -w '%{http_code}' -XPOST -H "$json" "$base/userinfo" -d "$req")
  [[ $status == 409 ]] || fail "stale key: $status $(cat "$work/stale")"
  grep -q "bad_padding\|not_json" "$work/stale" || fail "stale key answer: $(cat "$work/stale")"
  cat "$work/userinfo" "$work/stale" > "$work/answers"
}

# --help: the usage on stdout, exit 0; no appid: the usage on stderr, exit 2.
"$server" --help > "$work/help" || fail "--help exited $?"
grep -q "^usage: login_server" "$work/help" || fail "--help: $(cat "$work/help")"
set +e; env -u WECHAT_APPID -u WECHAT_SECRET "$server" > /dev/null 2> "$work/noargs"; rc=$?; set -e
[[ $rc == 2 ]] && grep -q "^usage: login_server" "$work/noargs" || fail "no arguments: exit $rc"

# 1. The embedded mock.
"$server" --appid "$appid" --secret "$secret" --port 0 > "$work/out1" 2> "$work/err1" &
pids+=($!)
wait_line "$work/out1" "login_server listening on"
[[ $(wc -l < "$work/out1") == 1 ]] || fail "more than one line on stdout"
base=$(sed -n 's/^login_server listening on //p' "$work/out1")
mockbase=$(sed -n 's/^embedded mock_wechat on \([^;]*\);.*/\1/p' "$work/err1")
auth="Authorization: Bearer $(admin_token_of "$work/err1")"
# The embedded mock's admin API is not open to any local process.
[[ $(curl -s -o /dev/null -w '%{http_code}' -XPOST "$mockbase/__mock/login" -d "{\"appid\":\"$appid\",\"user\":\"x\"}") == 401 ]] || fail "the embedded mock's admin API answered without its token"
check_flow "$base" "$mockbase"
echo "embedded mock: ok"

# 2. A standalone mock through --api-base, the secret from the environment.
auth='X-No-Auth: 1'
"$mock" --port 0 > "$work/mock.out" &
pids+=($!)
wait_line "$work/mock.out" listening
mockbase=$(sed -n 's/^mock_wechat listening on //p' "$work/mock.out")
curl -sf -XPOST -H "$auth" "$mockbase/__mock/apps" -d "{\"appid\":\"$appid\",\"secret\":\"$secret\",\"type\":\"miniprogram\",\"open_account\":\"acct\"}" > /dev/null
WECHAT_APPID=$appid WECHAT_SECRET=$secret "$server" --api-base "$mockbase" --port 0 > "$work/out2" 2> "$work/err2" &
pids+=($!)
wait_line "$work/out2" "login_server listening on"
base=$(sed -n 's/^login_server listening on //p' "$work/out2")
check_flow "$base" "$mockbase"
echo "standalone mock: ok"

# 3. POST /unionid through every channel, against a mock keeping the legacy rules (WeChat
#    before 2021-02-23: no unionid from code2session without a follow or an authorization),
#    with a login_server that diagnoses under the same rules.
"$mock" --port 0 --unionid-rules conditional --profiles real > "$work/mock4.out" &
pids+=($!)
wait_line "$work/mock4.out" listening
mockbase=$(sed -n 's/^mock_wechat listening on //p' "$work/mock4.out")
curl -sf -XPOST -H "$auth" "$mockbase/__mock/apps" -d "{\"appid\":\"$appid\",\"secret\":\"$secret\",\"type\":\"miniprogram\",\"open_account\":\"acct\"}" > /dev/null
oa=wx10000000000000aa
curl -sf -XPOST -H "$auth" "$mockbase/__mock/apps" -d "{\"appid\":\"$oa\",\"secret\":\"oa-secret\",\"type\":\"official_account\",\"open_account\":\"acct\"}" > /dev/null
"$server" --appid "$appid" --secret "$secret" --api-base "$mockbase" --unionid-rules legacy --port 0 > "$work/out4" 2> "$work/err4" &
pids+=($!)
wait_line "$work/out4" "login_server listening on"
base=$(sed -n 's/^login_server listening on //p' "$work/out4")
code=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/login" -d "{\"appid\":\"$appid\",\"user\":\"bob\"}" | field code)
login=$(curl -sf -XPOST -H "$json" "$base/login" -d "{\"code\":\"$code\"}")
token=$(field token <<< "$login")
[[ -z $(field unionid <<< "$login") ]] || fail "legacy rules gave a unionid at login: $login"
info=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/user_info" -d "{\"appid\":\"$appid\",\"user\":\"bob\"}")
req=$(node -e 'const i=JSON.parse(process.argv[1]);console.log(JSON.stringify({token:process.argv[2],encryptedData:i.encryptedData,iv:i.iv,rawData:i.rawData,signature:i.signature}))' "$info" "$token")
ans=$(curl -s -XPOST -H "$json" "$base/userinfo" -d "$req")
[[ $(field user <<< "$ans" | field nickName) == bob && -n $(field unionid <<< "$ans") ]] || fail "real profile, consent: $ans"
ans=$(curl -s -XPOST -H "$json" "$base/unionid" -d "{\"token\":\"$token\"}")
[[ $(field diagnosis <<< "$ans" | field reason) == no_relationship ]] || fail "/unionid, nothing in hand: $ans"
# A payment: getPaidUnionId inside the window; a payment 6 minutes old is not asked about.
pay=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/pay" -d "{\"appid\":\"$appid\",\"user\":\"bob\"}")
tx=$(field transaction_id <<< "$pay")
ans=$(curl -s -XPOST -H "$json" "$base/unionid" -d "{\"token\":\"$token\",\"transaction_id\":\"$tx\"}")
[[ $(field channel <<< "$ans") == paid && -n $(field unionid <<< "$ans") ]] || fail "/unionid paid: $ans"
unionid=$(field unionid <<< "$ans")
ans=$(curl -s -XPOST -H "$json" "$base/unionid" -d "{\"token\":\"$token\",\"mch_id\":\"$(field mch_id <<< "$pay")\",\"out_trade_no\":\"$(field out_trade_no <<< "$pay")\"}")
[[ $(field unionid <<< "$ans") == "$unionid" ]] || fail "/unionid by mch_id + out_trade_no: $ans"
old=$(( $(date +%s) - 400 ))
ans=$(curl -s -XPOST -H "$json" "$base/unionid" -d "{\"token\":\"$token\",\"transaction_id\":\"$tx\",\"paid_at\":$old}")
[[ $(field diagnosis <<< "$ans" | field reason) == payment_window_closed ]] || fail "/unionid, old payment: $ans"
# The cloud context, once bob follows the account's official account.
curl -sf -XPOST -H "$auth" "$mockbase/__mock/follow" -d "{\"appid\":\"$oa\",\"user\":\"bob\"}" > /dev/null
ctx=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/wxcontext" -d "{\"appid\":\"$appid\",\"user\":\"bob\"}")
ans=$(curl -s -XPOST -H "$json" "$base/unionid" -d "{\"token\":\"$token\",\"cloud\":$ctx}")
[[ $(field channel <<< "$ans") == cloud && $(field unionid <<< "$ans") == "$unionid" ]] || fail "/unionid cloud: $ans"
# Wrong inputs: 400 or 401, never a guess.
for body in '{"token":"'$token'","paid_at":1}' '{"token":"'$token'","mch_id":"1"}' \
            '{"token":"'$token'","transaction_id":7}' '{"token":"'$token'","cloud":{"OPENID":1}}' \
            '{"token":"'$token'","encryptedData":"x"}' '[]' '{}'; do
  [[ $(curl -s -o /dev/null -w '%{http_code}' -XPOST -H "$json" "$base/unionid" -d "$body") == 400 ]] || fail "/unionid accepted $body"
done
[[ $(curl -s -o /dev/null -w '%{http_code}' -XPOST -H "$json" "$base/unionid" -d '{"token":"nope"}') == 401 ]] || fail "/unionid unknown token"
# Device data from a newer login than our session's: 409, as /userinfo (log in again).
curl -sf -XPOST -H "$auth" "$mockbase/__mock/login" -d "{\"appid\":\"$appid\",\"user\":\"bob\"}" > /dev/null
info=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/user_info" -d "{\"appid\":\"$appid\",\"user\":\"bob\"}")
req=$(node -e 'const i=JSON.parse(process.argv[1]);console.log(JSON.stringify({token:process.argv[2],encryptedData:i.encryptedData,iv:i.iv}))' "$info" "$token")
status=$(curl -s -o "$work/stale4" -w '%{http_code}' -XPOST -H "$json" "$base/unionid" -d "$req")
[[ $status == 409 ]] || fail "/unionid with a newer login's data: $status $(cat "$work/stale4")"
echo "POST /unionid: ok"

# 4. Sessions are bounded: with --max-sessions 2 the oldest of three logins is forgotten.
"$server" --appid "$appid" --secret "$secret" --port 0 --max-sessions 2 > "$work/out3" 2> "$work/err3" &
pids+=($!)
wait_line "$work/out3" "login_server listening on"
base=$(sed -n 's/^login_server listening on //p' "$work/out3")
mockbase=$(sed -n 's/^embedded mock_wechat on \([^;]*\);.*/\1/p' "$work/err3")
auth="Authorization: Bearer $(admin_token_of "$work/err3")"
tokens=()
for user in u1 u2 u3; do
  code=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/login" -d "{\"appid\":\"$appid\",\"user\":\"$user\"}" | field code)
  tokens+=("$(curl -sf -XPOST -H "$json" "$base/login" -d "{\"code\":\"$code\"}" | field token)")
done
userinfo_status() {  # TOKEN USER
  local info req
  info=$(curl -sf -XPOST -H "$auth" "$mockbase/__mock/user_info" -d "{\"appid\":\"$appid\",\"user\":\"$2\"}")
  req=$(node -e 'const i=JSON.parse(process.argv[1]);console.log(JSON.stringify({token:process.argv[2],encryptedData:i.encryptedData,iv:i.iv}))' "$info" "$1")
  curl -s -o /dev/null -w '%{http_code}' -XPOST -H "$json" "$base/userinfo" -d "$req"
}
[[ $(userinfo_status "${tokens[0]}" u1) == 401 ]] || fail "the oldest session was kept beyond --max-sessions"
[[ $(userinfo_status "${tokens[1]}" u2) == 200 ]] || fail "session 2 lost"
[[ $(userinfo_status "${tokens[2]}" u3) == 200 ]] || fail "session 3 lost"
echo "bounded sessions: ok"

# 5. A hostile client (issue 19): every route is bounded and every bad input is typed.
"$server" --appid "$appid" --secret "$secret" --port 0 --session-ttl 8 --sessions-per-user 2 > "$work/out5" 2> "$work/err5" &
pids+=($!)
wait_line "$work/out5" "login_server listening on"
base=$(sed -n 's/^login_server listening on //p' "$work/out5")
port=$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/out5")
mockbase=$(sed -n 's/^embedded mock_wechat on \([^;]*\);.*/\1/p' "$work/err5")
auth="Authorization: Bearer $(admin_token_of "$work/err5")"
# A crowd trickling header lines holds no thread: honest requests are answered meanwhile,
# and the crowd is closed at the 10 s whole-request deadline (runs while the rest goes on).
node "$(dirname "$0")/login_server_hostile.js" slowloris "$port" 48 > "$work/slowloris" 2>&1 &
slow=$!
login_code() { curl -sf -XPOST -H "$auth" "$mockbase/__mock/login" -d "{\"appid\":\"$appid\",\"user\":\"$1\"}" | field code; }
status_of() { curl -s -o "$work/last" -w '%{http_code}' "$@"; }
code=$(login_code eve)
token=$(curl -sf -XPOST -H "$json" "$base/login" -d "{\"code\":\"$code\"}" | field token)
[[ -n $token ]] || fail "hostile: no login"
# Only JSON: a form or text/plain body (what a browser page can post cross-site) is 415.
[[ $(status_of -XPOST "$base/login" -d "{\"code\":\"$code\"}") == 415 ]] || fail "a form body was taken: $(cat "$work/last")"
[[ $(status_of -XPOST -H 'Content-Type: text/plain' "$base/login" -d "{\"code\":\"$code\"}") == 415 ]] || fail "text/plain was taken"
[[ $(status_of -XPOST -H 'Content-Type: Application/JSON; charset=utf-8' "$base/logout" -d '{"token":"x"}') == 200 ]] || fail "a JSON type with parameters was refused"
[[ $(status_of -XPOST -H "$json" "$base/nope" -d '{}') == 404 ]] || fail "unknown route"
[[ $(status_of "$base/login") == 405 ]] || fail "GET /login"
# Bodies are capped at 64 KiB however they are framed.
head -c 1048576 /dev/zero | tr '\0' 'a' > "$work/big"
[[ $(status_of -XPOST -H "$json" -H 'Transfer-Encoding: chunked' --data-binary @"$work/big" "$base/login") == 413 ]] || fail "a chunked 1 MiB body was not 413"
[[ $(status_of -XPOST -H "$json" --data-binary @"$work/big" "$base/login") == 413 ]] || fail "a 1 MiB body was not 413"
# A code that cannot be one is 400 before WeChat is called; a high-risk user's code is 401.
long=$(head -c 10240 /dev/zero | tr '\0' 'A')
[[ $(status_of -XPOST -H "$json" "$base/login" -d "{\"code\":\"$long\"}") == 400 ]] || fail "a 10 KB code: $(cat "$work/last")"
[[ $(status_of -XPOST -H "$json" "$base/login" -d '{"code":"abc def"}') == 400 ]] || fail "a code with a space"
curl -sf -XPOST -H "$auth" "$mockbase/__mock/faults" -d '{"path":"/sns/jscode2session","errcode":40226,"times":1}' > /dev/null
[[ $(status_of -XPOST -H "$json" "$base/login" -d "{\"code\":\"$(login_code eve)\"}") == 401 ]] || fail "40226: $(cat "$work/last")"
grep -q code_blocked "$work/last" || fail "40226 answer: $(cat "$work/last")"
# Sessions per user: a third login of one user forgets their oldest session.
t1=$(curl -sf -XPOST -H "$json" "$base/login" -d "{\"code\":\"$(login_code mallory)\"}" | field token)
t2=$(curl -sf -XPOST -H "$json" "$base/login" -d "{\"code\":\"$(login_code mallory)\"}" | field token)
c3=$(login_code mallory)
t3=$(curl -sf -XPOST -H "$json" "$base/login" -d "{\"code\":\"$c3\"}" | field token)
[[ $(status_of -XPOST -H "$json" "$base/unionid" -d "{\"token\":\"$t1\"}") == 401 ]] || fail "a third session kept the first (--sessions-per-user 2)"
[[ $(status_of -XPOST -H "$json" "$base/unionid" -d "{\"token\":\"$t2\"}") == 200 ]] || fail "session 2 of 2 lost"
# Logout: the token is gone; a second logout says so.
[[ $(curl -sf -XPOST -H "$json" "$base/logout" -d "{\"token\":\"$t3\"}" | field logged_out) == true ]] || fail "logout"
[[ $(status_of -XPOST -H "$json" "$base/unionid" -d "{\"token\":\"$t3\"}") == 401 ]] || fail "a token worked after logout"
[[ $(curl -sf -XPOST -H "$json" "$base/logout" -d "{\"token\":\"$t3\"}" | field logged_out) == false ]] || fail "logout twice"
# Its code again, inside the double-submit window: no new session for a closed login.
[[ $(status_of -XPOST -H "$json" "$base/login" -d "{\"code\":\"$c3\"}") == 401 ]] || fail "a logged-out login's code opened a session: $(cat "$work/last")"
grep -q session_closed "$work/last" || fail "replay after logout: $(cat "$work/last")"
# After the client's 10 s double-submit window the used code is refused (WeChat's 40163),
# and after --session-ttl 8 the session is gone.
sleep 10.5
[[ $(status_of -XPOST -H "$json" "$base/login" -d "{\"code\":\"$code\"}") == 401 ]] || fail "a used code replayed after the window: $(cat "$work/last")"
grep -q code_been_used "$work/last" || fail "replay answer: $(cat "$work/last")"
[[ $(status_of -XPOST -H "$json" "$base/unionid" -d "{\"token\":\"$token\"}") == 401 ]] || fail "a session outlived --session-ttl"
wait $slow || fail "slowloris: $(cat "$work/slowloris")"
echo "slowloris: $(cat "$work/slowloris")"
# The connection cap: one more than --max-connections is closed unanswered.
"$server" --appid "$appid" --secret "$secret" --port 0 --max-connections 8 > "$work/out6" 2> "$work/err6" &
pids+=($!)
wait_line "$work/out6" "login_server listening on"
node "$(dirname "$0")/login_server_hostile.js" cap "$(sed -n 's/.*:\([0-9]*\)$/\1/p' "$work/out6")" 8 > "$work/cap" 2>&1 || fail "connection cap: $(cat "$work/cap")"
# A secret shaped like a real AppSecret does not go to the embedded mock unasked.
set +e; "$server" --appid "$appid" --secret 0123456789abcdef0123456789abcdef --port 0 > /dev/null 2> "$work/real"; rc=$?; set -e
[[ $rc == 2 ]] && grep -q "embedded-mock" "$work/real" || fail "a real-looking secret went to the embedded mock: $rc $(cat "$work/real")"
grep -q 0123456789abcdef "$work/real" && fail "the refusal printed the secret"
echo "hostile clients: ok"

# Nothing secret in anything the server said.
if grep -q -- "$secret" "$work"/out* "$work"/err* "$work/answers"; then fail "the appsecret was printed"; fi
echo "login_server ok"
