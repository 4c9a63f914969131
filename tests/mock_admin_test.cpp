// The admin API's contract (DESIGN.md) and the embedded API: bad input gets 400/404 with
// a JSON error naming the field; success is HTTP 200.
#include "mock_support.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <vector>

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

// Issue 19, finding 8: {"advance": 2^63-1} moved time back (signed overflow), {"set":
// 2^63-1} gave now -1, a negative virtual time was accepted, and an errcode of 2^64-1 was
// read as -1. Every integer the admin API takes is range-checked.
TEST_CASE("admin: integers out of range are 400 naming the field and the range, never "
          "wrapped, over HTTP and HTTPS",
          "[mock][admin][clock][tls]") {
  for (const bool tls : {false, true}) {
    INFO((tls ? "https" : "http"));
    mock_wechat::server mock(tls ? tls_options({}, "mock_tls_ca_ranges") : mock_wechat::options{});
    REQUIRE(mock.tls() == tls);
    const int port = mock.port();
    auto post = [&](const std::string& call, const std::string& body) {
      return raw_request(port, tls, "POST", "/__mock/" + call, body);
    };
    auto now = [&] { return raw_request(port, tls, "GET", "/__mock/clock").json()["now"]; };
    REQUIRE(post("clock", R"({"set":1800000000})").status == 200);
    for (const char* body : {R"({"advance":9223372036854775807})", R"({"advance":-1800000001})",
                             R"({"advance":18446744073709551615})", R"({"advance":1.5})",
                             R"({"advance":-9223372036854775808})"}) {
      INFO(body);
      const std::string e = error_of(post("clock", body), 400);
      CHECK(e.find("field 'advance' must be an integer from -1800000000 to 251602300799") == 0);
      CHECK(e.find("253402300799") != std::string::npos);
      CHECK(now() == 1800000000);  // unchanged
    }
    for (const char* body : {R"({"set":9223372036854775807})", R"({"set":-1})",
                             R"({"set":253402300800})", R"({"set":18446744073709551615})"}) {
      INFO(body);
      CHECK(error_of(post("clock", body), 400).find("field 'set' must be an integer from 0 to "
                                                    "253402300799") == 0);
      CHECK(now() == 1800000000);
    }
    // the bounds themselves are fine
    CHECK(post("clock", R"({"set":253402300799})").json()["now"] == 253402300799);
    CHECK(error_of(post("clock", R"({"advance":1})"), 400).find("field 'advance'") == 0);
    CHECK(post("clock", R"({"advance":-253402300799})").json()["now"] == 0);
    CHECK(post("clock", R"({"set":1800000000})").json()["now"] == 1800000000);
    // faults: an errcode of 2^64-1 is not -1
    CHECK(error_of(post("faults", R"({"path":"/sns/jscode2session","errcode":18446744073709551615})"),
                   400) == "field 'errcode' must be an integer from -2147483648 to 2147483647");
    CHECK(error_of(post("faults", R"({"path":"/sns/jscode2session","errcode":-1,"times":18446744073709551615})"),
                   400)
              .find("field 'times' must be an integer from 1 to") == 0);
    CHECK(error_of(post("faults", R"({"path":"/sns/jscode2session","http_status":18446744073709551515})"),
                   400)
              .find("field 'http_status'") == 0);
    CHECK(raw_request(port, tls, "GET", "/__mock/faults").json().empty());
    // users: risk_rank, and a profile's gender (4294967297 was read as 1)
    CHECK(error_of(post("users", R"({"user":"a","risk_rank":18446744073709551615})"), 400)
              .find("'risk_rank'") != std::string::npos);
    CHECK(error_of(post("users", R"({"user":"a","profile":{"gender":4294967297}})"), 400)
              .find("'gender'") != std::string::npos);
    CHECK(post("users", R"({"user":"a","risk_rank":4,"profile":{"gender":2}})").status == 200);
  }
}

