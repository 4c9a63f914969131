// Nothing an admin caller or a network peer does grows the mock without a bound
// (docs/bounds.md): the world's time bounds hold whichever way its clock is moved, its
// count limits hold with a frozen clock, and the journal, the fault table, the connection
// table and the bytes of unfinished requests are bounded too.
#include "mock_support.hpp"

#include <malloc.h>

#include <string>
#include <thread>
#include <vector>

using namespace mocktest;
using namespace std::chrono_literals;

namespace {

std::size_t size_of(fixture& f, const char* what) {
  return f.world().sizes()[what].get<std::size_t>();
}

// POSTs body(i) to `path` for i = 0, 1... until an answer is not 200 (or `max` times):
// that answer, and how many were 200.
template <class Body>
std::pair<reply, int> until_refused(fixture& f, const std::string& path, int max, Body&& body) {
  reply r;
  int ok = 0;
  for (; ok < max; ++ok) {
    r = f.post(path, body(ok).dump());
    if (r.status != 200) break;
  }
  return {r, ok};
}

std::string error_of(const reply& r) {
  return r.json().value("error", std::string());
}

}  // namespace

TEST_CASE("codes are forgotten at their lifetime even after the clock was moved back",
          "[mock][bounds]") {
  fixture f;
  f.add_standard_apps();
  auto& w = f.world();
  for (int i = 0; i < 2000; ++i)
    w.login(mp, "user-" + std::to_string(i % 50));
  CHECK(size_of(f, "js_codes") == 2000);
  w.clock().advance(-100000);  // e.g. a test set the clock back to an earlier date
  for (int i = 0; i < 2000; ++i)
    w.login(mp, "user-" + std::to_string(i % 50));
  w.clock().advance(400);  // every code so far is dead: past its 300 s, or from the future
  for (int i = 0; i < 2000; ++i)
    w.login(mp, "user-" + std::to_string(i % 50));
  CHECK(size_of(f, "js_codes") == 2000);
}

TEST_CASE("codes at their limit: 507 naming them, nothing half made, room as the clock moves",
          "[mock][bounds][codes]") {
  mock_wechat::world_limits l;
  l.codes = 16;  // one in each of the 16 shards
  mock_wechat::world w(mock_wechat::unionid_rules::bound, l);
  w.add_app({mp, mp_secret, mock_wechat::app_type::miniprogram, "acct-1"});
  w.clock().set(1800000000, true);
  std::vector<std::string> codes;
  int status = 0;
  std::string message;
  for (int i = 0; i < 1000 && status == 0; ++i) {
    try {
      codes.push_back(w.login(mp, "u" + std::to_string(i)));
    } catch (const mock_wechat::admin_error& e) {
      status = e.status();
      message = e.what();
    }
  }
  CHECK(status == 507);
  CHECK(message.find("login codes") != std::string::npos);
  CHECK(w.sizes()["js_codes"].get<std::size_t>() == codes.size());
  CHECK(codes.size() <= 16);
  for (const std::string& c : codes)  // each still answers, once
    CHECK(w.exchange_js_code(mp, mp_secret, c).ok());
  w.clock().advance(300);  // dead to an exchange, but kept one more second
  CHECK(w.exchange_js_code(mp, mp_secret, codes[0]).errc == wechat::api_errc::invalid_code);
  w.clock().advance(1);  // now past their life: swept as a new code needs the room
  CHECK(w.login(mp, "late").size() == 32);
  CHECK(w.sizes()["js_codes"].get<std::size_t>() <= 16);
}

TEST_CASE("a live code costs less than 150 bytes, and what it held goes with it",
          "[mock][bounds][memory]") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  SUCCEED("the sanitizers' allocator does not keep glibc's counts: checked in the plain build");
  return;
