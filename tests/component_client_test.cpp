// The component client's logic, against a scripted fake transport: the ticket push (built
// as the mock builds it: msg_crypt::encrypt, push_query(), push_xml()), the ticket store,
// the component and authorizer tokens, code2session on behalf of an authorizer.
#include <catch2/catch.hpp>
#include <wechat/component.hpp>
#include <wechat/unionid.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr const char* component_appid = "wx1111111111111111";
constexpr const char* other_component = "wx2222222222222222";
constexpr const char* authorizer = "wx3333333333333333";
constexpr const char* msg_token = "pushtoken123";
constexpr const char* aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
constexpr std::int64_t t0 = 1800000000;

// Answers with `respond` (any thread), or from the queue of scripted answers.
class fake_transport final : public wechat::transport {
public:
  std::function<wechat::http_response(const wechat::http_request&)> respond;
  wechat::http_response send(const wechat::http_request& req, std::error_code& ec) override {
    ec.clear();
    std::function<wechat::http_response(const wechat::http_request&)> f;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sent_.push_back(req);
      if (!respond) {
        if (answers_.empty()) return {500, "no scripted answer", "text/plain"};
        auto r = answers_.front();
        answers_.erase(answers_.begin());
        return r;
      }
      f = respond;
    }
    return f(req);
  }
  void answer(std::string body) {
    std::lock_guard<std::mutex> lock(mutex_);
    answers_.push_back({200, std::move(body), "application/json"});
  }
  std::vector<wechat::http_request> sent() {
    std::lock_guard<std::mutex> lock(mutex_);
    return sent_;
  }

private:
  std::mutex mutex_;
  std::vector<wechat::http_response> answers_;
  std::vector<wechat::http_request> sent_;
};

wechat::component_options options(std::string appid = component_appid) {
  wechat::component_options o;
  o.component_appid = std::move(appid);
  o.component_secret = "componentsecret";
  o.token = msg_token;
  o.encoding_aes_key = aes_key;
  o.backoff = std::chrono::milliseconds(1);
  o.lock_ttl = std::chrono::milliseconds(200);
  return o;
}

std::string ticket_xml(const std::string& appid, std::int64_t create_time,
                       const std::string& ticket) {
  return "<xml><AppId><![CDATA[" + appid + "]]></AppId><CreateTime>" + std::to_string(create_time) +
         "</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType>"
         "<ComponentVerifyTicket><![CDATA[" +
         ticket + "]]></ComponentVerifyTicket></xml>";
}

std::string auth_xml(const std::string& info_type, std::int64_t create_time) {
  return std::string("<xml><AppId><![CDATA[") + component_appid + "]]></AppId><CreateTime>" +
         std::to_string(create_time) + "</CreateTime><InfoType><![CDATA[" + info_type +
         "]]></InfoType><AuthorizerAppid><![CDATA[" + authorizer + "]]></AuthorizerAppid></xml>";
}

std::map<std::string, std::string> parse_query(const std::string& q) {
  std::map<std::string, std::string> out;
  std::size_t at = 0;
  while (at <= q.size()) {
    const auto amp = q.find('&', at);
    const std::string pair = q.substr(at, amp == std::string::npos ? std::string::npos : amp - at);
    const auto eq = pair.find('=');
    out[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string::npos) break;
    at = amp + 1;
  }
  return out;
}

struct push {
  std::map<std::string, std::string> query;
  std::string body;
};

// A push as the mock (and WeChat) sends it. `trailer` is the appid the message is encrypted
// for (the receiving component's, normally).
push make_push(const std::string& inner, const std::string& trailer = component_appid,
               const std::string& timestamp = std::to_string(t0)) {
  const wechat::msg_crypt crypt(msg_token, aes_key, trailer);
  const auto m = crypt.encrypt(inner, timestamp, "1156671907");
  return {parse_query(m.push_query()), m.push_xml()};
}