TEST_CASE("the virtual clock refuses to leave 0 to 9999-12-31 and stays where it was",
          "[mock][clock]") {
  mock_wechat::virtual_clock c;
  c.set(1800000000);
  CHECK_THROWS_AS(c.advance(std::numeric_limits<std::int64_t>::max()), std::out_of_range);
  CHECK_THROWS_AS(c.advance(std::numeric_limits<std::int64_t>::min()), std::out_of_range);
  CHECK_THROWS_AS(c.advance(-1800000001), std::out_of_range);
  CHECK_THROWS_AS(c.advance(std::chrono::hours(std::numeric_limits<std::int32_t>::max())),
                  std::out_of_range);
  CHECK_THROWS_AS(c.set(-1), std::out_of_range);
  CHECK_THROWS_AS(c.set(253402300800), std::out_of_range);
  CHECK(c.now() == 1800000000);
  c.set(253402300799);  // virtual_clock::max_unix, 9999-12-31T23:59:59Z
  CHECK(c.now() == 253402300799);
  c.advance(-253402300799);
  CHECK(c.now() == 0);
}

// Issue 19, hardening: "Bearer" matched only as written; RFC 7235 makes the scheme
// case-insensitive.
TEST_CASE("the admin token: the Bearer scheme in any case, then the token, over HTTP and HTTPS",
          "[mock][admin][tls]") {
  for (const bool tls : {false, true}) {
    INFO((tls ? "https" : "http"));
    mock_wechat::options o = tls ? tls_options({}, "mock_tls_ca_bearer") : mock_wechat::options{};
    o.admin_token = "0123456789abcdef-token";
    mock_wechat::server mock(o);
    const int port = mock.port();
    for (const char* ok : {"Bearer 0123456789abcdef-token", "bearer 0123456789abcdef-token",
                           "BEARER 0123456789abcdef-token", "bEaReR   0123456789abcdef-token"}) {
      INFO(ok);
      CHECK(raw_request(port, tls, "GET", "/__mock/health", "",
                        "Authorization: " + std::string(ok) + "\r\n")
                .status == 200);
    }
    for (const char* refused :
         {"", "Authorization: Bearer\r\n", "Authorization: Bearer0123456789abcdef-token\r\n",
          "Authorization: Basic 0123456789abcdef-token\r\n",
          "Authorization: Bearer 0123456789abcdef-toke\r\n",
          "Authorization: Bearer 0123456789ABCDEF-TOKEN\r\n",  // the token itself is exact
          "Authorization: Bearers 0123456789abcdef-token\r\n"}) {
      INFO(refused);
      const reply r = raw_request(port, tls, "GET", "/__mock/health", "", refused);
      CHECK(r.status == 401);
      CHECK(r.body.find("0123456789abcdef") == std::string::npos);
    }
  }
}

