#!/usr/bin/env bash
# The client soak: ONE wechat::client, with the default options, exchanges LOGINS fresh
# codes (default 1,000,000) against a standalone mock_wechat from 16 threads; its RSS is
# sampled every 10,000 logins. Writes benchmarks/client_soak.csv (or OUT) and prints the
# growth of RSS from the 200,000th login to the last. Needs a Release build with the
# benchmarks (make bench builds one).
#   benchmarks/run_client_soak.sh [BUILD_DIR] [LOGINS] [OUT]
set -euo pipefail
build=${1:-build-bench}
logins=${2:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
out=${3:-$here/client_soak.csv}
work=$(mktemp -d)
mock_pid=""
cleanup() { [[ -n "$mock_pid" ]] && kill "$mock_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

appid=wx1000000000000001
secret=soak-secret
"$build/mock_wechat/mock_wechat" --port 0 --journal 0 > "$work/mock.out" &
mock_pid=$!
for _ in $(seq 100); do grep -q listening "$work/mock.out" 2>/dev/null && break; sleep 0.05; done
base=$(sed -n 's/^mock_wechat listening on //p' "$work/mock.out")
curl -sf -XPOST "$base/__mock/apps" -d "{\"appid\":\"$appid\",\"secret\":\"$secret\",\"type\":\"miniprogram\",\"open_account\":\"acct\"}" > /dev/null

"$build/benchmarks/client_bench" soak --base "$base" --appid "$appid" --secret "$secret" \
  --logins "$logins" --threads 16 --every 10000 > "$out"
awk -F, -v from=$((logins / 5)) '
  NR == 1 { next }
  $1 == from { base = $2 }
  { last = $2; lastn = $1; remembered = $3; secs = $4 }
  END {
    if (!base) { print "no sample at login " from; exit 1 }
    printf "RSS at login %d: %d KiB; at login %d: %d KiB; growth %.2f%%; remembered codes at the end: %d; %.0f s\n",
      from, base, lastn, last, 100 * (last - base) / base, remembered, secs
  }' "$out"
