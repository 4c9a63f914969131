#!/usr/bin/env bash
# Instructions per login on the async client's loop thread, counted by callgrind: a figure
# that does not move with the VM's mood (CPU time per login varied 33-50 us between two
# runs of the same build, see RESULTS.md run 6), for before/after comparisons of a change
# to the loop's code (issue 21). The kernel's share (syscalls) is not counted.
#   benchmarks/run_async_instructions.sh [--inflight N] [BUILD_DIR...]
#   (default: 64 in flight, build-bench)
# For each build: a mock_wechat of that build answering after 50 ms, then async_login
# under callgrind at N in flight for 2 s and for 5 s (each after a 1 s warm-up); the
# figure is (loop-thread instructions of the 5 s run - those of the 2 s run) / (logins of
# the 5 s window - logins of the 2 s window), so start-up, warm-up and the drain cancel
# out. The loop thread's calls to malloc are counted the same way. Needs valgrind
# (apt-get install valgrind); about 1 minute per build.
set -euo pipefail
command -v valgrind > /dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
inflight=64
if [[ ${1:-} == --inflight ]]; then inflight=$2; shift 2; fi
builds=("$@")
[[ ${#builds[@]} -gt 0 ]] || builds=(build-bench)
appid=wx1000000000000021
secret=bench-async-instructions
for b in "${builds[@]}"; do
  [[ -x "$b/benchmarks/async_login" && -x "$b/mock_wechat/mock_wechat" ]] ||
    { echo "build async_login and mock_wechat in $b first" >&2; exit 1; }
done
work=$(mktemp -d)
mock_pid=""
cleanup() {
  if [[ -n "$mock_pid" ]]; then kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The loop thread's file and instructions: the inclusive count of Asio's scheduler::run, in
# the file of the thread that ran it (callgrind numbers threads as they start, and a number
# can be reused by a later thread: the loop's file may hold the code-minting thread too).
# Prints "<instructions> <file>".
loop_thread() {
  local best=0 best_file="" n
  for f in "$1"-*; do
    n=$(callgrind_annotate --inclusive=yes "$f" 2> /dev/null |
          awk '!found && /scheduler::run/ { gsub(",", "", $1); print $1; found = 1 }')
    if [[ -n "$n" && "$n" -gt "$best" ]]; then best=$n; best_file=$f; fi
  done
  echo "$best $best_file"
}

# Calls to malloc in a callgrind file (operator new included: it calls malloc; calloc,
# realloc and the aligned allocations are not counted). Only what runs inside Asio's
# scheduler::run is collected (--toggle-collect): the loop thread's file may also hold a
# code-minting thread (see above), whose mallocs grow with the run's length. Callgrind
# names a function once ("fn=(id) name", "cfn=(id) name"; one id space per file) and by
# its id alone afterwards; a "calls=" line follows each "cfn=" line.
malloc_calls() {
  perl -ne 'if (/^(c|j|fr)?fn=\((\d+)\)(?: (.*))?$/) { $n{$2} = $3 if defined $3; $cur = ($1 // "") eq "c" ? $n{$2} : "" }
            elsif (/^calls=(\d+)/) { $t += $1 if defined $cur && $cur eq "malloc"; $cur = "" }
            END { print $t + 0, "\n" }' "$1"
}

for b in "${builds[@]}"; do
  "$b/mock_wechat/mock_wechat" --port 0 --journal 0 --latency fixed:50 > "$work/mock.out" 2>&1 &
  mock_pid=$!
  for _ in $(seq 200); do grep -q listening "$work/mock.out" && break; sleep 0.05; done
  base=$(sed -n 's/^mock_wechat listening on //p' "$work/mock.out")
  [[ -n "$base" ]] || { echo "mock_wechat did not start" >&2; cat "$work/mock.out" >&2; exit 1; }
  curl -sf -XPOST "$base/__mock/apps" \
    -d "{\"appid\":\"$appid\",\"secret\":\"$secret\",\"type\":\"miniprogram\"}" > /dev/null
  declare -A ir=() mallocs=() logins=() errors=()
  for s in 2 5; do
    rm -f "$work"/cg.*
    timeout --kill-after=10 300 valgrind --tool=callgrind --separate-threads=yes \
      --toggle-collect='*scheduler::run*' \
      --callgrind-out-file="$work/cg.%p" "$b/benchmarks/async_login" async --base "$base" \
      --appid "$appid" --secret "$secret" --inflight "$inflight" --warmup 1 --seconds "$s" \
      --stagger 50 --prefix "ir-$s-$RANDOM-" > "$work/out.$s" 2> "$work/valgrind.$s" ||
      { echo "$b: async_login under callgrind failed:" >&2; tail -30 "$work/valgrind.$s" >&2; exit 1; }
    loop=$(loop_thread "$(ls "$work"/cg.* | head -1 | sed 's/-[0-9]*$//')")
    ir[$s]=${loop%% *}
    loop_file=${loop#* }
    [[ ${ir[$s]} -gt 0 ]] || { echo "$b: no count for Asio's scheduler::run in callgrind's files" >&2; exit 1; }
    mallocs[$s]=$(malloc_calls "$loop_file")
    logins[$s]=$(jq .logins "$work/out.$s")
    errors[$s]=$(jq .errors "$work/out.$s")
  done
  kill "$mock_pid"; wait "$mock_pid" 2>/dev/null || true; mock_pid=""
  if [[ ${errors[2]} != 0 || ${errors[5]} != 0 || ${logins[5]} -le ${logins[2]} ]]; then
    echo "$b: errors ${errors[2]} / ${errors[5]}, logins ${logins[2]} / ${logins[5]}: no figure" >&2
    exit 1
  fi
  echo "$b: $(( (ir[5] - ir[2]) / (logins[5] - logins[2]) )) loop-thread instructions per login," \
    "$(awk -v a="${mallocs[5]}" -v b="${mallocs[2]}" -v n=$(( logins[5] - logins[2] )) \
         'BEGIN { printf "%.2f", (a - b) / n }') mallocs per login" \
    "(windows of ${logins[2]} and ${logins[5]} logins, $inflight in flight, no errors)"
done
