// The admin API's contract (DESIGN.md) and the embedded API: bad input gets 400/404 with
// a JSON error naming the field; success is HTTP 200.
#include "mock_support.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>

using namespace mocktest;

namespace {
std::string error_of(const reply& r, int status) {
  INFO(r.body);
  CHECK(r.status == status);
  CHECK(r.content_type == "application/json; charset=UTF-8");
  const auto j = r.json();
  REQUIRE(j.contains("error"));
  return j["error"].get<std::string>();
}
}  // namespace

TEST_CASE("admin: health, apps, and errors that name the field", "[mock][admin]") {
  fixture f;
  CHECK(f.get("/__mock/health").json() == nlohmann::json{{"status", "ok"}});
  const auto a = f.admin(
      "apps", {{"appid", mp}, {"secret", "s"}, {"type", "miniprogram"}, {"open_account", "o"}});
  CHECK(a == nlohmann::json{
                 {"appid", mp}, {"secret", "s"}, {"type", "miniprogram"}, {"open_account", "o"}});
  const auto generated = f.admin("apps", {{"name", "shop"}, {"type", "official_account"}});
  CHECK(generated["appid"] == mock_wechat::make_appid("shop"));
  CHECK(generated["secret"].get<std::string>().size() == 32);
  CHECK(f.get("/__mock/apps").json().size() == 2);
  CHECK(error_of(f.post("/__mock/apps", "{not json"), 400).find("JSON") != std::string::npos);
  CHECK(error_of(f.post("/__mock/apps", "[1]"), 400).find("object") != std::string::npos);
  CHECK(error_of(f.post("/__mock/apps", R"({"type":"miniprogram"})"), 400).find("'appid'") !=
        std::string::npos);
  CHECK(error_of(f.post("/__mock/apps", R"({"appid":"wx1","type":"robot"})"), 400).find("'type'") !=
        std::string::npos);
  CHECK(error_of(f.post("/__mock/apps", R"({"appid":1})"), 400).find("'appid'") !=
        std::string::npos);
  CHECK(error_of(f.post("/__mock/apps", R"({"appid":"a b"})"), 400).find("'appid'") !=
        std::string::npos);
}

TEST_CASE("admin: device actions need known apps of the right type", "[mock][admin]") {
  fixture f;
  f.add_standard_apps();
  CHECK(error_of(f.post("/__mock/login", R"({"appid":"wx0000000000000000","user":"a"})"), 404)
            .find("unknown appid") != std::string::npos);
  CHECK(error_of(f.post("/__mock/login", R"({"appid":")" + mp + R"("})"), 400).find("'user'") !=
        std::string::npos);
  CHECK(error_of(f.post("/__mock/login", R"({"appid":")" + oa + R"(","user":"a"})"), 400)
            .find("mini program") != std::string::npos);
  CHECK(error_of(f.post("/__mock/follow", R"({"appid":")" + mp + R"(","user":"a"})"), 400)
            .find("official account") != std::string::npos);
  CHECK(error_of(f.post("/__mock/authorize", R"({"appid":")" + mp + R"(","user":"a"})"), 400)
            .find("mobile app") != std::string::npos);
  CHECK(error_of(f.post("/__mock/user_info", R"({"appid":")" + mp + R"(","user":"new"})"), 400)
            .find("log in first") != std::string::npos);
  CHECK(
      error_of(f.post("/__mock/oauth_code", R"({"appid":")" + oa + R"(","user":"a","scope":"x"})"),
               400)
          .find("'scope'") != std::string::npos);
  f.login(mp, "a");
  CHECK(error_of(f.post("/__mock/phone", R"({"appid":")" + mp + R"(","user":"a","phone":"12ab"})"),
                 400)
            .find("'phone'") != std::string::npos);
  CHECK(error_of(f.get("/__mock/nothing"), 404).find("unknown admin call") != std::string::npos);
  CHECK(error_of(f.get("/__mock/login"), 404).find("GET /__mock/login") != std::string::npos);
  const auto ctx = f.admin("wxcontext", {{"appid", mp}, {"user", "a"}});
  CHECK(ctx["APPID"] == mp);
  CHECK(ctx["ENV"].is_string());
  CHECK(ctx["SOURCE"].is_string());
  const auto pay = f.admin("pay", {{"appid", mp}, {"user", "a"}});
  CHECK(pay["transaction_id"].get<std::string>().size() == 28);
}

