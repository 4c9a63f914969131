// The fast reader must accept exactly what a conforming parser accepts: differential
// tests against nlohmann::json::accept on hand-picked edge cases and on mutations of
// realistic payloads.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <wechat/detail/json_reader.hpp>

#include "mutations.hpp"

#include <random>
#include <string>

using namespace std::string_literals;

namespace {
bool reader_accepts(const std::string& s) {
  wechat::detail::json_reader r(s);
  r.skip(0);
  return !r.syntax_error() && r.finish();
}

// nlohmann's verdict on the grammar: 1 accepted, 0 rejected, -1 not comparable (nlohmann
// also rejects grammatical numbers that overflow a double; the reader only skips them).
int nlohmann_verdict(const std::string& s) {
  try {
    const auto parsed = nlohmann::json::parse(s);
    (void)parsed;
    return 1;
  } catch (const nlohmann::json::out_of_range&) {
    return -1;
  } catch (const nlohmann::json::parse_error&) {
    return 0;
  }
}
}  // namespace

TEST_CASE("json_reader accepts and rejects exactly what nlohmann accepts", "[json]") {
  const std::string cases[] = {
      "{}",
      "[]",
      "0",
      "-0",
      "1.5",
      "-1.5e10",
      "1E+2",
      "1e-2",
      "true",
      "false",
      "null",
      R"("a")",
      R"({"a":1})",
      R"({"a":[1,2,{"b":null}]})",
      " { \"a\" : 1 } ",
      "\t\n\r{}",
      // invalid
      "",
      " ",
      "{",
      "}",
      "[",
      "{\"a\"}",
      "{\"a\":}",
      "{\"a\":1,}",
      "[1,]",
      "[,1]",
      "01",
      "1.",
      ".1",
      "+1",
      "1e",
      "1e+",
      "-",
      "--1",
      "tru",
      "nul",
      "True",
      "NaN",
      "Infinity",
      "'a'",
      "{a:1}",
      "{\"a\":1}}",
      "[1 2]",
      "{\"a\" 1}",
      "\"abc",
      "\"\\x\"",
      "\"\\u12\"",
      "\"\\u12G4\"",
      "\"a\nb\"",
      "\"a\tb\"",
      "\"\x01\"",
      // unicode: valid, overlong, surrogates, out of range, truncated
      "\"\xe5\xbe\xae\"",
      "\"\xf0\x9f\x98\x80\"",
      "\"\xc0\x80\"",
      "\"\xc1\xbf\"",
      "\"\xe0\x80\xaf\"",
      "\"\xed\xa0\x80\"",
      "\"\xf4\x90\x80\x80\"",
      "\"\xf5\x80\x80\x80\"",
      "\"\xe5\xbe\"",
      "\"\x80\"",
      "\"\xff\"",
      "\"\\ud83d\\ude00\"",
      "\"\\ud83d\"",
      "\"\\ude00\"",
      "\"\\ud83d\\u0041\"",
      "\"\\ud83dx\"",
      "\"\\u0000\"",
      "{\"a\":1} {}",
      "[1] x",
      "1 2",
      "\"a\"\"b\"",
      "{\"\\u0061\":1}",
      "\"a\0b\""s,
      "[1,\0]"s,
  };
  for (const std::string& c : cases) {
    CAPTURE(c);
    CHECK(reader_accepts(c) == (nlohmann_verdict(c) == 1));
  }
}

TEST_CASE("json_reader is stricter than nlohmann where nlohmann is lax", "[json]") {
  // nlohmann stops at a NUL byte as if the input ended there; the reader does not.
  CHECK(nlohmann::json::accept("{}\0garbage"s));
  CHECK_FALSE(reader_accepts("{}\0garbage"s));
  CHECK_FALSE(reader_accepts("{}\0"s));
  // nlohmann rejects grammatical numbers that overflow a double; the reader accepts the
  // grammar (and integer() reports such a field as the wrong shape).
  CHECK(nlohmann_verdict("1e999") == -1);
  CHECK(reader_accepts("1e999"));
}

TEST_CASE("json_reader agrees with nlohmann on 20000 mutated payloads", "[json]") {
  const std::string base[] = {
      R"({"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"\u5fae Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/0","unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}})",
      R"({"phoneNumber":"+8613800138000","purePhoneNumber":"13800138000","countryCode":86,"watermark":{"timestamp":-1.5e3,"appid":"wx"},"x":[true,false,null,[],{}]})",
  };
  const char alphabet[] = "{}[]\",:\\u0123456789abcdefABCDEF.-+eE tnrfl \x80\xbf\xc3\xe5\xf0\xff";
  std::mt19937 rng(20261123);  // fixed seed: a failure reproduces
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string s =
        mutated(base[i % 2], rng, std::string_view(alphabet, sizeof alphabet - 1));
    const int verdict = nlohmann_verdict(s);
    if (verdict < 0) continue;
    const bool expect = verdict == 1;
    (expect ? accepted : rejected)++;
    if (reader_accepts(s) != expect) {
      CAPTURE(s, expect);
      FAIL("json_reader disagrees with nlohmann");
    }
  }
  CHECK(accepted > 500);  // the mutations exercise both outcomes
  CHECK(rejected > 500);
}

TEST_CASE("json_reader decodes strings, integers and numbers-as-text", "[json]") {
  wechat::detail::json_reader r(
      R"({"s":"a\u00e9\n","i":-9223372036854775808,"big":9223372036854775808,"f":1.5,"n":86})");
  std::string s, n;
  std::int64_t i = 0, big = 0, f = 0;
  bool got_big = true, got_f = true;
  r.object([&](std::string_view k) {
    if (k == "s")
      r.string(s);
    else if (k == "i")
      r.integer(i);
    else if (k == "big")
      got_big = r.integer(big);
    else if (k == "f")
      got_f = r.integer(f);
    else if (k == "n")
      r.string_or_number(n);
  });
  CHECK(r.finish());
  CHECK(s == "a\xc3\xa9\n");
  CHECK(i == INT64_MIN);
  CHECK_FALSE(got_big);  // out of range: a shape error, not a syntax error
  CHECK_FALSE(got_f);
  CHECK(r.shape_error());
  CHECK_FALSE(r.syntax_error());
  CHECK(n == "86");
}

TEST_CASE("json_reader bounds nesting depth instead of overflowing the stack", "[json]") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK_FALSE(reader_accepts(deep));
  const std::string ok = std::string(200, '[') + std::string(200, ']');
  CHECK(reader_accepts(ok));
}
