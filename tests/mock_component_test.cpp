// The mock's Open Platform third-party platform ("component") and WeCom side over real HTTP
// on loopback: the admin calls, the component_verify_ticket push received by a real
// httplib::Server, api_component_token, api_authorizer_token, sns/component/jscode2session,
// WeCom's gettoken and miniprogram/jscode2session, each error in the order WeChat checks.
#include "mock_support.hpp"

#include <wechat/msg_crypt.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using namespace mocktest;

namespace {

const std::string comp = "wxc0000000000000c1";
const std::string comp2 = "wxc0000000000000c2";
const std::string comp_secret = "component-secret-1";
const std::string msg_token = "pushToken123";
const std::string aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";  // 43
const std::string corp = "ww0000000000000c01";
const std::string corp2 = "ww0000000000000c02";
const std::string corp_secret = "corp-secret-1";

// A ticket receiver: a real httplib::Server on loopback that keeps every push it gets and
// answers `answer`.
class receiver {
public:
  struct push {
    std::map<std::string, std::string> query;
    std::string body, content_type;
  };

  /// `tls`: over HTTPS with a throwaway test CA's certificate (tls_options, in `ca_dir`).
  explicit receiver(std::string answer = "success", bool tls = false,
                    const std::string& ca_dir = "component_tls_ca")
      : answer_(std::move(answer)), tls_(tls) {
    if (tls) {
      const auto o = tls_options({}, ca_dir);
      REQUIRE_FALSE(o.tls_cert.empty());
      svr_ = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
      REQUIRE(svr_->is_valid());
    } else {
      svr_ = std::make_unique<httplib::Server>();
    }
    svr_->Post("/ticket", [this](const httplib::Request& q, httplib::Response& r) {
      push p;
      for (const auto& [k, v] : q.params)
        p.query[k] = v;
      p.body = q.body;
      p.content_type = q.get_header_value("Content-Type");
      std::lock_guard<std::mutex> lock(mutex_);
      got_.push_back(std::move(p));
      r.set_content(answer_, "text/plain");
    });
    port_ = svr_->bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { svr_->listen_after_bind(); });
    for (int i = 0; i < 2000 && !svr_->is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(svr_->is_running());
  }
  ~receiver() { stop(); }
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;

  void stop() {
    svr_->stop();
    if (thread_.joinable()) thread_.join();
  }
  /// With a query of its own, which the push must keep.
  std::string url() const {
    return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_) +
           "/ticket?app=x";
  }
  int port() const { return port_; }
  std::size_t count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return got_.size();
  }
  push at(std::size_t i) {
    std::lock_guard<std::mutex> lock(mutex_);
    REQUIRE(i < got_.size());
    return got_[i];
  }

private:
  std::unique_ptr<httplib::Server> svr_;
  std::thread thread_;
  int port_ = -1;
  std::string answer_;
  bool tls_ = false;
  std::mutex mutex_;
  std::vector<push> got_;
};

struct ticket_fields {
  std::string appid, create_time, info_type, ticket;
};

// Checks a push as a receiver must (signature, msg_signature, decryption, the appid trailer)
// and returns its inner fields.
ticket_fields open_push(const receiver::push& p, const std::string& appid = comp) {
  INFO("push body: " << p.body);
  CHECK(p.content_type == "text/xml");
  for (const char* k : {"signature", "timestamp", "nonce", "encrypt_type", "msg_signature"})
    REQUIRE(p.query.count(k) == 1);
  CHECK(p.query.at("encrypt_type") == "aes");
  CHECK(p.query.count("app") == 1);  // the ticket_url's own query is kept
  const wechat::msg_crypt crypt(msg_token, aes_key, appid);
  std::error_code ec;
  crypt.verify_signature(p.query.at("signature"), p.query.at("timestamp"), p.query.at("nonce"), ec);
  CHECK_FALSE(ec);
  CHECK(wechat::xml_element_text(p.body, "AppId") == appid);
  const std::string inner = crypt.decrypt_message(
      p.query.at("msg_signature"), p.query.at("timestamp"), p.query.at("nonce"), p.body, ec);
  REQUIRE_FALSE(ec);
  ticket_fields f;
  f.appid = wechat::xml_element_text(inner, "AppId");
  f.create_time = wechat::xml_element_text(inner, "CreateTime");
  f.info_type = wechat::xml_element_text(inner, "InfoType");
  f.ticket = wechat::xml_element_text(inner, "ComponentVerifyTicket");
  CHECK(f.create_time == p.query.at("timestamp"));
  return f;
}

bool url_safe(const std::string& s) {
  return s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
         std::string::npos;
}

nlohmann::json component_body(const std::string& appid, const std::string& url = "") {
  nlohmann::json b = {{"component_appid", appid},
                      {"secret", comp_secret},
                      {"token", msg_token},
                      {"encoding_aes_key", aes_key}};
  if (!url.empty()) b["ticket_url"] = url;
  return b;
}

// A fresh ticket of `appid`, by the admin's component_push (no receiver needed).
std::string push_ticket(fixture& f, const std::string& appid = comp) {
  return f.admin("component_push", {{"component_appid", appid}})["ticket"].get<std::string>();
}

