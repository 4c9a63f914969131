#!/usr/bin/env bash
# Runs every fuzz target for SECONDS over its committed seed corpus (fuzz/corpus/NAME) plus
# what it finds (kept in BUILD/corpus/NAME, not committed). A crash, a leak, a sanitizer
# report or a timeout fails the run; the input that did it is left in BUILD/ as crash-*.
# As many targets run at once as there are cores (each target is one process on one
# core, so each still gets its SECONDS of a core; on CI's 2 cores the six take 3 minutes
# instead of 6).
#   fuzz/run.sh BUILD_DIR [SECONDS]     default 60
set -euo pipefail
build=$1 seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
cd "$build"
targets=(fuzz_decrypt fuzz_msg_crypt fuzz_response fuzz_answer fuzz_mock fuzz_scenario)
at_once=$(nproc 2>/dev/null || echo 1)
run_one() {
  local t=$1 rc=0 seeds=$here/corpus/$1
  # fuzz_answer reads bodies, as fuzz_response does: it starts from the same answers
  [[ $t == fuzz_answer ]] && seeds=$here/corpus/fuzz_response
  "./fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "corpus/$t" "$seeds" > "$t.log" 2>&1 || rc=$?
  echo "$rc" > "$t.rc"
}
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT  # an interrupted run leaves no fuzzer behind
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  rm -f "$t.rc"
  while [[ $(jobs -rp | wc -l) -ge $at_once ]]; do
    wait -n || true
  done
  echo "== $t: ${seconds} s"
  run_one "$t" &
done
wait
failed=0
for t in "${targets[@]}"; do
  echo "== $t"
  grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss|INFO: seed corpus)" "$t.log" || true
  rc=$(cat "$t.rc" 2>/dev/null || echo "missing")
  if [[ $rc != 0 ]]; then
    tail -60 "$t.log"
    echo "$t FAILED (exit $rc)"
    failed=1
  fi
done
[[ $failed -eq 0 ]] || exit 1
echo "fuzz ok"