std::string ticket_value(char c) {
  return "ticket@@@" + std::string(86, c);
}

void deliver_ticket(wechat::component_client& platform, std::int64_t create_time,
                    const std::string& ticket) {
  const auto p = make_push(ticket_xml(platform.component_appid(), create_time, ticket),
                           platform.component_appid());
  REQUIRE(platform.handle_push(p.query, p.body) == "success");
}

const std::string token_answer =
    R"({"component_access_token":"61_componenttoken","expires_in":7200})";

}  // namespace

TEST_CASE("a ticket push is verified, decrypted and stored under the component_appid",
          "[component][push]") {
  auto t = std::make_shared<fake_transport>();
  auto store = std::make_shared<wechat::memory_token_store>();
  auto clock = std::make_shared<wechat::manual_clock>(t0);
  wechat::component_client platform(options(), t, store, clock);
  const auto p = make_push(ticket_xml(component_appid, t0 - 5, ticket_value('a')));
  REQUIRE(p.query.count("signature") == 1);  // the live query carries it too

  SECTION("error_code overload") {
    std::error_code ec;
    wechat::component_push what;
    CHECK(platform.handle_push(p.query, p.body, ec, nullptr, &what) == "success");
    CHECK_FALSE(ec);
    CHECK(what.info_type == "component_verify_ticket");
    CHECK(what.create_time == t0 - 5);
    CHECK(what.ticket_stored);
  }
  SECTION("throwing overload") {
    CHECK(platform.handle_push(p.query, p.body) == "success");
  }

  const auto ticket = platform.ticket();
  REQUIRE(ticket);
  CHECK(ticket->value == ticket_value('a'));
  CHECK(ticket->create_time == t0 - 5);
  std::error_code ec;
  const auto raw = store->load(std::string("component_verify_ticket:") + component_appid, ec);
  REQUIRE(raw);
  CHECK(raw->expires_at_ms == (t0 - 5 + 43200) * 1000);  // kept the ticket's whole 12 hours
  CHECK(t->sent().empty());

  // The component token request carries the stored ticket (and nothing null).
  t->answer(token_answer);
  CHECK(platform.component_access_token() == "61_componenttoken");
  const auto sent = t->sent();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].method == "POST");
  CHECK(sent[0].target == "/cgi-bin/component/api_component_token");
  CHECK(nlohmann::json::parse(sent[0].body) ==
        nlohmann::json{{"component_appid", component_appid},
                       {"component_appsecret", "componentsecret"},
                       {"component_verify_ticket", ticket_value('a')}});
}

