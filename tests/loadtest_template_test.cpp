// loadtest/template.hpp: steps, templates and their escaping, JSONPath, captures, checks.
#include <loadtest/template.hpp>

#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using loadtest::escaping;
using loadtest::text_template;
using loadtest::values;
using loadtest::variables;
using nlohmann::json;

namespace {

// The message of the std::invalid_argument f throws, or "(no error)".
template <typename F> std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

void set(values& v, const variables& vars, const char* name, std::string text) {
  const int slot = vars.find(name);
  REQUIRE(slot >= 0);
  if (v.size() <= static_cast<std::size_t>(slot)) v.resize(static_cast<std::size_t>(slot) + 1);
  v[static_cast<std::size_t>(slot)] = {std::move(text), true};
}

std::string expand(const text_template& t, const values& v) {
  std::string out;
  REQUIRE(t.expand(v, out));
  return out;
}

}  // namespace

TEST_CASE("variables are slots fixed before the run", "[loadtest][template]") {
  variables vars;
  CHECK(vars.slot("code") == 0);
  CHECK(vars.slot("token") == 1);
  CHECK(vars.slot("code") == 0);
  CHECK(vars.find("token") == 1);
  CHECK(vars.find("nope") == -1);
  CHECK(vars.size() == 2);
  CHECK(vars.name(1) == "token");
}

TEST_CASE("parse_step reads the method, the path and the body", "[loadtest][template]") {
  variables vars;
  SECTION("POST with a JSON body") {
    const loadtest::step s = loadtest::parse_step(R"(POST /login {"code":"${code}"})", vars);
    CHECK(s.method == "POST");
    CHECK(s.name == "/login");
    CHECK(s.has_body);
    CHECK(s.expect_status == 0);
    CHECK_FALSE(s.needs_json());
    REQUIRE(vars.find("code") == 0);
    values v(vars.size());
    set(v, vars, "code", "0a1b");
    CHECK(expand(s.path, v) == "/login");
    CHECK(expand(s.body, v) == R"({"code":"0a1b"})");
    CHECK(s.body.slots() == std::vector<int>{0});
  }
  SECTION("GET without a body; the name drops the query; lower case is upper-cased") {
    const loadtest::step s = loadtest::parse_step("get /users/${user}?full=1", vars);
    CHECK(s.method == "GET");
    CHECK(s.name == "/users/${user}");
    CHECK_FALSE(s.has_body);
    CHECK(s.body.empty());
  }
  SECTION("a body may contain spaces") {
    const loadtest::step s = loadtest::parse_step(R"(PUT /x {"a": "b c", "d": ${n}})", vars);
    values v(vars.size());
    set(v, vars, "n", "12");
    CHECK(expand(s.body, v) == R"({"a": "b c", "d": 12})");
  }
  SECTION("a trailing space is no body") {
    CHECK_FALSE(loadtest::parse_step("DELETE /x ", vars).has_body);
  }
}

TEST_CASE("parse_step refuses bad steps, naming the part", "[loadtest][template]") {
  variables vars;
  const auto msg = [&](const char* spec) {
    return message_of([&] { (void)loadtest::parse_step(spec, vars); });
  };
  CHECK(msg("POST") == "step 'POST': expected 'METHOD /path [BODY]'");
  CHECK(msg(" /login") ==
        "step ' /login': expected a method (GET, POST ...) before the first space");
  CHECK(msg("PO(ST /login") == "step 'PO(ST /login': the method 'PO(ST' is not an HTTP token");
  CHECK(msg("POST login") ==
        "step 'POST login': expected the path (starting with '/') after one space, got 'login'");
  CHECK(msg("POST  /login") ==
        "step 'POST  /login': expected the path (starting with '/') after one space, got ''");
  CHECK(msg("POST /a\tb") == "step 'POST /a\tb': a control character in the path");
  CHECK(msg("POST /u/${id") ==
        "step 'POST /u/${id': path: template '/u/${id': unterminated ${ at offset 3");
  CHECK(msg("POST /u/${} {}") ==
        "step 'POST /u/${} {}': path: template '/u/${}': empty variable name at offset 3");
  CHECK(
      msg(R"(POST /x {"a":"${b c}"})") ==
      R"(step 'POST /x {"a":"${b c}"}': body: template '{"a":"${b c}"}': bad variable name 'b c' (letters, digits, '_', '.', '-'; '?' at the end for optional) at offset 6)");
  CHECK(
      msg(R"(POST /x {"a":"b})") ==
      R"(step 'POST /x {"a":"b}': body: template '{"a":"b}': unterminated JSON string at offset 8)");
}