// Issue 19, hardening: a scenario's duplicate appid silently replaced the first, unknown
// fields ("secert") were ignored, a NUL in an appid was accepted. The admin API's
// POST /__mock/apps parses apps with the same code.
TEST_CASE("scenario files and POST /__mock/apps refuse unknown fields, a duplicate appid and "
          "control characters, naming the path",
          "[mock][scenario][admin]") {
  auto error = [](const std::string& text) {
    mock_wechat::world x;
    try {
      mock_wechat::apply_scenario(x, nlohmann::json::parse(text));
    } catch (const mock_wechat::admin_error& e) {
      CHECK(e.status() == 400);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error(R"({"apps":[{"appid":"wx1","secert":"s"}]})") ==
        "scenario.apps[0]: unknown field 'secert' (known: appid, name, secret, type, open_account)");
  CHECK(error(R"({"apps":[{"appid":"wx1"},{"appid":"wx2"},{"appid":"wx1","secret":"s2"}]})") ==
        "scenario.apps[2]: appid wx1 is declared twice (first at scenario.apps[0])");
  CHECK(error(R"({"apps":[{"name":"shop"},{"appid":")" + mock_wechat::make_appid("shop") +
              R"("}]})")
            .find("scenario.apps[1]: appid " + mock_wechat::make_appid("shop") +
                  " is declared twice") == 0);
  CHECK(error(R"({"apps":[{"appid":"wx\u0000evil"}]})").find("scenario.apps[0]: field 'appid'") ==
        0);
  CHECK(error(R"({"apps":[{"appid":"wx1","secret":"a\u0007b"}]})") ==
        "scenario.apps[0]: field 'secret' must not contain control characters");
  CHECK(error(R"({"apps":[{"appid":"wx1","open_account":"a\nb"}]})")
            .find("scenario.apps[0]: field 'open_account'") == 0);
  CHECK(error(R"({"unionid_rule":"bound"})").find("scenario: unknown field 'unionid_rule'") == 0);
  CHECK(error(R"({"users":[{"id":"a","follow":["x"]}]})")
            .find("scenario.users[0]: unknown field 'follow'") == 0);
  CHECK(error(R"({"users":[{"id":"a","profile":{"nickname":"A"}}]})")
            .find("scenario.users[0].profile: unknown field 'nickname'") == 0);
  CHECK(error(R"({"users":[{"id":"a"},{"id":"a"}]})") ==
        "scenario.users[1]: user a is declared twice (first at scenario.users[0])");
  CHECK(error(R"({"apps":[{"appid":"wx1","type":"official_account"}],"follows":[{"user":"a","appid":"wx1","when":1}]})")
            .find("scenario.follows[0]: unknown field 'when'") == 0);
  CHECK(error(R"({"authorizations":[{"user":"a","app":"wx1"}]})")
            .find("scenario.authorizations[0]: field 'appid' is required") == 0);
  CHECK(error(R"({"apps":[{"appid":"wx1"}],"users":[{"id":"a"}]})") == "no error");

  fixture f;
  CHECK(error_of(f.post("/__mock/apps", R"({"appid":"wx1","secert":"s"})"), 400) ==
        "app: unknown field 'secert' (known: appid, name, secret, type, open_account)");
  CHECK(error_of(f.post("/__mock/apps", R"({"appid":"wx\u0000evil"})"), 400).find("'appid'") !=
        std::string::npos);
  CHECK(error_of(f.post("/__mock/apps", R"({"appid":"wx\r\nX-Evil: 1"})"), 400).find("'appid'") !=
        std::string::npos);
  const std::string e = error_of(f.post("/__mock/apps", R"({"appid":"wx1","secret":"top\u0000secret"})"), 400);
  CHECK(e == "field 'secret' must not contain control characters");
  CHECK(error_of(f.post("/__mock/users", R"({"user":"a","profile":{"gendre":1}})"), 400)
            .find("unknown field 'gendre'") != std::string::npos);
  CHECK(f.get("/__mock/apps").json().empty());
  // registering an appid again through the admin API still replaces it (documented)
  f.admin("apps", {{"appid", "wx1"}, {"secret", "one"}});
  CHECK(f.admin("apps", {{"appid", "wx1"}, {"secret", "two"}})["secret"] == "two");
  CHECK(f.get("/__mock/apps").json().size() == 1);
}