TEST_CASE("a push with a bad signature or of another platform is refused and nothing is stored",
          "[component][push]") {
  auto t = std::make_shared<fake_transport>();
  auto store = std::make_shared<wechat::memory_token_store>();
  wechat::component_client platform(options(), t, store);
  std::error_code ec;
  wechat::error_detail d;

  SECTION("a tampered msg_signature") {
    auto p = make_push(ticket_xml(component_appid, t0, ticket_value('b')));
    p.query["msg_signature"][0] = p.query["msg_signature"][0] == '0' ? '1' : '0';
    CHECK(platform.handle_push(p.query, p.body, ec, &d).empty());
    CHECK(ec == wechat::msg_crypt_errc::signature_mismatch);
  }
  SECTION("another platform's push: the crypto trailer is its appid") {
    const auto p = make_push(ticket_xml(other_component, t0, ticket_value('b')), other_component);
    CHECK(platform.handle_push(p.query, p.body, ec, &d).empty());
    CHECK(ec == wechat::msg_crypt_errc::appid_mismatch);
  }
  SECTION("another platform's AppId inside a message with the right trailer") {
    const auto p = make_push(ticket_xml(other_component, t0, ticket_value('b')));
    CHECK(platform.handle_push(p.query, p.body, ec, &d).empty());
    CHECK(ec == wechat::msg_crypt_errc::appid_mismatch);
    CHECK(d.field == "AppId");
  }
  SECTION("no encrypt_type=aes") {
    auto p = make_push(ticket_xml(component_appid, t0, ticket_value('b')));
    p.query.erase("encrypt_type");
    CHECK(platform.handle_push(p.query, p.body, ec, &d).empty());
    CHECK(ec == wechat::component_errc::push_not_encrypted);
  }
  SECTION("no msg_signature") {
    auto p = make_push(ticket_xml(component_appid, t0, ticket_value('b')));
    p.query.erase("msg_signature");
    CHECK(platform.handle_push(p.query, p.body, ec, &d).empty());
    CHECK(ec == wechat::component_errc::push_query_incomplete);
    CHECK(d.field == "msg_signature");
  }
  SECTION("an empty ticket") {
    const auto p = make_push(ticket_xml(component_appid, t0, ""));
    CHECK(platform.handle_push(p.query, p.body, ec, &d).empty());
    CHECK(ec == wechat::component_errc::push_field_invalid);
    CHECK(d.field == "ComponentVerifyTicket");
  }
  SECTION("the throwing overload throws") {
    const auto p = make_push(ticket_xml(other_component, t0, ticket_value('b')), other_component);
    CHECK_THROWS_AS(platform.handle_push(p.query, p.body), wechat::error);
  }
  CHECK_FALSE(platform.ticket());
  CHECK_FALSE(store->load(std::string("component_verify_ticket:") + other_component, ec));
  CHECK(t->sent().empty());
}

TEST_CASE("an older push does not overwrite a newer ticket", "[component][push]") {
  auto t = std::make_shared<fake_transport>();
  auto clock = std::make_shared<wechat::manual_clock>(t0);
  wechat::component_client platform(options(), t, nullptr, clock);
  deliver_ticket(platform, t0, ticket_value('n'));
  const auto late = make_push(ticket_xml(component_appid, t0 - 600, ticket_value('o')));
  std::error_code ec;
  wechat::component_push what;
  CHECK(platform.handle_push(late.query, late.body, ec, nullptr, &what) == "success");
  CHECK_FALSE(ec);
  CHECK_FALSE(what.ticket_stored);
  CHECK(platform.ticket()->value == ticket_value('n'));
  deliver_ticket(platform, t0 + 600, ticket_value('m'));  // a newer one does replace it
  CHECK(platform.ticket()->value == ticket_value('m'));
  CHECK(platform.ticket()->create_time == t0 + 600);
}

TEST_CASE("a stored ticket dated well ahead of this machine's clock does not block later pushes",
          "[component][push]") {
  // A test's mock clock advanced 13 hours, then reset under a store that outlived it: the
  // stored ticket claims a CreateTime 13 hours ahead. The pushes of the reset clock are
  // stored all the same (within 10 minutes ahead, the newer ticket still wins).
  auto t = std::make_shared<fake_transport>();
  auto clock = std::make_shared<wechat::manual_clock>(t0);
  wechat::component_client platform(options(), t, nullptr, clock);
  deliver_ticket(platform, t0 + 13 * 3600, ticket_value('f'));
  deliver_ticket(platform, t0, ticket_value('r'));
  CHECK(platform.ticket()->value == ticket_value('r'));
  deliver_ticket(platform, t0 + 500, ticket_value('s'));  // 500 s ahead: plausible, kept
  deliver_ticket(platform, t0 + 100, ticket_value('u'));  // older than it: not stored
  CHECK(platform.ticket()->value == ticket_value('s'));
}

