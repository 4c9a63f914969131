#!/usr/bin/env bash
# Runs every fuzz target for SECONDS over its committed seed corpus (fuzz/corpus/NAME) plus
# what it finds (kept in BUILD/corpus/NAME, not committed). A crash, a leak, a sanitizer
# report or a timeout fails the run; the input that did it is left in BUILD/ as crash-*.
#   fuzz/run.sh BUILD_DIR [SECONDS]     default 60
set -euo pipefail
build=$1 seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
cd "$build"
for t in fuzz_decrypt fuzz_msg_crypt fuzz_response fuzz_mock fuzz_scenario; do
  mkdir -p "corpus/$t"
  echo "== $t: ${seconds} s"
  rc=0
  "./fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "corpus/$t" "$here/corpus/$t" > "$t.log" 2>&1 || rc=$?
  grep -E "^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss|INFO: seed corpus)" "$t.log" || true
  if [[ $rc -ne 0 ]]; then
    tail -60 "$t.log"
    echo "$t FAILED (exit $rc)"
    exit 1
  fi
done
echo "fuzz ok"
