// The fault table: every client call against every fault the mock can inject, each case on
// its own fresh state. The rule for every cell: the caller gets a typed error or the
// correct result (the right identity, never another), within a bound set by the configured
// timeout, never a hang or a crash. Some cells must succeed (a wrong Content-Type, a -1
// burst on a call safe to retry, a token rotated under a call that uses it).
//
// The same run is the secrets test: everything the library said (exception texts, error
// messages, error details with the transport's cause), the mock's journal and stats, must
// not contain the appsecret, the session_key or the access token, whole or any 8-character
// piece of them.
#include "mock_support.hpp"

#include <wechat/client.hpp>
#include <wechat/transport/httplib.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

using namespace mocktest;
using namespace std::chrono_literals;

namespace {

// Long, distinctive secrets: any 8-character window of them appearing is a leak.
const std::string secret = "Sx7qKp2vR9zW4tLm8nB3Yh6cJd1fGe5u";

struct fault_case {
  const char* name;
  nlohmann::json fault;  // without "path"
};

const std::vector<fault_case> faults = {
    {"delay beyond the read timeout", {{"delay_ms", 1500}, {"times", 1}}},
    {"dropped connection", {{"drop", true}, {"times", 1}}},
    {"HTTP 502", {{"http_status", 502}, {"times", 1}}},
    {"HTTP 500", {{"http_status", 500}, {"times", 1}}},
    {"malformed JSON", {{"malformed", true}, {"times", 1}}},
    {"truncated body", {{"truncated", true}, {"times", 1}}},
    {"oversized body (2 MiB > 1 MiB cap)", {{"oversized", 2 << 20}, {"times", 1}}},
    {"wrong Content-Type", {{"content_type", "text/plain"}, {"times", 1}}},
    {"errcode -1 burst (2)", {{"errcode", -1}, {"times", 2}}},
    {"errcode 45011", {{"errcode", 45011}, {"times", 1}}},
    {"token rotated mid-flight (40001)", {{"errcode", 40001}, {"times", 1}}},
};

// One call: its path, whether it is safe to retry, whether it uses an access token, and
// a runner that prepares fresh state, calls, and checks the identity when it succeeds.
struct call_case {
  const char* name;
  const char* path;
  bool safe;
  bool uses_token;
  // Returns true when the call succeeded (after checking the result is the right one).
  std::function<bool(fixture&, wechat::client&, std::error_code&, wechat::error_detail&,
                     std::vector<std::string>& secrets)>
      run;
};

// The transport of the case being run (the OAuth call needs its own client on it).
std::shared_ptr<wechat::transport> current_transport;

struct unused {};

const std::string user = "zoe";

const std::vector<call_case> calls = {
    {"code2session", "/sns/jscode2session", false, false,
     [](fixture& f, wechat::client& wx, std::error_code& ec, wechat::error_detail& d,
        std::vector<std::string>& secrets) {
       const auto s = wx.code2session(f.login(mp, user), ec, &d);
       secrets.push_back(*f.world().current_session_key(mp, user));
       if (ec) return false;
       CHECK(s.openid == mock_wechat::openid(mp, user));
       CHECK(s.session_key == secrets.back());
       return true;
     }},
    {"check_session_key", "/wxa/checksession", true, true,
     [](fixture& f, wechat::client& wx, std::error_code& ec, wechat::error_detail& d,
        std::vector<std::string>& secrets) {
       f.login(mp, user);
       const std::string key = *f.world().current_session_key(mp, user);
       secrets.push_back(key);
       wx.check_session_key(mock_wechat::openid(mp, user), key, ec, &d);
       return !ec;
     }},
    {"get_paid_unionid", "/wxa/getpaidunionid", true, true,
     [](fixture& f, wechat::client& wx, std::error_code& ec, wechat::error_detail& d,
        std::vector<std::string>&) {
       const auto p = f.world().pay(mp, user);
       const auto u =
           wx.get_paid_unionid(mock_wechat::openid(mp, user),
                               wechat::paid_order::by_transaction(p.transaction_id), ec, &d);
       if (ec) return false;
       CHECK(u == mock_wechat::unionid("acct-1", user));
       return true;
     }},
    {"get_phone_number", "/wxa/business/getuserphonenumber", false, true,
     [](fixture& f, wechat::client& wx, std::error_code& ec, wechat::error_detail& d,
        std::vector<std::string>&) {
       f.login(mp, user);
       const auto p = f.world().phone(mp, user, "13800138000");
       const auto info = wx.get_phone_number(p.code, "", ec, &d);
       if (ec) return false;
       CHECK(info.pure_phone_number == "13800138000");
       return true;
     }},
    {"oauth_exchange", "/sns/oauth2/access_token", false, false,
     [](fixture& f, wechat::client& wx, std::error_code& ec, wechat::error_detail& d,
        std::vector<std::string>& secrets) {
       (void)wx;
       wechat::client_options o;
       o.appid = oa;
       o.secret = oa_secret;
       wechat::client oa_client(o, current_transport);
       const auto t =
           oa_client.oauth_exchange(f.world().oauth_code(oa, user, "snsapi_userinfo"), ec, &d);
       if (ec) return false;
       secrets.push_back(t.access_token);
       secrets.push_back(t.refresh_token);
       CHECK(t.openid == mock_wechat::openid(oa, user));
       return true;
     }},
    {"access token", "/cgi-bin/stable_token", true, false,
     [](fixture&, wechat::client& wx, std::error_code& ec, wechat::error_detail& d,
        std::vector<std::string>& secrets) {
       const std::string token = wx.tokens().get(ec, &d);
       if (ec) return false;
       secrets.push_back(token);
       CHECK(token.size() >= 100);
       return true;
     }},
};

// Whether `text` holds `s` or any 8-character piece of it.
bool leaks(const std::string& text, const std::string& s) {
  if (s.size() < 8) return text.find(s) != std::string::npos;
  for (std::size_t i = 0; i + 8 <= s.size(); ++i)
    if (text.find(s.substr(i, 8)) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("the fault table: every call x every fault ends in a typed error or the right result",
          "[faults][secrets]") {
  std::size_t cases = 0, succeeded = 0, typed = 0;
  std::string said;  // everything the library told the caller
  std::vector<std::string> secrets = {secret};
  for (const auto& c : calls) {
    for (const auto& fc : faults) {
      INFO(c.name << " x " << fc.name);
      fixture f;
      f.world().add_app({mp, secret, mock_wechat::app_type::miniprogram, "acct-1"});
      f.world().add_app({oa, oa_secret, mock_wechat::app_type::official_account, "acct-1"});
      wechat::httplib_transport_options t;
      t.base_url = f.mock.base_url();
      t.read_timeout = 500ms;
      auto transport = wechat::httplib_transport::create(t);
      current_transport = transport;
      wechat::client_options o;
      o.appid = mp;
      o.secret = secret;
      o.backoff = 5ms;
      wechat::client wx(o, transport);
      if (c.uses_token) {  // a cached token, so the fault meets the call itself
        std::error_code tec;
        secrets.push_back(wx.tokens().get(tec));
        REQUIRE_FALSE(tec);
      }
      nlohmann::json fault = fc.fault;
      fault["path"] = c.path;
      f.admin("faults", fault);

      std::error_code ec;
      wechat::error_detail d;
      const auto t0 = std::chrono::steady_clock::now();
      bool ok = false;
      try {
        ok = c.run(f, wx, ec, d, secrets);
      } catch (const std::exception& e) {
        FAIL("the error_code overload threw: " << e.what());
      }
      const auto took = std::chrono::steady_clock::now() - t0;
      ++cases;
      // Bounded by the timeout: at most 3 attempts of 500 ms, plus backoff and a refresh.
      CHECK(took < 2500ms);
      if (ok) {
        ++succeeded;
      } else {
        ++typed;
        const auto& cat = ec.category();
        CHECK((cat == wechat::transport_category() || cat == wechat::protocol_category() ||
               cat == wechat::api_category()));
        said += ec.message() + "\n" + wechat::error_name(ec) + "\n" + d.errmsg + "\n" + d.rid +
                "\n" + d.field + "\n" + d.cause + "\n";
        // Every transport failure says which host and why.
        if (cat == wechat::transport_category()) CHECK_FALSE(d.cause.empty());
        // The throwing overload says the same, as an exception.
        try {
          wechat::throw_if_error(ec, d, c.name);
        } catch (const std::exception& e) {
          said += std::string(e.what()) + "\n";
        }
      }
      const std::string fname = fc.name;
      if (fname == "wrong Content-Type") CHECK(ok);
      if (fname == "errcode -1 burst (2)") CHECK(ok == c.safe);
      if (fname == "errcode 45011") CHECK(ec == wechat::api_errc::minute_quota_reached);
      if (fname == "token rotated mid-flight (40001)" && c.uses_token) CHECK(ok);
      if (fname == "delay beyond the read timeout" && !ok)
        CHECK(ec.category() == wechat::transport_category());

      said += f.mock.journal().to_json().dump() + "\n" + f.mock.stats().to_json().dump() + "\n";
      said += f.get("/__mock/requests").body + "\n";
    }
  }
  CHECK(cases == calls.size() * faults.size());
  INFO("cases " << cases << ", correct results " << succeeded << ", typed errors " << typed);
  CHECK(succeeded > 0);
  CHECK(typed > 0);
  if (const char* dump = std::getenv("FAULT_TABLE_DUMP")) std::ofstream(dump) << said;
  for (const auto& s : secrets) {
    INFO("secret of " << s.size() << " characters");
    CHECK_FALSE(s.empty());
    CHECK_FALSE(leaks(said, s));
  }
  // The check itself can fail: a message carrying the secret would be caught.
  CHECK(leaks("... " + secret.substr(5, 9) + " ...", secret));
}

TEST_CASE("decryption failures never repeat the session_key", "[secrets][decrypt]") {
  const std::string key = wechat::base64_encode("K3y!s3cr3t#16by");  // 15 bytes: malformed
  const std::string good_key = wechat::base64_encode(std::string("Zq8#Lm2!Vx5@Tr9$", 16));
  const std::string iv = wechat::base64_encode(std::string("Iv7^Pw3&Hs6*Nb1(", 16));
  const std::string data = wechat::encrypt_data(
      good_key, R"({"openId":"o1","watermark":{"appid":"wxA","timestamp":1}})", iv);
  std::string spaced = good_key;
  for (auto& ch : spaced)
    if (ch == '+') ch = ' ';
  wechat::verify_options v;
  v.appid = "wxB";  // a mismatch
  std::string said;
  auto attempt = [&](const std::string& k, const std::string& d, const std::string& i,
                     const std::string& raw = "", const std::string& sig = "") {
    std::error_code ec;
    wechat::decrypt_user_info(k, {d, i, raw, sig}, v, ec);
    CHECK(ec);
    said += ec.message() + "\n";
    try {
      wechat::decrypt_user_info(k, {d, i, raw, sig}, v);
    } catch (const std::exception& e) {
      said += std::string(e.what()) + "\n";
    }
  };
  attempt(key, data, iv);                              // key malformed
  attempt(good_key.substr(0, 20) + "AAAA", data, iv);  // wrong key: padding / json
  attempt(spaced + (spaced == good_key ? "x" : ""), data, iv);
  attempt(good_key, "%2B" + data, iv);                                        // data not base64
  attempt(good_key, data, iv);                                                // appid mismatch
  attempt(good_key, data, iv, "{\"nickName\":\"x\"}", std::string(40, 'a'));  // signature
  attempt(good_key, data, iv, "{}", "zz");                                    // signature malformed
  for (const auto& s : {good_key, key})
    for (std::size_t i = 0; i + 8 <= s.size(); ++i)
      CHECK(said.find(s.substr(i, 8)) == std::string::npos);
}

namespace {

// The admin_error fault::from_json throws for `j` (fails the test if it accepts it).
std::string fault_refusal(const nlohmann::json& j) {
  try {
    mock_wechat::fault::from_json(j);
    FAIL("accepted " << j.dump());
  } catch (const mock_wechat::admin_error& e) {
    CHECK(e.status() == 400);
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("a fault's latency: read and written back as a spec, alone or added to delay_ms",
          "[faults][latency]") {
  using mock_wechat::fault;
  const auto alone = fault::from_json({{"path", "*"}, {"latency", "lognormal:50:120"}});
  CHECK(alone.latency == mock_wechat::parse_latency("lognormal:50:120"));
  CHECK(alone.delay_ms == 0);
  CHECK(alone.to_json()["latency"] == "lognormal:50:120");
  CHECK_FALSE(alone.to_json().contains("delay_ms"));
  for (const nlohmann::json& j :
       {nlohmann::json{{"path", "/sns/jscode2session"}, {"latency", "uniform:0.5:2"}, {"times", 3}},
        nlohmann::json{{"path", "*"}, {"latency", "fixed:10"}, {"delay_ms", 5}},
        nlohmann::json{
            {"path", "*"}, {"latency", "fixed:10"}, {"errcode", -1}, {"probability", 0.5}},
        nlohmann::json{{"path", "*"}, {"latency", "lognormal:0.001:600000"}, {"drop", true}}}) {
    INFO(j.dump());
    const auto f = fault::from_json(j);
    auto back = f.to_json();
    back.erase("id");
    CHECK(fault::from_json(back).to_json() == f.to_json());
    CHECK(back["latency"] == j["latency"]);
  }
  // "none" is no latency: not enough for a fault alone, left out of to_json.
  CHECK(fault_refusal({{"path", "*"}, {"latency", "none"}}).find("needs one of") !=
        std::string::npos);
  CHECK_FALSE(fault::from_json({{"path", "*"}, {"errcode", 1}, {"latency", "none"}})
                  .to_json()
                  .contains("latency"));
  CHECK(fault_refusal({{"path", "*"}, {"latency", "lognormal:50"}}) ==
        "field 'latency': lognormal takes 2 numbers, got 1; expected lognormal:MEDIAN:P99 "
        "(milliseconds, 0 < MEDIAN <= P99 <= 600000, at most 3 decimals)");
  CHECK(fault_refusal({{"path", "*"}, {"latency", 50}})
            .rfind("field 'latency' must be a string", 0) == 0);
  CHECK(fault_refusal({{"path", "*"}, {"latency", "fixed:700000"}}).find("cap of 600000 ms") !=
        std::string::npos);
  CHECK(fault_refusal({{"path", "*"}, {"drop", true}, {"errcode", 1}, {"latency", "fixed:1"}})
            .find("delay_ms and latency combine with any") != std::string::npos);

  // The drawn delay: delay_ms plus the latency draw, capped at 600000 ms.
  mock_wechat::fault_table t;
  t.seed(1);
  CHECK(t.delay_us(fault::from_json({{"path", "*"}, {"delay_ms", 5}, {"latency", "fixed:0.25"}})) ==
        5250);
  CHECK(t.delay_us(fault::from_json({{"path", "*"}, {"delay_ms", 7}})) == 7000);
  CHECK(t.delay_us(fault::from_json({{"path", "*"}, {"errcode", 1}})) == 0);
  CHECK(t.delay_us(
            fault::from_json({{"path", "*"}, {"delay_ms", 600000}, {"latency", "fixed:600000"}})) ==
        mock_wechat::max_latency_us);
  const auto u = fault::from_json({{"path", "*"}, {"delay_ms", 100}, {"latency", "uniform:0:10"}});
  for (int i = 0; i < 1000; ++i) {
    const auto us = t.delay_us(u);
    CHECK(us >= 100000);
    CHECK(us <= 110000);
  }

  // Through the admin API: the list shows the spec; a bad one is a 400 naming the field.
  fixture f;
  f.admin("faults", {{"path", "/sns/jscode2session"}, {"latency", "uniform:10:90"}, {"times", 2}});
  const auto listed = f.get("/__mock/faults").json();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["latency"] == "uniform:10:90");
  const reply bad = f.post("/__mock/faults", R"({"path":"*","latency":"gamma:1"})");
  CHECK(bad.status == 400);
  CHECK(bad.json()["error"].get<std::string>().rfind(
            "field 'latency': unknown distribution 'gamma'", 0) == 0);
}

// Issue 19 finding 11: a Content-Type with CR LF in it wrote extra headers into the answer.
TEST_CASE("a content_type fault refuses control characters", "[faults]") {
  const std::string message = "field 'content_type' must not contain control characters";
  for (const std::string& bad :
       {std::string("text/html\r\nSet-Cookie: injected=1"), std::string("text/html\n"),
        std::string("text/\thtml"), std::string("text/html\x7f"), std::string("a\0b", 3)}) {
    INFO(nlohmann::json(bad).dump());
    CHECK(fault_refusal({{"path", "*"}, {"content_type", bad}}) == message);
  }
  CHECK(mock_wechat::fault::from_json(
            {{"path", "*"}, {"content_type", "application/json; charset=UTF-8"}})
            .content_type == "application/json; charset=UTF-8");
  CHECK(mock_wechat::fault::from_json({{"path", "*"}, {"content_type", "text/plain; x=\"é\""}})
            .content_type == "text/plain; x=\"é\"");  // bytes >= 0x80 are not control characters
  fixture f;
  f.add_standard_apps();
  const reply r = f.post("/__mock/faults",
                         nlohmann::json{{"path", "/sns/jscode2session"},
                                        {"content_type", "text/html\r\nSet-Cookie: injected=1"}}
                             .dump());
  CHECK(r.status == 400);
  CHECK(r.json()["error"] == message);
  CHECK(f.get("/__mock/faults").json().empty());
  const reply answer = f.code2session(mp, mp_secret, f.login(mp, "alice"));
  CHECK(answer.status == 200);
  CHECK(answer.content_type.find("injected") == std::string::npos);
}

TEST_CASE("a seeded fault table replays which calls a probability fault hits, and its delays",
          "[faults][latency]") {
  const auto p = mock_wechat::fault::from_json(
      {{"path", "/sns/jscode2session"}, {"errcode", -1}, {"probability", 0.3}});
  auto hits = [&](std::uint64_t seed, mock_wechat::fault_table* reuse = nullptr) {
    mock_wechat::fault_table own;
    auto& t = reuse ? *reuse : own;
    t.clear();
    t.add(p);
    if (!reuse) t.seed(seed);
    std::vector<bool> v;
    for (int i = 0; i < 2000; ++i)
      v.push_back(t.take("/sns/jscode2session").has_value());
    return v;
  };
  const auto a = hits(7);
  CHECK(a == hits(7));
  CHECK(a != hits(8));
  CHECK(std::count(a.begin(), a.end(), true) == Approx(600).epsilon(0.1));
  mock_wechat::fault_table t;
  t.seed(7);
  CHECK(hits(0, &t) == a);
  t.seed(7);  // seeding again restarts the sequence
  CHECK(hits(0, &t) == a);
  // Unseeded tables start from std::random_device: two of them differ.
  mock_wechat::fault_table x, y;
  x.add(p);
  y.add(p);
  std::vector<bool> vx, vy;
  for (int i = 0; i < 200; ++i) {
    vx.push_back(x.take("/sns/jscode2session").has_value());
    vy.push_back(y.take("/sns/jscode2session").has_value());
  }
  CHECK(vx != vy);

  // The fault delays drawn with a seed: the same multiset from 4 threads, another seed's differs.
  const auto lat = mock_wechat::fault::from_json({{"path", "*"}, {"latency", "lognormal:50:120"}});
  auto delays = [&](std::uint64_t seed, int threads) {
    mock_wechat::fault_table table;
    table.seed(seed);
    std::vector<std::vector<std::int64_t>> per(static_cast<std::size_t>(threads));
    std::vector<std::thread> run;
    for (auto& out : per)
      run.emplace_back([&table, &lat, &out, threads] {
        for (int i = 0; i < 8000 / threads; ++i)
          out.push_back(table.delay_us(lat));
      });
    for (auto& th : run)
      th.join();
    std::vector<std::int64_t> all;
    for (const auto& o : per)
      all.insert(all.end(), o.begin(), o.end());
    std::sort(all.begin(), all.end());
    return all;
  };
  const auto d = delays(7, 1);
  CHECK(d == delays(7, 4));
  CHECK(d != delays(8, 4));
  // Its own stream: not the draws a global --latency with the same seed makes.
  mock_wechat::latency_source global(lat.latency, 7);
  std::vector<std::int64_t> g(8000);
  for (auto& us : g)
    us = global.draw_us();
  std::sort(g.begin(), g.end());
  CHECK(g != d);
}