TEST_CASE("two component_clients with different component_appids sharing one store keep their "
          "own tickets and authorizer tokens",
          "[component][store]") {
  auto t = std::make_shared<fake_transport>();
  auto store = std::make_shared<wechat::memory_token_store>();
  auto clock = std::make_shared<wechat::manual_clock>(t0);
  wechat::component_client a(options(), t, store, clock);
  wechat::component_client b(options(other_component), t, store, clock);
  deliver_ticket(a, t0, ticket_value('a'));
  deliver_ticket(b, t0 + 1, ticket_value('b'));
  CHECK(a.ticket()->value == ticket_value('a'));
  CHECK(b.ticket()->value == ticket_value('b'));

  a.set_authorizer_refresh_token(authorizer, "refreshtoken@@@a");
  b.set_authorizer_refresh_token(authorizer, "refreshtoken@@@b");
  std::error_code ec;
  CHECK(
      store->load(std::string("authorizer_refresh_token:") + component_appid + ":" + authorizer, ec)
          ->value == "refreshtoken@@@a");
  CHECK(
      store->load(std::string("authorizer_refresh_token:") + other_component + ":" + authorizer, ec)
          ->value == "refreshtoken@@@b");
  t->answer(R"({"component_access_token":"61_a","expires_in":7200})");
  t->answer(
      R"({"authorizer_access_token":"auth_a","expires_in":7200,"authorizer_refresh_token":"refreshtoken@@@a"})");
  t->answer(R"({"component_access_token":"61_b","expires_in":7200})");
  t->answer(
      R"({"authorizer_access_token":"auth_b","expires_in":7200,"authorizer_refresh_token":"refreshtoken@@@b"})");
  CHECK(a.authorizer_access_token(authorizer) == "auth_a");
  CHECK(b.authorizer_access_token(authorizer) == "auth_b");
  CHECK(a.authorizer_access_token(authorizer) == "auth_a");  // cached, not b's
  const auto sent = t->sent();
  REQUIRE(sent.size() == 4);
  CHECK(nlohmann::json::parse(sent[0].body)["component_verify_ticket"] == ticket_value('a'));
  CHECK(nlohmann::json::parse(sent[2].body)["component_verify_ticket"] == ticket_value('b'));
  CHECK(sent[3].target.find("component_access_token=61_b") != std::string::npos);
  CHECK(nlohmann::json::parse(sent[3].body)["authorizer_refresh_token"] == "refreshtoken@@@b");
}

TEST_CASE("a restarted component_client finds the ticket and the refresh tokens in the store",
          "[component][store]") {
  auto t = std::make_shared<fake_transport>();
  auto store = std::make_shared<wechat::memory_token_store>();
  auto clock = std::make_shared<wechat::manual_clock>(t0);
  {
    wechat::component_client before(options(), t, store, clock);
    deliver_ticket(before, t0, ticket_value('r'));
    before.set_authorizer_refresh_token(authorizer, "refreshtoken@@@kept");
  }
  wechat::component_client after(options(), t, store, clock);
  REQUIRE(after.ticket());
  CHECK(after.ticket()->value == ticket_value('r'));
  t->answer(token_answer);
  t->answer(
      R"({"authorizer_access_token":"auth_1","expires_in":7200,"authorizer_refresh_token":"refreshtoken@@@kept"})");
  std::error_code ec;
  CHECK(after.authorizer_access_token(authorizer, ec) == "auth_1");
  CHECK_FALSE(ec);
  const auto sent = t->sent();
  REQUIRE(sent.size() == 2);
  CHECK(nlohmann::json::parse(sent[1].body) ==
        nlohmann::json{{"component_appid", component_appid},
                       {"authorizer_appid", authorizer},
                       {"authorizer_refresh_token", "refreshtoken@@@kept"}});
  // and a third instance finds the tokens themselves
  wechat::component_client third(options(), t, store, clock);
  CHECK(third.authorizer_access_token(authorizer) == "auth_1");
  CHECK(third.component_access_token() == "61_componenttoken");
  CHECK(t->sent().size() == 2);
}

