#!/usr/bin/env bash
# WeChat's errcodes are written once, in the table of include/wechat/error.hpp
# (WECHAT_API_ERRCODES); code elsewhere says wechat::api_errc::name. This check fails when
# a named errcode appears as a number in the code (comments aside) of the library, the mock
# or the examples. Tests may write numbers: they check the wire.
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
  # Drop string literals (prose), // comments and /* */ blocks, then look for the numbers.
  hits=$(sed -e 's#"\([^"\\]\|\\.\)*"#""#g' -e 's#//.*$##' -e '/\/\*/,/\*\//d' "$f" | grep -nE "$pattern" || true)
  if [ -n "$hits" ]; then
    echo "$f: errcode written as a number (use wechat::api_errc):"
    echo "$hits"
    found=1
  fi
done < <(find "$root/include" "$root/mock_wechat" "$root/examples" -type f \
  \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' \) ! -path "$table" -print0)
if [ "$found" -ne 0 ]; then exit 1; fi
echo "no errcode literal outside the table ($count errcodes checked)"