TEST_CASE("every admin call refuses a field it does not take, naming it and the call's fields "
          "(a fault's 'time' typo would have been unlimited)",
          "[mock][admin]") {
  fixture f;
  f.admin("apps", {{"appid", "wx1"}, {"secret", "s"}});
  CHECK(error_of(f.post("/__mock/faults", R"({"path":"/sns/jscode2session","errcode":-1,"time":1})"),
                 400) ==
        "fault: unknown field 'time' (known: path, errcode, http_status, delay_ms, latency, "
        "oversized, drop, malformed, truncated, content_type, times, probability)");
  CHECK(f.get("/__mock/faults").json().empty());  // nothing was added
  CHECK(error_of(f.post("/__mock/login", R"({"appid":"wx1","usr":"alice"})"), 400) ==
        "POST /__mock/login: unknown field 'usr' (known: appid, user)");
  CHECK(error_of(f.post("/__mock/clock", R"({"advence":301})"), 400) ==
        "POST /__mock/clock: unknown field 'advence' (known: advance, set, frozen)");
  CHECK(error_of(f.post("/__mock/unfollow", R"({"user":"a","appid":"wx1","x":1})"), 400)
            .find("POST /__mock/unfollow: unknown field 'x'") == 0);
  CHECK(error_of(f.post("/__mock/oauth_code", R"({"appid":"wx1","user":"a","snapshoot":true})"),
                 400)
            .find("unknown field 'snapshoot' (known: appid, user, scope, snapshot)") !=
        std::string::npos);
  for (const char* call : {"/__mock/user_info", "/__mock/user_profile", "/__mock/phone",
                           "/__mock/pay", "/__mock/wxcontext", "/__mock/plugin_login",
                           "/__mock/follow", "/__mock/authorize"}) {
    INFO(call);
    CHECK(error_of(f.post(call, R"({"appid":"wx1","user":"a","typo":1})"), 400)
              .find(std::string("POST ") + call + ": unknown field 'typo'") == 0);
  }
  CHECK(error_of(f.post("/__mock/users", R"({"user":"a","high_risk":true,"typo":1})"), 400) ==
        "POST /__mock/users: unknown field 'typo' (known: user, high_risk, risk_rank, profile)");
  // reset takes no field; a query parameter other than path would clear or list everything
  CHECK(error_of(f.post("/__mock/reset", R"({"keep_apps":true})"), 400) ==
        "POST /__mock/reset: unknown field 'keep_apps' (it takes no fields)");
  CHECK(f.get("/__mock/apps").json().size() == 1);  // nothing was reset
  f.admin("faults", {{"path", "/sns/jscode2session"}, {"errcode", -1}, {"times", 1}});
  CHECK(error_of(f.del("/__mock/faults?pth=/x"), 400) ==
        "/__mock/faults: unknown query parameter 'pth' (known: path, id)");
  CHECK(f.get("/__mock/faults").json().size() == 1);  // nothing was cleared
  CHECK(error_of(f.get("/__mock/requests?paht=/x"), 400).find("unknown query parameter 'paht'") !=
        std::string::npos);
  CHECK(error_of(f.post("/__mock/clock", R"({"advance":1,"frozen":true})"), 400)
            .find("'frozen' goes with 'set'") != std::string::npos);
  // the calls' own fields still work, and a body-less POST is still "no fields"
  CHECK(f.admin("login", {{"appid", "wx1"}, {"user", "alice"}}).contains("code"));
  CHECK(f.del("/__mock/faults?path=/sns/jscode2session").status == 200);
  CHECK(f.get("/__mock/faults").json().empty());
  // ?id= removes that one fault only (a load generator's latency, not the test's own faults)
  const auto mine = f.admin("faults", {{"path", "*"}, {"latency", "fixed:1"}}).at("id").get<std::uint64_t>();
  const auto theirs = f.admin("faults", {{"path", "*"}, {"errcode", -1}, {"times", 1}}).at("id").get<std::uint64_t>();
  CHECK(error_of(f.del("/__mock/faults?id=" + std::to_string(mine) + "&path=*"), 400) ==
        "DELETE /__mock/faults: give ?id= or ?path=, not both");
  CHECK(error_of(f.del("/__mock/faults?id=x1"), 400).find("id 'x1' is not a fault id") != std::string::npos);
  CHECK(error_of(f.del("/__mock/faults?id=0"), 400).find("is not a fault id") != std::string::npos);
  CHECK(f.get("/__mock/faults").json().size() == 2);
  CHECK(f.del("/__mock/faults?id=" + std::to_string(mine)).status == 200);
  const auto left = f.get("/__mock/faults").json();
  REQUIRE(left.size() == 1);
  CHECK(left[0].at("id").get<std::uint64_t>() == theirs);
  CHECK(error_of(f.del("/__mock/faults?id=" + std::to_string(mine)), 404) ==
        "DELETE /__mock/faults: no active fault has id " + std::to_string(mine));
  CHECK(f.del("/__mock/faults").status == 200);
  CHECK(f.post("/__mock/reset", "").status == 200);
  CHECK(f.get("/__mock/apps").json().empty());
}

