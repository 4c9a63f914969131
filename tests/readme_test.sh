#!/usr/bin/env bash
# The README cannot rot: every sh, cpp and cmake snippet in it is extracted and run, the
# way a newcomer takes them, in a scratch folder:
#   quick-start          make demo (make test is what runs this script)
#   install              the install snippet as written: a Release build of the clone,
#                        cmake --install into $HOME/opt/wechat (HOME is the scratch
#                        folder), then your-app configured and built against it;
#   your-cmake,          your-app/CMakeLists.txt is those two snippets, as written,
#   my-login-test-cmake  beside login.cpp (login-program) and my_login_test.cpp
#                        (my-login-test); ctest runs my_login_test;
#   mock-shell,          the standalone mock from the build above, with curl, then the
#   login-program-run    login program against it (one shell, as a reader would);
#   scenario             a scenario file written and the mock started with it;
#   login-server-shell   login_server and its embedded mock, with curl;
#   loadtest-shell       wechat-loadtest against login_server and its embedded mock;
#   async-login          compiled with g++ against the installed headers (and Debian's
#                        Boost), then run against the installed mock_wechat with two codes.
# A snippet is marked in the README by the line before its fence:
#   <!-- snippet: NAME -->                     run as above
#   <!-- snippet: NAME, not run: REASON -->    said here, with its reason
# A sh/cpp/cmake fence without a mark fails this test, and so does a name this script
# does not know or a known name that disappeared: a new snippet needs a way to run it.
# The ports 8080-8082 of the snippets are replaced by free ones (tests run in parallel).
#
#   readme_test.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
work=$3
rm -rf "$work"
mkdir -p "$work/snippets"
work=$(cd "$work" && pwd)

fail() {
  echo "readme_test: $*" >&2
  exit 1
}

