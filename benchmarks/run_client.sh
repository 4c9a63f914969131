#!/usr/bin/env bash
# code2session through ONE shared wechat::client from N threads, against a standalone
# mock_wechat, beside (a) wrk on the same endpoint at the same connection count (the
# ceiling) and (b) node-easywechat's codeToSession at the same concurrency (the peer).
# Every request exchanges a fresh code. "capped" is the same client with code_memory_max
# 1,000: past the 1,000th login every login also forgets the oldest remembered code, so it
# measures the code memory's sweep at work. Also: cached token lookups under 1 and 64
# threads.
#   benchmarks/run_client.sh [BUILD_DIR] [CONNECTIONS...]     default: build-bench 16 64
set -euo pipefail
build=${1:-build-bench}
shift || true
levels=("$@")
[[ ${#levels[@]} -gt 0 ]] || levels=(16 64)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
mock_pid=""
cleanup() { [[ -n "$mock_pid" ]] && kill "$mock_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "wrk missing: scripts/install-deps.sh --bench"; exit 1; }
if [[ ! -d "$here/node_modules/node-easywechat" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi

appid=wx1000000000000001
secret=bench-secret
"$build/mock_wechat/mock_wechat" --port 0 --journal 0 --threads 128 > "$work/mock.out" &
mock_pid=$!
for _ in $(seq 100); do grep -q listening "$work/mock.out" 2>/dev/null && break; sleep 0.05; done
base=$(sed -n 's/^mock_wechat listening on //p' "$work/mock.out")
curl -sf -XPOST "$base/__mock/apps" -d "{\"appid\":\"$appid\",\"secret\":\"$secret\",\"type\":\"miniprogram\",\"open_account\":\"acct\"}" > /dev/null
errors() { curl -sf "$base/__mock/stats" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const e=JSON.parse(s).endpoints["/sns/jscode2session"];console.log(e?e.errors:0)})'; }
issue() { "$build/benchmarks/client_bench" issue --base "$base" --appid "$appid" --count "$1" --out "$2" --prefix "$(basename "$2")-$c"; }

echo "| connections | wrk (ceiling) | wechat::client | capped (1,000 codes) | node-easywechat | client/wrk | capped/wrk | client/node |"
echo "|---|---|---|---|---|---|---|---|"
for c in "${levels[@]}"; do
  issue 400000 "$work/wrk.codes"
  before=$(errors)
  wrk_out=$(CODES_FILE="$work/wrk.codes" APPID=$appid SECRET=$secret WRK_THREADS=2 \
    wrk -t2 -c"$c" -d5s -s "$here/jscode2session.lua" "$base")
  wrk_rate=$(echo "$wrk_out" | sed -n 's/^Requests\/sec: *//p')
  wrk_errors=$(( $(errors) - before ))
  issue 60000 "$work/ours.codes"
  ours=$("$build/benchmarks/client_bench" login --base "$base" --appid $appid --secret $secret --codes "$work/ours.codes" --threads "$c")
  issue 60000 "$work/capped.codes"
  capped=$("$build/benchmarks/client_bench" login --base "$base" --appid $appid --secret $secret --codes "$work/capped.codes" --threads "$c" --code-memory-max 1000)
  issue 20000 "$work/node.codes"
  node_out=$(node "$here/client_peer.js" "$base" $appid $secret "$work/node.codes" "$c")
  node - "$c" "$wrk_rate" "$wrk_errors" "$ours" "$capped" "$node_out" <<'JS'
const [c, wrk, wrkErr, ours, capped, peer] = process.argv.slice(2);
const o = JSON.parse(ours), k = JSON.parse(capped), p = JSON.parse(peer), w = Number(wrk);
const f = (x) => Math.round(x).toLocaleString('en-US');
console.log(`| ${c} | ${f(w)}/s (${wrkErr} errors) | ${f(o.logins_per_sec)}/s (${o.errors} errors) | ${f(k.logins_per_sec)}/s (${k.errors} errors) | ${f(p.logins_per_sec)}/s (${p.errors} errors) | ${(100 * o.logins_per_sec / w).toFixed(0)}% | ${(100 * k.logins_per_sec / w).toFixed(0)}% | ${(o.logins_per_sec / p.logins_per_sec).toFixed(2)}x |`);
JS
done
echo
echo "cached token lookups (no network):"
"$build/benchmarks/client_bench" token --threads 1 --seconds 2
"$build/benchmarks/client_bench" token --threads 64 --seconds 2