TEST_CASE("a value with quotes goes into a JSON string escaped, and parses back",
          "[loadtest][template]") {
  variables vars;
  const loadtest::step s = loadtest::parse_step(
      R"(POST /userinfo {"token":"${token}","rawData":"${user_info.rawData}","n":${n},"lit":"a\"${x}\\"})",
      vars);
  const std::string raw_data =
      "{\"nickName\":\"Ann \\\"the\\\" \xe5\xbc\xa0 "
      "\\\\\",\"gender\":1,\"tab\":\"\t\",\"ctl\":\"\x01\x1f\",\"avatarUrl\":\"https://x/y?z=1\"}";
  values v(vars.size());
  set(v, vars, "token", "t\"k");
  set(v, vars, "user_info.rawData", raw_data);
  set(v, vars, "n", "42");
  set(v, vars, "x", "\"}\n");
  std::string out = "prefix:";
  REQUIRE(s.body.expand(v, out));
  REQUIRE(out.rfind("prefix:", 0) == 0);
  const json j = json::parse(out.substr(7), nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  CHECK(j.at("rawData").get<std::string>() == raw_data);
  CHECK(j.at("token").get<std::string>() == "t\"k");
  CHECK(j.at("n") == 42);                                 // outside a string: as is
  CHECK(j.at("lit").get<std::string>() == "a\"\"}\n\\");  // after an escaped quote, still inside
  CHECK(out.find("\\u0001\\u001f") != std::string::npos);
  CHECK(out.find("\xe5\xbc\xa0") != std::string::npos);  // UTF-8 passes through
}

TEST_CASE("$${ is a literal ${ and ${x?} may be absent", "[loadtest][template]") {
  variables vars;
  const text_template t = text_template::compile("a$${b}c${x?}d$e${y}", vars, escaping::raw);
  CHECK(vars.find("b") == -1);
  values v(vars.size());
  set(v, vars, "y", "Y");
  CHECK(expand(t, v) == "a${b}cd$eY");
  set(v, vars, "x", "X");
  CHECK(expand(t, v) == "a${b}cXd$eY");
  SECTION("a missing non-optional variable reports its slot and leaves out as it was") {
    v[static_cast<std::size_t>(vars.find("y"))].present = false;
    std::string out = "keep";
    int missing = -1;
    CHECK_FALSE(t.expand(v, out, &missing));
    CHECK(missing == vars.find("y"));
    CHECK(out == "keep");
    CHECK_FALSE(t.expand(values{}, out));  // values shorter than the slots: absent
  }
  SECTION("$${ inside a JSON string does not end the string") {
    const text_template b =
        text_template::compile(R"({"a":"$${z}","b":"${q}"})", vars, escaping::json_aware);
    values w(vars.size());
    set(w, vars, "q", "\"");
    CHECK(expand(b, w) == R"({"a":"${z}","b":"\""})");
  }
}

TEST_CASE("path values are percent-encoded, literal text is not", "[loadtest][template]") {
  variables vars;
  const loadtest::step s = loadtest::parse_step("GET /users/${user}?q=${q}&r=1", vars);
  values v(vars.size());
  set(v, vars, "user", "lt-7 a/b");
  set(v, vars, "q", "A-Z_a.z~0\xe5\xbc\xa0?&=%");
  CHECK(expand(s.path, v) == "/users/lt-7%20a%2Fb?q=A-Z_a.z~0%E5%BC%A0%3F%26%3D%25&r=1");
}

TEST_CASE("headers insert values as they are", "[loadtest][template]") {
  variables vars;
  const auto [name, t] = loadtest::parse_header("Authorization: Bearer ${token}", vars);
  CHECK(name == "Authorization");
  values v(vars.size());
  set(v, vars, "token", "a\"b/c");
  CHECK(expand(t, v) == "Bearer a\"b/c");
  CHECK(message_of([&] { (void)loadtest::parse_header("Bad Name: x", vars); }) ==
        "header 'Bad Name: x': the name is not an HTTP token");
  CHECK(message_of([&] { (void)loadtest::parse_header("X-A: a\r\nX-B: b", vars); }) ==
        "header 'X-A: a\r\nX-B: b': CR or LF in a header");
}