reply component_token(fixture& f, const nlohmann::json& body) {
  return f.post("/cgi-bin/component/api_component_token", body.dump());
}

std::string fetch_component_token(fixture& f, const std::string& ticket,
                                  const std::string& appid = comp) {
  const reply r = component_token(f, {{"component_appid", appid},
                                      {"component_appsecret", comp_secret},
                                      {"component_verify_ticket", ticket}});
  INFO(r.body);
  REQUIRE(r.json().contains("component_access_token"));
  return r.json()["component_access_token"].get<std::string>();
}

reply authorizer_token(fixture& f, const std::string& ct, const nlohmann::json& body) {
  return f.post("/cgi-bin/component/api_authorizer_token?component_access_token=" + ct,
                body.dump());
}

reply component_code2session(fixture& f, const std::string& appid, const std::string& code,
                             const std::string& ct, const std::string& component_appid = comp) {
  return f.get("/sns/component/jscode2session?appid=" + appid + "&js_code=" + code +
               "&grant_type=authorization_code&component_appid=" + component_appid +
               "&component_access_token=" + ct);
}

// The mock with its clock frozen at the current second: the tests below check boundaries to
// the second (a push at 600 s, not 599; a ticket's 12 hours; a token's 5-minute overlap),
// which a running clock would cross on its own between two steps.
struct frozen_fixture : fixture {
  explicit frozen_fixture(mock_wechat::options o = {}) : fixture(std::move(o)) {
    world().clock().set(world().now());
  }
};

void advance(fixture& f, std::int64_t seconds) {
  f.admin("clock", {{"advance", seconds}});
}

nlohmann::json pushes_of(fixture& f, const std::string& appid = comp) {
  const reply r = f.get("/__mock/components?component_appid=" + appid);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return r.json()["pushes"];
}

// WeCom's error shape: "<text>, hint: [<now>_<n>_<32 hex>], from ip: 127.0.0.1, more info
// at https://open.work.weixin.qq.com/devtool/query?e=<code>".
void check_wecom_error(const reply& r, int errcode, const std::string& text, std::int64_t now) {
  INFO(r.body);
  CHECK(r.status == 200);
  CHECK(r.errcode() == errcode);
  const std::regex shape(
      "^\\{\"errcode\":" + std::to_string(errcode) + ",\"errmsg\":\"" + text +
      ", hint: \\[([0-9]+)_[0-9]+_[0-9a-f]{32}\\], from ip: 127\\.0\\.0\\.1, more "
      "info at https://open\\.work\\.weixin\\.qq\\.com/devtool/query\\?e=" +
      std::to_string(errcode) + "\"\\}$");
  std::smatch m;
  REQUIRE(std::regex_search(r.body, m, shape));
  CHECK(std::llabs(std::stoll(m[1].str()) - now) <= 2);
}

}  // namespace

// ------------------------------------------------------------------------ the push --

TEST_CASE("a platform gets its first ticket pushed at creation, encrypted and signed",
          "[mock][component][push]") {
  frozen_fixture f;
  receiver rx;
  const auto now = f.world().now();
  const auto a = f.admin("components", component_body(comp, rx.url()));
  CHECK(a["component_appid"] == comp);
  CHECK(a["token"] == msg_token);
  CHECK(a["encoding_aes_key"] == aes_key);
  CHECK(a["ticket_url"] == rx.url());
  CHECK(a["ticket_pushed"] == true);
  CHECK(a["answer"] == "success");
  CHECK_FALSE(a.contains("error"));
  CHECK_FALSE(a.contains("secret"));
  REQUIRE(rx.count() == 1);
  const auto t = open_push(rx.at(0));
  CHECK(t.appid == comp);
  CHECK(t.info_type == "component_verify_ticket");
  CHECK(std::llabs(std::stoll(t.create_time) - now) <= 2);
  REQUIRE(t.ticket.rfind("ticket@@@", 0) == 0);
  CHECK(t.ticket.size() == 9 + 86);
  CHECK(url_safe(t.ticket.substr(9)));
  const auto p = pushes_of(f);
  REQUIRE(p.size() == 1);
  CHECK(p[0]["ok"] == true);
  CHECK(p[0]["ticket_pushed"] == true);
  CHECK(p[0]["answer"] == "success");
  CHECK(p[0]["at"] == std::stoll(t.create_time));
  SECTION("the pushed ticket gets a component_access_token") {
    const std::string ct = fetch_component_token(f, t.ticket);
    CHECK(ct.size() > 100);
    CHECK(ct[2] == '_');
  }
  SECTION("component_push mints a fresh ticket and pushes it now") {
    const auto r = f.admin("component_push", {{"component_appid", comp}});
    CHECK(r["ticket_pushed"] == true);
    CHECK(r["answer"] == "success");
    REQUIRE(rx.count() == 2);
    const auto t2 = open_push(rx.at(1));
    CHECK(t2.ticket == r["ticket"]);
    CHECK(t2.ticket != t.ticket);
    CHECK(pushes_of(f).size() == 2);
  }
}