TEST_CASE("admin: the clock advances, sets (frozen) and answers integer now",
          "[mock][admin][clock]") {
  fixture f;
  const auto real = f.get("/__mock/clock").json()["now"].get<std::int64_t>();
  CHECK(std::llabs(real - std::time(nullptr)) <= 2);
  CHECK(f.admin("clock", {{"set", 1800000000}}) == nlohmann::json{{"now", 1800000000}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK(f.get("/__mock/clock").json()["now"] == 1800000000);  // frozen
  CHECK(f.admin("clock", {{"advance", 301}})["now"] == 1800000301);
  CHECK(error_of(f.post("/__mock/clock", R"({"advance":"x"})"), 400).find("'advance'") !=
        std::string::npos);
  CHECK(error_of(f.post("/__mock/clock", R"({})"), 400).find("advance") != std::string::npos);
  f.admin("reset");
  CHECK(std::llabs(f.get("/__mock/clock").json()["now"].get<std::int64_t>() - std::time(nullptr)) <=
        2);
}

TEST_CASE("the virtual clock advances by plain seconds or by any std::chrono duration",
          "[mock][clock]") {
  mock_wechat::virtual_clock c;
  c.set(1800000000);
  c.advance(301);
  CHECK(c.now() == 1800000301);
  c.advance(std::chrono::milliseconds(1500));
  CHECK(c.now_ms() == 1800000302500);
  c.advance(std::chrono::minutes(-5));
  CHECK(c.now_ms() == 1800000002500);
  CHECK(c.now() == 1800000002);
}

TEST_CASE("admin: reset empties world, journal and faults", "[mock][admin]") {
  fixture f;
  f.add_standard_apps();
  f.get("/sns/jscode2session?appid=x");
  f.admin("faults", {{"path", "/cgi-bin/token"}, {"errcode", -1}});
  f.admin("reset");
  CHECK(f.get("/__mock/apps").json().empty());
  CHECK(f.get("/__mock/requests").json().empty());
  CHECK(f.get("/__mock/faults").json().empty());
  CHECK(error_of(f.post("/__mock/login", R"({"appid":")" + mp + R"(","user":"a"})"), 404).size() >
        0);
}

TEST_CASE("oversized request bodies get HTTP 413 with a JSON error", "[mock][admin]") {
  mock_wechat::options o;
  o.max_body = 1024;
  fixture f(o);
  const reply r = f.post("/__mock/apps", std::string(4096, ' '));
  CHECK(r.status == 413);
  CHECK(r.json()["error"] == "request body too large");
  CHECK(f.get("/__mock/health").status == 200);
}

TEST_CASE("the admin token, when set, is required", "[mock][admin]") {
  mock_wechat::options o;
  o.admin_token = "t0ken";
  fixture f(o);
  CHECK(f.get("/__mock/health").status == 401);
  httplib::Headers h = {{"Authorization", "Bearer t0ken"}};
  auto r = f.http.Get("/__mock/health", h);
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(f.get("/sns/jscode2session").status == 200);  // the WeChat API itself is not gated
}

TEST_CASE("scenarios load apps, users, follows and the rule mode, or say what is wrong",
          "[mock][scenario]") {
  mock_wechat::world w;
  const auto s = nlohmann::json::parse(R"({
    "unionid_rules": "bound",
    "apps": [{"appid":"wx1000000000000001","secret":"s","type":"miniprogram","open_account":"acct"},
             {"name":"news","type":"official_account","open_account":"acct"}],
    "users": [{"id":"alice","high_risk":true,"risk_rank":3,"profile":{"nickName":"Alice","gender":2},
               "follows":[")" + mock_wechat::make_appid("news") +
                                       R"("]}],
    "follows": [{"user":"bob","appid":")" +
                                       mock_wechat::make_appid("news") + R"("},
                {"user":"dora","appid":"news"}],
    "authorizations": [{"user":"carol","appid":")" +
                                       mock_wechat::make_appid("news") + R"("}]
  })");
  mock_wechat::apply_scenario(w, s);
  CHECK(w.rules() == mock_wechat::unionid_rules::bound);
  CHECK(w.apps().size() == 2);
  CHECK(w.profile_of("alice").nickname == "Alice");
  w.login("wx1000000000000001", "alice");  // the app sees alice's openid
  CHECK(w.user_risk_rank(*w.find_app("wx1000000000000001"), "wx1000000000000001",
                         mock_wechat::openid("wx1000000000000001", "alice"))
            .value.risk_rank == 3);
  CHECK(w.exchange_js_code("wx1000000000000001", "s", w.login("wx1000000000000001", "alice"))
            .errc == wechat::api_errc::code_blocked);
  CHECK(w.follower(*w.find_app(mock_wechat::make_appid("news")),
                   mock_wechat::openid(mock_wechat::make_appid("news"), "bob"))
            .value.subscribed);
  // an app declared by "name" may be referred to by that name
  CHECK(w.follower(*w.find_app(mock_wechat::make_appid("news")),
                   mock_wechat::openid(mock_wechat::make_appid("news"), "dora"))
            .value.subscribed);

  auto error = [](const std::string& text) {
    mock_wechat::world x;
    try {
      mock_wechat::apply_scenario(x, nlohmann::json::parse(text));
    } catch (const mock_wechat::admin_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error(R"({"apps":[{"appid":"wx1"},{"type":"robot","appid":"wx2"}]})")
            .find("scenario.apps[1]") != std::string::npos);
  CHECK(error(R"({"unionid_rules":"sometimes"})").find("unionid_rules") != std::string::npos);
  CHECK(error(R"({"users":[{"high_risk":true}]})").find("scenario.users[0]: field 'id'") !=
        std::string::npos);
  CHECK(error(R"({"users":[{"id":"a"},{"id":"b","risk_rank":5}]})")
            .find("scenario.users[1]: field 'risk_rank'") == 0);
  CHECK(error(R"({"follows":[{"user":"a","appid":"wxnope"}]})").find("unknown appid") !=
        std::string::npos);
  // world errors carry the path of the entry that caused them
  CHECK(error(R"({"follows":[{"user":"a","appid":"wxnope"}]})").find("scenario.follows[0]: ") ==
        0);
  CHECK(error(R"({"users":[{"id":"a","authorized":["x","wxnope"]}]})")
            .find("scenario.users[0].authorized[0]: ") == 0);
  CHECK(error(R"({"apps":{}})").find("must be an array") != std::string::npos);
  CHECK(error("[]").find("object") != std::string::npos);

  const std::string path = "scenario_test_bad.json";
  std::ofstream(path) << "{ not json";
  // an unreadable or non-JSON file is the caller's mistake too (mock_wechat exits 2)
  CHECK_THROWS_AS(mock_wechat::load_scenario_file(w, path), mock_wechat::admin_error);
  std::remove(path.c_str());
  CHECK_THROWS_AS(mock_wechat::load_scenario_file(w, "/nonexistent/scenario.json"),
                  mock_wechat::admin_error);
}

TEST_CASE("the embedded server stops promptly even with an idle keep-alive connection",
          "[mock][embedded]") {
  auto mock = std::make_unique<mock_wechat::server>();
  httplib::Client c("127.0.0.1", mock->port());
  c.set_keep_alive(true);
  REQUIRE(c.Get("/__mock/health"));
  const auto t0 = std::chrono::steady_clock::now();
  mock.reset();  // keep-alive timeout is 5 s; stop must not wait for it
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
}

TEST_CASE("many keep-alive connections beyond the worker count are all served",
          "[mock][embedded]") {
  mock_wechat::options o;
  o.threads = 4;
  mock_wechat::server mock(o);
  std::vector<std::unique_ptr<httplib::Client>> clients;
  for (int i = 0; i < 12; ++i) {
    clients.push_back(std::make_unique<httplib::Client>("127.0.0.1", mock.port()));
    clients.back()->set_keep_alive(true);
    clients.back()->set_read_timeout(10, 0);
  }
  for (int round = 0; round < 3; ++round)
    for (auto& c : clients) {
      auto r = c->Get("/__mock/health");
      REQUIRE(r);
      CHECK(r->status == 200);
    }
}

TEST_CASE("stats percentiles are honest for tiny samples: p99 never below the mean",
          "[mock][stats]") {
  mock_wechat::endpoint_stats s;
  s.add(0, 200, 10);
  s.add(0, 200, 1000);
  auto l = s.to_json()["latency_us"];
  CHECK(l["mean"] == 505);
  CHECK(l["p99"] == 1000);  // 2 samples: the 99th percentile is the slowest, not the fastest
  CHECK(l["p50"].get<std::int64_t>() <= 12);  // the bucket of 10 us, never above the max
  CHECK(l["max"] == 1000);
  for (int i = 0; i < 98; ++i)
    s.add(0, 200, 10);
  l = s.to_json()["latency_us"];  // 100 samples: 99 at 10 us, one at 1000
  CHECK(l["p99"].get<std::int64_t>() <= 12);
  CHECK(l["p50"].get<std::int64_t>() <= 12);
  s.add(0, 200, 1000);  // 101 samples, 2 slow: rank ceil(99.99) = 100 is a slow one
  CHECK(s.to_json()["latency_us"]["p99"] == 1000);
}