TEST_CASE("json_path_to_pointer translates the JSONPath subset", "[loadtest][template]") {
  using loadtest::json_path_to_pointer;
  CHECK(json_path_to_pointer("$").empty());
  CHECK(json_path_to_pointer("$.token") == "/token");
  CHECK(json_path_to_pointer("$.a.b") == "/a/b");
  CHECK(json_path_to_pointer("$.a[0].c") == "/a/0/c");
  CHECK(json_path_to_pointer("$.a[10][2]") == "/a/10/2");
  CHECK(json_path_to_pointer("$['a-b']") == "/a-b");
  CHECK(json_path_to_pointer("$['a/b~c'].d") == "/a~1b~0c/d");
  CHECK(json_path_to_pointer(R"($["it's"])") == "/it's");
  CHECK(json_path_to_pointer(R"($['it\'s a \\ ]'])") == "/it's a \\ ]");
  CHECK(json_path_to_pointer("$['']") == "/");
  CHECK(json_path_to_pointer("$.user_info.nick-name") == "/user_info/nick-name");
  SECTION("anything else is refused") {
    const auto msg = [](const char* p) {
      return message_of([&] { (void)json_path_to_pointer(p); });
    };
    CHECK(msg("token") == "JSONPath 'token': expected '$' at offset 0");
    CHECK(msg("") == "JSONPath '': expected '$' at offset 0");
    CHECK(
        msg("$.") ==
        "JSONPath '$.': expected a name after '.' (use ['...'] for other characters) at offset 2");
    CHECK(msg("$.a[") ==
          "JSONPath '$.a[': expected an index or a quoted key after '[' at offset 4");
    CHECK(msg("$.a[1") == "JSONPath '$.a[1': expected ']' at offset 5");
    CHECK(msg("$.a[01]") == "JSONPath '$.a[01]': an index has no leading zero at offset 4");
    CHECK(msg("$['a") == "JSONPath '$['a': unterminated quoted key at offset 4");
    CHECK(msg("$['a\\n']") ==
          "JSONPath '$['a\\n']': expected \\\\, \\' or \\\" in a quoted key at offset 5");
    CHECK(msg("$.a[*]") ==
          "JSONPath '$.a[*]': expected an index or a quoted key after '[' at offset 4");
    CHECK(msg("$..a") == "JSONPath '$..a': expected a name after '.' (use ['...'] for other "
                         "characters) at offset 2");
    CHECK(msg("$.a b") ==
          "JSONPath '$.a b': unexpected ' ' at offset 3 (supported: $, $.a.b, $.a[0], $['key'])");
  }
}

TEST_CASE("captures and checks parse, and refuse bad specs", "[loadtest][template]") {
  variables vars;
  const loadtest::capture c = loadtest::parse_capture("token=$.data['the token']", vars);
  CHECK(c.slot == vars.find("token"));
  CHECK(c.pointer == "/data/the token");
  CHECK(c.source == "$.data['the token']");
  const loadtest::check eq = loadtest::parse_check("$['a==b']==${openid}", vars);
  CHECK(eq.kind == loadtest::check_kind::equals);
  CHECK(eq.pointer == "/a==b");
  CHECK(eq.path == "$['a==b']");
  CHECK(vars.find("openid") >= 0);
  CHECK(loadtest::parse_check("$.x!=lit", vars).kind == loadtest::check_kind::not_equals);
  CHECK(loadtest::parse_check("exists($.token)", vars).pointer == "/token");
  CHECK(loadtest::parse_check("absent($.error)", vars).kind == loadtest::check_kind::absent);
  const auto cap = [&](const char* s) {
    return message_of([&] { (void)loadtest::parse_capture(s, vars); });
  };
  const auto chk = [&](const char* s) {
    return message_of([&] { (void)loadtest::parse_check(s, vars); });
  };
  CHECK(cap("token") == "capture 'token': expected NAME=$.path");
  CHECK(cap("=$.a") == "capture '=$.a': expected a variable name before '='");
  CHECK(cap("a b=$.a") == "capture 'a b=$.a': bad variable name (letters, digits, '_', '.', '-')");
  CHECK(cap("t=token") == "capture 't=token': JSONPath 'token': expected '$' at offset 0");
  CHECK(chk("$.a=b") == "check '$.a=b': expected '==' or '!=' after the path at offset 3 (or "
                        "exists($.path), absent($.path))");
  CHECK(chk("exists($.a") == "check 'exists($.a': expected ')' at the end");
  CHECK(chk("exists(a)") == "check 'exists(a)': JSONPath 'a': expected '$' at offset 0");
  CHECK(chk("$.a==${b") == "check '$.a==${b': template '${b': unterminated ${ at offset 0");
}

TEST_CASE("apply captures, then checks equals, not_equals, exists and absent",
          "[loadtest][template]") {
  variables vars;
  loadtest::step s = loadtest::parse_step(R"(POST /login {"code":"${code}"})", vars);
  s.captures.push_back(loadtest::parse_capture("token=$.token", vars));
  s.captures.push_back(loadtest::parse_capture("n=$.list[1].n", vars));
  s.checks.push_back(loadtest::parse_check("$.openid==${openid}", vars));
  s.checks.push_back(loadtest::parse_check("$.token!=${code}", vars));
  s.checks.push_back(loadtest::parse_check("exists($.token)", vars));
  s.checks.push_back(loadtest::parse_check("absent($.error)", vars));
  s.checks.push_back(loadtest::parse_check("$.list[1].n==7", vars));
  s.checks.push_back(loadtest::parse_check("$.ok==true", vars));
  CHECK(s.needs_json());
  values v(vars.size());
  set(v, vars, "code", "c1");
  set(v, vars, "openid", "o1");
  json answer = {{"token", "tk"}, {"openid", "o1"}, {"list", {0, {{"n", 7}}}}, {"ok", true}};

  SECTION("a good answer passes and fills the captures") {
    CHECK_FALSE(loadtest::apply(s, answer, v).has_value());
    CHECK(v[static_cast<std::size_t>(vars.find("token"))].present);
    CHECK(v[static_cast<std::size_t>(vars.find("token"))].text == "tk");
    CHECK(v[static_cast<std::size_t>(vars.find("n"))].text == "7");
  }
  SECTION("a capture whose path is absent") {
    answer.erase("token");
    const auto f = loadtest::apply(s, answer, v);
    REQUIRE(f);
    CHECK(f->kind == "capture");
    CHECK(f->detail == "$.token absent");
  }
  SECTION("equals: a different value") {
    answer["openid"] = "o2";
    const auto f = loadtest::apply(s, answer, v);
    REQUIRE(f);
    CHECK(f->kind == "check");
    CHECK(f->detail == R"($.openid is "o2", expected "o1")");
  }
  SECTION("equals: a number is not its string") {
    answer["openid"] = 5;
    CHECK(loadtest::apply(s, answer, v)->detail == R"($.openid is 5, expected "o1")");
  }
  SECTION("equals: absent") {
    answer.erase("openid");
    CHECK(loadtest::apply(s, answer, v)->detail == R"($.openid absent, expected "o1")");
  }
  SECTION("not_equals: the same value") {
    answer["token"] = "c1";
    // a token is a credential: its value is never shown
  CHECK(loadtest::apply(s, answer, v)->detail == R"($.token is (redacted), expected anything else)");
  }
  SECTION("absent: present") {
    answer["error"] = {{"code", 1}};
    CHECK(loadtest::apply(s, answer, v)->detail == R"($.error is {"code":1}, expected absent)");
  }
  SECTION("exists: absent") {
    loadtest::step only;
    only.checks.push_back(loadtest::parse_check("exists($.a[0])", vars));
    CHECK(loadtest::apply(only, json{{"a", json::array()}}, v)->detail == "$.a[0] absent");
    CHECK(loadtest::apply(only, json{{"a", json::object({{"0", 1}})}}, v) ==
          std::nullopt);  // a key "0"
  }
  SECTION("a bool compares by its dump") {
    answer["ok"] = "true ";
    CHECK(loadtest::apply(s, answer, v)->detail == R"($.ok is "true ", expected "true")");
  }
  SECTION("long values are cut to 64 bytes") {
    answer["openid"] = std::string(100, 'x');
    CHECK(loadtest::apply(s, answer, v)->detail ==
          "$.openid is \"" + std::string(64, 'x') + "...\", expected \"o1\"");
  }
  SECTION("a check whose variable is not set") {
    v[static_cast<std::size_t>(vars.find("openid"))].present = false;
    CHECK(loadtest::apply(s, answer, v)->detail ==
          "$.openid==${openid}: a variable it uses is not set");
  }
  SECTION("an answer that is not JSON") {
    const auto f = loadtest::apply(s, json::parse("<html>", nullptr, false), v);
    REQUIRE(f);
    CHECK(f->kind == "json");
  }
  SECTION("a step without captures or checks looks at nothing") {
    CHECK_FALSE(
        loadtest::apply(loadtest::step{}, json::parse("<html>", nullptr, false), v).has_value());
  }
}

TEST_CASE("an optional unionid must match when given and be absent when not",
          "[loadtest][template]") {
  variables vars;
  loadtest::step s;
  s.checks.push_back(loadtest::parse_check("$.unionid==${unionid?}", vars));
  values v(vars.size());
  SECTION("given: must equal") {
    set(v, vars, "unionid", "u1");
    CHECK_FALSE(loadtest::apply(s, json{{"unionid", "u1"}}, v).has_value());
    CHECK(loadtest::apply(s, json{{"unionid", "u2"}}, v)->detail ==
          R"($.unionid is "u2", expected "u1")");
    CHECK(loadtest::apply(s, json::object(), v)->detail == R"($.unionid absent, expected "u1")");
  }
  SECTION("not given: must be absent") {
    CHECK_FALSE(loadtest::apply(s, json::object(), v).has_value());
    const auto f = loadtest::apply(s, json{{"unionid", "u2"}}, v);
    REQUIRE(f);
    CHECK(f->kind == "check");
    CHECK(f->detail == R"($.unionid is "u2", expected absent (no value for ${unionid?}))");
  }
  SECTION("not_equals with no value passes") {
    loadtest::step ne;
    ne.checks.push_back(loadtest::parse_check("$.unionid!=${unionid?}", vars));
    CHECK_FALSE(loadtest::apply(ne, json{{"unionid", "u2"}}, v).has_value());
  }
}

TEST_CASE("failure texts never show a credential, and stay valid UTF-8", "[loadtest][template]") {
  variables vars;
  loadtest::step s = loadtest::parse_step("POST /login", vars);
  s.checks.push_back(loadtest::parse_check("absent($.session_key)", vars));
  s.checks.push_back(loadtest::parse_check("$.data.access_token==x", vars));
  values v(vars.size());
  const auto leak = loadtest::apply(s, json{{"session_key", "c2VjcmV0LWtleQ=="}}, v);
  REQUIRE(leak);
  CHECK(leak->detail == "$.session_key is (redacted), expected absent");
  const auto wrong = loadtest::apply(s, json{{"data", {{"access_token", "ACCESS-TOKEN-VALUE"}}}}, v);
  REQUIRE(wrong);
  CHECK(wrong->detail.find("ACCESS-TOKEN-VALUE") == std::string::npos);
  CHECK(wrong->detail.find("(redacted)") != std::string::npos);

  using loadtest::detail::printable_sample;
  // A body sample: credentials' values redacted, whatever the spacing; the rest as sent.
  CHECK(printable_sample(R"j({"error":"bad","session_key" : "abc\"def","openid":"o1"})j") ==
        R"j({"error":"bad","session_key" : "(redacted)","openid":"o1"})j");
  CHECK(printable_sample(R"j({"access_token":"T","appsecret":"S","token":"U","nickName":"n"})j") ==
        R"j({"access_token":"(redacted)","appsecret":"(redacted)","token":"(redacted)","nickName":"n"})j");
  // In a query string, in JSON escaped inside a JSON string, after "name:".
  CHECK(printable_sample("GET /sns/jscode2session?appid=wx1&secret=s3cret&js_code=abc failed") ==
        "GET /sns/jscode2session?appid=wx1&secret=(redacted)&js_code=abc failed");
  CHECK(printable_sample(R"j({"error":"upstream said {\"session_key\":\"k3y==\",\"openid\":\"o\"}"})j") ==
        R"j({"error":"upstream said {\"session_key\":\"(redacted)\",\"openid\":\"o\"}"})j");
  CHECK(printable_sample("access_token: AT-123, expires 7200") == "access_token: (redacted), expires 7200");
  // Names that merely contain a credential's name elsewhere are left alone.
  CHECK(printable_sample("tokens=3&keyboard=1") == "tokens=3&keyboard=1");
  // Cut on a character boundary (服 is 3 bytes), control bytes and stray bytes shown as '?'.
  const std::string chinese = "服务器错误";
  CHECK(printable_sample(chinese, 4) == "服...");
  CHECK(printable_sample(std::string("a\nb\x01\xff") + "c") == "a?b??c");
  // nlohmann can dump every sample (it throws on invalid UTF-8).
  for (std::size_t limit = 1; limit < 16; ++limit)
    CHECK_NOTHROW(json(printable_sample(chinese, limit)).dump());
  // show(): a long non-string value cut on a boundary too.
  CHECK_NOTHROW(json(loadtest::detail::show(json::array({std::string(70, 'x') + "服"}))).dump());
}