TEST_CASE("no ticket: the component token fails with component_errc::no_ticket and sends nothing",
          "[component][token]") {
  auto t = std::make_shared<fake_transport>();
  wechat::component_client platform(options(), t);
  std::error_code ec;
  wechat::error_detail d;
  CHECK(platform.component_access_token(ec, &d).empty());
  CHECK(ec == wechat::component_errc::no_ticket);
  CHECK_THROWS_AS(platform.component_access_token(), wechat::error);
  platform.set_authorizer_refresh_token(authorizer, "refreshtoken@@@x");
  CHECK(platform.authorizer_access_token(authorizer, ec).empty());
  CHECK(ec == wechat::component_errc::no_ticket);
  CHECK(platform.code2session(authorizer, "code1", ec).openid.empty());
  CHECK(ec == wechat::component_errc::no_ticket);
  CHECK(t->sent().empty());
  // and no refresh token: no_refresh_token, nothing sent either
  wechat::component_client other(options(), t);
  deliver_ticket(other, t0, ticket_value('x'));
  CHECK(other.authorizer_access_token(authorizer, ec).empty());
  CHECK(ec == wechat::component_errc::no_refresh_token);
  CHECK_THROWS_AS(other.set_authorizer_refresh_token(authorizer, ""), wechat::error);
  CHECK(t->sent().empty());
}

TEST_CASE("N threads asking for the component token cause one fetch", "[component][token]") {
  auto t = std::make_shared<fake_transport>();
  std::atomic<int> fetches{0};
  t->respond = [&](const wechat::http_request& req) -> wechat::http_response {
    if (req.target == "/cgi-bin/component/api_component_token") ++fetches;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return {200, token_answer, "application/json"};
  };
  wechat::component_client platform(options(), t);
  deliver_ticket(platform, t0, ticket_value('s'));
  std::vector<std::thread> threads;
  std::vector<std::string> got(16);
  std::vector<std::error_code> errors(16);
  for (std::size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] { got[i] = platform.component_access_token(errors[i]); });
  for (auto& th : threads)
    th.join();
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK_FALSE(errors[i]);
    CHECK(got[i] == "61_componenttoken");
  }
  CHECK(fetches.load() == 1);
  CHECK(platform.component_tokens().fetches() == 1);
}

TEST_CASE("a component login's session feeds the UnionID resolver", "[component][login][unionid]") {
  auto t = std::make_shared<fake_transport>();
  wechat::component_client platform(options(), t);
  deliver_ticket(platform, t0, ticket_value('u'));
  t->answer(token_answer);
  t->answer(R"({"session_key":"tiihtNczf5v6AKRyjwEUhQ==","openid":"o7","unionid":"u7"})");
  t->answer(R"({"session_key":"tiihtNczf5v6AKRyjwEUhQ==","openid":"o8"})");
  int paid_calls = 0;
  const wechat::paid_unionid_lookup paid = [&](std::string_view, const wechat::paid_order&,
                                               std::error_code& ec) {
    ++paid_calls;
    ec = wechat::api_errc::invalid_trade;
    return std::string();
  };
  wechat::resolver_options ro;
  ro.appid = authorizer;
  wechat::unionid_resolver resolver(ro, paid);
  wechat::unionid_evidence e;
  e.session = platform.code2session(authorizer, "code7");
  const auto r = resolver.resolve(e);
  CHECK(r.unionid == std::optional<std::string>("u7"));
  CHECK(r.channel == wechat::unionid_channel::session);
  // an app known to be unbound: no unionid in its session, and the diagnosis says why
  ro.bound = false;
  wechat::unionid_resolver unbound(ro, paid);
  e.session = platform.code2session(authorizer, "code8");
  CHECK_FALSE(e.session.unionid);
  const auto none = unbound.resolve(e);
  CHECK_FALSE(none.unionid);
  REQUIRE(none.diagnosis);
  CHECK(none.diagnosis->reason == wechat::unionid_reason::app_not_bound);
  CHECK(paid_calls == 0);
}

