#!/usr/bin/env bash
# The .deb of `make package`, used the way a team without root uses it in its CI: cpack
# builds it from this build tree into a scratch directory, dpkg-deb -x unpacks it there,
# then the unpacked mock_wechat serves, tests/consumer builds against the unpacked CMake
# package and signs in against that mock, and the unpacked wechat-decrypt answers --help.
#   package_test.sh CPACK CMAKE BUILD_DIR SOURCE_DIR GENERATOR VERSION
set -euo pipefail
cpack=$1 cmake=$2 build=$3 source=$4 generator=$5 version=$6
work=$(mktemp -d)
pid=
trap 'if [[ -n $pid ]]; then kill -KILL "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
started=$SECONDS

# 1. The package, from what this tree built. cpack writes only under $work, so a package
#    made by `make package` in the build tree is neither used nor overwritten.
timeout 180 "$cpack" --config "$build/CPackConfig.cmake" -B "$work/pkg" > "$work/cpack.log" 2>&1 ||
  fail "cpack: $(cat "$work/cpack.log")"
debs=("$work"/pkg/*.deb)
[[ ${#debs[@]} == 1 && -f ${debs[0]} ]] || fail "not one .deb: ${debs[*]}"
deb=${debs[0]}
arch=$(dpkg --print-architecture)
[[ ${deb##*/} == "libwechat-dev_${version}_${arch}.deb" ]] || fail "file name ${deb##*/}"
echo "package: ${deb##*/}, $(du -k "$deb" | cut -f1) KiB ($((SECONDS - started)) s)"

# 2. The control fields. Depends: what the programs link (dpkg-shlibdeps), and what the
#    installed CMake package finds (cmake/wechat-config.cmake.in).
dpkg-deb -I "$deb" > "$work/info" || fail "dpkg-deb -I"
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == libwechat-dev ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version" ]] || fail "Version: $(field Version)"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture: $(field Architecture)"
[[ -n $(field Maintainer) && -n $(field Description) ]] || fail "no Maintainer or Description"
depends=$(field Depends)
echo "Depends: $depends"
sed 's/, /\n/g' <<< "$depends" > "$work/depends"
for p in libc6 libstdc++6 libssl3 libcpp-httplib0.11 libssl-dev nlohmann-json3-dev pkg-config; do
  grep -q "^$p\( \|$\)" "$work/depends" || fail "Depends lacks $p"
done
grep -qx "libcpp-httplib-dev (>= 0.11)" "$work/depends" || fail "Depends lacks libcpp-httplib-dev (>= 0.11)"

# 3. Unpacked without root; everything under /usr, and the files a consumer uses.
dpkg-deb -c "$deb" > "$work/contents"
if grep -v ' \./usr/\?' "$work/contents" | grep -v ' \./$' | grep -q .; then
  fail "outside /usr: $(grep -v ' \./usr/\?' "$work/contents")"
fi
dpkg-deb -x "$deb" "$work/root"
usr=$work/root/usr
for f in bin/mock_wechat bin/wechat-decrypt; do
  [[ -x $usr/$f ]] || fail "no executable $f"
done
for f in share/doc/libwechat-dev/copyright share/doc/wechat/LICENSE; do
  [[ -s $usr/$f ]] || fail "no $f"
done
grep -q "^License: Expat" "$usr/share/doc/libwechat-dev/copyright" || fail "copyright: not Expat"
config=$(find "$usr/lib" -path '*/cmake/wechat/wechat-config.cmake')
[[ -n $config ]] || fail "no lib/cmake/wechat/wechat-config.cmake"
for f in wechat-config-version.cmake wechatTargets.cmake; do
  [[ -f $(dirname "$config")/$f ]] || fail "no lib/cmake/wechat/$f"
done
# Every public header, the library's and the mock's.
(cd "$source/include" && find wechat -name '*.hpp') > "$work/headers"
(cd "$source/mock_wechat/include" && find mock_wechat -name '*.hpp') >> "$work/headers"
missing=0
while read -r h; do
  [[ -f $usr/include/$h ]] || { echo "missing: include/$h"; missing=1; }
done < "$work/headers"
[[ $missing == 0 ]] || fail "headers missing from the package"
# Relocatable: nothing in the CMake package points into this build or source tree.
if grep -rlF -e "$build" -e "$source" "$(dirname "$config")"; then
  fail "the CMake package names the build or source tree"
fi
echo "contents: $(grep -c '^-' "$work/contents") files, $(wc -l < "$work/headers") headers ($((SECONDS - started)) s)"

# 4. The unpacked mock_wechat serves, as in a CI job of a Java, Go or PHP backend.
"$usr/bin/mock_wechat" --port 0 > "$work/mock.out" 2> "$work/mock.err" &
pid=$!
for _ in $(seq 200); do
  grep -q listening "$work/mock.out" && break
  kill -0 "$pid" 2>/dev/null || fail "mock_wechat exited: $(cat "$work/mock.err")"
  sleep 0.05
done
base=$(sed -n 's/^mock_wechat listening on //p' "$work/mock.out")
[[ -n $base ]] || fail "no ready line from mock_wechat: $(cat "$work/mock.out" "$work/mock.err")"
health=$(curl -sf --max-time 5 "$base/__mock/health") || fail "GET /__mock/health"
grep -q '"status":"ok"' <<< "$health" || fail "health: $health"

# 5. tests/consumer against the unpacked CMake package (tests/consumer/run.cmake, as the
#    find_package test), consumer_mock also against the unpacked mock.
timeout 600 "$cmake" -DMODE=prefix -DPREFIX="$usr" -DWORK_DIR="$work/consumer" \
  -DGENERATOR="$generator" -DMOCK_BASE="$base" -P "$source/tests/consumer/run.cmake" \
  > "$work/consumer.log" 2>&1 || fail "consumer: $(cat "$work/consumer.log")"
cat "$work/consumer.log"
grep -q "^wechat_DIR:PATH=$usr/lib/" "$work/consumer/build/CMakeCache.txt" ||
  fail "the consumer found another wechat: $(grep '^wechat_DIR' "$work/consumer/build/CMakeCache.txt")"
grep -q "^consumer: decrypted o" "$work/consumer.log" || fail "consumer did not decrypt"
grep -q "^consumer_mock: signed in o.* (standalone mock)" "$work/consumer.log" ||
  fail "consumer_mock did not sign in against the unpacked mock_wechat"
echo "consumer: ok ($((SECONDS - started)) s)"

# The mock stops on SIGTERM and exits 0.
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "mock_wechat still running 10 s after SIGTERM"
rc=0
wait "$pid" || rc=$?
pid=
[[ $rc == 0 ]] || fail "mock_wechat exited $rc after SIGTERM: $(cat "$work/mock.err")"

# 6. wechat-decrypt from the package.
"$usr/bin/wechat-decrypt" --help > "$work/help" || fail "wechat-decrypt --help exited $?"
grep -q "^usage: wechat-decrypt" "$work/help" || fail "wechat-decrypt --help: $(cat "$work/help")"

echo "package ok ($((SECONDS - started)) s)"