TEST_CASE("options::prepare sets the world up before the port is bound (mock_wechat --scenario: "
          "no request sees an empty world)",
          "[mock][admin]") {
  int port = 0;
  {
    mock_wechat::server probe;  // a port that was free a moment ago
    port = probe.port();
  }
  mock_wechat::options o;
  o.port = port;
  bool answered = true;
  o.prepare = [&](mock_wechat::world& w) {
    w.add_app({"wx1", "s", mock_wechat::app_type::miniprogram, "acct"});
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(1, 0);
    answered = static_cast<bool>(c.Get("/__mock/health"));
  };
  {
    mock_wechat::server s(o);
    CHECK_FALSE(answered);  // nothing listened while the world was prepared
    httplib::Client c("127.0.0.1", s.port());
    auto r = c.Get("/__mock/apps");
    REQUIRE(r);
    CHECK(nlohmann::json::parse(r->body).size() == 1);
  }
  o.port = 0;
  o.prepare = [](mock_wechat::world&) { throw mock_wechat::admin_error(400, "scenario: bad"); };
  CHECK_THROWS_AS(mock_wechat::server(o), mock_wechat::admin_error);
}

namespace {
// Redeems every entry of a POST /__mock/logins answer through jscode2session, once and once
// more, and checks what it gives against the entry; the session_keys, by code.
std::map<std::string, std::string> redeem_logins(fixture& f, const std::string& appid,
                                                 const std::string& secret,
                                                 const nlohmann::json& logins) {
  std::map<std::string, std::string> keys;
  for (const auto& e : logins) {
    INFO(e.dump());
    const std::string user = e["user"], code = e["code"];
    const auto s = f.code2session(appid, secret, code).json();
    REQUIRE(s.contains("session_key"));
    CHECK(s["openid"] == e["openid"]);
    CHECK(e["openid"] == mock_wechat::openid(appid, user));
    CHECK(s.contains("unionid") == e.contains("unionid"));
    if (s.contains("unionid")) CHECK(s["unionid"] == e["unionid"]);
    CHECK(f.code2session(appid, secret, code).errcode() == 40163);  // exactly once
    keys[code] = s["session_key"].get<std::string>();
  }
  return keys;
}
}  // namespace

TEST_CASE("admin logins: each entry is a login and its payloads, made with that login's key, "
          "redeeming once with the openid and unionid it names",
          "[mock][admin][logins]") {
  fixture f;
  f.add_standard_apps();
  wechat::verify_options o;
  o.appid = mp;
  SECTION("users from a prefix in a bound mini program, with all three payloads") {
    f.login(mp, "lt-7-1001");  // a key from before: the batch's login replaces it
    const auto r = f.admin("logins", {{"appid", mp},
                                      {"user_prefix", "lt-7-"},
                                      {"first", 1000},
                                      {"count", 5},
                                      {"with", {"phone", "user_info", "user_profile"}},
                                      {"phone", "+8613800000000"}});
    REQUIRE(r.size() == 1);
    const auto& logins = r["logins"];
    REQUIRE(logins.size() == 5);
    for (std::size_t i = 0; i < logins.size(); ++i) {
      const auto& e = logins[i];
      INFO(e.dump());
      CHECK(e["user"] == "lt-7-" + std::to_string(1000 + i));
      std::vector<std::string> keys;
      for (const auto& kv : e.items())
        keys.push_back(kv.key());
      CHECK(keys == std::vector<std::string>{"code", "openid", "phone", "unionid", "user",
                                             "user_info", "user_profile"});
      CHECK(e["unionid"] == mock_wechat::unionid("acct-1", e["user"].get<std::string>()));
      CHECK(e["user_info"].size() == 4);
      CHECK(e["user_profile"].size() == 4);
      CHECK(e["phone"].size() == 3);
    }
    const auto keys = redeem_logins(f, mp, mp_secret, logins);
    const std::string token = f.token(mp, mp_secret);
    for (const auto& e : logins) {
      INFO(e.dump());
      const std::string& key = keys.at(e["code"].get<std::string>());
      const auto& ui = e["user_info"];
      const auto u = wechat::decrypt_user_info(
          key,
          {ui["encryptedData"].get<std::string>(), ui["iv"].get<std::string>(),
           ui["rawData"].get<std::string>(), ui["signature"].get<std::string>()},
          o);
      CHECK(u.openid == e["openid"]);
      CHECK(u.unionid == std::optional<std::string>(e["unionid"].get<std::string>()));
      const auto& up = e["user_profile"];
      CHECK(wechat::decrypt_user_profile(
                key,
                {up["encryptedData"].get<std::string>(), up["iv"].get<std::string>(),
                 up["rawData"].get<std::string>(), up["signature"].get<std::string>()},
                o)
                .watermark.appid == mp);
      const auto& ph = e["phone"];
      CHECK(wechat::decrypt_phone_number(
                key, {ph["encryptedData"].get<std::string>(), ph["iv"].get<std::string>()}, o)
                .pure_phone_number == "13800000000");
      const auto n = f.post("/wxa/business/getuserphonenumber?access_token=" + token,
                            nlohmann::json{{"code", ph["code"]}}.dump())
                         .json();
      CHECK(n["phone_info"]["purePhoneNumber"] == "13800000000");
    }
  }
  SECTION("named users in an unbound mini program: no unionid, and only what 'with' asks") {
    const auto r = f.admin("logins", {{"appid", lone}, {"users", {"bob", "amy"}}});
    const auto& logins = r["logins"];
    REQUIRE(logins.size() == 2);
    CHECK(logins[0]["user"] == "bob");
    CHECK(logins[1]["user"] == "amy");
    for (const auto& e : logins) {
      CHECK(e.size() == 3);  // user, code, openid
      CHECK_FALSE(e.contains("unionid"));
    }
    redeem_logins(f, lone, "lone-secret", logins);
  }
  SECTION("conditional rules: the unionid is promised only to a user who follows a "
          "same-account official account, as jscode2session then gives it") {
    f.world().set_rules(mock_wechat::unionid_rules::conditional);
    f.admin("follow", {{"user", "fan"}, {"appid", oa}});
    const auto r =
        f.admin("logins", {{"appid", mp}, {"users", {"fan", "stranger"}}, {"with", {"user_info"}}});
    const auto& logins = r["logins"];
    REQUIRE(logins.size() == 2);
    CHECK(logins[0].contains("unionid"));
    CHECK_FALSE(logins[1].contains("unionid"));
    const auto keys = redeem_logins(f, mp, mp_secret, logins);
    // the decrypted user info carries it in both modes (getUserInfo is itself the consent)
    const auto& ui = logins[1]["user_info"];
    CHECK(wechat::decrypt_user_info(
              keys.at(logins[1]["code"].get<std::string>()),
              {ui["encryptedData"].get<std::string>(), ui["iv"].get<std::string>()}, o)
              .unionid.has_value());
  }
}

