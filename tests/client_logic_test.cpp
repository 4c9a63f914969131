// The client's reading of WeChat's answers, with an in-memory fake transport: the quirks
// of section 1 of wechat-api.md, one by one.
#include <catch2/catch.hpp>
#include <wechat/client.hpp>
#include <wechat/detail/quota.hpp>

#include <deque>
#include <stdexcept>

namespace {

class fake_transport final : public wechat::transport {
public:
  std::deque<wechat::http_response> answers;
  std::vector<wechat::http_request> sent;
  wechat::http_response send(const wechat::http_request& req, std::error_code& ec) override {
    ec.clear();
    sent.push_back(req);
    REQUIRE_FALSE(answers.empty());
    auto r = answers.front();
    answers.pop_front();
    return r;
  }
  void answer(std::string body, std::string type = "text/plain") {
    answers.push_back({200, std::move(body), std::move(type)});
  }
};

wechat::client make(std::shared_ptr<fake_transport> t) {
  wechat::client_options o;
  o.appid = "wx1000000000000001";
  o.secret = "s3cret";
  o.backoff = std::chrono::milliseconds(1);
  return wechat::client(o, std::move(t));
}

}  // namespace

TEST_CASE(
    "a missing errcode is success and any Content-Type is parsed and unknown fields are ignored",
    "[client][parse]") {
  auto t = std::make_shared<fake_transport>();
  auto wx = make(t);
  t->answer(
      R"({"session_key":"tiihtNczf5v6AKRyjwEUhQ==","openid":"o1","expires_in":7200,"new_field":{"x":1}})",
      "text/html; charset=gbk");
  const auto s = wx.code2session("c1");
  CHECK(s.openid == "o1");
  CHECK(s.session_key == "tiihtNczf5v6AKRyjwEUhQ==");
  CHECK_FALSE(s.unionid);
  REQUIRE(t->sent.size() == 1);
  CHECK(t->sent[0].target.find("access_token") == std::string::npos);
  CHECK(t->sent[0].target.find("js_code=c1") != std::string::npos);
  CHECK(t->sent[0].target.find("grant_type=authorization_code") != std::string::npos);
}

TEST_CASE("errcode 0 with errmsg ok is success and an errcode in a string is read",
          "[client][parse]") {
  auto t = std::make_shared<fake_transport>();
  auto wx = make(t);
  t->answer(R"({"access_token":"TOKEN","expires_in":7200})", "application/json; encoding=utf-8");
  t->answer(R"({"errcode":0,"errmsg":"ok"})");
  CHECK_NOTHROW(wx.check_session_key("o1", "tiihtNczf5v6AKRyjwEUhQ=="));
  CHECK(t->sent[1].target.find("access_token=TOKEN") != std::string::npos);
  CHECK(t->sent[1].target.find(
            "signature=7154f9f8b4b76b92f541cbf0e37d48840fa06e5e42da92a6f80168a1516a4735") !=
        std::string::npos);
  t->answer(R"({"errcode":"40029","errmsg":"invalid code"})");
  std::error_code ec;
  wx.code2session("c2", ec);
  CHECK(ec == wechat::api_errc::invalid_code);
}

TEST_CASE("countryCode as a number, and a missing field named", "[client][parse]") {
  auto t = std::make_shared<fake_transport>();
  auto wx = make(t);
  t->answer(R"({"access_token":"TOKEN","expires_in":7200})");
  t->answer(
      R"({"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"+8613800138000","purePhoneNumber":"13800138000","countryCode":86,"watermark":{"timestamp":1637744274,"appid":"wx1000000000000001"}}})");
  const auto p = wx.get_phone_number("code");
  CHECK(p.country_code == "86");
  CHECK(p.watermark.timestamp == 1637744274);
  CHECK(t->sent[1].method == "POST");
  CHECK(nlohmann::json::parse(t->sent[1].body) == nlohmann::json{{"code", "code"}});
  t->answer(R"({"session_key":"k"})");
  std::error_code ec;
  wechat::error_detail d;
  wx.code2session("c3", ec, &d);
  CHECK(ec == wechat::protocol_errc::missing_field);
  CHECK(d.field == "openid");
  t->answer(R"({"openid":5,"session_key":"k"})");
  wx.code2session("c4", ec, &d);
  CHECK(ec == wechat::protocol_errc::wrong_type);
  t->answer("[1,2]");
  wx.code2session("c5", ec);
  CHECK(ec == wechat::protocol_errc::not_object);
  t->answer("<html>");
  wx.code2session("c6", ec);
  CHECK(ec == wechat::protocol_errc::not_json);
  try {
    t->answer(R"({"session_key":"k"})");
    wx.code2session("c7");
    FAIL("no exception");
  } catch (const wechat::error& e) {
    CHECK(std::string(e.what()).find("'openid'") != std::string::npos);
  }
}

