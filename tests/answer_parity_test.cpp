// detail::answer reads WeChat's answers without nlohmann's DOM; it must read every body as
// the DOM did (tests/answer_oracle.hpp): hand-picked edges of the grammar nlohmann accepts
// (a BOM, a NUL after the value, numbers at a double's limit, nesting past any stack,
// duplicate and escaped keys), then 40,000 mutations of real answers.
#include <catch2/catch.hpp>

#include "answer_oracle.hpp"
#include "mutations.hpp"

#include <random>
#include <string>

using namespace std::string_literals;

namespace {
void same_reading(const std::string& body) {
  const std::string dom = answer_oracle::by_dom(body);
  const std::string read = answer_oracle::by_answer(body);
  if (dom != read) {
    CAPTURE(body, dom, read);
    FAIL("detail::answer reads the body otherwise than the DOM");
  }
}
}  // namespace

TEST_CASE("an answer reads hand-picked edges of nlohmann's grammar as the DOM does",
          "[answer][json]") {
  const std::string cases[] = {
      R"({"openid":"o","session_key":"k","unionid":"u"})",
      "\xEF\xBB\xBF{\"openid\":\"o\"}",
      "\xEF\xBB{\"openid\":\"o\"}",
      "{\"openid\":\"o\"}\0trailing"s,
      "{\"openid\":\"o\"} \0"s,
      "\0{}"s,
      "{\"a\":1\0}"s,
      "{\"openid\":\"a\\u0000b\"}",
      R"({"a":1.7976931348623157e308})",
      R"({"a":1.7976931348623158e308})",
      R"({"a":1.7976931348623159e308})",
      R"({"a":-1.8e308})",
      R"({"a":1e309})",
      R"({"a":1e-400,"expires_in":-1e-400})",
      R"({"a":0.000000000000000000000000000001e330})",
      R"({"a":1e00000000000000000000000000307})",
      R"({"expires_in":-9223372036854775808})",
      R"({"expires_in":-9223372036854775809})",
      R"({"expires_in":-9223372036854776833})",
      R"({"expires_in":9223372036854775807})",
      R"({"expires_in":9223372036854775808})",
      R"({"expires_in":18446744073709551615})",
      R"({"expires_in":18446744073709551616})",
      R"({"expires_in":7200.9,"a":-0.5})",
      R"({"expires_in":"7200","a":"-0"})",
      R"({"errcode":-0})",
      R"({"errcode":null,"openid":"o"})",
      R"({"errcode":true})",
      R"({"errcode":[0]})",
      R"({"errcode":{}})",
      R"({"errcode":""})",
      R"({"errcode":"40029","errmsg":"rid: ab"})",
      R"({"expires_in":null,"openid":{},"session_key":[],"unionid":true,"a":false})",
      R"({"errcode":0.0})",
      R"({"errcode":"40029","errmsg":"invalid code, rid: 6f1c-22"})",
      R"({"errcode":40029,"errmsg":5})",
      R"({"errcode":2147483648})",
      R"({"errcode":-2147483648,"errmsg":"x"})",
      R"({"errcode":40029,"errcode":0})",
      R"({"errcode":0,"errcode":40029,"errmsg":"a","errmsg":"b"})",
      R"({"open\u0069d":"escaped key","openid":"plain","\u006fpenid":"last"})",
      R"({"open\u00e9":"accented key"})",
      R"({"a\u0000b":"a NUL in a key","a":1})",
      R"({"openid":"x","openid":1})",
      R"({"openid":1,"openid":"x"})",
      R"({"openid":null,"session_key":"","unionid":""})",
      R"({"a":{"b":[1,{"c":"}"}]},"openid":"after nesting"})",
      R"([1,2])",
      R"("s")",
      R"(null)",
      R"(5)",
      "",
      " ",
      R"({"a":1} x)",
      R"({"a":"\ud83d\ude00","b":"\ud83d"})",
      "{\"a\":\"\x01\"}",
  };
  for (const auto& c : cases)
    same_reading(c);
  // Nesting far past json_reader::max_depth (256) and past any call stack: nlohmann
  // accepts it, and so must the answer, without recursion.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  same_reading("{\"a\":" + deep + ",\"openid\":\"o\"}");
  same_reading("{\"a\":" + deep + "]}");
  std::string objects;
  for (int i = 0; i < 3000; ++i)
    objects += "{\"k\":";
  objects += "1";
  for (int i = 0; i < 3000; ++i)
    objects += "}";
  same_reading("{\"a\":" + objects + "}");
  same_reading(deep);
  // A number of 400 digits overflows a double (refused); with an exponent it may not.
  const std::string digits(400, '9');
  same_reading("{\"a\":" + digits + "}");
  same_reading("{\"a\":" + digits + "e-100}");
  same_reading("{\"a\":0." + digits + "e308}");
  // Numbers too small for a double are 0 to nlohmann (strtod), whatever their exponent:
  // 1e-324 written with 623 zeros after the point and e300; an exponent of a million below
  // 100,300 digits. Neither may be judged an overflow.
  same_reading("{\"a\":0." + std::string(623, '0') + "1e300,\"openid\":\"o\"}");
  same_reading("{\"a\":1" + std::string(100300, '0') + "e-1000000,\"openid\":\"o\"}");
  same_reading("{\"a\":0." + std::string(400, '0') + "e999}");
  same_reading("{\"a\":0." + std::string(10, '0') + "1e319}");  // 1e308: finite
  same_reading("{\"a\":0." + std::string(10, '0') + "2e319}");  // 2e308: overflows
  same_reading("{\"a\":1" + std::string(400, '0') + "e-92}");   // 1e308
  same_reading("{\"a\":-2" + std::string(400, '0') + "e-92}");  // -2e308
  // Many members: past the answer's inline table.
  std::string many = "{";
  for (int i = 0; i < 40; ++i)
    many += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  many += "\"openid\":\"o\",\"expires_in\":3}";
  same_reading(many);
}

TEST_CASE("an answer reads 40000 mutated WeChat answers as the DOM does", "[answer][json]") {
  const std::string base[] = {
      R"({"openid":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","session_key":"tiihtNczf5v6AKRyjwEUhQ==","unionid":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA"})",
      R"({"errcode":40029,"errmsg":"invalid code, rid: 66c69111-4157f271-729ca238"})",
      R"({"access_token":"ACCESS_TOKEN","expires_in":7200,"errcode":0,"errmsg":"ok"})",
      R"({"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+8613800138000","countryCode":86,"watermark":{"timestamp":-1.5e3,"appid":"wx"}},"a":[true,false,null,[],{}]})",
  };
  // The JSON's own bytes, UTF-8 lead and trail bytes, the BOM's, and a NUL.
  const char bytes[] =
      "{}[]\",:\\u0123456789abcdefABCDEF.-+eE tnrfl \x80\xbf\xc3\xe5\xf0\xff\xef\xbb\0";
  const std::string_view alphabet(bytes, sizeof bytes - 1);  // the NUL written, not the end
  std::mt19937 rng(20261130);  // fixed seed: a failure reproduces
  int objects = 0, refused = 0;
  for (int i = 0; i < 40000; ++i) {
    const std::string s = mutated(base[i % 4], rng, alphabet);
    same_reading(s);
    const auto dom = nlohmann::json::parse(s, nullptr, false);
    (dom.is_object() ? objects : refused)++;
  }
  CHECK(objects > 2000);  // the mutations exercise both outcomes
  CHECK(refused > 2000);
}
