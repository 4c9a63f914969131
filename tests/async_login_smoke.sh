#!/usr/bin/env bash
# benchmarks/run_async.sh for a second at 64 logins in flight, async and sync side by side
# against the standalone mock answering after 50 ms: both runs log users in with no error,
# leave nothing in flight (async), do not run out of codes, and the report prints. Keeps
# the async benchmark from rotting; its figures are for benchmarks/RESULTS.md, not
# asserted here.
#   async_login_smoke.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TMPDIR=$tmp bash "$src/benchmarks/run_async.sh" --build "$build" --warmup 1 --seconds 1 \
  --no-pool-check 64 | tee "$tmp/out.txt"
results=$tmp/async_login_results.jsonl
[[ -s $results ]] || { echo "FAIL: no JSON lines"; exit 1; }
[[ $(jq -s 'map(.mode) | sort == ["async", "sync"]' "$results") == true ]] ||
  { echo "FAIL: expected one async and one sync run"; exit 1; }
bad=$(jq -c 'select(.errors != 0 or .logins < 100 or (.left_in_flight // 0) != 0 or .out_of_codes)
             | {mode, errors, first_error, logins, left_in_flight, out_of_codes}' "$results")
[[ -z $bad ]] || { echo "FAIL: $bad"; exit 1; }
grep -q '^| 64 | async |' "$tmp/out.txt" || { echo "FAIL: no async row in the report"; exit 1; }
echo "ok"
