// How an answer's body is read, row by row, through both clients as users call them: the
// sync wechat::client on a fake transport and wechat::async_client on the manual transport
// must give each row's outcome (error, detail, value), and so the same outcome as each
// other. code2session is the call: it is never retried, so one body is one outcome.
//
// The grammar is nlohmann's (the answer parser today): a UTF-8 BOM skipped, a NUL ending
// the input, a number beyond a double refused even in an unknown field, no depth limit,
// the last of two equal keys taken, keys compared after unescaping. The value rules are
// the library's own (detail/api_response.hpp). Any other reader of answers must keep
// every row.
#include <catch2/catch.hpp>
#include <wechat/async.hpp>
#include <wechat/async/manual_transport.hpp>
#include <wechat/client.hpp>

#include <climits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

struct outcome {
  std::error_code ec;
  wechat::error_detail d;
  std::optional<wechat::session_info> value;  // on success only
};

class fake_transport final : public wechat::transport {
public:
  std::string body;
  wechat::http_response send(const wechat::http_request&, std::error_code& ec) override {
    ec.clear();
    return {200, body, "application/json"};
  }
};

wechat::client_options options() {
  wechat::client_options o;
  o.appid = "wx1000000000000001";
  o.secret = "s3cret";
  o.backoff = 1ms;
  return o;
}

outcome through_sync(const std::string& body) {
  auto t = std::make_shared<fake_transport>();
  t->body = body;
  wechat::client wx(options(), t);
  outcome out;
  auto s = wx.code2session("c-1", out.ec, &out.d);
  if (!out.ec) out.value = std::move(s);
  return out;
}

outcome through_async(const std::string& body) {
  auto t = std::make_shared<wechat::manual_transport>();
  auto wx =
      wechat::async_client::create(options(), t, nullptr, std::make_shared<wechat::manual_clock>());
  std::optional<wechat::result<wechat::session_info>> got;
  int calls = 0;
  wx->code2session("c-1", [&](wechat::result<wechat::session_info> r) {
    ++calls;
    got.emplace(std::move(r));
  });
  t->run();
  const auto pending = t->pending();
  REQUIRE(pending.size() == 1);
  REQUIRE(t->respond(pending[0].id, 200, body, "application/json"));
  t->run();
  t->stop();
  REQUIRE(calls == 1);
  outcome out;
  out.ec = got->error();
  out.d = got->detail();
  if (got->ok()) out.value = got->value();
  return out;
}

struct row {
  const char* what;
  std::string body;
  std::error_code ec;
  std::string field;   // error_detail::field
  int errcode = 0;     // error_detail::errcode
  std::string errmsg;  // error_detail::errmsg
  std::string rid;     // error_detail::rid
  // On success:
  std::string openid, session_key;
  std::optional<std::string> unionid;
};

const std::string ok_tail = R"("session_key":"a2V5","openid":"o1")";

row ok(const char* what, std::string body, std::string openid = "o1",
       std::string session_key = "a2V5", std::optional<std::string> unionid = std::nullopt) {
  row r{what,
        std::move(body),
        {},
        "",
        0,
        "",
        "",
        std::move(openid),
        std::move(session_key),
        std::move(unionid)};
  return r;
}
row fails(const char* what, std::string body, std::error_code ec, std::string field = "") {
  return row{what, std::move(body), ec, std::move(field), 0, "", "", "", "", std::nullopt};
}
row api(const char* what, std::string body, int errcode, std::string errmsg = "",
        std::string rid = "") {
  return row{what,
             std::move(body),
             wechat::make_api_error_code(errcode),
             "",
             errcode,
             std::move(errmsg),
             std::move(rid),
             "",
             "",
             std::nullopt};
}