TEST_CASE("40001 on component code2session invalidates the component token, fetches a new one "
          "and retries once",
          "[component][login]") {
  auto t = std::make_shared<fake_transport>();
  wechat::component_client platform(options(), t);
  deliver_ticket(platform, t0, ticket_value('c'));
  t->answer(R"({"component_access_token":"61_old","expires_in":7200})");
  t->answer(
      R"({"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest rid: 6b04bdfc-788b670a-5c7476a8"})");
  t->answer(R"({"component_access_token":"61_new","expires_in":7200})");
  t->answer(R"({"session_key":"tiihtNczf5v6AKRyjwEUhQ==","openid":"o1","unionid":"u1"})");
  std::error_code ec;
  const auto s = platform.code2session(authorizer, "code1", ec);
  CHECK_FALSE(ec);
  CHECK(s.openid == "o1");
  CHECK(s.session_key == "tiihtNczf5v6AKRyjwEUhQ==");
  CHECK(s.unionid == std::optional<std::string>("u1"));
  auto sent = t->sent();
  REQUIRE(sent.size() == 4);
  CHECK(sent[1].target.rfind("/sns/component/jscode2session?", 0) == 0);
  CHECK(sent[1].target.find("appid=" + std::string(authorizer)) != std::string::npos);
  CHECK(sent[1].target.find("js_code=code1") != std::string::npos);
  CHECK(sent[1].target.find("grant_type=authorization_code") != std::string::npos);
  CHECK(sent[1].target.find("component_appid=" + std::string(component_appid)) !=
        std::string::npos);
  CHECK(sent[1].target.find("component_access_token=61_old") != std::string::npos);
  CHECK(sent[2].target == "/cgi-bin/component/api_component_token");
  CHECK(sent[3].target.find("component_access_token=61_new") != std::string::npos);

  // the same code again within the window: the remembered result, no request
  CHECK(platform.code2session(authorizer, "code1").openid == "o1");
  CHECK(t->sent().size() == 4);

  // rejected twice: one retry only, then the error
  t->answer(R"({"errcode":42001,"errmsg":"access_token expired rid: 1a2b3c4d-00000000-ffffffff"})");
  t->answer(R"({"component_access_token":"61_newer","expires_in":7200})");
  t->answer(R"({"errcode":42001,"errmsg":"access_token expired rid: 1a2b3c4d-00000000-ffffffff"})");
  wechat::error_detail d;
  platform.code2session(authorizer, "code2", ec, &d);
  CHECK(ec == wechat::api_errc::access_token_expired);
  CHECK(d.rid == "1a2b3c4d-00000000-ffffffff");
  CHECK(t->sent().size() == 7);
}

TEST_CASE("61003 and 61023 are reported as api_errc", "[component][errors]") {
  auto t = std::make_shared<fake_transport>();
  wechat::component_client platform(options(), t);
  deliver_ticket(platform, t0, ticket_value('e'));
  platform.set_authorizer_refresh_token(authorizer, "refreshtoken@@@e");
  t->answer(token_answer);
  t->answer(
      R"({"errcode":61003,"errmsg":"component is not authorized by this account rid: 67a30dc9-302ecc6c-11466d6f"})");
  std::error_code ec;
  wechat::error_detail d;
  CHECK(platform.authorizer_access_token(authorizer, ec, &d).empty());
  CHECK(ec == wechat::api_errc::component_not_authorized);
  CHECK(d.errcode == 61003);
  CHECK(d.rid == "67a30dc9-302ecc6c-11466d6f");

  t->answer(
      R"({"errcode":61023,"errmsg":"refresh_token is invalid rid: 61b20788-6a376c66-6e729ce6"})");
  try {
    platform.authorizer_access_token(authorizer);
    FAIL("no exception");
  } catch (const wechat::api_error& e) {
    CHECK(e.code() == wechat::api_errc::authorizer_refresh_token_invalid);
    CHECK(std::string(e.what()).find("refreshtoken@@@") == std::string::npos);
  }

  t->answer(
      R"({"errcode":61003,"errmsg":"component is not authorized by this account rid: 67a30dc9-302ecc6c-11466d6f"})");
  platform.code2session(authorizer, "code1", ec);
  CHECK(ec == wechat::api_errc::component_not_authorized);
  t->answer(
      R"({"errcode":40094,"errmsg":"invalid component credential rid: 67a30dc9-302ecc6c-11466d6f"})");
  platform.code2session(authorizer, "code2", ec);
  CHECK(ec == wechat::api_errc::invalid_component_credential);
  CHECK(t->sent().size() == 5);  // no retry on these
}

