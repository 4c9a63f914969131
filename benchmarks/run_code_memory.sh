#!/usr/bin/env bash
# Memory per live login code (issue 16), two ways:
#   1. benchmarks/code_memory: an embedded world, 1,000,000 world::login() over 10,000
#      users and 3 apps, the clock held (RSS and malloc per code);
#   2. a standalone mock_wechat: its RSS before and after N codes minted through the admin
#      API (POST /__mock/login, 4 keep-alive connections, users u-0... one per 40 codes).
#   benchmarks/run_code_memory.sh [BUILD_DIR] [N]   default build-bench, 685,000
# BUILD_DIR is a build with -DWECHAT_BUILD_BENCHMARKS=ON (code_memory, client_bench,
# mock_wechat).
set -euo pipefail
build=${1:-build-bench}
n=${2:-685000}
"$build/benchmarks/code_memory"

work=$(mktemp -d)
"$build/mock_wechat/mock_wechat" --port 0 > "$work/mock.out" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q listening "$work/mock.out" 2>/dev/null && break; sleep 0.05; done
base=$(sed -n 's/^mock_wechat listening on //p' "$work/mock.out")
curl -sf -XPOST "$base/__mock/apps" \
  -d '{"appid":"wx1000000000000001","secret":"s","type":"miniprogram"}' > /dev/null
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
before=$(rss)
"$build/benchmarks/client_bench" issue --base "$base" --appid wx1000000000000001 \
  --count "$n" --out "$work/codes" --prefix u
after=$(rss)
live=$(curl -sf "$base/__mock/stats" | sed -n 's/.*"js_codes":\([0-9]*\).*/\1/p')
echo "{\"http_codes\":$n,\"live_js_codes\":$live,\"rss_kib\":[$before,$after],\"rss_per_code\":$(( (after - before) * 1024 / n ))}"