# ---- extract ----------------------------------------------------------------------------
awk -v out="$work/snippets" '
  function bad(msg) { print "README.md:" NR ": " msg > "/dev/stderr"; failed = 1 }
  /^<!-- snippet: / {
    mark = $0; sub(/^<!-- snippet: /, "", mark); sub(/ -->$/, "", mark)
    name = mark; reason = ""
    if (index(mark, ", not run: ") > 0) {
      name = substr(mark, 1, index(mark, ", not run: ") - 1)
      reason = substr(mark, index(mark, ", not run: ") + 11)
    }
    marked = NR; next
  }
  /^```/ && !infence {
    lang = substr($0, 4)
    infence = 1
    if (lang == "sh" || lang == "cpp" || lang == "cmake") {
      if (marked != NR - 1) { bad("a " lang " snippet without a <!-- snippet: NAME --> line before it"); file = ""; next }
      if (seen[name]++) bad("snippet " name " twice")
      file = out "/" name "." lang
      printf "" > file
      print name, lang, (reason == "" ? "-" : reason) >> (out "/list")
    } else if (lang != "text") {
      bad("a ```" lang " fence: say sh, cpp or cmake (run) or text (not code)")
      file = ""
    } else file = ""
    next
  }
  /^```$/ && infence { infence = 0; if (file != "") close(file); file = ""; next }
  infence && file != "" { print > file }
  END { if (infence) bad("an unclosed fence"); exit failed }
' "$src/README.md" || fail "README.md's snippets are not all marked (above)"

known="quick-start login-program async-login install your-cmake deb my-login-test my-login-test-cmake mock-shell login-program-run scenario login-server-shell loadtest-shell"
while read -r name lang reason; do
  case " $known " in *" $name "*) ;; *) fail "README snippet '$name' ($lang) is new: say in tests/readme_test.sh how to run it" ;; esac
  if [[ "$reason" != "-" ]]; then echo "readme_test: not run: $name: $reason"; fi
done < "$work/snippets/list"
for name in $known; do
  grep -q "^$name " "$work/snippets/list" || fail "README snippet '$name' is gone: update tests/readme_test.sh"
done
not_run() { awk -v n="$1" '$1 == n && $3 != "-"' "$work/snippets/list" | grep -q .; }
for name in $known; do
  if [[ "$name" == deb ]]; then
    not_run deb || fail "README snippet 'deb' is marked to run; this script has no root to run it"
    continue
  fi
  not_run "$name" && fail "README snippet '$name' is marked not run; this script runs it"
done
snip() { cat "$work/snippets/$1"; }
mkdir -p "$work/home"

# Three distinct free loopback ports for 8080, 8081, 8082, below Linux's ephemeral range
# (32768 and up), so no outgoing connection takes one meanwhile.
free_port() {
  local p
  while :; do
    p=$((10000 + RANDOM % 22000))
    [[ " ${taken:-} " == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then taken="${taken:-} $p"; echo "$p"; return; fi
  done
}
taken=""
p8080=$(free_port); taken="$taken $p8080"
p8081=$(free_port); taken="$taken $p8081"
p8082=$(free_port)
# whole numbers only, so a port substituted first (28081) is never rewritten by the next
ports() { sed -E "s/\b8080\b/$p8080/g; s/\b8081\b/$p8081/g; s/\b8082\b/$p8082/g"; }

# A snippet runs in bash -e; background programs it starts are stopped when it ends.
run_sh() {  # run_sh FOLDER LOG < script
  local dir=$1 log=$2
  { echo 'trap '\''kill $(jobs -p) 2>/dev/null || true; wait || true'\'' EXIT'; cat; } > "$log.sh"
  if ! (cd "$dir" && HOME="$work/home" bash -euo pipefail "$log.sh" > "$log" 2> "$log.err"); then
    echo "---- $log.sh"; cat "$log.sh"; echo "---- stdout"; cat "$log"; echo "---- stderr"; tail -50 "$log.err"
    fail "snippet failed: $(basename "$log")"
  fi
}
expect() {  # expect LOG PATTERN...
  local log=$1; shift
  for p in "$@"; do
    grep -q -- "$p" "$log" || { echo "---- $log"; cat "$log"; fail "$(basename "$log"): no '$p' in its output"; }
  done
}

# ---- quick-start: make demo (make test is running this) -----------------------------------
grep -q '^make test' "$work/snippets/quick-start.sh" || fail "quick-start has no make test line"
grep -v '^make test' "$work/snippets/quick-start.sh" | sed "s|^make demo|make -C '$src' demo BUILD_DIR='$build'|" \
  | run_sh "$work" "$work/quick-start.log"
expect "$work/quick-start.log" "demo finished"
echo "readme_test: quick-start: make demo ran (make test is what runs this)"

# ---- install, your-cmake, login-program, my-login-test, my-login-test-cmake --------------
nc="$work/newcomer"
mkdir -p "$nc/your-app" "$work/home"
ln -s "$src" "$nc/wechat-cpp"
snip login-program.cpp > "$nc/your-app/login.cpp"
snip my-login-test.cpp > "$nc/your-app/my_login_test.cpp"
{ snip your-cmake.cmake; snip my-login-test-cmake.cmake; } > "$nc/your-app/CMakeLists.txt"
start=$(date +%s)
snip install.sh | run_sh "$nc" "$work/install.log"
echo "readme_test: install: built, installed and your-app built against it in $(( $(date +%s) - start )) s"
[[ -x "$work/home/opt/wechat/bin/mock_wechat" && -x "$work/home/opt/wechat/bin/wechat-decrypt" ]] \
  || fail "install: bin/mock_wechat and bin/wechat-decrypt are not in the prefix"
[[ -f "$work/home/opt/wechat/share/doc/wechat/LICENSE" ]] || fail "install: no LICENSE in the prefix"
ctest --test-dir "$nc/your-build" --output-on-failure > "$work/my-login-test.log" 2>&1 \
  || { cat "$work/my-login-test.log"; fail "my_login_test failed"; }
expect "$work/my-login-test.log" "100% tests passed"
echo "readme_test: my-login-test: passed under ctest in your-build"

# ---- mock-shell then login-program-run, in one shell -----------------------------------
{ snip mock-shell.sh; echo 'echo "==== login program"'; snip login-program-run.sh; } | ports \
  | run_sh "$nc" "$work/mock-shell.log"
expect "$work/mock-shell.log" '"openid":"' '"session_key":"' '"unionid":"' '"errcode":40163' \
  '"id":1,"status":"ok"' '"now":' '==== login program' '^openid o' '^nickName 微信用户' '^unionid .* (from session)' \
  '^session_key valid'
echo "readme_test: mock-shell, login-program-run: as shown"

# ---- scenario ---------------------------------------------------------------------------
snip scenario.sh | ports | run_sh "$nc" "$work/scenario.log"
expect "$work/scenario.log" '^{"code":"'
echo "readme_test: scenario: as shown"

# ---- login-server-shell -----------------------------------------------------------------
snip login-server-shell.sh | ports | run_sh "$nc" "$work/login-server.log"
expect "$work/login-server.log" '"nickName":"微信用户"' '"channel":"session"' '"logged_out":true'
echo "readme_test: login-server-shell: as shown"

# ---- loadtest-shell ---------------------------------------------------------------------
snip loadtest-shell.sh | ports | run_sh "$nc" "$work/loadtest.log"
expect "$work/loadtest.log" 'PASS one jscode2session per login' 'PASS no 40163' 'PASS every WeChat errcode' \
  'PASS SLO p99<250ms' '^PASSED$'
[[ $(wc -l < "$nc/run.csv") -ge 10 ]] || fail "loadtest-shell: run.csv has fewer than 10 rows"
echo "readme_test: loadtest-shell: as shown"
# ---- async-login: the install's headers and Debian's Boost, against the installed mock -----
snip async-login.cpp > "$nc/async_login.cpp"
g++ -std=c++17 -I "$work/home/opt/wechat/include" "$nc/async_login.cpp" -o "$nc/async_login" \
  -lssl -lcrypto -pthread > "$work/async-login-build.log" 2>&1 \
  || { cat "$work/async-login-build.log"; fail "async-login does not compile as shown"; }
cat <<'EOF' | ports | run_sh "$nc" "$work/async-login.log"
"$HOME/opt/wechat/bin/mock_wechat" --port 8080 &
URL=http://127.0.0.1:8080
until curl -sf $URL/__mock/health > /dev/null; do sleep 0.1; done
curl -s -XPOST $URL/__mock/apps -d '{"appid":"wx1000000000000001","secret":"s","open_account":"acct"}' > /dev/null
A=$(curl -s -XPOST $URL/__mock/login -d '{"appid":"wx1000000000000001","user":"alice"}' | jq -r .code)
B=$(curl -s -XPOST $URL/__mock/login -d '{"appid":"wx1000000000000001","user":"bob"}' | jq -r .code)
WECHAT_SECRET=s ./async_login $URL wx1000000000000001 "$A" "$B" bogus-code
EOF
expect "$work/async-login.log" '^openid o.* unionid ' '^failed: invalid code'
[[ $(grep -c '^openid ' "$work/async-login.log") -eq 2 ]] || { cat "$work/async-login.log"; fail "async-login: not two logins"; }
echo "readme_test: async-login: compiled against the install, two logins and one bad code, as shown"
echo "readme_test: every README snippet ran, but deb (above)"