TEST_CASE("the rid is parsed from either errmsg style", "[client][parse]") {
  CHECK(wechat::detail::extract_rid("invalid code, rid: 66c69111-4157f271-729ca238") ==
        "66c69111-4157f271-729ca238");
  CHECK(wechat::detail::extract_rid("invalid credential, access_token is invalid or not latest, "
                                    "could get access_token by getStableAccessToken, more details "
                                    "at https://mmbizurl.cn/s/JtxxFh33r rid: "
                                    "6b04bdfc-788b670a-5c7476a8") == "6b04bdfc-788b670a-5c7476a8");
  CHECK(wechat::detail::extract_rid(" rid: 65194e73-3fc2766d-3dc5ae06") ==
        "65194e73-3fc2766d-3dc5ae06");  // 1007's errmsg: empty before the rid
  CHECK(wechat::detail::extract_rid(
            "invalid credential hint: [abc] rid: 1a2b3c4d-00000000-ffffffff") ==
        "1a2b3c4d-00000000-ffffffff");
  CHECK(wechat::detail::extract_rid("system error").empty());
}

TEST_CASE("url_encode keeps unreserved characters and escapes the rest", "[client][transport]") {
  CHECK(wechat::url_encode("aZ09-_.~") == "aZ09-_.~");
  CHECK(wechat::url_encode("a+b/c=d&e f") == "a%2Bb%2Fc%3Dd%26e%20f");
  CHECK(wechat::url_encode("\xe5\xbe\xae") == "%E5%BE%AE");
  // Every byte, alone and between unreserved runs (the encoder appends runs at once).
  static constexpr char hex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    const bool kept = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
                      b == '-' || b == '_' || b == '.' || b == '~';
    const std::string one = kept ? std::string(1, c) : std::string{'%', hex[b >> 4], hex[b & 15]};
    CAPTURE(b);
    CHECK(wechat::url_encode(std::string_view(&c, 1)) == one);
    CHECK(wechat::url_encode("ab" + std::string(1, c) + "cd" + std::string(1, c)) ==
          "ab" + one + "cd" + one);
  }
  std::string out = "?x=";
  wechat::url_encode_to(out, "a b");
  CHECK(out == "?x=a%20b");  // appended, what was there kept
}

namespace {
// A store that is always unreachable, like Redis gone away.
class down_store final : public wechat::token_store {
public:
  std::optional<wechat::stored_token> load(const std::string&, std::error_code& ec) override {
    ec = wechat::store_errc::unavailable;
    return std::nullopt;
  }
  void save(const std::string&, const wechat::stored_token&, std::error_code& ec) override {
    ec = wechat::store_errc::unavailable;
  }
  void erase_if(const std::string&, const std::string&, std::error_code& ec) override {
    ec = wechat::store_errc::unavailable;
  }
  bool acquire(const std::string&, const std::string&, std::chrono::milliseconds,
               std::error_code& ec) override {
    ec = wechat::store_errc::unavailable;
    return false;
  }
};
}  // namespace

TEST_CASE("with the store unreachable the provider still caches its token in memory",
          "[client][token]") {
  auto t = std::make_shared<fake_transport>();
  t->answer(R"({"access_token":"TOKEN","expires_in":7200})");
  wechat::token_provider p({"wx1000000000000001", "s"}, t, std::make_shared<down_store>());
  for (int i = 0; i < 10; ++i)
    CHECK(p.get() == "TOKEN");
  CHECK(p.fetches() == 1);  // one fetch, then the cache: not one fetch per call
  CHECK(t->sent.size() == 1);
}

TEST_CASE("window_quota counts per window and starts afresh at the window's first instant",
          "[client][quota]") {
  wechat::detail::window_quota<86400, 2> q;             // 2 a day, in seconds
  const std::int64_t day = 1800000000 / 86400 * 86400;  // a day's first second
  CHECK_FALSE(q.spent(day - 1));
  CHECK(q.try_take(day - 1));
  CHECK(q.try_take(day - 1));
  CHECK(q.spent(day - 1));
  CHECK_FALSE(q.try_take(day - 1));  // refused: nothing counted
  CHECK_FALSE(q.spent(day));         // the next day, at its first second
  q.take(day);
  q.take(day + 86399);
  CHECK(q.spent(day + 86399));
  CHECK(q.try_take(day + 86400));
}

namespace {
// Throws on its first send (a user's transport may), then answers normally.
class throwing_once_transport final : public wechat::transport {
public:
  int sends = 0;
  std::string body;
  wechat::http_response send(const wechat::http_request&, std::error_code& ec) override {
    ec.clear();
    if (sends++ == 0) throw std::runtime_error("transport blew up");
    return {200, body, "text/plain"};
  }
};
}  // namespace