#endif
  // glibc's count of bytes allocated now (benchmarks/code_memory measures the same way)
  const auto allocated = [] {
    const auto m = mallinfo2();
    return static_cast<double>(m.uordblks + m.hblkhd);
  };
  mock_wechat::world w;
  w.clock().set(1800000000, true);  // held: no code dies while they are counted
  std::vector<std::string> apps, users;
  for (int a = 0; a < 3; ++a)
    apps.push_back(w.add_app({"wxmem" + std::to_string(a), "s", mock_wechat::app_type::miniprogram,
                              ""})
                       .appid);
  for (int u = 0; u < 10000; ++u)
    users.push_back("user-" + std::to_string(u));
  for (const auto& a : apps)  // what the world keeps per (app, user), not per code
    for (const auto& u : users)
      w.login(a, u);
  const double before = allocated();
  constexpr int n = 200000;
  for (int i = 0; i < n; ++i)
    w.login(apps[static_cast<std::size_t>(i) % 3], users[static_cast<std::size_t>(i) % 10000]);
  const double per_code = (allocated() - before) / n;
  INFO("bytes per login code: " << per_code);
  CHECK(per_code < 150);  // was ~315 (a map of strings)

  // 20,000 snapshot OAuth codes, each for a user of its own with a long name: only the
  // code table holds those names (in its pool), and it gives them back with the codes
  w.add_app({"wxmem-oa", "s", mock_wechat::app_type::official_account, ""});
  const double with_logins = allocated();
  for (int i = 0; i < 20000; ++i)
    w.oauth_code("wxmem-oa", std::to_string(i) + std::string(120, 'v'), "snsapi_base", true);
  CHECK(allocated() - with_logins > 20000 * 120.0);
  w.clock().advance(301);  // every code so far is dead
  for (int i = 0; i < 400; ++i) {  // sweeps every shard of both tables
    w.login(apps[0], users[0]);
    w.oauth_code("wxmem-oa", "x", "snsapi_base", true);
  }
  CHECK(w.sizes()["js_codes"] == 400);
  CHECK(w.sizes()["oauth_codes"] == 400);
  // what stays: a spare block of slots per shard, the pool's id tables (were 230,000 codes
  // and 20,000 long names: ~20 MB)
  INFO("bytes kept after the sweep: " << allocated() - before);
  CHECK(allocated() < before + 2e6);
}

TEST_CASE("with a frozen clock the world's count limits hold, and the admin API says which",
          "[mock][bounds]") {
  mock_wechat::options o;
  o.limits.codes = 160;  // 10 in each of the 16 shards
  o.limits.sessions = 64;
  o.limits.users = 32;
  o.limits.apps = 10;
  o.limits.payments = 160;
  fixture f(o);
  f.add_standard_apps();  // 8 apps
  f.admin("clock", {{"set", 1800000000}, {"frozen", true}});

  SECTION("login codes: 507 at the limit, room again once they expire") {
    const auto [r, issued] = until_refused(f, "/__mock/login", 1000, [](int i) {
      return nlohmann::json{{"appid", mp}, {"user", "u" + std::to_string(i % 20)}};
    });
    CHECK(r.status == 507);
    CHECK(error_of(r).find("login codes") != std::string::npos);
    CHECK(error_of(r).find("as the clock moves") != std::string::npos);
    CHECK(issued >= 10);  // at least one shard's worth before a shard filled
    CHECK(size_of(f, "js_codes") <= 160);
    f.admin("clock", {{"advance", 301}});
    CHECK(f.post("/__mock/login", nlohmann::json{{"appid", mp}, {"user", "u1"}}.dump()).status ==
          200);
  }
  SECTION("sessions and openids") {
    const auto [r, n] = until_refused(f, "/__mock/login", 200, [](int i) {
      return nlohmann::json{{"appid", mp}, {"user", "s" + std::to_string(i)}};
    });
    CHECK(r.status == 507);
    CHECK((error_of(r).find("sessions") != std::string::npos ||
           error_of(r).find("openids") != std::string::npos));
    CHECK(size_of(f, "sessions") <= 64);
    CHECK(size_of(f, "openids") <= 64);
  }
  SECTION("users") {
    const auto [r, n] = until_refused(f, "/__mock/users", 200, [](int i) {
      return nlohmann::json{{"user", "h" + std::to_string(i)}, {"high_risk", true}};
    });
    CHECK(r.status == 507);
    CHECK(error_of(r).find("users") != std::string::npos);
    CHECK(error_of(r).find("POST /__mock/reset") != std::string::npos);
    CHECK(size_of(f, "users") <= 32);
  }
  SECTION("apps: 507 for a new one, replacing one is fine") {
    const auto [r, n] = until_refused(f, "/__mock/apps", 20, [](int i) {
      return nlohmann::json{{"appid", "wxextra" + std::to_string(i)}};
    });
    CHECK(r.status == 507);
    CHECK(error_of(r).find("apps") != std::string::npos);
    CHECK(size_of(f, "apps") == 10);
    f.admin("apps", {{"appid", mp}, {"secret", mp_secret}, {"open_account", "acct-1"}});
  }
  SECTION("payments") {
    f.login(mp, "payer");
    const auto [r, n] = until_refused(f, "/__mock/pay", 500, [](int) {
      return nlohmann::json{{"appid", mp}, {"user", "payer"}};
    });
    CHECK(r.status == 507);
    CHECK(error_of(r).find("payments") != std::string::npos);
    CHECK(size_of(f, "payments") <= 160);
  }
  SECTION("reading a user's state creates none") {
    const auto before = size_of(f, "users");
    const std::string code = f.login(mp, "reader");
    CHECK(f.code2session(mp, mp_secret, code).errcode() == 0);
    f.admin("user_info", {{"appid", mp}, {"user", "reader"}});
    CHECK(size_of(f, "users") == before);
  }
}