std::vector<row> rows() {
  using P = wechat::protocol_errc;
  const std::string deep = std::string(300, '[') + std::string(300, ']');
  return {
      // The body as a whole.
      ok("an ordinary answer", "{" + ok_tail + "}"),
      ok("errcode 0 and errmsg ok", R"({"errcode":0,"errmsg":"ok",)" + ok_tail + "}"),
      ok("unknown fields of any kind", R"({"x":{"y":[1,2.5,null,true]},)" + ok_tail + "}"),
      ok("a UTF-8 BOM first", "\xEF\xBB\xBF{" + ok_tail + "}"),
      fails("half a BOM", "\xEF\xBB{" + ok_tail + "}", P::not_json),
      ok("a NUL after the object ends the input", "{" + ok_tail + "}" + std::string("\0junk", 5)),
      fails("trailing text", "{" + ok_tail + "} x", P::not_json),
      fails("a comment", "{" + ok_tail + "}/*c*/", P::not_json),
      fails("an empty body", "", P::not_json),
      fails("only spaces", "  \n ", P::not_json),
      fails("HTML", "<html>busy</html>", P::not_json),
      fails("cut short", "{" + ok_tail, P::not_json),
      fails("an array", "[1,2]", P::not_object),
      fails("null", "null", P::not_object),
      fails("a string", "\"s\"", P::not_object),
      fails("a number", "5", P::not_object),
      fails("a number beyond a double, in an unknown field", R"({"x":1e999,)" + ok_tail + "}",
            P::not_json),
      ok("a number below a double's smallest, in an unknown field",
         R"({"x":1e-400,)" + ok_tail + "}"),
      ok("300 levels of nesting in an unknown field", R"({"x":)" + deep + "," + ok_tail + "}"),
      fails("invalid UTF-8 in a value", "{\"x\":\"\xC3\x28\"," + ok_tail + "}", P::not_json),
      fails("a lone surrogate", R"({"x":"\ud83d",)" + ok_tail + "}", P::not_json),
      fails("a raw control character in a string", "{\"x\":\"a\tb\"," + ok_tail + "}", P::not_json),
      // Keys.
      ok("two openids: the last is taken", R"({"openid":1,"session_key":"a2V5","openid":"o2"})",
         "o2"),
      fails("two openids, the last of the wrong type",
            R"({"openid":"o2","session_key":"a2V5","openid":1})", P::wrong_type, "openid"),
      ok("a key written with escapes", R"({"open\u0069d":"o1","session_key":"a2V5"})"),
      // Strings.
      ok("escapes in values", R"({"openid":"o\u00e9\ud83d\ude00","session_key":"a\/b+c="})",
         "o\xC3\xA9\xF0\x9F\x98\x80", "a/b+c="),
      ok("a NUL escaped in a value", R"({"openid":"o\u0000x","session_key":"a2V5"})",
         std::string("o\0x", 3)),
      ok("an empty openid is kept", R"({"openid":"","session_key":"a2V5"})", ""),
      ok("a unionid", R"({"unionid":"u1",)" + ok_tail + "}", "o1", "a2V5", "u1"),
      ok("a null unionid", R"({"unionid":null,)" + ok_tail + "}"),
      ok("an empty unionid", R"({"unionid":"",)" + ok_tail + "}"),
      ok("a unionid that is a number", R"({"unionid":5,)" + ok_tail + "}"),
      // Missing and mistyped fields.
      fails("no openid", R"({"session_key":"a2V5"})", P::missing_field, "openid"),
      fails("a null openid", R"({"openid":null,"session_key":"a2V5"})", P::missing_field, "openid"),
      fails("an openid that is a number", R"({"openid":5,"session_key":"a2V5"})", P::wrong_type,
            "openid"),
      fails("no session_key", R"({"openid":"o1"})", P::missing_field, "session_key"),
      fails("a session_key that is an object", R"({"openid":"o1","session_key":{}})", P::wrong_type,
            "session_key"),
      fails("an empty object", "{}", P::missing_field, "openid"),
      // errcode.
      ok("a null errcode", R"({"errcode":null,)" + ok_tail + "}"),
      ok("errcode 0 in a string", R"({"errcode":"0",)" + ok_tail + "}"),
      ok("errcode -0", R"({"errcode":-0,)" + ok_tail + "}"),
      api("an errcode with its errmsg and rid",
          R"({"errcode":40029,"errmsg":"invalid code, rid: 66c69111-4157f271-729ca238"})", 40029,
          "invalid code, rid: 66c69111-4157f271-729ca238", "66c69111-4157f271-729ca238"),
      api("an errcode in a string", R"({"errcode":"40029","errmsg":"invalid code"})", 40029,
          "invalid code"),
      api("a negative errcode in a string", R"({"errcode":"-1"})", -1),
      api("an errmsg that is not a string", R"({"errcode":40163,"errmsg":5})", 40163),
      api("two errcodes: the last is taken", R"({"errcode":0,"errcode":45011})", 45011),
      api("the largest int", R"({"errcode":2147483647})", 2147483647),
      fails("an errcode beyond int: not cut to 32 bits (4294967296 was success)",
            R"({"errcode":4294967296,)" + ok_tail + "}", P::wrong_type, "errcode"),
      fails("an errcode beyond int: not cut to 32 bits (4294967295 was -1)",
            R"({"errcode":4294967295})", P::wrong_type, "errcode"),
      fails("an errcode beyond uint64", R"({"errcode":18446744073709551616})", P::wrong_type,
            "errcode"),
      fails("an errcode that is a float", R"({"errcode":0.0,)" + ok_tail + "}", P::wrong_type,
            "errcode"),
      fails("an errcode that is true", R"({"errcode":true})", P::wrong_type, "errcode"),
      fails("an errcode that is an object", R"({"errcode":{}})", P::wrong_type, "errcode"),
      fails("an empty errcode string", R"({"errcode":"",)" + ok_tail + "}", P::wrong_type,
            "errcode"),
      fails("an errcode string with a space", R"({"errcode":" 40029"})", P::wrong_type, "errcode"),
      fails("an errcode string with more than the number", R"({"errcode":"40029abc"})",
            P::wrong_type, "errcode"),
      fails("an errcode string in hex (was read as 0: success)",
            R"({"errcode":"0x10",)" + ok_tail + "}", P::wrong_type, "errcode"),
      fails("an errcode string with a plus", R"({"errcode":"+0",)" + ok_tail + "}", P::wrong_type,
            "errcode"),
      fails("an errcode string beyond int", R"({"errcode":"2147483648"})", P::wrong_type,
            "errcode"),
      fails("an errcode below int", R"({"errcode":-2147483649})", P::wrong_type, "errcode"),
      fails("an errcode string below int", R"({"errcode":"-2147483649"})", P::wrong_type,
            "errcode"),
      api("the smallest int", R"({"errcode":-2147483648})", INT_MIN),
      api("an errcode string with leading zeros", R"({"errcode":"040029"})", 40029),
      ok("errcode -0 in a string", R"({"errcode":"-0",)" + ok_tail + "}"),
  };
}

void check(const row& r, const outcome& got) {
  CHECK(got.ec == r.ec);
  CHECK(got.d.field == r.field);
  CHECK(got.d.errcode == r.errcode);
  CHECK(got.d.errmsg == r.errmsg);
  CHECK(got.d.rid == r.rid);
  CHECK(got.d.attempts == (r.ec ? 1 : 0));  // counted on failure only
  CHECK(got.value.has_value() == !r.ec);
  if (got.value && !r.ec) {
    CHECK(got.value->openid == r.openid);
    CHECK(got.value->session_key == r.session_key);
    CHECK(got.value->unionid == r.unionid);
  }
}

}  // namespace

TEST_CASE("every odd answer reads the same through the sync and the async client",
          "[client][async][parse]") {
  for (const auto& r : rows()) {
    INFO("row: " << r.what);
    {
      INFO("sync client");
      check(r, through_sync(r.body));
    }
    {
      INFO("async client");
      check(r, through_async(r.body));
    }
  }
}
