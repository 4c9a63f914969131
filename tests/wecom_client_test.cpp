// The WeCom client's logic, against a scripted fake transport: gettoken (errcode 0 present),
// code2session's fields, the token's key, a rejected token fetched again once.
#include <catch2/catch.hpp>
#include <wechat/wecom.hpp>

#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace {

class fake_transport final : public wechat::transport {
public:
  wechat::http_response send(const wechat::http_request& req, std::error_code& ec) override {
    ec.clear();
    std::lock_guard<std::mutex> lock(mutex_);
    sent.push_back(req);
    if (answers.empty()) return {500, "no scripted answer", "text/plain"};
    auto r = answers.front();
    answers.pop_front();
    return r;
  }
  void answer(std::string body) { answers.push_back({200, std::move(body), "application/json"}); }
  std::deque<wechat::http_response> answers;
  std::vector<wechat::http_request> sent;

private:
  std::mutex mutex_;
};

constexpr const char* corpid = "ww0123456789abcdef";

wechat::wecom_options options(std::string secret = "corpsecret-1") {
  wechat::wecom_options o;
  o.corpid = corpid;
  o.corpsecret = std::move(secret);
  o.backoff = std::chrono::milliseconds(1);
  return o;
}

const std::string token_w1 = R"({"errcode":0,"errmsg":"ok","access_token":"W1","expires_in":7200})";

std::string wecom_error(int code, const std::string& text) {
  return R"({"errcode":)" + std::to_string(code) + R"(,"errmsg":")" + text +
         R"(, hint: [1800000000_1_0123456789abcdef0123456789abcdef], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e=)" +
         std::to_string(code) + R"("})";
}

}  // namespace

TEST_CASE("wecom gettoken with errcode 0 present is a success, and the token is cached",
          "[wecom][token]") {
  auto t = std::make_shared<fake_transport>();
  auto clock = std::make_shared<wechat::manual_clock>(1800000000);
  wechat::wecom_client corp(options(), t, nullptr, clock);
  t->answer(token_w1);
  std::error_code ec;
  CHECK(corp.access_token(ec) == "W1");
  CHECK_FALSE(ec);
  CHECK(corp.access_token() == "W1");
  REQUIRE(t->sent.size() == 1);
  CHECK(t->sent[0].method == "GET");
  CHECK(t->sent[0].target == "/cgi-bin/gettoken?corpid=ww0123456789abcdef&corpsecret=corpsecret-1");
  CHECK(corp.tokens().fetches() == 1);
  // refreshed ahead of expiry (300 s before)
  clock->advance(std::chrono::seconds(7200 - 299));
  t->answer(R"({"errcode":0,"errmsg":"ok","access_token":"W2","expires_in":7200})");
  CHECK(corp.access_token() == "W2");
  CHECK(corp.tokens().fetches() == 2);
}

TEST_CASE("WeCom hands back its current token until it expires: one gettoken in the refresh "
          "window, not one per call",
          "[wecom][token]") {
  // WeCom's gettoken answers the same token while it is valid, expires_in being what is left
  // (WeCom's docs, path/91039, read 2026); so does the mock. A refresh ahead of expiry then
  // gets the same token back, already inside the window: it must not be asked again at
  // every call until the token expires.
  auto t = std::make_shared<fake_transport>();
  auto clock = std::make_shared<wechat::manual_clock>(1800000000);
  wechat::wecom_client corp(options(), t, nullptr, clock);
  t->answer(token_w1);
  CHECK(corp.access_token() == "W1");
  clock->advance(std::chrono::seconds(7200 - 299));  // inside the 300 s window
  t->answer(R"({"errcode":0,"errmsg":"ok","access_token":"W1","expires_in":299})");
  CHECK(corp.access_token() == "W1");
  CHECK(corp.tokens().fetches() == 2);  // the refresh ahead asked once
  for (int i = 0; i < 20; ++i) {
    clock->advance(std::chrono::seconds(10));
    CHECK(corp.access_token() == "W1");
  }
  CHECK(corp.tokens().fetches() == 2);        // and not again while W1 lives (200 s more)
  clock->advance(std::chrono::seconds(100));  // W1 has expired
  t->answer(R"({"errcode":0,"errmsg":"ok","access_token":"W2","expires_in":7200})");
  CHECK(corp.access_token() == "W2");
  CHECK(corp.tokens().fetches() == 3);
}

