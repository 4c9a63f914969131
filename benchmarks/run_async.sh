#!/usr/bin/env bash
# The async client (one beast_transport loop thread) beside the sync client (a thread per
# call) keeping N code2session calls in flight against a standalone mock_wechat that
# answers every WeChat endpoint after 50 ms (issue 21). Prints one table, the ratios and
# the targets; the JSON lines stay in the file named at the end.
#   benchmarks/run_async.sh [--build DIR] [--seconds S] [--warmup S] [--stagger MS]
#                           [--no-pool-check] [--pin] [--async-only] [N...]
#   defaults: build-bench, 10 s measured after a 2 s warm-up, N = 256 1024, the first N
#   calls spread over 50 ms (with a fixed 50 ms answer, N calls started at one instant
#   would stay one wave every 50 ms for the whole run; --stagger 0 to see that).
# Both clients run with the library's defaults (max_connections 32) but code_memory 0
# (see async_login.cpp). Then, as a diagnostic and not the default, the async client once
# more with max_connections N ("async (pool N)"): the row that shows what the idle pool's
# cap costs when more than 32 requests complete together (--no-pool-check skips it).
# --pin: the mock on the last core and the clients on the others (taskset), so the client
# under test does not share its core with the mock it measures against.
# --async-only: the async client alone (for before/after runs of a change to it).
set -euo pipefail
build=build-bench
seconds=10
warmup=2
stagger=50
pool_check=1
pin=0
sync_too=1
levels=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --stagger) stagger=$2; shift 2 ;;
    --no-pool-check) pool_check=0; shift ;;
    --pin) pin=1; shift ;;
    --async-only) sync_too=0; pool_check=0; shift ;;
    *) levels+=("$1"); shift ;;
  esac
done
[[ ${#levels[@]} -gt 0 ]] || levels=(256 1024)
bin="$build/benchmarks/async_login"
mock="$build/mock_wechat/mock_wechat"
[[ -x "$bin" && -x "$mock" ]] ||
  { echo "build async_login and mock_wechat in $build first" >&2; exit 1; }

work=$(mktemp -d)
mock_pid=""
cleanup() {
  if [[ -n "$mock_pid" ]]; then
    kill "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

appid=wx1000000000000021
secret=bench-async-secret
# The journal off (it would keep every request); the event engine's default loops.
mock_cpu=()
client_cpu=()
pinned=""
if [[ $pin == 1 ]]; then
  # The CPUs this script may use (a container's cpuset need not start at 0).
  cpus=()
  IFS=, read -ra parts <<< "$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)"
  for p in "${parts[@]}"; do
    if [[ $p == *-* ]]; then cpus+=($(seq "${p%-*}" "${p#*-}")); else cpus+=("$p"); fi
  done
  [[ ${#cpus[@]} -ge 2 ]] || { echo "--pin needs at least 2 CPUs" >&2; exit 1; }
  last=${cpus[-1]}
  others=$(IFS=,; echo "${cpus[*]:0:${#cpus[@]}-1}")
  mock_cpu=(taskset -c "$last")
  client_cpu=(taskset -c "$others")
  pinned=", mock pinned to CPU $last, clients to $others"
fi
"${mock_cpu[@]}" "$mock" --port 0 --journal 0 --latency fixed:50 \
  > "$work/mock.out" 2> "$work/mock.err" &
mock_pid=$!
for _ in $(seq 200); do grep -q listening "$work/mock.out" 2>/dev/null && break; sleep 0.05; done
base=$(sed -n 's/^mock_wechat listening on //p' "$work/mock.out")
[[ -n "$base" ]] || { echo "mock_wechat did not start:"; cat "$work/mock.err"; exit 1; }
curl -sf -XPOST "$base/__mock/apps" \
  -d "{\"appid\":\"$appid\",\"secret\":\"$secret\",\"type\":\"miniprogram\"}" > /dev/null

results="$work/results.jsonl"
echo "mock_wechat pid $mock_pid at $base (--latency fixed:50); ${warmup} s warm-up," \
  "${seconds} s measured; first calls over ${stagger} ms; $(nproc) cores${pinned};" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
run() {  # MODE N [extra arguments]; each run its own users (100 logins a minute each)
  local mode=$1 n=$2
  shift 2
  timeout --kill-after=10 $((seconds + warmup + 120)) "${client_cpu[@]}" \
    "$bin" "$mode" --base "$base" --appid "$appid" --secret "$secret" --inflight "$n" \
    --warmup "$warmup" --seconds "$seconds" --stagger "$stagger" --mock-pid "$mock_pid" \
    --prefix "$mode-$n-$RANDOM-" "$@" >> "$results"
}
for n in "${levels[@]}"; do
  run async "$n"
  if [[ $sync_too == 1 ]]; then run sync "$n"; fi
  if [[ $pool_check == 1 ]]; then run async "$n" --max-connections "$n"; fi
done
echo
"$bin" report "$results"
echo
echo "mock stats (/sns/jscode2session):"
curl -sf "$base/__mock/stats" | jq -c '.endpoints["/sns/jscode2session"]' || true
cp "$results" "${TMPDIR:-/tmp}/async_login_results.jsonl"
echo "JSON lines: ${TMPDIR:-/tmp}/async_login_results.jsonl"
