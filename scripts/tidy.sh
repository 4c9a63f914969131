#!/usr/bin/env bash
# clang-tidy (.clang-tidy) over every public header (through the self-contained-header
# translation units the build generates), the examples, mock_wechat's and wechat-loadtest's
# mains. Any finding fails.
#   scripts/tidy.sh [BUILD_DIR]      default build-tidy (configured here, not built)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build-tidy}
cmake -S "$root" -B "$build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON > /dev/null
files=("$build"/tests/headers/*.cpp "$root"/examples/*.cpp "$root"/mock_wechat/main.cpp "$root"/loadtest/main.cpp)
echo "clang-tidy: ${#files[@]} files"
# GCC 12 defaults to C++17 so CMake passes no -std; clang-tidy's clang would assume C++14.
printf '%s\n' "${files[@]}" |
  xargs -P "$(nproc)" -n 1 clang-tidy -p "$build" --quiet --extra-arg=-std=c++17 2>&1 |
  grep -v "warnings generated\|^Suppressed\|^Use -header-filter\|NOLINT" | tee "$build/tidy.log" ||
  true  # clang-tidy's own status is read from the log below
if grep -q "error:" "$build/tidy.log"; then
  echo "clang-tidy: $(grep -c 'error:' "$build/tidy.log") findings"
  exit 1
fi
echo "clang-tidy: clean"