TEST_CASE("tickets are pushed every 600 virtual seconds, before the clock call answers",
          "[mock][component][push]") {
  frozen_fixture f;
  receiver rx;
  f.admin("components", component_body(comp, rx.url()));
  REQUIRE(rx.count() == 1);
  advance(f, 599);
  CHECK(rx.count() == 1);
  advance(f, 1);
  REQUIRE(rx.count() == 2);  // delivered before the clock call answered
  const auto second = open_push(rx.at(1));
  CHECK(std::stoll(second.create_time) == f.world().now());
  SECTION("a jump of 3600 s pushes once, and the next is 600 s after it") {
    advance(f, 3600);
    CHECK(rx.count() == 3);
    advance(f, 599);
    CHECK(rx.count() == 3);
    advance(f, 1);
    CHECK(rx.count() == 4);
  }
  SECTION("set moves the clock too") {
    f.admin("clock", {{"set", f.world().now() + 600}});
    CHECK(rx.count() == 3);
  }
  SECTION("the pusher thread pushes when the embedded clock moves") {
    f.world().clock().advance(600);
    for (int i = 0; i < 300 && rx.count() < 3; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(rx.count() == 3);
  }
}

TEST_CASE("a ticket_url over https gets the push too", "[mock][component][push]") {
  frozen_fixture f;
  receiver rx("success", true);
  REQUIRE(rx.url().rfind("https://", 0) == 0);
  const auto a = f.admin("components", component_body(comp, rx.url()));
  INFO(a.dump());
  CHECK(a["ticket_pushed"] == true);
  CHECK(a["answer"] == "success");
  REQUIRE(rx.count() == 1);
  const auto t = open_push(rx.at(0));
  CHECK(t.appid == comp);
  CHECK(t.ticket.rfind("ticket@@@", 0) == 0);
}

TEST_CASE("a receiver answering anything but success is recorded as not ok",
          "[mock][component][push]") {
  frozen_fixture f;
  receiver rx("fail");
  const auto a = f.admin("components", component_body(comp, rx.url()));
  CHECK(a["ticket_pushed"] == true);
  CHECK(a["answer"] == "fail");
  const auto p = pushes_of(f);
  REQUIRE(p.size() == 1);
  CHECK(p[0]["ok"] == false);
  CHECK(p[0]["answer"] == "fail");
}

TEST_CASE("a dead ticket_url is recorded with an error and the ticket is still minted",
          "[mock][component][push]") {
  frozen_fixture f;
  std::string dead;
  {
    receiver gone;
    dead = gone.url();
  }  // nothing listens there now
  const auto a = f.admin("components", component_body(comp, dead));
  CHECK(a["ticket_pushed"] == false);
  CHECK(a["error"] == "connection refused");
  CHECK(a["answer"] == "");
  const auto p = pushes_of(f);
  REQUIRE(p.size() == 1);
  CHECK(p[0]["ok"] == false);
  CHECK(p[0]["error"] == "connection refused");
  // the ticket exists though no one got it: the previous one is the creation's, and the
  // admin's view of the latest works
  const std::string ticket = push_ticket(f);
  CHECK_FALSE(fetch_component_token(f, ticket).empty());
  SECTION("with no ticket_url") {
    const auto b = f.admin("components", component_body(comp2));
    CHECK(b["ticket_pushed"] == false);
    CHECK(b["error"] == "no ticket_url");
    CHECK_FALSE(b.contains("ticket_url"));
    CHECK(pushes_of(f, comp2).size() == 1);
  }
}

TEST_CASE("the push record keeps the last 16 pushes", "[mock][component][push]") {
  frozen_fixture f;
  f.admin("components", component_body(comp));
  for (int i = 0; i < 20; ++i)
    push_ticket(f);
  const auto p = pushes_of(f);
  CHECK(p.size() == 16);
}

// ------------------------------------------------------------- api_component_token --

TEST_CASE("api_component_token checks presence, then the platform, then the ticket",
          "[mock][component][token]") {
  frozen_fixture f;
  f.admin("components", component_body(comp));
  f.admin("components", component_body(comp2));
  const std::string path = "/cgi-bin/component/api_component_token";
  const auto now = f.world().now();
  const std::string t1 = push_ticket(f), t2 = push_ticket(f), t3 = push_ticket(f);
  const nlohmann::json good = {{"component_appid", comp},
                               {"component_appsecret", comp_secret},
                               {"component_verify_ticket", t3}};
  auto with = [&](const char* k, const nlohmann::json& v) {
    auto b = good;
    b[k] = v;
    return b;
  };
  auto without = [&](const char* k) {
    auto b = good;
    b.erase(k);
    return b;
  };
  check_error_shape(f.post(path, "not json"), 47001, path, now);
  check_error_shape(f.post(path, "[1]"), 47001, path, now);
  check_error_shape(component_token(f, without("component_appid")), 41002, path, now);
  check_error_shape(component_token(f, without("component_appsecret")), 41004, path, now);
  check_error_shape(component_token(f, with("component_appid", "wxunknown")), 61011, path, now);
  check_error_shape(component_token(f, with("component_appid", mp)), 61011, path, now);
  check_error_shape(component_token(f, with("component_appsecret", "wrong")), 40125, path, now);
  check_error_shape(component_token(f, without("component_verify_ticket")), 61006, path, now);
  check_error_shape(component_token(f, with("component_verify_ticket", nullptr)), 61006, path, now);
  check_error_shape(component_token(f, with("component_verify_ticket", "")), 61006, path, now);
  check_error_shape(component_token(f, with("component_verify_ticket", "ticket@@@nope")), 61006,
                    path, now);
  check_error_shape(component_token(f, with("component_verify_ticket", t1)), 61006, path,
                    now);  // the one before the previous
  check_error_shape(component_token(f, with("component_verify_ticket", push_ticket(f, comp2))),
                    61006, path, now);  // another platform's
  CHECK(component_token(f, with("component_verify_ticket", t2))
            .json()
            .contains("component_access_token"));  // the previous one
  const reply r = component_token(f, good);
  CHECK(r.status == 200);
  check_compact(r);
  CHECK_FALSE(r.json().contains("errcode"));
  CHECK(r.json()["expires_in"] == 7200);
  CHECK(r.body.rfind("{\"component_access_token\":\"", 0) == 0);
  SECTION("a ticket older than 12 hours is 61005") {
    advance(f, 43199);  // one push happens here: t3 becomes the previous ticket
    CHECK(component_token(f, good).json().contains("component_access_token"));
    advance(f, 1);
    check_error_shape(component_token(f, good), 61005, path, f.world().now());
  }
  SECTION("the secret and the ticket stay out of the journal") {
    const reply j = f.get("/__mock/requests?path=" + path);
    CHECK(j.status == 200);
    CHECK(j.body.find(comp_secret) == std::string::npos);
    CHECK(j.body.find(t3) == std::string::npos);
  }
}

TEST_CASE("a new component_access_token leaves the old one 5 minutes, then 40001",
          "[mock][component][token]") {
  frozen_fixture f;
  f.add_standard_apps();
  f.admin("components", component_body(comp));
  const std::string refresh =
      f.admin("component_authorize",
              {{"component_appid", comp}, {"appid", mp}})["authorizer_refresh_token"]
          .get<std::string>();
  const nlohmann::json body = {
      {"component_appid", comp}, {"authorizer_appid", mp}, {"authorizer_refresh_token", refresh}};
  const std::string ticket = push_ticket(f);
  const std::string old_ct = fetch_component_token(f, ticket);
  const std::string new_ct = fetch_component_token(f, ticket);
  CHECK(old_ct != new_ct);
  const std::string path = "/cgi-bin/component/api_authorizer_token";
  CHECK(authorizer_token(f, old_ct, body).status == 200);
  CHECK(authorizer_token(f, old_ct, body).json().contains("authorizer_access_token"));
  advance(f, 299);
  CHECK(authorizer_token(f, old_ct, body).json().contains("authorizer_access_token"));
  advance(f, 1);
  check_error_shape(authorizer_token(f, old_ct, body), 40001, path, f.world().now());
  CHECK(authorizer_token(f, new_ct, body).json().contains("authorizer_access_token"));
  advance(f, 7200 - 300);
  check_error_shape(authorizer_token(f, new_ct, body), 42001, path, f.world().now());
}

// ------------------------------------------------------------ api_authorizer_token --

TEST_CASE("api_authorizer_token checks the token, the body, then the authorization",
          "[mock][component][authorizer]") {
  frozen_fixture f;
  f.add_standard_apps();
  f.admin("components", component_body(comp));
  f.admin("components", component_body(comp2));
  const auto auth = f.admin("component_authorize", {{"component_appid", comp}, {"appid", mp}});
  CHECK(auth["component_appid"] == comp);
  CHECK(auth["authorizer_appid"] == mp);
  const std::string refresh = auth["authorizer_refresh_token"].get<std::string>();
  REQUIRE(refresh.rfind("refreshtoken@@@", 0) == 0);
  CHECK(refresh.size() == 15 + 43);
  CHECK(url_safe(refresh.substr(15)));
  const std::string ct = fetch_component_token(f, push_ticket(f));
  const std::string ct2 = fetch_component_token(f, push_ticket(f, comp2), comp2);
  const std::string path = "/cgi-bin/component/api_authorizer_token";
  const auto now = f.world().now();
  const nlohmann::json good = {
      {"component_appid", comp}, {"authorizer_appid", mp}, {"authorizer_refresh_token", refresh}};
  auto with = [&](const char* k, const nlohmann::json& v) {
    auto b = good;
    b[k] = v;
    return b;
  };
  auto without = [&](const char* k) {
    auto b = good;
    b.erase(k);
    return b;
  };
  check_error_shape(f.post(path, good.dump()), 41001, path, now);
  check_error_shape(authorizer_token(f, "garbage", good), 40014, path, now);
  check_error_shape(authorizer_token(f, f.token(mp, mp_secret), good), 40014, path,
                    now);  // an app token is not a platform's
  check_error_shape(f.post(path + "?component_access_token=" + ct, "{"), 47001, path, now);
  check_error_shape(authorizer_token(f, ct, without("component_appid")), 41002, path, now);
  check_error_shape(authorizer_token(f, ct2, good), 40094, path, now);
  check_error_shape(authorizer_token(f, ct, with("component_appid", comp2)), 40094, path, now);
  check_error_shape(authorizer_token(f, ct, without("authorizer_appid")), 41002, path, now);
  check_error_shape(authorizer_token(f, ct, without("authorizer_refresh_token")), 41003, path, now);
  check_error_shape(authorizer_token(f, ct, with("authorizer_appid", mp2)), 61003, path, now);
  check_error_shape(authorizer_token(f, ct2, with("component_appid", comp2)), 61003, path,
                    now);  // mp authorized comp, not comp2
  check_error_shape(authorizer_token(f, ct, with("authorizer_refresh_token", "refreshtoken@@@x")),
                    61023, path, now);
  const reply r = authorizer_token(f, ct, good);
  CHECK(r.status == 200);
  check_compact(r);
  const auto j = r.json();
  CHECK_FALSE(j.contains("errcode"));
  CHECK(j["expires_in"] == 7200);
  CHECK(j["authorizer_refresh_token"] == refresh);
  const std::string at = j["authorizer_access_token"].get<std::string>();
  CHECK(at.size() > 100);

  SECTION("the authorizer token is an access token of the app") {
    const reply q =
        f.post("/cgi-bin/openapi/quota/get?access_token=" + at, R"({"cgi_path":"/cgi-bin/token"})");
    INFO(q.body);
    CHECK(q.errcode() == 0);
    CHECK(q.json().contains("quota"));
    // and it does not supersede the app's own token, nor the app's its
    const std::string own = f.token(mp, mp_secret);
    CHECK(authorizer_token(f, ct, good).status == 200);
    advance(f, 301);
    CHECK(
        f.post("/cgi-bin/openapi/quota/get?access_token=" + own, R"({"cgi_path":"/cgi-bin/token"})")
            .errcode() == 0);
  }
  SECTION("authorizing again kills the old refresh token") {
    const std::string again =
        f.admin("component_authorize",
                {{"component_appid", comp}, {"appid", mp}})["authorizer_refresh_token"]
            .get<std::string>();
    CHECK(again != refresh);
    check_error_shape(authorizer_token(f, ct, good), 61023, path, now);
    CHECK(authorizer_token(f, ct, with("authorizer_refresh_token", again)).status == 200);
    CHECK(authorizer_token(f, ct, with("authorizer_refresh_token", again))
              .json()
              .contains("authorizer_access_token"));
  }
  SECTION("revoking withdraws the authorization") {
    const auto rv = f.admin("component_authorize",
                            {{"component_appid", comp}, {"appid", mp}, {"revoke", true}});
    CHECK(rv["authorized"] == false);
    CHECK(rv["authorizer_appid"] == mp);
    CHECK_FALSE(rv.contains("authorizer_refresh_token"));
    check_error_shape(authorizer_token(f, ct, good), 61003, path, now);
    // the authorizer token fetched before dies with the authorization
    const reply q =
        f.post("/cgi-bin/openapi/quota/get?access_token=" + at, R"({"cgi_path":"/cgi-bin/token"})");
    INFO(q.body);
    CHECK(q.errcode() == 40001);
  }
}

TEST_CASE("component_authorize takes mini programs, mini games and official accounts",
          "[mock][component][admin]") {
  frozen_fixture f;
  f.add_standard_apps();
  f.admin("components", component_body(comp));
  for (const auto& a : {mp, game, oa})
    CHECK(f.admin("component_authorize", {{"component_appid", comp}, {"appid", a}})
              .contains("authorizer_refresh_token"));
  CHECK(f.post("/__mock/component_authorize",
               nlohmann::json{{"component_appid", comp}, {"appid", web}}.dump())
            .status == 400);
  CHECK(f.post("/__mock/component_authorize",
               nlohmann::json{{"component_appid", comp}, {"appid", "wxnobody"}}.dump())
            .status == 404);
  CHECK(f.post("/__mock/component_authorize",
               nlohmann::json{{"component_appid", comp2}, {"appid", mp}}.dump())
            .status == 404);
  CHECK(f.post("/__mock/component_authorize",
               nlohmann::json{{"component_appid", comp}, {"appid", mp}, {"revoke", "yes"}}.dump())
            .status == 400);
}

// ------------------------------------------------------ sns/component/jscode2session --

TEST_CASE("component jscode2session checks presence, the token, the app, then the code",
          "[mock][component][code2session]") {
  frozen_fixture f;
  f.add_standard_apps();
  f.admin("components", component_body(comp));
  f.admin("components", component_body(comp2));
  f.admin("component_authorize", {{"component_appid", comp}, {"appid", mp}});
  f.admin("component_authorize", {{"component_appid", comp}, {"appid", lone}});
  const std::string ct = fetch_component_token(f, push_ticket(f));
  const std::string ct2 = fetch_component_token(f, push_ticket(f, comp2), comp2);
  const std::string path = "/sns/component/jscode2session";
  const auto now = f.world().now();
  const std::string code = f.login(mp, "alice");
  const std::string rest = "&grant_type=authorization_code";
  check_error_shape(f.get(path + "?js_code=" + code + "&component_appid=" + comp +
                          "&component_access_token=" + ct + rest),
                    41002, path, now);
  check_error_shape(f.get(path + "?appid=" + mp + "&component_appid=" + comp +
                          "&component_access_token=" + ct + rest),
                    41008, path, now);
  check_error_shape(
      f.get(path + "?appid=" + mp + "&js_code=" + code + "&component_access_token=" + ct + rest),
      41002, path, now);
  check_error_shape(
      f.get(path + "?appid=" + mp + "&js_code=" + code + "&component_appid=" + comp + rest), 41001,
      path, now);
  check_error_shape(component_code2session(f, mp, code, "garbage"), 40014, path, now);
  check_error_shape(component_code2session(f, mp, code, ct2), 40094, path, now);
  check_error_shape(component_code2session(f, "wxnobody", code, ct), 40013, path, now);
  check_error_shape(component_code2session(f, oa, code, ct), 40013, path, now);
  check_error_shape(component_code2session(f, mp2, f.login(mp2, "alice"), ct), 61003, path, now);
  check_error_shape(component_code2session(f, mp, "unknowncode", ct), 40029, path, now);
  check_error_shape(component_code2session(f, lone, code, ct), 40029, path,
                    now);  // another app's code
  const reply r = component_code2session(f, mp, code, ct);
  CHECK(r.status == 200);
  CHECK(r.content_type == "text/plain");
  check_compact(r);
  const auto j = r.json();
  CHECK_FALSE(j.contains("errcode"));
  CHECK(j["openid"] == mock_wechat::openid(mp, "alice"));
  CHECK(j["session_key"] == *f.world().current_session_key(mp, "alice"));
  CHECK(j["unionid"] == mock_wechat::unionid("acct-1", "alice"));  // bound: every user
  check_error_shape(component_code2session(f, mp, code, ct), 40163, path, now);  // used
  SECTION("an unbound mini program has no unionid") {
    CHECK_FALSE(
        component_code2session(f, lone, f.login(lone, "bob"), ct).json().contains("unionid"));
  }
  SECTION("the conditional rules give none to a user who neither follows nor authorized") {
    f.world().set_rules(mock_wechat::unionid_rules::conditional);
    const auto k = component_code2session(f, mp, f.login(mp, "carol"), ct).json();
    CHECK(k.contains("openid"));
    CHECK_FALSE(k.contains("unionid"));
  }
  SECTION("a withdrawn authorization is 61003") {
    f.admin("component_authorize", {{"component_appid", comp}, {"appid", mp}, {"revoke", true}});
    check_error_shape(component_code2session(f, mp, f.login(mp, "alice"), ct), 61003, path, now);
  }
}

// ---------------------------------------------------------------------------- WeCom --

TEST_CASE("WeCom gettoken answers in WeCom's style and keeps one token while it is valid",
          "[mock][wecom]") {
  frozen_fixture f;
  f.admin("corps", {{"corpid", corp}, {"corpsecret", corp_secret}});
  const auto now = f.world().now();
  check_wecom_error(f.get("/cgi-bin/gettoken?corpsecret=" + corp_secret), 41002, "corpid missing",
                    now);
  check_wecom_error(f.get("/cgi-bin/gettoken?corpid=" + corp), 41004, "corpsecret missing", now);
  check_wecom_error(f.get("/cgi-bin/gettoken?corpid=wwnobody&corpsecret=x"), 40013,
                    "invalid corpid", now);
  check_wecom_error(f.get("/cgi-bin/gettoken?corpid=" + corp + "&corpsecret=wrong"), 40001,
                    "invalid credential", now);
  const std::string url = "/cgi-bin/gettoken?corpid=" + corp + "&corpsecret=" + corp_secret;
  const reply r = f.get(url);
  CHECK(r.status == 200);
  check_compact(r);
  CHECK(r.body.rfind("{\"errcode\":0,\"errmsg\":\"ok\",\"access_token\":\"", 0) == 0);
  const std::string token = r.json()["access_token"].get<std::string>();
  CHECK(r.json()["expires_in"] == 7200);
  advance(f, 100);
  const auto again = f.get(url).json();
  CHECK(again["access_token"] == token);
  CHECK(again["expires_in"] == 7100);
  advance(f, 7100);
  const auto fresh = f.get(url).json();
  CHECK(fresh["access_token"] != token);
  CHECK(fresh["expires_in"] == 7200);
}

TEST_CASE("WeCom jscode2session redeems a wx.qy.login code once, for its own corp",
          "[mock][wecom]") {
  frozen_fixture f;
  f.admin("corps", {{"corpid", corp}, {"corpsecret", corp_secret}});
  f.admin("corps", {{"corpid", corp2}, {"corpsecret", "corp-secret-2"}});
  auto token_of = [&](const std::string& id, const std::string& secret) {
    return f.get("/cgi-bin/gettoken?corpid=" + id + "&corpsecret=" + secret)
        .json()["access_token"]
        .get<std::string>();
  };
  const std::string at = token_of(corp, corp_secret), at2 = token_of(corp2, "corp-secret-2");
  auto exchange = [&](const std::string& token, const std::string& code) {
    return f.get("/cgi-bin/miniprogram/jscode2session?access_token=" + token + "&js_code=" + code +
                 "&grant_type=authorization_code");
  };
  const auto now = f.world().now();
  const std::string code =
      f.admin("wecom_login", {{"corpid", corp}, {"userid", "zhang.san@x"}})["code"]
          .get<std::string>();
  check_wecom_error(f.get("/cgi-bin/miniprogram/jscode2session?js_code=" + code), 41001,
                    "access_token missing", now);
  check_wecom_error(exchange("garbage", code), 40014, "invalid access_token", now);
  check_wecom_error(f.get("/cgi-bin/miniprogram/jscode2session?access_token=" + at), 41008,
                    "missing code", now);
  check_wecom_error(exchange(at, "unknowncode"), 40029, "invalid code", now);
  check_wecom_error(exchange(at2, code), 40029, "invalid code", now);  // another corp's
  const reply r = exchange(at, code);
  CHECK(r.status == 200);
  check_compact(r);
  const auto j = r.json();
  CHECK(j["errcode"] == 0);
  CHECK(j["errmsg"] == "ok");
  CHECK(j["corpid"] == corp);
  CHECK(j["userid"] == "zhang.san@x");
  CHECK(wechat::base64_decode(j["session_key"].get<std::string>()).size() == 16);
  CHECK(r.body.rfind("{\"corpid\":", 0) == 0);
  check_wecom_error(exchange(at, code), 40029, "invalid code", now);  // used: 40029 too
  SECTION("a code lives 5 minutes") {
    const std::string late =
        f.admin("wecom_login", {{"corpid", corp}, {"userid", "li"}})["code"].get<std::string>();
    advance(f, 300);
    check_wecom_error(exchange(at, late), 40029, "invalid code", f.world().now());
  }
  SECTION("an expired token is 42001") {
    advance(f, 7200);
    check_wecom_error(
        exchange(at, f.admin("wecom_login", {{"corpid", corp}, {"userid", "li"}})["code"]
                         .get<std::string>()),
        42001, "access_token expired", f.world().now());
  }
  SECTION("a WeChat app token is not a WeCom token, nor the reverse") {
    f.add_standard_apps();
    check_wecom_error(exchange(f.token(mp, mp_secret), code), 40014, "invalid access_token", now);
    CHECK(
        f.post("/cgi-bin/openapi/quota/get?access_token=" + at, R"({"cgi_path":"/cgi-bin/token"})")
            .errcode() == 40014);
  }
}

// ------------------------------------------------------------------ admin, limits --

TEST_CASE("the new admin calls check their fields", "[mock][component][admin]") {
  frozen_fixture f;
  f.add_standard_apps();
  auto status = [&](const std::string& call, const nlohmann::json& body) {
    const reply r = f.post("/__mock/" + call, body.dump());
    INFO(call << " " << body.dump() << " -> " << r.body);
    CHECK(r.json().contains("error"));
    return r.status;
  };
  auto with = [](nlohmann::json b, const char* k, const nlohmann::json& v) {
    b[k] = v;
    return b;
  };
  const auto good = component_body(comp);
  CHECK(status("components", with(good, "component_appid", "wx has space")) == 400);
  CHECK(status("components", with(good, "component_appid", mp)) == 400);  // an app's
  CHECK(status("components", with(good, "secret", "")) == 400);
  CHECK(status("components", with(good, "token", "ab")) == 400);
  CHECK(status("components", with(good, "token", std::string(33, 'a'))) == 400);
  CHECK(status("components", with(good, "token", "has-dash")) == 400);
  CHECK(status("components", with(good, "encoding_aes_key", aes_key.substr(1))) == 400);
  CHECK(status("components", with(good, "encoding_aes_key", aes_key.substr(1) + "+")) == 400);
  CHECK(status("components", with(good, "ticket_url", "ftp://127.0.0.1/x")) == 400);
  CHECK(status("components", with(good, "ticket_url", "http:///x")) == 400);
  CHECK(status("components", with(good, "ticket_url", "http://a b/x")) == 400);
  CHECK(status("components", with(good, "ticket", "x")) == 400);  // unknown field
  CHECK(f.post("/__mock/components", good.dump()).status == 200);
  CHECK(status("components", good) == 400);  // taken
  CHECK(status("apps", {{"appid", comp}, {"secret", "s"}, {"type", "miniprogram"}}) == 400);
  CHECK(status("component_push", {{"component_appid", comp2}}) == 404);
  CHECK(status("component_push", {{"component_appid", comp}, {"x", 1}}) == 400);
  CHECK(status("component_authorize", {{"component_appid", comp}, {"app", mp}}) == 400);
  CHECK(f.get("/__mock/components?component_appid=" + comp2).status == 404);
  CHECK(f.get("/__mock/components").status == 400);
  CHECK(f.get("/__mock/components?component_appid=" + comp + "&x=1").status == 400);
  CHECK(status("corps", {{"corpid", corp}}) == 400);
  CHECK(status("corps", {{"corpid", corp}, {"corpsecret", ""}}) == 400);
  CHECK(status("corps", {{"corpid", corp}, {"corpsecret", "s"}, {"name", "x"}}) == 400);
  CHECK(f.post("/__mock/corps", nlohmann::json{{"corpid", corp}, {"corpsecret", "s"}}.dump())
            .status == 200);
  CHECK(status("corps", {{"corpid", corp}, {"corpsecret", "s"}}) == 400);  // duplicate
  CHECK(status("wecom_login", {{"corpid", corp2}, {"userid", "li"}}) == 404);
  CHECK(status("wecom_login", {{"corpid", corp}, {"userid", ""}}) == 400);
  CHECK(status("wecom_login", {{"corpid", corp}, {"userid", "has space"}}) == 400);
  CHECK(status("wecom_login", {{"corpid", corp}, {"userid", std::string(65, 'a')}}) == 400);
  CHECK(status("wecom_login", {{"corpid", corp}, {"userid", "li"}, {"user", "x"}}) == 400);
  CHECK(f.admin("wecom_login", {{"corpid", corp}, {"userid", std::string(64, 'a')}})
            .contains("code"));
}

TEST_CASE("platforms, authorizations and corps are bounded: 507 at the limit",
          "[mock][component][bounds]") {
  mock_wechat::options o;
  o.limits.components = 1;
  o.limits.component_authorizations = 1;
  o.limits.corps = 1;
  frozen_fixture f(o);
  f.add_standard_apps();
  f.admin("components", component_body(comp));
  const reply c = f.post("/__mock/components", component_body(comp2).dump());
  CHECK(c.status == 507);
  CHECK(c.body.find("components") != std::string::npos);
  f.admin("component_authorize", {{"component_appid", comp}, {"appid", mp}});
  f.admin("component_authorize", {{"component_appid", comp}, {"appid", mp}});  // the same pair
  CHECK(f.post("/__mock/component_authorize",
               nlohmann::json{{"component_appid", comp}, {"appid", mp2}}.dump())
            .status == 507);
  f.admin("corps", {{"corpid", corp}, {"corpsecret", "s"}});
  CHECK(f.post("/__mock/corps", nlohmann::json{{"corpid", corp2}, {"corpsecret", "s"}}.dump())
            .status == 507);
  SECTION("wx.qy.login codes share the codes limit") {
    mock_wechat::options small;
    small.limits.codes = 16;  // one per shard
    fixture g(small);
    g.admin("corps", {{"corpid", corp}, {"corpsecret", "s"}});
    int refused = 0;
    for (int i = 0; i < 64; ++i)
      if (g.post("/__mock/wecom_login",
                 nlohmann::json{{"corpid", corp}, {"userid", "u" + std::to_string(i)}}.dump())
              .status == 507)
        ++refused;
    CHECK(refused > 0);
    CHECK(g.get("/__mock/stats").json()["world"]["wecom_codes"].get<int>() <= 16);
  }
}

TEST_CASE("reset forgets platforms, authorizations, corps and their tokens",
          "[mock][component][admin]") {
  frozen_fixture f;
  f.add_standard_apps();
  f.admin("components", component_body(comp));
  f.admin("component_authorize", {{"component_appid", comp}, {"appid", mp}});
  const std::string ct = fetch_component_token(f, push_ticket(f));
  f.admin("corps", {{"corpid", corp}, {"corpsecret", corp_secret}});
  f.admin("wecom_login", {{"corpid", corp}, {"userid", "li"}});
  const std::string wt = f.get("/cgi-bin/gettoken?corpid=" + corp + "&corpsecret=" + corp_secret)
                             .json()["access_token"]
                             .get<std::string>();
  auto sizes = [&] { return f.get("/__mock/stats").json()["world"]; };
  const auto before = sizes();
  CHECK(before["components"] == 1);
  CHECK(before["component_authorizations"] == 1);
  CHECK(before["corps"] == 1);
  CHECK(before["wecom_codes"] == 1);
  f.admin("reset");
  const auto after = sizes();
  CHECK(after["components"] == 0);
  CHECK(after["component_authorizations"] == 0);
  CHECK(after["corps"] == 0);
  CHECK(after["wecom_codes"] == 0);
  CHECK(f.get("/__mock/components?component_appid=" + comp).status == 404);
  CHECK(component_code2session(f, mp, "x", ct).errcode() == 40014);
  CHECK(f.get("/cgi-bin/miniprogram/jscode2session?access_token=" + wt + "&js_code=x").errcode() ==
        40014);
  // the appid is free again
  CHECK(f.post("/__mock/components", component_body(comp).dump()).status == 200);
}