TEST_CASE("a wrong corpsecret is api_errc::invalid_credential and no secret is in the message",
          "[wecom][token]") {
  auto t = std::make_shared<fake_transport>();
  wechat::wecom_client corp(options(), t);
  t->answer(wecom_error(40001, "invalid credential"));
  std::error_code ec;
  wechat::error_detail d;
  CHECK(corp.access_token(ec, &d).empty());
  CHECK(ec == wechat::api_errc::invalid_credential);
  CHECK(d.errmsg.find("hint: [") != std::string::npos);
  CHECK(t->sent.size() == 1);  // not retried
  t->answer(wecom_error(40013, "invalid corpid"));
  try {
    corp.access_token();
    FAIL("no exception");
  } catch (const wechat::api_error& e) {
    CHECK(e.code() == wechat::api_errc::invalid_appid);
    CHECK(std::string(e.what()).find("corpsecret-1") == std::string::npos);
  }
}

TEST_CASE("wecom code2session reads corpid, userid and session_key", "[wecom][login]") {
  auto t = std::make_shared<fake_transport>();
  wechat::wecom_client corp(options(), t);
  t->answer(token_w1);
  t->answer(
      R"({"corpid":"ww0123456789abcdef","userid":"zhangsan","session_key":"tiihtNczf5v6AKRyjwEUhQ==","errcode":0,"errmsg":"ok"})");
  std::error_code ec;
  const auto s = corp.code2session("qycode1", ec);
  CHECK_FALSE(ec);
  CHECK(s.corpid == "ww0123456789abcdef");
  CHECK(s.userid == "zhangsan");
  CHECK(s.session_key == "tiihtNczf5v6AKRyjwEUhQ==");
  REQUIRE(t->sent.size() == 2);
  CHECK(t->sent[1].target == "/cgi-bin/miniprogram/jscode2session?access_token=W1&js_code=qycode1"
                             "&grant_type=authorization_code");
  // the same code again within the double-submit window: remembered, no request
  CHECK(corp.code2session("qycode1").userid == "zhangsan");
  CHECK(t->sent.size() == 2);

  SECTION("40029 is api_errc::invalid_code") {
    t->answer(wecom_error(40029, "invalid code"));
    wechat::error_detail d;
    corp.code2session("qycode2", ec, &d);
    CHECK(ec == wechat::api_errc::invalid_code);
    CHECK(d.errcode == 40029);
    t->answer(wecom_error(40029, "invalid code"));
    CHECK_THROWS_AS(corp.code2session("qycode3"), wechat::api_error);
  }
  SECTION("a missing userid is named") {
    t->answer(R"({"corpid":"ww0123456789abcdef","session_key":"k","errcode":0,"errmsg":"ok"})");
    wechat::error_detail d;
    corp.code2session("qycode4", ec, &d);
    CHECK(ec == wechat::protocol_errc::missing_field);
    CHECK(d.field == "userid");
  }
}

TEST_CASE("42001 on wecom code2session fetches the token again and retries once",
          "[wecom][login]") {
  auto t = std::make_shared<fake_transport>();
  wechat::wecom_client corp(options(), t);
  t->answer(token_w1);
  t->answer(wecom_error(42001, "access_token expired"));
  t->answer(R"({"errcode":0,"errmsg":"ok","access_token":"W2","expires_in":7200})");
  t->answer(
      R"({"corpid":"ww0123456789abcdef","userid":"lisi","session_key":"k","errcode":0,"errmsg":"ok"})");
  CHECK(corp.code2session("qycode1").userid == "lisi");
  REQUIRE(t->sent.size() == 4);
  CHECK(t->sent[2].target.rfind("/cgi-bin/gettoken?", 0) == 0);
  CHECK(t->sent[3].target.find("access_token=W2") != std::string::npos);
}

TEST_CASE("the key of the WeCom token differs by secret and holds no secret", "[wecom][store]") {
  auto t = std::make_shared<fake_transport>();
  auto store = std::make_shared<wechat::memory_token_store>();
  wechat::wecom_client app1(options("corpsecret-1"), t, store);
  wechat::wecom_client app2(options("corpsecret-2"), t, store);
  CHECK(app1.tokens().store_key() == "wecom_access_token:ww0123456789abcdef:28b9ec7894d5663f");
  CHECK(app2.tokens().store_key() == "wecom_access_token:ww0123456789abcdef:7543bef582135da8");
  t->answer(token_w1);
  t->answer(R"({"errcode":0,"errmsg":"ok","access_token":"W9","expires_in":7200})");
  CHECK(app1.access_token() == "W1");
  CHECK(app2.access_token() == "W9");  // its own token, not app1's from the shared store
  REQUIRE(t->sent.size() == 2);
  CHECK(t->sent[1].target.find("corpsecret=corpsecret-2") != std::string::npos);
  wechat::wecom_client app1_again(options("corpsecret-1"), t, store);
  CHECK(app1_again.access_token() == "W1");  // from the store
  CHECK(t->sent.size() == 2);
}