TEST_CASE("a transport that throws leaves no flight behind: the next call leads a new one",
          "[client][single_flight]") {
  auto t = std::make_shared<throwing_once_transport>();
  wechat::client_options o;
  o.appid = "wx1000000000000001";
  o.secret = "s3cret";
  wechat::client wx(o, t);
  SECTION("code2session") {
    t->body = R"({"openid":"o1","session_key":"tiihtNczf5v6AKRyjwEUhQ=="})";
    std::error_code ec;
    CHECK_THROWS_AS(wx.code2session("c1", ec), std::runtime_error);
    CHECK(wx.remembered_codes() == 0);
    const auto s = wx.code2session("c1", ec);  // not a broken promise, not a hang
    CHECK_FALSE(ec);
    CHECK(s.openid == "o1");
    CHECK(t->sends == 2);
  }
  SECTION("the access token") {
    t->body = R"({"access_token":"T1","expires_in":7200})";
    std::error_code ec;
    CHECK_THROWS_AS(wx.tokens().get(ec), std::runtime_error);
    CHECK(wx.tokens().get(ec) == "T1");
    CHECK_FALSE(ec);
    CHECK(t->sends == 2);
  }
}

// Integers WeChat (or a hostile or broken server) may write that an int64_t does not hold:
// converting 1e300 or 2^64-1 to int64_t is undefined behaviour (UBSan: "outside the range of
// representable values"), or a wrapped sign. They read as the field's fallback.
TEST_CASE("an integer field beyond int64_t reads as its fallback, never converted",
          "[client][parse]") {
  using wechat::detail::integer_field;
  const auto j = nlohmann::json::parse(
      R"({"big":1e300,"negbig":-1e300,"u":18446744073709551615,"max":9223372036854775807,
          "min":-9223372036854775808,"edge":9223372036854775808.0,"frac":-2.9,"s":"42",
          "sbig":"99999999999999999999","words":"forty","n":null,"arr":[1],"sneg":"-12",
          "sjunk":"7200abc","sexp":"1e300","sspace":" 5","sempty":"","splus":"+5"})");
  CHECK(integer_field(j, "big", 7) == 7);
  CHECK(integer_field(j, "negbig", 7) == 7);
  CHECK(integer_field(j, "u", 7) == 7);  // unsigned beyond INT64_MAX: not -1
  CHECK(integer_field(j, "max", 7) == INT64_MAX);
  CHECK(integer_field(j, "min", 7) == INT64_MIN);
  CHECK(integer_field(j, "edge", 7) == 7);   // 2^63 as a double: just out of range
  CHECK(integer_field(j, "frac", 7) == -2);  // cut toward zero
  CHECK(integer_field(j, "s", 7) == 42);
  CHECK(integer_field(j, "sbig", 7) == 7);
  CHECK(integer_field(j, "words", 7) == 7);
  CHECK(integer_field(j, "sneg", 7) == -12);
  CHECK(integer_field(j, "sjunk", 7) == 7);  // more than the number (stoll read 7200)
  CHECK(integer_field(j, "sexp", 7) == 7);   // stoll read 1
  CHECK(integer_field(j, "sspace", 7) == 7);
  CHECK(integer_field(j, "sempty", 7) == 7);
  CHECK(integer_field(j, "splus", 7) == 7);  // stoll read 5
  CHECK(integer_field(j, "n", 7) == 7);
  CHECK(integer_field(j, "arr", 7) == 7);
  CHECK(integer_field(j, "absent", 7) == 7);
}

// A token's expires_in is made milliseconds and added to the time the request was sent:
// 1e300 was undefined behaviour, 9223372036854775 an overflow (of the milliseconds).
// Through the provider as users call it: each odd answer still gives its token, and the
// expiry the provider keeps is sane.
TEST_CASE("a token's expires_in is kept between 0 and 2^31 seconds: absurd ones neither overflow "
          "nor stop the token",
          "[client][token]") {
  struct one {
    const char* expires_in;  // as written in the answer's JSON
    std::int64_t kept_s;     // the expiry kept, in seconds after the request
  };
  const one cases[] = {
      {"1e300", 7200},                  // no integer an int64_t holds: the default
      {"18446744073709551615", 7200},   // nor this
      {"9223372036854775", INT32_MAX},  // would overflow once made milliseconds
      {"\"7000\"", 7000},               // a string, as some gateways write it
      {"-5", 0},                        // expired at once
      {"0", 0},
      {"7200", 7200},
  };
  for (const auto& c : cases) {
    INFO("expires_in " << c.expires_in);
    auto t = std::make_shared<fake_transport>();
    auto clk = std::make_shared<wechat::manual_clock>();
    auto store = std::make_shared<wechat::memory_token_store>();
    t->answer(std::string(R"({"access_token":"T1","expires_in":)") + c.expires_in + "}");
    wechat::token_options o{"wx1000000000000001", "s"};
    o.mode = wechat::token_mode::classic;
    wechat::token_provider p(o, t, store, clk);
    CHECK(p.get() == "T1");  // the call that fetched it gets it, whatever its expiry
    std::error_code ec;
    const auto kept = store->load(p.store_key(), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(kept);
    CHECK(kept->expires_at_ms == clk->now_ms() + c.kept_s * 1000);
    if (c.kept_s == 0) {  // already expired: the next call fetches again
      t->answer(R"({"access_token":"T2","expires_in":7200})");
      CHECK(p.get() == "T2");
      CHECK(p.fetches() == 2);
    } else {
      CHECK(p.get() == "T1");
      CHECK(p.fetches() == 1);
    }
  }
}