TEST_CASE("61005 from WeChat is reported with the stored ticket's age", "[component][errors]") {
  auto t = std::make_shared<fake_transport>();
  auto clock = std::make_shared<wechat::manual_clock>(t0);
  wechat::component_client platform(options(), t, nullptr, clock);
  deliver_ticket(platform, t0 - 13 * 3600, ticket_value('f'));
  t->answer(
      R"({"errcode":61005,"errmsg":"component ticket is expired rid: 64f69b23-60f73830-19f36488"})");
  std::error_code ec;
  wechat::error_detail d;
  CHECK(platform.component_access_token(ec, &d).empty());
  CHECK(ec == wechat::api_errc::component_ticket_expired);
  CHECK(d.cause.find("46800 s ago") != std::string::npos);
  CHECK(d.cause.find("ticket@@@") == std::string::npos);
  t->answer(
      R"({"errcode":61006,"errmsg":"component ticket is invalid rid: 6425c299-1d719673-32c6291c"})");
  try {
    platform.component_access_token();
    FAIL("no exception");
  } catch (const wechat::api_error& e) {
    CHECK(e.code() == wechat::api_errc::component_ticket_invalid);
    const std::string what = e.what();
    CHECK(what.find("46800 s ago") != std::string::npos);
    CHECK(what.find("ticket@@@") == std::string::npos);
    CHECK(what.find("componentsecret") == std::string::npos);
  }
}

TEST_CASE("authorization pushes are reported and unauthorized forgets the authorizer's tokens",
          "[component][push]") {
  auto t = std::make_shared<fake_transport>();
  auto store = std::make_shared<wechat::memory_token_store>();
  wechat::component_client platform(options(), t, store);
  deliver_ticket(platform, t0, ticket_value('u'));
  platform.set_authorizer_refresh_token(authorizer, "refreshtoken@@@u");
  t->answer(token_answer);
  t->answer(
      R"({"authorizer_access_token":"auth_u","expires_in":7200,"authorizer_refresh_token":"refreshtoken@@@u"})");
  CHECK(platform.authorizer_access_token(authorizer) == "auth_u");

  std::error_code ec;
  wechat::component_push what;
  auto p = make_push(auth_xml("authorized", t0 + 1));
  CHECK(platform.handle_push(p.query, p.body, ec, nullptr, &what) == "success");
  CHECK(what.info_type == "authorized");
  CHECK(what.authorizer_appid == authorizer);
  CHECK(platform.authorizer_access_token(authorizer) == "auth_u");  // still there

  p = make_push(auth_xml("unauthorized", t0 + 2));
  CHECK(platform.handle_push(p.query, p.body, ec, nullptr, &what) == "success");
  CHECK(what.info_type == "unauthorized");
  CHECK(what.authorizer_appid == authorizer);
  CHECK(platform.authorizer_access_token(authorizer, ec).empty());
  CHECK(ec == wechat::component_errc::no_refresh_token);
  CHECK_FALSE(store->load(
      std::string("authorizer_access_token:") + component_appid + ":" + authorizer, ec));

  p = make_push(auth_xml("notify_third_fasteregister", t0 + 3));  // unknown to the client
  CHECK(platform.handle_push(p.query, p.body, ec, nullptr, &what) == "success");
  CHECK_FALSE(ec);
  CHECK(what.info_type == "notify_third_fasteregister");
  CHECK(t->sent().size() == 2);
}
