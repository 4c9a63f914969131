// The fault table: every client call against every fault the mock can inject, each case on
// its own fresh state. The rule for every cell: the caller gets a typed error or the
// correct result (the right identity, never another), within a bound set by the configured
// timeout, never a hang or a crash. Some cells must succeed (a wrong Content-Type, a -1
// burst on a call safe to retry, a token rotated under a call that uses it).
//
// The same run is the secrets test: everything the library said (exception texts, error
// messages, error details), the mock's journal and stats, must not contain the appsecret,
// the session_key or the access token, whole or any 8-character piece of them.
#include "mock_support.hpp"

#include <wechat/client.hpp>
#include <wechat/transport/httplib.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>

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
                "\n" + d.field + "\n";
        // The throwing overload says the same, as an exception.
        try {
          wechat::throw_if_error(ec, c.name);
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