TEST_CASE("OAuth user tokens are bounded apart: a peer refreshing them gets 45009 at the limit, "
          "apps still get theirs",
          "[mock][bounds]") {
  mock_wechat::options o;
  o.limits.user_tokens = 64;  // 4 per shard
  fixture f(o);
  f.add_standard_apps();
  const std::string code = f.admin(
      "oauth_code", {{"appid", oa}, {"user", "alice"}, {"scope", "snsapi_userinfo"}})["code"];
  const reply first = f.get("/sns/oauth2/access_token?appid=" + oa + "&secret=" + oa_secret +
                            "&code=" + code + "&grant_type=authorization_code");
  REQUIRE(first.errcode() == 0);
  const std::string refresh = first.json()["refresh_token"];
  const std::string rp = "/sns/oauth2/refresh_token?appid=" + oa +
                         "&grant_type=refresh_token&refresh_token=" + refresh;
  int errcode = 0;
  for (int i = 0; i < 1000 && errcode == 0; ++i)
    errcode = f.get(rp).errcode();
  CHECK(errcode == 45009);
  CHECK(size_of(f, "user_tokens") <= 64);
  CHECK_FALSE(f.token(mp, mp_secret).empty());  // app tokens live in their own table
  f.world().clock().advance(7200);              // every user token so far has expired
  CHECK(f.get(rp).errcode() == 0);
  CHECK(size_of(f, "user_tokens") <= 64);
}

TEST_CASE("an OAuth code refused for a full table is not used up", "[mock][bounds]") {
  mock_wechat::options o;
  o.limits.refresh_tokens = 16;  // 1 per shard
  fixture f(o);
  f.add_standard_apps();
  auto new_code = [&] {
    return f
        .admin("oauth_code", {{"appid", oa}, {"user", "alice"}, {"scope", "snsapi_base"}})["code"]
        .get<std::string>();
  };
  auto exchange = [&](const std::string& code) {
    return f
        .get("/sns/oauth2/access_token?appid=" + oa + "&secret=" + oa_secret + "&code=" + code +
             "&grant_type=authorization_code")
        .errcode();
  };
  std::string refused;
  for (int i = 0; i < 200 && refused.empty(); ++i) {
    const std::string code = new_code();
    if (exchange(code) == 45009) refused = code;
  }
  REQUIRE_FALSE(refused.empty());
  CHECK(size_of(f, "refresh_tokens") <= 16);
  const int again = exchange(refused);    // 45009 again, or 0 if its refresh token found room
  CHECK((again == 45009 || again == 0));  // never 40163: the code was not used up
}

TEST_CASE("refresh tokens are forgotten a day after their 30 days", "[mock][bounds]") {
  fixture f;
  f.add_standard_apps();
  auto exchange = [&] {
    const std::string code =
        f.admin("oauth_code", {{"appid", oa}, {"user", "alice"}, {"scope", "snsapi_base"}})["code"];
    return f.get("/sns/oauth2/access_token?appid=" + oa + "&secret=" + oa_secret + "&code=" + code +
                 "&grant_type=authorization_code");
  };
  for (int i = 0; i < 200; ++i)
    REQUIRE(exchange().errcode() == 0);
  CHECK(size_of(f, "refresh_tokens") == 200);
  f.world().clock().advance(31 * 86400);  // kept a day past their 30 (a refresh says 42002)
  for (int i = 0; i < 200; ++i)
    REQUIRE(exchange().errcode() == 0);
  CHECK(size_of(f, "refresh_tokens") == 200);
}

