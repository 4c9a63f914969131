#!/usr/bin/env bash
# Runs the decrypt benchmark and its peers side by side, each pinned to one core, and
# prints ops/s and the ratios against the targets (issue: >= 4x Node, >= 40% of the
# OpenSSL floor).
#   benchmarks/run_decrypt.sh [BUILD_DIR]     (BUILD_DIR built with -DWECHAT_BUILD_BENCHMARKS=ON)
set -euo pipefail
build=${1:-build-bench}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
core=${BENCH_CORE:-1}

echo "== C++ (Google Benchmark), core $core"
taskset -c "$core" "$build/benchmarks/decrypt_bench" --write-fixture "$work/fixture.json" \
  --benchmark_min_time=2 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true \
  --benchmark_out="$work/cpp.json" --benchmark_out_format=json
echo "== Node.js peer ($(node --version)), core $core"
taskset -c "$core" node "$here/decrypt_peer.js" "$work/fixture.json" 2 3 | tee "$work/node.json"

node - "$work/cpp.json" "$work/node.json" <<'JS'
const fs = require('fs');
const cpp = JSON.parse(fs.readFileSync(process.argv[2]));
const nodePeer = JSON.parse(fs.readFileSync(process.argv[3]));
const median = {};
for (const b of cpp.benchmarks)
  if (b.aggregate_name === 'median') median[b.run_name] = 1e9 / b.real_time;  // ns per op
const ours = median.decrypt_user_info, floor = median.openssl_floor, node = nodePeer.ops_per_sec;
const fmt = (x) => Math.round(x).toLocaleString('en-US');
console.log('\n| benchmark | ops/s (median of 3) |\n|---|---|');
for (const [k, v] of Object.entries(median)) console.log(`| ${k} | ${fmt(v)} |`);
console.log(`| node_decrypt (peer) | ${fmt(node)} |`);
console.log(`\nours / node          = ${(ours / node).toFixed(2)}x   (target >= 4x)`);
console.log(`ours / openssl floor = ${(100 * ours / floor).toFixed(1)}%  (target >= 40%)`);
console.log(`nlohmann DOM / ours  = ${(100 * median.nlohmann_dom / ours).toFixed(1)}%`);
JS
