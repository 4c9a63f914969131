#!/usr/bin/env bash
# examples/component_login, a third-party platform's backend, against a standalone
# mock_wechat and a real redis-server: the ticket pushed by the mock, logins of users of two
# authorized mini programs, a restart that keeps the ticket, the errors of a stale ticket
# (61005), a superseded one (61006) and an app that did not authorize the platform (61003),
# and a WeCom mini program's login.
#   component_login_test.sh COMPONENT_LOGIN MOCK_WECHAT REDIS_PORT_FILE
set -euo pipefail
server=$1 mock=$2 redis_port=$(cat "$3")
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/err*; do echo "--- $f"; cat "$f"; done; exit 1; }
wait_line() { for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; fail "no '$2' in $1: $(cat "$1")"; }
json='Content-Type: application/json'

component=wxc0000000000c0001
app1=wx1000000000000c01 app2=wx1000000000000c02 app3=wx1000000000000c03
corp=ww0000000000000c01
export WECHAT_COMPONENT_SECRET=component-secret-c0001
export WECHAT_COMPONENT_TOKEN=platformtoken1
export WECHAT_COMPONENT_AES_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
export WECHAT_WECOM_SECRET=wecom-corp-secret-c01
prefix="component-login-test-$$:"  # the fixture's redis-server is shared with other tests

"$mock" --port 0 > "$work/mock.out" 2> "$work/err.mock" &
pids+=($!)
wait_line "$work/mock.out" "mock_wechat listening on"
mockbase=$(sed -n 's/^mock_wechat listening on //p' "$work/mock.out")
admin() { curl -sf -XPOST "$mockbase/__mock/$1" -d "$2" || fail "admin $1 $2"; }
for a in $app1 $app2 $app3; do
  admin apps "{\"appid\":\"$a\",\"secret\":\"s-$a\",\"type\":\"miniprogram\",\"open_account\":\"platform-clients\"}" > /dev/null
done
admin corps "{\"corpid\":\"$corp\",\"corpsecret\":\"$WECHAT_WECOM_SECRET\"}" > /dev/null