TEST_CASE("admin logins: bad requests are 400 naming the field, and log nobody in",
          "[mock][admin][logins]") {
  fixture f;
  f.add_standard_apps();
  const auto bad = [&](const nlohmann::json& body) {
    return error_of(f.post("/__mock/logins", body.dump()), 400);
  };
  const nlohmann::json base = {{"appid", mp}};
  auto with = [&](nlohmann::json extra) {
    nlohmann::json j = base;
    j.update(extra);
    return j;
  };
  CHECK(bad(with({{"user_prefix", "u"}, {"count", 0}})) ==
        "field 'count' must be an integer from 1 to 1000");
  CHECK(bad(with({{"user_prefix", "u"}, {"count", 1001}})) ==
        "field 'count' must be an integer from 1 to 1000");
  CHECK(bad(with({{"user_prefix", "u"}, {"count", 1}, {"first", -1}})) ==
        "field 'first' must be an integer from 0 to 9007199254740992");
  CHECK(bad(with({{"users", nlohmann::json::array()}})) ==
        "field 'users' must hold 1 to 1000 user names (it holds 0)");
  CHECK(bad(with({{"users", std::vector<std::string>(1001, "x")}})) ==
        "field 'users' must hold 1 to 1000 user names (it holds 1001)");
  CHECK(bad(with({{"users", {"a"}}, {"user_prefix", "u"}, {"count", 1}})) ==
        "give 'users' or 'user_prefix' with 'count' (and 'first'), not both");
  CHECK(bad(base) == "give 'users' (a list of user names) or 'user_prefix' with 'count'");
  CHECK(bad(with({{"user_prefix", "u"}})) == "field 'count' is required with 'user_prefix'");
  CHECK(bad(with({{"count", 3}})) == "field 'user_prefix' is required with 'count'");
  CHECK(bad(with({{"first", 3}})) == "field 'first' goes with 'user_prefix' and 'count'");
  CHECK(bad(with({{"users", "a"}})) == "field 'users' must be an array of user names");
  CHECK(bad(with({{"users", {"a", 1}}})) == "field 'users': item 1 must be a string");
  CHECK(bad(with({{"users", {"a", "b", "c", "b"}}})) == "user 'b' appears twice (index 1 and 3)");
  CHECK(bad(with({{"users", {"a", ""}}})) == "user '' (index 1): field 'user' is required");
  CHECK(bad(with({{"user_prefix", std::string(126, 'p')}, {"first", 99}, {"count", 2}})) ==
        "user '" + std::string(64, 'p') +
            "...' (index 1): field 'user' must be at most 128 "
            "characters");
  CHECK(bad(with({{"users", {"a"}}, {"usres", 1}})) ==
        "POST /__mock/logins: unknown field 'usres' (known: appid, users, user_prefix, first, "
        "count, with, phone)");
  CHECK(bad(with({{"users", {"a"}}, {"with", {"user_info", "phone_number"}}})) ==
        "field 'with': item 1 (\"phone_number\") must be \"user_info\", \"user_profile\" or "
        "\"phone\"");
  CHECK(bad(with({{"users", {"a"}}, {"with", "phone"}})) ==
        "field 'with' must be an array of \"user_info\", \"user_profile\" or \"phone\"");
  CHECK(bad(with({{"users", {"a"}}, {"with", {"phone", "user_info", "phone"}}})) ==
        "field 'with' names 'phone' twice");
  CHECK(bad(with({{"users", {"a"}}, {"phone", "13800000000"}})) ==
        "field 'phone' goes with \"phone\" in 'with'");
  CHECK(bad(with({{"users", {"a"}}, {"with", {"phone"}}, {"phone", "12ab"}})) ==
        "field 'phone' must be 5-15 digits, optionally after +86");
  CHECK(bad({{"users", {"a"}}}) == "field 'appid' is required");
  // the app as /__mock/login says it
  const auto login_error = [&](const std::string& appid, int status) {
    const std::string one = error_of(
        f.post("/__mock/login", nlohmann::json{{"appid", appid}, {"user", "a"}}.dump()), status);
    const reply r =
        f.post("/__mock/logins", nlohmann::json{{"appid", appid}, {"users", {"a", "b"}}}.dump());
    CHECK(error_of(r, status) == one);
    CHECK(r.json().size() == 1);  // nothing was tried: no "logins"
  };
  login_error("wx0000000000000000", 404);
  login_error(oa, 400);
  // nobody logged in by any of the above
  CHECK_FALSE(f.world().current_session_key(mp, "a"));
  CHECK_FALSE(f.world().current_session_key(mp, "b"));
}

