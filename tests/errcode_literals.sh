#!/usr/bin/env bash
# WeChat's errcodes are written once, in the table of include/wechat/error.hpp
# (WECHAT_API_ERRCODES); code elsewhere says wechat::api_errc::name. This check fails when
# a named errcode appears as a number in the code (comments and string literals aside) of
# the library, the mock, the examples, the benchmarks or the fuzzers. Tests may write
# numbers: they check the wire. -1 (system_busy) is too common a number to search for; the
# mock's "system error" answers are built from the table (api.hpp, system_error_body).
#   errcode_literals.sh SOURCE_DIR
set -euo pipefail
root=${1:-$(dirname "$0")/..}
table="$root/include/wechat/error.hpp"
codes=$(sed -n '/^#define WECHAT_API_ERRCODES/,/^$/p' "$table" |
  grep -oE 'X\([a-z_]+, [0-9]{5},' | grep -oE '[0-9]{5}' | sort -u)
count=$(echo "$codes" | wc -l)
if [ "$count" -lt 30 ]; then
  echo "read only $count errcodes from $table: the table's shape changed, fix this check" >&2
  exit 1
fi
pattern="(^|[^0-9A-Za-z_.])($(echo "$codes" | paste -sd'|'))([^0-9]|$)"
found=0
while IFS= read -r -d '' f; do
  # Drop string literals (prose), // comments, one-line /* */ comments and the lines of
  # multi-line /* */ blocks, then look for the numbers.
  hits=$(sed -e 's#"\([^"\\]\|\\.\)*"#""#g' -e 's#//.*$##' -e 's#/\*.*\*/##g' \
    -e '/\/\*/,/\*\//d' "$f" | grep -nE "$pattern" || true)
  if [ -n "$hits" ]; then
    echo "$f: errcode written as a number (use wechat::api_errc):"
    echo "$hits"
    found=1
  fi
done < <(find "$root/include" "$root/mock_wechat" "$root/examples" "$root/benchmarks" \
  "$root/fuzz" -path "$root/benchmarks/node_modules" -prune -o -type f \
  \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' \) ! -path "$table" -print0)
if [ "$found" -ne 0 ]; then exit 1; fi
echo "no errcode literal outside the table ($count errcodes checked)"