port=0  # any free port at first; restarts keep it, as WeChat pushes to one URL
start_platform() {  # LOG [extra options]: starts component_login, sets $base and $port
  local log=$1; shift
  "$server" --component-appid "$component" --api-base "$mockbase" --port "$port" \
    --wecom-corpid "$corp" --wecom-api-base "$mockbase" "$@" > "$work/out.$log" 2> "$work/err.$log" &
  platform_pid=$!
  pids+=($platform_pid)
  wait_line "$work/out.$log" "component_login listening on"
  base=$(sed -n 's/^component_login listening on //p' "$work/out.$log")
  port=${base##*:}
}
stop_platform() { kill "$platform_pid"; wait "$platform_pid" 2>/dev/null || true; }
login() {  # APP USER -> the answer's body in $work/login, its status echoed
  local code
  code=$(admin login "{\"appid\":\"$1\",\"user\":\"$2\"}" | jq -r .code)
  curl -s -o "$work/login" -w '%{http_code}' -XPOST -H "$json" "$base/login" -d "{\"appid\":\"$1\",\"code\":\"$code\"}"
}
component_token_fetches() {
  curl -sf "$mockbase/__mock/requests?path=/cgi-bin/component/api_component_token" | jq 'if type == "array" then length else (.requests | length) end'
}

# --help on stdout, exit 0; without its secrets: the usage, exit 2.
"$server" --help > "$work/help" && grep -q "^usage: component_login" "$work/help" || fail "--help"
set +e; env -u WECHAT_COMPONENT_SECRET "$server" --component-appid "$component" > /dev/null 2>&1; rc=$?; set -e
[[ $rc == 2 ]] || fail "no secret: exit $rc"

# 1. The platform starts, then registers with WeChat: the first ticket is pushed at once.
start_platform 1 --redis "127.0.0.1:$redis_port" --redis-prefix "$prefix"
created=$(admin components "{\"component_appid\":\"$component\",\"secret\":\"$WECHAT_COMPONENT_SECRET\",\"token\":\"$WECHAT_COMPONENT_TOKEN\",\"encoding_aes_key\":\"$WECHAT_COMPONENT_AES_KEY\",\"ticket_url\":\"$base/wechat/component\"}")
[[ $(jq -r .ticket_pushed <<< "$created") == true && $(jq -r .answer <<< "$created") == success ]] || fail "first push: $created"
[[ $(curl -sf "$base/health" | jq -r .ticket) == true ]] || fail "no ticket after the push"
redis-cli -p "$redis_port" --raw get "${prefix}component_verify_ticket:$component" | grep -q . || fail "the ticket is not in Redis under the platform's key"

# 2. Two mini programs authorize the platform; their users log in through it.
refresh1=$(admin component_authorize "{\"component_appid\":\"$component\",\"appid\":\"$app1\"}" | jq -r .authorizer_refresh_token)
admin component_authorize "{\"component_appid\":\"$component\",\"appid\":\"$app2\"}" > /dev/null
[[ $(login $app1 alice) == 200 ]] || fail "login app1: $(cat "$work/login")"
openid1=$(jq -r .openid "$work/login") union1=$(jq -r .unionid "$work/login")
[[ $(login $app2 alice) == 200 ]] || fail "login app2: $(cat "$work/login")"
openid2=$(jq -r .openid "$work/login") union2=$(jq -r .unionid "$work/login")
[[ -n $openid1 && $openid1 != null && $openid1 != "$openid2" ]] || fail "openids: $openid1 $openid2"
# Both apps are bound to one Open Platform account: today's rules (since 2021-02-23) give the
# same unionid through the component's code2session.
[[ $union1 != null && $union1 == "$union2" ]] || fail "unionids: $union1 $union2"
grep -qi session_key "$work/login" && fail "the session_key left the server"
[[ $(login $app1 bob) == 200 && $(jq -r .openid "$work/login") != "$openid1" ]] || fail "bob: $(cat "$work/login")"
[[ $(component_token_fetches) == 1 ]] || fail "component token fetched $(component_token_fetches) times for three logins"
# The authorization flow's refresh token, kept by the platform; a wrong one is 61023.
status=$(curl -s -o "$work/auth" -w '%{http_code}' -XPOST -H "$json" "$base/authorizers" -d "{\"appid\":\"$app1\",\"authorizer_refresh_token\":\"$refresh1\"}")
[[ $status == 200 ]] || fail "authorizers: $status $(cat "$work/auth")"
status=$(curl -s -o "$work/auth" -w '%{http_code}' -XPOST -H "$json" "$base/authorizers" -d "{\"appid\":\"$app2\",\"authorizer_refresh_token\":\"refreshtoken@@@wrong\"}")
[[ $status == 502 ]] && grep -q authorizer_refresh_token_invalid "$work/auth" || fail "wrong refresh token: $status $(cat "$work/auth")"
# A wrong one for app1, whose authorizer token is cached: checked all the same (a new
# refresh token drops the token of the previous one); then the right one again.
status=$(curl -s -o "$work/auth" -w '%{http_code}' -XPOST -H "$json" "$base/authorizers" -d "{\"appid\":\"$app1\",\"authorizer_refresh_token\":\"refreshtoken@@@wrong\"}")
[[ $status == 502 ]] && grep -q authorizer_refresh_token_invalid "$work/auth" || fail "wrong refresh token over a cached token: $status $(cat "$work/auth")"
status=$(curl -s -o "$work/auth" -w '%{http_code}' -XPOST -H "$json" "$base/authorizers" -d "{\"appid\":\"$app1\",\"authorizer_refresh_token\":\"$refresh1\"}")
[[ $status == 200 ]] || fail "the right refresh token again: $status $(cat "$work/auth")"

# 3. An app that did not authorize the platform: 61003, said as such.
[[ $(login $app3 alice) == 403 ]] && grep -q component_not_authorized "$work/login" || fail "app3: $(cat "$work/login")"
# A push that is not WeChat's is refused, and nothing is stored.
status=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$base/wechat/component?timestamp=1&nonce=2&encrypt_type=aes&msg_signature=00" -d '<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>')
[[ $status == 400 ]] || fail "a forged push answered $status"

# 4. A restart: the ticket and the component token come back from Redis; no new fetch.
stop_platform
start_platform 2 --redis "127.0.0.1:$redis_port" --redis-prefix "$prefix"
[[ $(login $app2 carol) == 200 ]] || fail "login after restart: $(cat "$work/login")"
[[ $(component_token_fetches) == 1 ]] || fail "a restart fetched the component token again"

# 5. Down for 13 hours (virtual): the pushes meanwhile are lost; the ticket kept is past
#    WeChat's 12 hours and the component token expired. 61005 until the next push.
stop_platform
curl -sf -XPOST "$mockbase/__mock/clock" -d '{"advance":46800}' > /dev/null
start_platform 3 --redis "127.0.0.1:$redis_port" --redis-prefix "$prefix"
[[ $(login $app1 dave) == 503 ]] && grep -q component_ticket_expired "$work/login" || fail "stale ticket: $(cat "$work/login")"
pushed=$(admin component_push "{\"component_appid\":\"$component\"}")
[[ $(jq -r .answer <<< "$pushed") == success ]] || fail "push: $pushed"
[[ $(login $app1 dave) == 200 ]] || fail "after the push: $(cat "$work/login")"

# 6. Down while two tickets were pushed and the token expired: the ticket kept is neither the
#    latest nor the previous one. 61006 until the next push.
stop_platform
admin component_push "{\"component_appid\":\"$component\"}" > /dev/null
admin component_push "{\"component_appid\":\"$component\"}" > /dev/null
curl -sf -XPOST "$mockbase/__mock/clock" -d '{"advance":7300}' > /dev/null
start_platform 4 --redis "127.0.0.1:$redis_port" --redis-prefix "$prefix"
[[ $(login $app2 erin) == 503 ]] && grep -q component_ticket_invalid "$work/login" || fail "superseded ticket: $(cat "$work/login")"
admin component_push "{\"component_appid\":\"$component\"}" > /dev/null
[[ $(login $app2 erin) == 200 ]] || fail "after the push: $(cat "$work/login")"

# 7. Without Redis a restart has no ticket: a typed 503 before any call to WeChat.
stop_platform
before=$(component_token_fetches)
start_platform 5
[[ $(curl -sf "$base/health" | jq -r .ticket) == false ]] || fail "a ticket in a fresh memory store"
[[ $(login $app1 frank) == 503 ]] || fail "no ticket: $(cat "$work/login")"
[[ $(component_token_fetches) == "$before" ]] || fail "a component token fetch without a ticket"
grep -Eq "$WECHAT_COMPONENT_SECRET|$WECHAT_COMPONENT_AES_KEY|$WECHAT_COMPONENT_TOKEN|ticket@@@|$refresh1" "$work"/err.* "$work/login" "$work/auth" && fail "a secret, ticket or refresh token in a log or an answer"

# 8. WeCom: a user of the corp's mini program logs in (wx.qy.login).
code=$(admin wecom_login "{\"corpid\":\"$corp\",\"userid\":\"zhangsan\"}" | jq -r .code)
status=$(curl -s -o "$work/wecom" -w '%{http_code}' -XPOST -H "$json" "$base/wecom/login" -d "{\"code\":\"$code\"}")
[[ $status == 200 && $(jq -r .userid "$work/wecom") == zhangsan && $(jq -r .corpid "$work/wecom") == "$corp" ]] || fail "wecom: $status $(cat "$work/wecom")"
# The same code again (a front end's double submit) within the client's 10-second window:
# the same user, not WeCom's 40029; a code WeCom never issued: 401.
status=$(curl -s -o "$work/wecom" -w '%{http_code}' -XPOST -H "$json" "$base/wecom/login" -d "{\"code\":\"$code\"}")
[[ $status == 200 && $(jq -r .userid "$work/wecom") == zhangsan ]] || fail "a WeCom double submit: $status $(cat "$work/wecom")"
status=$(curl -s -o "$work/wecom" -w '%{http_code}' -XPOST -H "$json" "$base/wecom/login" -d '{"code":"not-a-wecom-code"}')
[[ $status == 401 ]] && grep -q invalid_code "$work/wecom" || fail "an unknown WeCom code: $status $(cat "$work/wecom")"
stop_platform
redis-cli -p "$redis_port" --scan --pattern "${prefix}*" | xargs -r redis-cli -p "$redis_port" del > /dev/null
echo "component_login: OK"