TEST_CASE("admin logins: at the codes limit, 507 with the logins made so far, which redeem",
          "[mock][admin][logins]") {
  mock_wechat::options o;
  o.limits.codes = 16;  // one in each of the 16 shards: a batch of 100 cannot fit
  fixture f(o);
  f.add_standard_apps();
  const reply r = f.post(
      "/__mock/logins",
      nlohmann::json{{"appid", mp}, {"user_prefix", "u"}, {"count", 100}, {"with", {"user_info"}}}
          .dump());
  CHECK(error_of(r, 507).find("login codes") != std::string::npos);
  const auto j = r.json();
  CHECK(j.size() == 2);
  REQUIRE(j.contains("logins"));
  const auto& logins = j["logins"];
  CHECK(logins.size() <= 16);
  for (std::size_t i = 0; i < logins.size(); ++i) {
    CHECK(logins[i]["user"] == "u" + std::to_string(i));
    CHECK(logins[i].contains("user_info"));
  }
  CHECK(f.world().sizes()["js_codes"].get<std::size_t>() == logins.size());
  const auto keys = redeem_logins(f, mp, mp_secret, logins);
  CHECK(keys.size() == logins.size());
  // the codes are spent, not gone: room again once their life is over
  f.world().clock().advance(301);
  CHECK(f.admin("logins", {{"appid", mp}, {"users", {"again"}}})["logins"].size() == 1);
}
