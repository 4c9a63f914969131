#!/usr/bin/env bash
# The load generator against the standalone mock for one second at 32 connections, in the
# login mix: every step answers what it should (no unexpected error), every connection is
# served, and the mock still answers afterwards. Keeps benchmarks/loadgen from rotting.
#   load_smoke.sh MOCK_WECHAT LOADGEN
set -euo pipefail
mock=$1 gen=$2
out=$(mktemp)
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
"$mock" --port 0 > "$out" &
pid=$!
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.05; done
base=$(sed -n 's/^mock_wechat listening on //p' "$out")
curl -sf -XPOST "$base/__mock/apps" -d '{"appid":"wx1000000000000001","secret":"smoke","type":"miniprogram","open_account":"acct"}' > /dev/null
r=$("$gen" --port "${base##*:}" --connections 32 --seconds 1 --warmup 0.2 --mode mix --appid wx1000000000000001 --secret smoke)
echo "$r"
grep -q '"errors":0,' <<< "$r" || { echo "FAIL: unexpected errors"; exit 1; }
grep -q '"starved":0,' <<< "$r" || { echo "FAIL: starved connections"; exit 1; }
grep -q '"connect_errors":0,' <<< "$r" || { echo "FAIL: connect errors"; exit 1; }
requests=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<< "$r")
expected=$(sed -n 's/.*"expected_errors":\([0-9]*\).*/\1/p' <<< "$r")
[[ $requests -gt 1000 && $expected -gt 100 ]] || { echo "FAIL: too little traffic ($requests requests)"; exit 1; }
curl -sf "$base/__mock/stats" > /dev/null
echo "ok"