TEST_CASE("the journal keeps a bounded number of bytes whatever peers send", "[mock][bounds]") {
  mock_wechat::options o;
  o.journal = 50;
  fixture f(o);
  f.add_standard_apps();
  const std::string big(512 * 1024, 'x');
  for (int i = 0; i < 60; ++i) {
    auto r = f.http.Post(
        ("/wxa/business/getuserphonenumber?access_token=t" + std::string(5000, 'q')).c_str(), big,
        "application/json");
    REQUIRE(r);
  }
  CHECK(f.mock.journal().count() == 50);
  const std::size_t per_entry =
      2 * mock_wechat::journal_entry::max_target + mock_wechat::journal_entry::max_body +
      mock_wechat::journal_entry::max_response + 3 * mock_wechat::journal_entry::max_short + 1024;
  CHECK(f.mock.journal().bytes() <= 50 * per_entry);
  const auto j = f.mock.journal().to_json();
  CHECK(j.back()["body"] == "(524288 bytes, not kept)");
  CHECK(j.back()["query"]["access_token"] == "***");
  for (int i = 0; i < 60; ++i) {  // 60 KB paths (unknown ones are journaled too)
    auto r = f.http.Get(("/" + std::string(60000, 'p')).c_str());
    REQUIRE(r);
  }
  CHECK(f.mock.journal().bytes() <= 50 * per_entry);
  SECTION("small bodies are kept as before") {
    f.post("/wxa/business/getuserphonenumber?access_token=t", R"({"code":"abc"})");
    CHECK(f.mock.journal().to_json().back()["body"]["code"] == "abc");
  }
}

TEST_CASE("the fault table holds at most 1000 faults", "[mock][bounds]") {
  fixture f;
  for (std::size_t i = 0; i < mock_wechat::fault_table::max_faults; ++i)
    f.mock.faults().add(
        mock_wechat::fault::from_json({{"path", "/wxa/checksession"}, {"errcode", -1}}));
  const reply r = f.post("/__mock/faults", R"({"path":"/wxa/checksession","errcode":-1})");
  CHECK(r.status == 507);
  CHECK(r.json()["error"].get<std::string>().find("DELETE /__mock/faults") != std::string::npos);
  f.mock.faults().clear();
  CHECK(f.post("/__mock/faults", R"({"path":"/wxa/checksession","errcode":-1})").status == 200);
}

TEST_CASE("connections beyond max_connections are closed as they are accepted",
          "[mock][bounds][hostile]") {
  mock_wechat::options o;
  o.max_connections = 8;
  fixture f(o);
  f.add_standard_apps();
  std::vector<raw> held;
  for (int i = 0; i < 8; ++i) {
    held.emplace_back(f.mock.port());
    REQUIRE(held.back().ok());
  }
  for (int i = 0; i < 500 && f.mock.open_connections() < 8; ++i)
    std::this_thread::sleep_for(10ms);
  REQUIRE(f.mock.open_connections() == 8);
  raw extra(f.mock.port());
  CHECK(extra.closed_by_peer(2s));
  CHECK(f.mock.refused_connections() >= 1);
  CHECK(f.mock.open_connections() <= 8);
  held.clear();  // the held ones go: room again
  for (int i = 0; i < 200 && f.mock.open_connections() > 0; ++i)
    std::this_thread::sleep_for(10ms);
  raw again(f.mock.port());
  REQUIRE(again.send("GET /__mock/health HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(again.read_response().rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("unfinished requests hold at most max_pending_bytes, past it 503 and close",
          "[mock][bounds][hostile]") {
  mock_wechat::options o;
  o.max_pending_bytes = 1 << 20;
  fixture f(o);
  f.add_standard_apps();
  const std::string head =
      "POST /wxa/business/getuserphonenumber?access_token=t HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nContent-Length: 1040000\r\n\r\n";
  raw a(f.mock.port()), b(f.mock.port());
  REQUIRE(a.send(head + std::string(1000000, 'a')));  // held: just under the budget
  for (int i = 0; i < 500 && f.mock.pending_bytes() < 1000000; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(f.mock.pending_bytes() >= 1000000);
  // b's first 100 KB would pass the budget: 503 and close (the send itself may see the
  // close, so only the answer is checked)
  b.send(head + std::string(100000, 'b'));
  const std::string refused = b.read_response();
  CHECK(refused.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(b.closed_by_peer(2s));
  CHECK(f.mock.pending_bytes() <= std::size_t{1} << 20);
  // the first one completes and is answered; nothing stays held
  REQUIRE(a.send(std::string(40000, 'a')));
  CHECK(a.read_response().rfind("HTTP/1.1 200", 0) == 0);
  for (int i = 0; i < 200 && f.mock.pending_bytes() > 0; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(f.mock.pending_bytes() == 0);
}
