// The mock's WeChat endpoints over real HTTP on loopback: each success with its exact
// shape, and each error code in the order WeChat checks them.
#include "mock_support.hpp"

#include <wechat/decrypt.hpp>
#include <wechat/detail/api_response.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace mocktest;

TEST_CASE("jscode2session answers the real success shape", "[mock][code2session]") {
  fixture f;
  f.add_standard_apps();
  const std::string code = f.login(mp, "alice");
  CHECK(code.size() == 32);
  const reply r = f.code2session(mp, mp_secret, code);
  CHECK(r.status == 200);
  CHECK(r.content_type == "text/plain");
  check_compact(r);
  const auto j = r.json();
  CHECK_FALSE(j.contains("errcode"));  // absent on success
  CHECK(r.body.rfind("{\"session_key\":\"", 0) == 0);
  CHECK(j["openid"] == mock_wechat::openid(mp, "alice"));
  CHECK(j["openid"].get<std::string>().size() == 28);
  CHECK(j["session_key"].get<std::string>().size() == 24);
  CHECK(wechat::base64_decode(j["session_key"].get<std::string>()).size() == 16);
  CHECK(j["session_key"] == *f.world().current_session_key(mp, "alice"));
  // today's rules (the default; WeChat since 2021-02-23): every user of a bound app
  CHECK(j["unionid"] == mock_wechat::unionid("acct-1", "alice"));
  CHECK(r.body.find("\"openid\"") < r.body.find("\"unionid\""));
  SECTION("the legacy rules: alice neither follows nor authorized, so no unionid") {
    f.world().set_rules(mock_wechat::unionid_rules::conditional);
    CHECK_FALSE(f.code2session(mp, mp_secret, f.login(mp, "alice")).json().contains("unionid"));
  }
  SECTION("an unbound mini program never has one") {
    CHECK_FALSE(
        f.code2session(lone, "lone-secret", f.login(lone, "alice")).json().contains("unionid"));
  }
}

TEST_CASE("jscode2session checks presence, then identity, then state", "[mock][code2session]") {
  fixture f;
  f.add_standard_apps();
  const std::string path = "/sns/jscode2session";
  const auto now = f.world().now();
  const std::string code = f.login(mp, "alice");
  check_error_shape(f.get(path + "?secret=x&js_code=y"), 41002, path, now);
  check_error_shape(f.get(path + "?appid=" + mp + "&js_code=y"), 41004, path, now);
  check_error_shape(f.get(path + "?appid=" + mp + "&secret=x"), 41008, path, now);
  check_error_shape(f.code2session("wx9999999999999999", "x", code), 40013, path, now);
  check_error_shape(f.code2session(oa, oa_secret, code), 40013, path, now);  // not a mini program
  check_error_shape(f.code2session(mp, "wrong", code), 40125, path, now);
  check_error_shape(f.code2session(mp, mp_secret, "unknowncode"), 40029, path, now);
  check_error_shape(f.code2session(mp2, "mp2-secret", code), 40029, path,
                    now);  // another app's code
  CHECK(f.code2session(mp, mp_secret, code).status == 200);
  check_error_shape(f.code2session(mp, mp_secret, code), 40163, path, now);  // used
  SECTION("missing appid beats everything, even with a valid code") {
    check_error_shape(f.get(path + "?js_code=" + code), 41002, path, now);
  }
  SECTION("parameters are read from the query only: a form body is not (41002)") {
    const std::string fresh = f.login(mp, "alice");
    const reply r = f.post(path, "appid=" + mp + "&secret=" + mp_secret + "&js_code=" + fresh,
                           "application/x-www-form-urlencoded");
    check_error_shape(r, 41002, path, now);
  }
}

TEST_CASE("jscode2session: a high-risk user gets 40226", "[mock][code2session]") {
  fixture f;
  f.add_standard_apps();
  f.admin("users", {{"user", "mallory"}, {"high_risk", true}});
  const std::string code = f.login(mp, "mallory");
  check_error_shape(f.code2session(mp, mp_secret, code), 40226, "/sns/jscode2session",
                    f.world().now());
  f.admin("users", {{"user", "mallory"}, {"high_risk", false}});
  CHECK(f.code2session(mp, mp_secret, code).status == 200);  // a refused code was not consumed
}

TEST_CASE("jscode2session allows 100 exchanges per user per app per minute",
          "[mock][code2session]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);  // frozen at the start of a minute
  for (int i = 0; i < 100; ++i)
    REQUIRE(f.code2session(mp, mp_secret, f.login(mp, "busy")).errcode() == 0);
  const std::string code = f.login(mp, "busy");
  check_error_shape(f.code2session(mp, mp_secret, code), 45011, "/sns/jscode2session",
                    f.world().now());
  CHECK(f.code2session(mp, mp_secret, f.login(mp, "other")).errcode() == 0);      // per user
  CHECK(f.code2session(mp2, "mp2-secret", f.login(mp2, "busy")).errcode() == 0);  // per app
  f.world().clock().advance(60);
  CHECK(f.code2session(mp, mp_secret, code).errcode() == 0);  // next minute; code still valid
}

TEST_CASE("cgi-bin/token mints 100+ character tokens and checks its inputs", "[mock][token]") {
  fixture f;
  f.add_standard_apps();
  const std::string path = "/cgi-bin/token";
  const reply r =
      f.get(path + "?grant_type=client_credential&appid=" + mp + "&secret=" + mp_secret);
  CHECK(r.content_type == "application/json; encoding=utf-8");
  check_compact(r);
  CHECK(r.json()["access_token"].get<std::string>().size() >= 100);
  CHECK(r.json()["expires_in"] == 7200);
  CHECK_FALSE(r.json().contains("errcode"));
  const auto now = f.world().now();
  check_error_shape(f.get(path + "?grant_type=client_credential&secret=x"), 41002, path, now);
  check_error_shape(f.get(path + "?grant_type=client_credential&appid=" + mp), 41004, path, now);
  check_error_shape(f.get(path + "?grant_type=password&appid=" + mp + "&secret=" + mp_secret),
                    40002, path, now);
  check_error_shape(f.get(path + "?grant_type=client_credential&appid=wx00&secret=x"), 40013, path,
                    now);
  check_error_shape(f.get(path + "?grant_type=client_credential&appid=" + mp + "&secret=no"), 40125,
                    path, now);
}

TEST_CASE("cgi-bin/token allows 2000 fetches a day, then 45009", "[mock][token]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000 - 1800000000 % 86400 + 100);
  const std::string q =
      "/cgi-bin/token?grant_type=client_credential&appid=" + mp + "&secret=" + mp_secret;
  for (int i = 0; i < 2000; ++i)
    REQUIRE(f.get(q).errcode() == 0);
  check_error_shape(f.get(q), 45009, "/cgi-bin/token", f.world().now());
  f.world().clock().advance(86400);
  CHECK(f.get(q).errcode() == 0);
}

TEST_CASE("a token in use is checked: missing, garbage, superseded, expired", "[mock][token]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);
  const std::string path = "/wxa/checksession";
  auto check = [&](const std::string& token) {
    return f.get(path + "?access_token=" + token + "&openid=x&signature=s&sig_method=hmac_sha256");
  };
  const std::string t1 = f.token(mp, mp_secret);
  check_error_shape(f.get(path + "?openid=x"), 41001, path, f.world().now());
  check_error_shape(check("garbage"), 40014, path, f.world().now());
  CHECK(check(t1).errcode() == 40003);  // the token passed; the openid did not
  const std::string t2 = f.token(mp, mp_secret);
  CHECK(t2 != t1);
  f.world().clock().advance(299);
  CHECK(check(t1).errcode() == 40003);  // still inside the 5-minute overlap
  f.world().clock().advance(1);
  check_error_shape(check(t1), 40001, path, f.world().now());
  CHECK(check(t2).errcode() == 40003);
  f.world().clock().advance(7200 - 300 - 1);
  CHECK(check(t2).errcode() == 40003);  // 7199 s old
  f.world().clock().advance(1);
  check_error_shape(check(t2), 42001, path, f.world().now());
}

TEST_CASE("stable_token returns the same token until renewal, isolated from cgi-bin/token",
          "[mock][token][stable]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);
  const std::string path = "/cgi-bin/stable_token";
  auto stable = [&](bool force = false) {
    return f.post(path, nlohmann::json{{"grant_type", "client_credential"},
                                       {"appid", mp},
                                       {"secret", mp_secret},
                                       {"force_refresh", force}}
                            .dump());
  };
  auto use = [&](const std::string& t) {
    return f
        .get("/wxa/checksession?access_token=" + t + "&openid=x&signature=s&sig_method=hmac_sha256")
        .errcode();
  };
  const reply first = stable();
  CHECK(first.content_type == "application/json; encoding=utf-8");
  check_compact(first);
  const std::string t1 = first.json()["access_token"];
  CHECK(first.json()["expires_in"] == 7200);
  f.world().clock().advance(1000);
  const reply again = stable();
  CHECK(again.json()["access_token"] == t1);
  CHECK(again.json()["expires_in"] == 6200);

  SECTION("GET is refused with 43002") {
    check_error_shape(
        f.get(path + "?grant_type=client_credential&appid=" + mp + "&secret=" + mp_secret), 43002,
        path, f.world().now());
  }
  SECTION("bad bodies and credentials") {
    const auto now = f.world().now();
    check_error_shape(f.post(path, "not json"), 47001, path, now);
    check_error_shape(f.post(path, R"({"grant_type":"client_credential","secret":"x"})"), 41002,
                      path, now);
    check_error_shape(f.post(path, R"({"grant_type":"client_credential","appid":"x"})"), 41004,
                      path, now);
    check_error_shape(f.post(path, R"({"grant_type":"x","appid":")" + mp + R"(","secret":"s"})"),
                      40002, path, now);
    check_error_shape(
        f.post(path, R"({"grant_type":"client_credential","appid":"wx0","secret":"s"})"), 40013,
        path, now);
    check_error_shape(
        f.post(path, R"({"grant_type":"client_credential","appid":")" + mp + R"(","secret":"s"})"),
        40125, path, now);
  }
  SECTION("renewed 5 minutes before expiry; the old one lives out its time") {
    f.world().clock().advance(7200 - 1000 - 300 - 1);  // 301 s left
    CHECK(stable().json()["access_token"] == t1);
    f.world().clock().advance(1);  // 300 s left: renewed
    const reply renewed = stable();
    const std::string t2 = renewed.json()["access_token"];
    CHECK(t2 != t1);
    CHECK(renewed.json()["expires_in"] == 7200);
    CHECK(use(t1) == 40003);  // still valid for its last 300 s
    f.world().clock().advance(300);
    CHECK(use(t1) == 42001);
    CHECK(use(t2) == 40003);
  }
  SECTION("force_refresh mints a new token and kills the old one at once") {
    const std::string t2 = stable(true).json()["access_token"];
    CHECK(t2 != t1);
    CHECK(use(t1) == 40001);
    CHECK(use(t2) == 40003);
    f.world().clock().advance(29);
    CHECK(stable(true).json()["access_token"] == t2);  // within 30 s: no refresh
    f.world().clock().advance(1);
    CHECK(stable(true).json()["access_token"] != t2);
  }
  SECTION("at most 20 force refreshes a day") {
    for (int i = 0; i < 20; ++i) {
      REQUIRE(stable(true).errcode() == 0);
      f.world().clock().advance(31);
    }
    check_error_shape(stable(true), 45009, path, f.world().now());
    CHECK(stable(false).errcode() == 0);  // normal mode still answers
  }
  SECTION("cgi-bin/token and stable_token do not invalidate each other") {
    const std::string classic = f.token(mp, mp_secret);
    f.token(mp, mp_secret);
    f.world().clock().advance(400);  // the classic token's overlap has passed
    CHECK(use(classic) == 40001);
    CHECK(use(t1) == 40003);  // the stable token is untouched
    const std::string c2 = f.token(mp, mp_secret);
    stable(true);
    CHECK(use(c2) == 40003);
  }
}

TEST_CASE("getpaidunionid: within 5 minutes of this user's payment in a bound mini program",
          "[mock][paid]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);
  const std::string path = "/wxa/getpaidunionid";
  const std::string token = f.token(mp, mp_secret);
  const auto pay = f.admin("pay", {{"appid", mp}, {"user", "alice"}});
  const std::string alice = mock_wechat::openid(mp, "alice");
  auto ask = [&](const std::string& tok, const std::string& oid, const std::string& order) {
    return f.get(path + "?access_token=" + tok + "&openid=" + oid + order);
  };
  const std::string by_tid = "&transaction_id=" + pay["transaction_id"].get<std::string>();
  const reply ok = ask(token, alice, by_tid);
  check_compact(ok);
  CHECK(ok.body == "{\"unionid\":\"" + mock_wechat::unionid("acct-1", "alice") +
                       "\",\"errcode\":0,\"errmsg\":\"ok\"}");
  CHECK(ask(token, alice,
            "&mch_id=" + pay["mch_id"].get<std::string>() +
                "&out_trade_no=" + pay["out_trade_no"].get<std::string>())
            .errcode() == 0);
  const auto now = f.world().now();
  check_error_shape(ask(token, "", by_tid), 40003, path, now);
  check_error_shape(ask(token, alice, ""), 40101, path, now);
  check_error_shape(ask(token, alice, "&mch_id=" + pay["mch_id"].get<std::string>()), 40101, path,
                    now);
  check_error_shape(ask(token, "ounknownopenid0000000000000", by_tid), 40003, path, now);
  check_error_shape(ask(token, alice, "&transaction_id=4200000000000000000000000000"), 89300, path,
                    now);
  f.admin("pay", {{"appid", mp}, {"user", "bob"}});
  check_error_shape(ask(token, mock_wechat::openid(mp, "bob"), by_tid), 89300, path,
                    now);  // alice's trade
  f.world().clock().advance(300);
  CHECK(ask(token, alice, by_tid).errcode() == 0);  // 300 s: still within
  f.world().clock().advance(1);
  check_error_shape(ask(token, alice, by_tid), 89300, path, f.world().now());
  SECTION("an unbound mini program: 89002") {
    const auto p = f.admin("pay", {{"appid", lone}, {"user", "alice"}});
    check_error_shape(ask(f.token(lone, "lone-secret"), mock_wechat::openid(lone, "alice"),
                          "&transaction_id=" + p["transaction_id"].get<std::string>()),
                      89002, path, f.world().now());
  }
  SECTION("a mini game never gets it (rule 4 is for mini programs)") {
    const auto p = f.admin("pay", {{"appid", game}, {"user", "alice"}});
    CHECK(ask(f.token(game, "game-secret"), mock_wechat::openid(game, "alice"),
              "&transaction_id=" + p["transaction_id"].get<std::string>())
              .errcode() == 89300);
  }
}

TEST_CASE("checksession and resetusersessionkey follow the current session_key",
          "[mock][session]") {
  fixture f;
  f.add_standard_apps();
  const std::string token = f.token(mp, mp_secret);
  const std::string oid = mock_wechat::openid(mp, "alice");
  f.login(mp, "alice");
  const std::string k1 = *f.world().current_session_key(mp, "alice");
  auto check = [&](const std::string& key, const std::string& method = "hmac_sha256",
                   const std::string& o = "") {
    return f.get("/wxa/checksession?access_token=" + token + "&openid=" + (o.empty() ? oid : o) +
                 "&signature=" + wechat::session_key_signature(key) + "&sig_method=" + method);
  };
  const reply ok = check(k1);
  CHECK(ok.body == "{\"errcode\":0,\"errmsg\":\"ok\"}");
  CHECK(ok.content_type == "application/json; charset=UTF-8");
  const auto now = f.world().now();
  check_error_shape(check(k1, "md5"), 87008, "/wxa/checksession", now);
  check_error_shape(check(k1, "hmac_sha256", "onobody"), 40003, "/wxa/checksession", now);
  f.login(mp, "alice");  // the device logged in again: k1 died
  check_error_shape(check(k1), 87009, "/wxa/checksession", now);
  const std::string k2 = *f.world().current_session_key(mp, "alice");
  CHECK(check(k2).errcode() == 0);

  const std::string path = "/wxa/resetusersessionkey";
  auto reset = [&](const std::string& key, const std::string& o,
                   const std::string& method = "hmac_sha256") {
    return f.get(path + "?access_token=" + token + "&openid=" + o +
                 "&signature=" + wechat::session_key_signature(key) + "&sig_method=" + method);
  };
  const reply r = reset(k2, oid);
  check_compact(r);
  const auto j = r.json();
  CHECK(j["errcode"] == 0);
  CHECK(j["errmsg"] == "ok");
  CHECK(j["openid"] == oid);
  const std::string k3 = j["session_key"];
  CHECK(k3 != k2);
  CHECK(check(k2).errcode() == 87009);  // the old key died at once
  CHECK(check(k3).errcode() == 0);
  check_error_shape(f.get(path + "?access_token=" + token + "&openid=" + oid), 40097, path, now);
  check_error_shape(reset(k3, oid, "sha1"), 87008, path, now);
  check_error_shape(reset(k3, "onobody"), 40003, path, now);
  check_error_shape(reset(k2, oid), 87009, path, now);
  f.admin("pay", {{"appid", mp}, {"user", "never-logged-in"}});  // known to the app, no key
  check_error_shape(reset(k3, mock_wechat::openid(mp, "never-logged-in")), 87007, path, now);
}

TEST_CASE("getuserphonenumber: POST, single-use codes bound to their app", "[mock][phone]") {
  fixture f;
  f.add_standard_apps();
  const std::string path = "/wxa/business/getuserphonenumber";
  const std::string token = f.token(mp, mp_secret);
  f.login(mp, "alice");
  const auto p = f.admin("phone", {{"appid", mp}, {"user", "alice"}, {"phone", "+8613800138000"}});
  auto ask = [&](const std::string& body, const std::string& tok) {
    return f.post(path + "?access_token=" + tok, body);
  };
  const std::string body = nlohmann::json{{"code", p["code"]}}.dump();
  const reply r = ask(body, token);
  check_compact(r);
  const auto j = r.json();
  CHECK(j["errcode"] == 0);
  CHECK(j["phone_info"]["phoneNumber"] == "+8613800138000");
  CHECK(j["phone_info"]["purePhoneNumber"] == "13800138000");
  CHECK(j["phone_info"]["countryCode"] == "86");
  CHECK(j["phone_info"]["watermark"]["appid"] == mp);
  const auto now = f.world().now();
  check_error_shape(ask(body, token), 40163, path, now);
  check_error_shape(ask(R"({"code":"nope"})", token), 40029, path, now);
  check_error_shape(ask("{}", token), 41008, path, now);
  check_error_shape(ask("not json", token), 47001, path, now);
  check_error_shape(f.get(path + "?access_token=" + token), 43002, path, now);
  const auto p2 = f.admin("phone", {{"appid", mp}, {"user", "alice"}});
  f.login(mp2, "alice");
  check_error_shape(ask(nlohmann::json{{"code", p2["code"]}}.dump(), f.token(mp2, "mp2-secret")),
                    40013, path, now);
  check_error_shape(ask(nlohmann::json{{"code", p2["code"]}, {"openid", "oother"}}.dump(), token),
                    40003, path, now);
  CHECK(
      ask(nlohmann::json{{"code", p2["code"]}, {"openid", mock_wechat::openid(mp, "alice")}}.dump(),
          token)
          .errcode() == 0);
  SECTION("the old-style encryptedData decrypts with the current session_key") {
    const auto p3 = f.admin("phone", {{"appid", mp}, {"user", "alice"}});
    wechat::verify_options o;
    o.appid = mp;
    const auto phone = wechat::decrypt_phone_number(
        *f.world().current_session_key(mp, "alice"),
        {p3["encryptedData"].get<std::string>(), p3["iv"].get<std::string>()}, o);
    CHECK(phone.pure_phone_number.size() == 11);
    CHECK(phone.country_code == "86");
  }
}

TEST_CASE("OAuth: code exchange, refresh, sns/userinfo, sns/auth", "[mock][oauth]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);
  const std::string path = "/sns/oauth2/access_token";
  auto exchange = [&](const std::string& appid, const std::string& secret,
                      const std::string& code) {
    return f.get(path + "?appid=" + appid + "&secret=" + secret + "&code=" + code +
                 "&grant_type=authorization_code");
  };
  auto code = [&](const std::string& appid, const std::string& scope,
                  const std::string& user = "alice") {
    return f.admin("oauth_code", {{"appid", appid}, {"user", user}, {"scope", scope}})["code"]
        .get<std::string>();
  };
  const reply base = exchange(oa, oa_secret, code(oa, "snsapi_base"));
  CHECK(base.content_type == "text/plain");
  check_compact(base);
  auto j = base.json();
  CHECK_FALSE(j.contains("errcode"));
  CHECK(j["openid"] == mock_wechat::openid(oa, "alice"));
  CHECK(j["scope"] == "snsapi_base");
  CHECK(j["expires_in"] == 7200);
  CHECK_FALSE(j.contains("unionid"));  // official account + snsapi_base: no unionid
  const std::string base_token = j["access_token"];

  const reply info = exchange(oa, oa_secret, code(oa, "snsapi_userinfo"));
  j = info.json();
  CHECK(j["unionid"] == mock_wechat::unionid("acct-1", "alice"));
  const std::string user_token = j["access_token"], refresh = j["refresh_token"];
  CHECK(exchange(app_id, "app-secret", code(app_id, "snsapi_base")).json()["unionid"] ==
        mock_wechat::unionid("acct-1", "alice"));  // mobile apps always
  CHECK(exchange(oa2, "oa2-secret", code(oa2, "snsapi_userinfo")).json()["unionid"] ==
        mock_wechat::unionid("acct-2", "alice"));  // one unionid per Open Platform account

  const auto now = f.world().now();
  const std::string c = code(oa, "snsapi_base");
  check_error_shape(f.get(path + "?secret=x&code=y&grant_type=authorization_code"), 41002, path,
                    now);
  check_error_shape(f.get(path + "?appid=" + oa + "&code=y&grant_type=authorization_code"), 41004,
                    path, now);
  check_error_shape(f.get(path + "?appid=" + oa + "&secret=x&grant_type=authorization_code"), 41008,
                    path, now);
  check_error_shape(f.get(path + "?appid=" + oa + "&secret=x&code=y&grant_type=client_credential"),
                    40002, path, now);
  check_error_shape(exchange(mp, mp_secret, c), 40013, path, now);
  check_error_shape(exchange(oa, "wrong", c), 40125, path, now);
  check_error_shape(exchange(oa, oa_secret, "nope"), 40029, path, now);
  check_error_shape(exchange(oa2, "oa2-secret", c), 40029, path, now);
  CHECK(exchange(oa, oa_secret, c).errcode() == 0);
  check_error_shape(exchange(oa, oa_secret, c), 40163, path, now);

  SECTION("codes live 5 minutes, website codes 10") {
    const std::string oc = code(oa, "snsapi_base"), wc = code(web, "snsapi_login");
    f.world().clock().advance(300);
    CHECK(exchange(oa, oa_secret, oc).errcode() == 40029);
    CHECK(exchange(web, "web-secret", wc).errcode() == 0);
  }
  SECTION("refresh_token: new access token for 30 days") {
    const std::string rp = "/sns/oauth2/refresh_token";
    const reply r =
        f.get(rp + "?appid=" + oa + "&grant_type=refresh_token&refresh_token=" + refresh);
    check_compact(r);
    CHECK(r.json()["refresh_token"] == refresh);
    CHECK(r.json()["access_token"] != user_token);
    check_error_shape(f.get(rp + "?grant_type=refresh_token&refresh_token=" + refresh), 41002, rp,
                      f.world().now());
    check_error_shape(f.get(rp + "?appid=" + oa + "&grant_type=refresh_token&refresh_token=bad"),
                      40030, rp, f.world().now());
    check_error_shape(f.get(rp + "?appid=" + oa + "&grant_type=x&refresh_token=" + refresh), 40002,
                      rp, f.world().now());
    f.world().clock().advance(30 * 86400);
    check_error_shape(
        f.get(rp + "?appid=" + oa + "&grant_type=refresh_token&refresh_token=" + refresh), 42002,
        rp, f.world().now());
  }
  SECTION("sns/userinfo needs snsapi_userinfo and sns/auth checks the pair") {
    const std::string oid = mock_wechat::openid(oa, "alice");
    const reply u =
        f.get("/sns/userinfo?access_token=" + user_token + "&openid=" + oid + "&lang=zh_CN");
    check_compact(u);
    CHECK(u.body.rfind("{\"openid\":", 0) == 0);
    CHECK(u.json()["nickname"] == "alice");  // still the user's own nickname...
    CHECK(u.json()["sex"] == 0);              // ...but no gender or region since 2021-10-20
    CHECK(u.json()["province"] == "");
    CHECK(u.json()["city"] == "");
    CHECK(u.json()["country"] == "");
    CHECK(u.json()["privilege"].is_array());
    f.world().set_profiles(mock_wechat::profile_era::real);
    f.admin("users", {{"user", "alice"}, {"profile", {{"gender", 2}, {"city", "Shenzhen"}}}});
    const auto real =
        f.get("/sns/userinfo?access_token=" + user_token + "&openid=" + oid).json();
    CHECK(real["sex"] == 2);
    CHECK(real["city"] == "Shenzhen");
    f.world().set_profiles(mock_wechat::profile_era::anonymous);
    CHECK(u.json()["unionid"] == mock_wechat::unionid("acct-1", "alice"));
    check_error_shape(f.get("/sns/userinfo?access_token=" + base_token + "&openid=" + oid), 48001,
                      "/sns/userinfo", f.world().now());
    check_error_shape(f.get("/sns/userinfo?access_token=" + user_token + "&openid=oother"), 40003,
                      "/sns/userinfo", f.world().now());
    check_error_shape(f.get("/sns/userinfo?openid=" + oid), 41001, "/sns/userinfo",
                      f.world().now());
    check_error_shape(f.get("/sns/userinfo?access_token=zzz&openid=" + oid), 40014, "/sns/userinfo",
                      f.world().now());
    CHECK(f.get("/sns/auth?access_token=" + base_token + "&openid=" + oid).body ==
          "{\"errcode\":0,\"errmsg\":\"ok\"}");
    check_error_shape(f.get("/sns/auth?access_token=" + base_token + "&openid=oother"), 40003,
                      "/sns/auth", f.world().now());
    f.world().clock().advance(7200);
    check_error_shape(f.get("/sns/auth?access_token=" + base_token + "&openid=" + oid), 42001,
                      "/sns/auth", f.world().now());
  }
}

TEST_CASE("cgi-bin/user/info: subscribe flag, and unionid only for followers",
          "[mock][user_info]") {
  fixture f;
  f.add_standard_apps();
  const std::string token = f.token(oa, oa_secret);
  f.admin("follow", {{"user", "alice"}, {"appid", oa}});
  const std::string alice = mock_wechat::openid(oa, "alice");
  const reply r =
      f.get("/cgi-bin/user/info?access_token=" + token + "&openid=" + alice + "&lang=zh_CN");
  check_compact(r);
  auto j = r.json();
  CHECK(j["subscribe"] == 1);
  CHECK(j["openid"] == alice);
  CHECK(j["unionid"] == mock_wechat::unionid("acct-1", "alice"));
  CHECK(j["tagid_list"].is_array());
  f.admin("unfollow", {{"user", "alice"}, {"appid", oa}});
  j = f.get("/cgi-bin/user/info?access_token=" + token + "&openid=" + alice).json();
  CHECK(j == nlohmann::json{{"subscribe", 0}, {"openid", alice}});
  check_error_shape(f.get("/cgi-bin/user/info?access_token=" + token + "&openid=onobody"), 40003,
                    "/cgi-bin/user/info", f.world().now());
}

TEST_CASE("unknown paths answer HTTP 404 with a JSON body naming the path", "[mock]") {
  fixture f;
  const reply r = f.get("/cgi-bin/nonexistent?x=1");
  CHECK(r.status == 404);
  CHECK(r.json() ==
        nlohmann::json{{"errcode", -1}, {"errmsg", "unknown api /cgi-bin/nonexistent"}});
  check_compact(r);
}

TEST_CASE("user_info encrypts the real payload with the current key, rawData signed",
          "[mock][device]") {
  fixture f;
  f.add_standard_apps();
  f.login(mp, "alice");
  const auto p = f.admin("user_info", {{"appid", mp}, {"user", "alice"}});
  const std::string key = *f.world().current_session_key(mp, "alice");
  wechat::verify_options o;
  o.appid = mp;
  o.max_age = std::chrono::seconds(60);
  const std::string enc = p["encryptedData"], iv = p["iv"], raw = p["rawData"],
                    sig = p["signature"];
  const wechat::device_data d{enc, iv, raw, sig};
  const auto u = wechat::decrypt_user_info(key, d, o);
  CHECK(u.openid == mock_wechat::openid(mp, "alice"));
  // today's anonymous profile (WeChat since 2021-04-28), still with the ids
  CHECK(u.nickname == "微信用户");
  CHECK(u.gender == 0);
  CHECK(u.city.empty());
  CHECK(u.province.empty());
  CHECK(u.country.empty());
  CHECK(u.avatar_url == mock_wechat::anonymous_avatar_url);
  CHECK(u.unionid ==
        std::optional<std::string>(mock_wechat::unionid("acct-1", "alice")));  // bound
  SECTION("profiles real (WeChat before 2021-04-28): the user's own profile") {
    f.world().set_profiles(mock_wechat::profile_era::real);
    f.admin("users", {{"user", "alice"}, {"profile", {{"nickName", "Alice"}, {"gender", 2},
                                                      {"city", "Shenzhen"}}}});
    const auto q = f.admin("user_info", {{"appid", mp}, {"user", "alice"}});
    const auto v = wechat::decrypt_user_info(
        key, {q["encryptedData"].get<std::string>(), q["iv"].get<std::string>(),
              q["rawData"].get<std::string>(), q["signature"].get<std::string>()},
        o);
    CHECK(v.nickname == "Alice");
    CHECK(v.gender == 2);
    CHECK(v.city == "Shenzhen");
    CHECK(v.openid == u.openid);
  }
  SECTION("a new login rotates the key: the old one fails exactly as live") {
    const std::string code = f.login(mp, "alice");
    std::error_code ec;
    wechat::decrypt_user_info(key, d, o, ec);
    CHECK_FALSE(ec);  // data made with the old key still opens with the old key...
    const auto p2 = f.admin("user_info", {{"appid", mp}, {"user", "alice"}});
    wechat::decrypt_user_info(
        key, {p2["encryptedData"].get<std::string>(), p2["iv"].get<std::string>()}, o, ec);
    CHECK(ec);  // ...but new data does not: the backend kept a stale key
    const auto s = f.code2session(mp, mp_secret, code).json();
    wechat::decrypt_user_info(s["session_key"].get<std::string>(),
                              {p2["encryptedData"].get<std::string>(), p2["iv"].get<std::string>()},
                              o, ec);
    CHECK_FALSE(ec);  // the code of the new login carries the new key
  }
  SECTION("an unbound mini program's payload has no unionId") {
    f.login(lone, "alice");
    const auto q = f.admin("user_info", {{"appid", lone}, {"user", "alice"}});
    o.appid = lone;
    CHECK_FALSE(wechat::decrypt_user_info(
                    *f.world().current_session_key(lone, "alice"),
                    {q["encryptedData"].get<std::string>(), q["iv"].get<std::string>()}, o)
                    .unionid);
  }
}

TEST_CASE("login and phone codes live exactly 300 seconds", "[mock][clock]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);
  const std::string a = f.login(mp, "alice"), b = f.login(mp, "bob");
  f.login(mp, "carol");
  const auto phone = f.admin("phone", {{"appid", mp}, {"user", "carol"}});
  const std::string token = f.token(mp, mp_secret);
  f.world().clock().advance(299);
  CHECK(f.code2session(mp, mp_secret, a).errcode() == 0);  // 299 s old: valid
  f.world().clock().advance(1);
  check_error_shape(f.code2session(mp, mp_secret, b), 40029, "/sns/jscode2session",
                    f.world().now());  // 300 s: expired
  check_error_shape(f.post("/wxa/business/getuserphonenumber?access_token=" + token,
                           nlohmann::json{{"code", phone["code"]}}.dump()),
                    40029, "/wxa/business/getuserphonenumber", f.world().now());
}

TEST_CASE("the snapshot page: is_snapshotuser 1, a virtual openid, no unionid, no userinfo",
          "[mock][oauth][snapshot]") {
  for (const auto mode :
       {mock_wechat::unionid_rules::bound, mock_wechat::unionid_rules::conditional}) {
    mock_wechat::options opt;
    opt.rules = mode;
    fixture f(opt);
    f.add_standard_apps();
    const std::string path = "/sns/oauth2/access_token";
    auto exchange = [&](const std::string& code) {
      return f.get(path + "?appid=" + oa + "&secret=" + oa_secret + "&code=" + code +
                   "&grant_type=authorization_code");
    };
    const std::string code = f.admin("oauth_code", {{"appid", oa},
                                                    {"user", "alice"},
                                                    {"scope", "snsapi_userinfo"},
                                                    {"snapshot", true}})["code"];
    const reply r = exchange(code);
    check_compact(r);
    const auto j = r.json();
    CHECK_FALSE(j.contains("errcode"));
    CHECK(j["is_snapshotuser"] == 1);
    CHECK(r.body.find("\"scope\":\"snsapi_base\",\"is_snapshotuser\":1") != std::string::npos);
    const std::string virtual_openid = j["openid"];
    CHECK(virtual_openid.size() == 28);
    CHECK(virtual_openid != mock_wechat::openid(oa, "alice"));
    CHECK_FALSE(j.contains("unionid"));  // a bound official account, snsapi_userinfo asked
    const std::string token = j["access_token"];
    check_error_shape(f.get("/sns/userinfo?access_token=" + token + "&openid=" + virtual_openid),
                      48001, "/sns/userinfo", f.world().now());
    CHECK(f.get("/sns/auth?access_token=" + token + "&openid=" + virtual_openid).errcode() == 0);
    check_error_shape(exchange(code), 40163, path, f.world().now());  // single use still
    // a refresh keeps the user on the snapshot side
    const auto again = f.get("/sns/oauth2/refresh_token?appid=" + oa +
                             "&grant_type=refresh_token&refresh_token=" +
                             j["refresh_token"].get<std::string>())
                           .json();
    CHECK(again["openid"] == virtual_openid);
    CHECK(again["is_snapshotuser"] == 1);
    // nobody in particular: the page is no authorization (legacy rules would show it)
    const auto s = f.code2session(mp, mp_secret, f.login(mp, "alice")).json();
    CHECK(s.contains("unionid") == (mode == mock_wechat::unionid_rules::bound));
    // an ordinary code of the same user is the real openid, without the flag
    const auto normal =
        exchange(f.admin("oauth_code", {{"appid", oa}, {"user", "alice"}, {"scope", "snsapi_base"}})
                     ["code"])
            .json();
    CHECK(normal["openid"] == mock_wechat::openid(oa, "alice"));
    CHECK_FALSE(normal.contains("is_snapshotuser"));
    // the snapshot page is an official account's
    CHECK(f.post("/__mock/oauth_code", nlohmann::json{{"appid", web},
                                                      {"user", "alice"},
                                                      {"scope", "snsapi_login"},
                                                      {"snapshot", true}}
                                           .dump())
              .status == 400);
    CHECK(f.post("/__mock/oauth_code", nlohmann::json{{"appid", oa},
                                                      {"user", "alice"},
                                                      {"scope", "snsapi_base"},
                                                      {"snapshot", "yes"}}
                                           .dump())
              .status == 400);
  }
}

TEST_CASE("user_profile: the wx.getUserProfile payload has no ids, in either era",
          "[mock][device][profile]") {
  fixture f;
  f.add_standard_apps();
  f.login(mp, "alice");
  const std::string key = *f.world().current_session_key(mp, "alice");
  wechat::verify_options o;
  o.appid = mp;
  o.max_age = std::chrono::seconds(60);
  auto fetch = [&] {
    const auto p = f.admin("user_profile", {{"appid", mp}, {"user", "alice"}});
    return std::vector<std::string>{p["encryptedData"], p["iv"], p["rawData"], p["signature"]};
  };
  auto data = [](const std::vector<std::string>& v) {
    return wechat::device_data{v[0], v[1], v[2], v[3]};
  };
  const auto p = fetch();
  const auto plain = nlohmann::json::parse(wechat::decrypt_unverified(key, p[0], p[1]));
  CHECK_FALSE(plain.contains("openId"));
  CHECK_FALSE(plain.contains("unionId"));
  CHECK(plain["watermark"]["appid"] == mp);
  const auto u = wechat::decrypt_user_profile(key, data(p), o);
  CHECK(u.nickname == "微信用户");
  CHECK(u.avatar_url == mock_wechat::anonymous_avatar_url);
  CHECK(u.gender == 0);
  CHECK(u.watermark.appid == mp);
  std::error_code ec;
  wechat::decrypt_user_info(key, data(p), o, ec);
  CHECK(ec == wechat::decrypt_errc::profile_without_ids);  // genuine data, named as such
  // the watermark is still checked
  wechat::verify_options other = o;
  other.appid = mp2;
  wechat::decrypt_user_profile(key, data(p), other, ec);
  CHECK(ec == wechat::decrypt_errc::appid_mismatch);
  f.world().set_profiles(mock_wechat::profile_era::real);
  const auto real = wechat::decrypt_user_profile(key, data(fetch()), o);
  CHECK(real.nickname == "alice");
  SECTION("the device must have logged in, in a mini program") {
    CHECK(f.post("/__mock/user_profile", R"({"appid":")" + mp + R"(","user":"nobody"})").status ==
          400);
    CHECK(f.post("/__mock/user_profile", R"({"appid":")" + oa + R"(","user":"alice"})").status ==
          400);
  }
}

// ------------------------------------ login-adjacent endpoints (wechat-api.md section 8) --

namespace {
// A POST to a token-carrying endpoint of section 8.
reply post_with(fixture& f, const std::string& path, const std::string& token,
                const nlohmann::json& body) {
  return f.post(path + "?access_token=" + token, body.dump());
}
}  // namespace

TEST_CASE("40001 answers today's errmsg, with its hint, then the rid", "[mock][token]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);
  const std::string t1 = f.token(mp, mp_secret);
  f.token(mp, mp_secret);
  f.world().clock().advance(300);
  const reply r =
      f.get("/wxa/checksession?access_token=" + t1 + "&openid=x&signature=s&sig_method=hmac_sha256");
  check_error_shape(r, 40001, "/wxa/checksession", f.world().now());
  CHECK(r.json()["errmsg"].get<std::string>().rfind(
            "invalid credential, access_token is invalid or not latest, could get access_token by "
            "getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r rid: ",
            0) == 0);
}

TEST_CASE("getuserencryptkey: the user's last 3 keys, behind checksession's signature check",
          "[mock][encryptkey]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);
  const std::string path = "/wxa/business/getuserencryptkey";
  const std::string token = f.token(mp, mp_secret);
  const std::string oid = mock_wechat::openid(mp, "alice");
  f.login(mp, "alice");
  const std::string k1 = *f.world().current_session_key(mp, "alice");
  auto query = [&](const std::string& key, const std::string& o = "",
                   const std::string& method = "hmac_sha256", const std::string& tok = "") {
    return path + "?access_token=" + (tok.empty() ? token : tok) +
           "&openid=" + (o.empty() ? oid : o) +
           "&signature=" + wechat::session_key_signature(key) + "&sig_method=" + method;
  };
  const reply r = f.get(query(k1));
  check_compact(r);
  CHECK(r.content_type == "application/json; charset=UTF-8");
  CHECK(r.body.rfind("{\"errcode\":0,\"errmsg\":\"ok\",\"key_info_list\":[{\"encrypt_key\":", 0) ==
        0);
  const auto list = r.json()["key_info_list"];
  REQUIRE(list.size() == 3);
  const auto now = f.world().now();
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("key " << i);
    const auto& k = list[i];
    CHECK(wechat::base64_decode(k["encrypt_key"].get<std::string>()).size() == 16);
    CHECK(std::regex_match(k["iv"].get<std::string>(), std::regex("[0-9a-f]{16}")));
    CHECK(k["create_time"].get<std::int64_t>() <= now);
    if (i > 0) {
      CHECK(k["version"].get<std::int64_t>() == list[i - 1]["version"].get<std::int64_t>() - 1);
      CHECK(k["create_time"].get<std::int64_t>() ==
            list[i - 1]["create_time"].get<std::int64_t>() - 3600);
      CHECK(k["expire_in"] == 0);  // the older keys have expired
      CHECK(k["encrypt_key"] != list[i - 1]["encrypt_key"]);
    }
  }
  const std::int64_t left = list[0]["expire_in"].get<std::int64_t>();
  CHECK(left > 0);
  CHECK(left <= 3600);
  CHECK(list[0]["create_time"].get<std::int64_t>() + 3600 - now == left);
  const auto device = f.world().encrypt_keys(mp, "alice");  // what the device holds
  CHECK(list[0]["encrypt_key"] == device[0].encrypt_key);
  CHECK(list[0]["version"] == device[0].version);
  CHECK(f.post(query(k1), "").body == r.body);  // POST with the same query: the same answer

  SECTION("errors in WeChat's order: token, sig_method, openid, signature") {
    check_error_shape(f.get(path + "?openid=" + oid), 41001, path, now);
    check_error_shape(f.get(query(k1, "", "hmac_sha256", "garbage")), 40014, path, now);
    check_error_shape(f.get(query(k1, "", "md5")), 87008, path, now);
    check_error_shape(f.get(query(k1, "onobody")), 40003, path, now);
    check_error_shape(f.get(query("bm90IHRoZSBrZXkgYXQgYWxsIQ==")), 87009, path, now);
  }
  SECTION("a stale session_key after a new login: 87009; the new key works") {
    f.login(mp, "alice");
    check_error_shape(f.get(query(k1)), 87009, path, now);
    const std::string k2 = *f.world().current_session_key(mp, "alice");
    CHECK(f.get(query(k2)).json()["key_info_list"] == list);  // the keys do not follow logins
  }
  SECTION("the newest key expires after 3600 s and a new one takes over") {
    f.world().clock().advance(left - 1);
    CHECK(f.get(query(k1)).json()["key_info_list"][0]["version"] == list[0]["version"]);
    f.world().clock().advance(1);
    const auto next = f.get(query(k1)).json()["key_info_list"];
    CHECK(next[0]["version"].get<std::int64_t>() == list[0]["version"].get<std::int64_t>() + 1);
    CHECK(next[0]["expire_in"] == 3600);
    CHECK(next[0]["create_time"] == f.world().now());
    CHECK(next[1]["encrypt_key"] == list[0]["encrypt_key"]);  // rolled down the list
    CHECK(next[1]["expire_in"] == 0);
    CHECK(next[2]["encrypt_key"] == list[1]["encrypt_key"]);
  }
  SECTION("each user and app has keys of its own") {
    f.login(mp, "bob");
    const auto bob = f.get(query(*f.world().current_session_key(mp, "bob"),
                                 mock_wechat::openid(mp, "bob")))
                         .json()["key_info_list"];
    CHECK(bob[0]["encrypt_key"] != list[0]["encrypt_key"]);
    CHECK(f.world().encrypt_keys(mp2, "alice")[0].encrypt_key != device[0].encrypt_key);
  }
}

TEST_CASE("getpluginopenpid: plugin codes, one openpid per plugin and user, 1007 for wx.login's",
          "[mock][plugin]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);
  const std::string path = "/wxa/getpluginopenpid";
  const std::string plugin = "wx9000000000000009";
  const std::string token = f.token(mp, mp_secret);
  auto plugin_code = [&](const std::string& host, const std::string& user,
                         const std::string& p = "wx9000000000000009") {
    return f.admin("plugin_login", {{"appid", host}, {"plugin_appid", p}, {"user", user}})["code"]
        .get<std::string>();
  };
  auto ask = [&](const std::string& code, const std::string& tok = "") {
    return post_with(f, path, tok.empty() ? token : tok, {{"code", code}});
  };
  const std::string code = plugin_code(mp, "alice");
  CHECK(code.size() == 32);
  const reply r = ask(code);
  check_compact(r);
  CHECK(r.body == "{\"errcode\":0,\"errmsg\":\"ok\",\"openpid\":\"" +
                      mock_wechat::world::openpid(plugin, "alice") + "\"}");
  const std::string openpid = r.json()["openpid"];
  CHECK(openpid.size() == 28);
  CHECK(openpid != mock_wechat::openid(mp, "alice"));
  CHECK(openpid != mock_wechat::openid(plugin, "alice"));
  const auto now = f.world().now();
  check_error_shape(ask(code), 40163, path, now);  // used
  check_error_shape(ask("unknowncode"), 40029, path, now);
  check_error_shape(ask(plugin_code(mp2, "alice")), 40029, path, now);  // another host's code
  check_error_shape(post_with(f, path, token, nlohmann::json::object()), 41008, path, now);
  check_error_shape(f.post(path + "?access_token=" + token, "not json"), 47001, path, now);
  check_error_shape(f.get(path + "?access_token=" + token), 43002, path, now);
  check_error_shape(post_with(f, path, "garbage", {{"code", code}}), 40014, path, now);

  SECTION("a wx.login code: 1007 with an empty errmsg (then the rid), as observed") {
    const std::string login_code = f.login(mp, "alice");
    const reply bad = ask(login_code);
    INFO(bad.body);
    CHECK(std::regex_match(bad.body, std::regex("\\{\"errcode\":1007,\"errmsg\":\" rid: "
                                                 "[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}\"\\}")));
    CHECK(f.code2session(mp, mp_secret, login_code).errcode() == 0);  // not used up by that
    CHECK(ask(login_code).errcode() == 1007);  // used or not, still not a plugin code
  }
  SECTION("the same plugin in another host: the same openpid; another plugin: another one") {
    CHECK(ask(plugin_code(mp2, "alice"), f.token(mp2, "mp2-secret")).json()["openpid"] ==
          openpid);
    const std::string other = ask(plugin_code(mp, "alice", "wx9100000000000091")).json()["openpid"];
    CHECK(other != openpid);
    CHECK(ask(plugin_code(mp, "bob")).json()["openpid"] != openpid);
  }
  SECTION("plugin codes live 300 seconds") {
    const std::string a = plugin_code(mp, "alice"), b = plugin_code(mp, "bob");
    f.world().clock().advance(299);
    CHECK(ask(a).errcode() == 0);
    f.world().clock().advance(1);
    check_error_shape(ask(b, f.token(mp, mp_secret)), 40029, path, f.world().now());
  }
  SECTION("the admin call names what is wrong") {
    CHECK(f.post("/__mock/plugin_login", nlohmann::json{{"appid", mp}, {"user", "a"}}.dump())
              .status == 400);
    CHECK(f.post("/__mock/plugin_login",
                 nlohmann::json{{"appid", oa}, {"plugin_appid", plugin}, {"user", "a"}}.dump())
              .status == 400);  // the host must be a mini program
    CHECK(f.post("/__mock/plugin_login",
                 nlohmann::json{{"appid", "wx0"}, {"plugin_appid", plugin}, {"user", "a"}}.dump())
              .status == 404);
  }
}

TEST_CASE("getuserriskrank: the user's rank, set through /__mock/users", "[mock][risk]") {
  fixture f;
  f.add_standard_apps();
  const std::string path = "/wxa/getuserriskrank";
  const std::string token = f.token(mp, mp_secret);
  for (const char* u : {"alice", "mallory", "carol"})
    f.login(mp, u);
  auto body = [&](const std::string& user) {
    return nlohmann::json{{"appid", mp},
                          {"openid", mock_wechat::openid(mp, user)},
                          {"scene", 0},
                          {"client_ip", "203.0.113.7"}};
  };
  const reply r = post_with(f, path, token, body("alice"));
  check_compact(r);
  CHECK(std::regex_match(
      r.body, std::regex("\\{\"errcode\":0,\"errmsg\":\"getuserriskrank succ\",\"risk_rank\":0,"
                         "\"unoin_id\":[0-9]+\\}")));
  const auto first_id = r.json()["unoin_id"].get<std::int64_t>();
  f.admin("users", {{"user", "alice"}, {"risk_rank", 3}});
  const auto j = post_with(f, path, token, body("alice")).json();
  CHECK(j["risk_rank"] == 3);
  CHECK(j["unoin_id"].get<std::int64_t>() > first_id);  // one id per request
  f.admin("users", {{"user", "mallory"}, {"high_risk", true}});
  CHECK(post_with(f, path, token, body("mallory")).json()["risk_rank"] == 4);  // no rank: 4
  f.admin("users", {{"user", "mallory"}, {"risk_rank", 1}});
  CHECK(post_with(f, path, token, body("mallory")).json()["risk_rank"] == 1);  // explicit wins
  auto with = body("carol");
  with["mobile_no"] = "13800138000";
  with["email_address"] = "carol@example.com";
  with["extended_info"] = "";
  with["is_test"] = true;
  CHECK(post_with(f, path, token, with).json()["risk_rank"] == 0);

  SECTION("errors: method, token, body, then identity") {
    const auto now = f.world().now();
    check_error_shape(f.get(path + "?access_token=" + token), 43002, path, now);
    check_error_shape(post_with(f, path, "", body("alice")), 41001, path, now);
    check_error_shape(f.post(path + "?access_token=" + token, "[1]"), 47001, path, now);
    for (const char* field : {"appid", "openid", "scene", "client_ip"}) {
      INFO("without " << field);
      auto b = body("alice");
      b.erase(field);
      check_error_shape(post_with(f, path, token, b), 47001, path, now);
    }
    auto bad_scene = body("alice");
    bad_scene["scene"] = 7;
    check_error_shape(post_with(f, path, token, bad_scene), 47001, path, now);
    auto bad_test = body("alice");
    bad_test["is_test"] = "yes";
    check_error_shape(post_with(f, path, token, bad_test), 47001, path, now);
    auto other = body("alice");
    other["appid"] = mp2;
    check_error_shape(post_with(f, path, token, other), 40013, path, now);
    auto unknown = body("alice");
    unknown["openid"] = "onobody";
    check_error_shape(post_with(f, path, token, unknown), 40003, path, now);
    f.admin("follow", {{"user", "alice"}, {"appid", oa}});
    auto oa_body = body("alice");
    oa_body["appid"] = oa;
    oa_body["openid"] = mock_wechat::openid(oa, "alice");
    check_error_shape(post_with(f, path, f.token(oa, oa_secret), oa_body), 48001, path, now);
  }
  SECTION("the admin API takes ranks 0 to 4 only") {
    for (const nlohmann::json& bad : {nlohmann::json(5), nlohmann::json(-1), nlohmann::json("2"),
                                      nlohmann::json(2.5)}) {
      const reply a =
          f.post("/__mock/users", nlohmann::json{{"user", "alice"}, {"risk_rank", bad}}.dump());
      CHECK(a.status == 400);
      CHECK(a.json()["error"] == "field 'risk_rank' must be 0, 1, 2, 3 or 4");
    }
    CHECK(post_with(f, path, token, body("alice")).json()["risk_rank"] == 3);  // unchanged
  }
}

TEST_CASE("clear_quota resets the day's quotas, 10 times a calendar month, then 48006",
          "[mock][quota]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1801440000 - 86400 * 3);  // 2027-01-29, frozen
  const std::string path = "/cgi-bin/clear_quota";
  const std::string token = f.token(mp, mp_secret);
  for (int i = 1; i < 2000; ++i)  // cgi-bin/token's 2000 a day, spent
    REQUIRE(f.world().fetch_token(mp, mp_secret).ok());
  const std::string q =
      "/cgi-bin/token?grant_type=client_credential&appid=" + mp + "&secret=" + mp_secret;
  check_error_shape(f.get(q), 45009, "/cgi-bin/token", f.world().now());
  const std::string stable = f.post("/cgi-bin/stable_token",
                                    nlohmann::json{{"grant_type", "client_credential"},
                                                   {"appid", mp},
                                                   {"secret", mp_secret}}
                                        .dump())
                                 .json()["access_token"];
  const reply ok = post_with(f, path, stable, {{"appid", mp}});
  check_compact(ok);
  CHECK(ok.body == "{\"errcode\":0,\"errmsg\":\"ok\"}");
  CHECK(f.get(q).errcode() == 0);  // 45009 lifted
  for (int i = 2; i <= 10; ++i)
    REQUIRE(post_with(f, path, stable, {{"appid", mp}}).errcode() == 0);
  check_error_shape(post_with(f, path, stable, {{"appid", mp}}), 48006, path, f.world().now());
  CHECK(post_with(f, path, f.token(mp2, "mp2-secret"), {{"appid", mp2}}).errcode() == 0);  // per app
  const auto now = f.world().now();
  check_error_shape(f.get(path + "?access_token=" + stable), 43002, path, now);
  check_error_shape(post_with(f, path, "garbage", {{"appid", mp}}), 40014, path, now);
  check_error_shape(f.post(path + "?access_token=" + stable, "{"), 47001, path, now);
  check_error_shape(post_with(f, path, stable, nlohmann::json::object()), 41002, path, now);
  check_error_shape(post_with(f, path, stable, {{"appid", mp2}}), 40013, path, now);
  f.world().clock().set(1801440000 - 1);  // still January
  check_error_shape(post_with(f, path, f.token(mp, mp_secret), {{"appid", mp}}), 48006, path,
                    f.world().now());
  f.world().clock().set(1801440000);  // February: 10 more
  const std::string feb = f.token(mp, mp_secret);
  for (int i = 1; i <= 10; ++i)
    REQUIRE(post_with(f, path, feb, {{"appid", mp}}).errcode() == 0);
  CHECK(post_with(f, path, feb, {{"appid", mp}}).errcode() == 48006);
}

TEST_CASE("openapi/quota/get counts each app's real calls per day, and clear_quota resets them",
          "[mock][quota]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);
  const std::string path = "/cgi-bin/openapi/quota/get";
  const std::string token = f.token(mp, mp_secret);  // 1 cgi-bin/token fetch
  auto quota = [&](const std::string& cgi_path, const std::string& tok = "") {
    return post_with(f, path, tok.empty() ? token : tok, {{"cgi_path", cgi_path}});
  };
  auto check = [&](const std::string& tok) {
    return f.get("/wxa/checksession?access_token=" + tok +
                 "&openid=x&signature=s&sig_method=hmac_sha256");
  };
  const reply r = quota("/wxa/checksession");
  check_compact(r);
  CHECK(r.body ==
        "{\"errcode\":0,\"errmsg\":\"ok\",\"quota\":{\"daily_limit\":1000000,\"used\":0,\"remain\":"
        "1000000}}");
  for (int i = 0; i < 3; ++i)
    CHECK(check(token).errcode() == 40003);  // failed calls count too
  check(f.token(mp2, "mp2-secret"));         // another app's call is its own
  check("garbage");                          // no app: counts for no one
  auto q = quota("/wxa/checksession").json()["quota"];
  CHECK(q["used"] == 3);
  CHECK(q["remain"] == 1000000 - 3);
  q = quota("/cgi-bin/token").json()["quota"];
  CHECK(q["daily_limit"] == 2000);
  CHECK(q["used"] == 1);
  CHECK(q["remain"] == 1999);
  CHECK(quota("/cgi-bin/openapi/quota/get").json()["quota"]["used"] == 4);  // itself, each time
  f.post("/cgi-bin/stable_token", nlohmann::json{{"grant_type", "client_credential"},
                                                 {"appid", mp},
                                                 {"secret", mp_secret}}
                                      .dump());
  CHECK(quota("/cgi-bin/stable_token").json()["quota"]["used"] == 1);

  SECTION("clear_quota starts every counter of the day again; its own counts the month") {
    CHECK(post_with(f, "/cgi-bin/clear_quota", token, {{"appid", mp}}).errcode() == 0);
    CHECK(quota("/wxa/checksession").json()["quota"]["used"] == 0);
    CHECK(quota("/cgi-bin/token").json()["quota"]["used"] == 0);
    q = quota("/cgi-bin/clear_quota").json()["quota"];
    CHECK(q["daily_limit"] == 10);
    CHECK(q["used"] == 1);
    CHECK(q["remain"] == 9);
  }
  SECTION("a new day starts from 0") {
    f.world().clock().advance(86400);
    const std::string tomorrow = f.token(mp, mp_secret);
    CHECK(quota("/wxa/checksession", tomorrow).json()["quota"]["used"] == 0);
    CHECK(quota("/cgi-bin/token", tomorrow).json()["quota"]["used"] == 1);
  }
  SECTION("every /cgi-bin and /wxa path the mock serves has a quota") {
    for (const auto& p : mock_wechat::wechat_api::paths()) {
      if (p.rfind("/sns/", 0) == 0) continue;
      // WeCom's paths are another host's; a third-party platform's are called with its own
      // token, not an app's: an app's quota/get does not know them (76021)
      if (mock_wechat::wechat_api::is_wecom(p) || p.rfind("/cgi-bin/component/", 0) == 0) {
        CHECK(quota(p).errcode() == 76021);
        continue;
      }
      INFO(p);
      CHECK(quota(p).errcode() == 0);
    }
  }
  SECTION("errors: method, token, body, then the path") {
    const auto now = f.world().now();
    check_error_shape(f.get(path + "?access_token=" + token), 43002, path, now);
    check_error_shape(post_with(f, path, "garbage", {{"cgi_path", "/wxa/checksession"}}), 40014,
                      path, now);
    check_error_shape(post_with(f, path, token, nlohmann::json::object()), 47001, path, now);
    check_error_shape(quota("/sns/jscode2session"), 76022, path, now);
    check_error_shape(quota("/cgi-bin/message/custom/send"), 76021, path, now);
    check_error_shape(quota("wxa/checksession"), 76021, path, now);
  }
}

TEST_CASE("openapi/rid/get: the app's own failed calls from the journal, secrets masked",
          "[mock][rid]") {
  fixture f;
  f.add_standard_apps();
  f.world().clock().set(1800000000);
  const std::string path = "/cgi-bin/openapi/rid/get";
  const std::string token = f.token(mp, mp_secret);
  auto rid_of = [](const reply& r) { return wechat::detail::extract_rid(r.body); };
  auto ask = [&](const std::string& rid, const std::string& tok = "") {
    return post_with(f, path, tok.empty() ? token : tok, {{"rid", rid}});
  };
  const reply failed = f.get("/wxa/checksession?access_token=" + token +
                             "&openid=onobody&signature=abc&sig_method=hmac_sha256");
  REQUIRE(failed.errcode() == 40003);
  const std::string rid = rid_of(failed);
  REQUIRE(rid.size() == 26);
  const reply r = ask(rid);
  check_compact(r);
  CHECK(r.body.rfind("{\"errcode\":0,\"errmsg\":\"ok\",\"request\":{\"invoke_time\":", 0) == 0);
  const auto req = r.json()["request"];
  CHECK(req["invoke_time"] == 1800000000);
  CHECK(req["cost_in_ms"].get<std::int64_t>() >= 0);
  CHECK(req["request_url"] == "access_token=***&openid=onobody&signature=***&sig_method=hmac_sha256");
  CHECK(req["request_body"] == "");
  CHECK(req["response_body"] == failed.body);
  CHECK(req["client_ip"] == "127.0.0.1");
  CHECK(r.body.find(token) == std::string::npos);

  SECTION("a failed POST: its body, secrets masked") {
    const reply bad = f.post("/wxa/business/getuserphonenumber?access_token=" + token,
                             R"({"code":"nope"})");
    CHECK(ask(rid_of(bad)).json()["request"]["request_body"] == R"({"code":"nope"})");
    const reply wrong = f.post("/cgi-bin/stable_token",
                               nlohmann::json{{"grant_type", "client_credential"},
                                              {"appid", mp},
                                              {"secret", "wrong"}}
                                   .dump());
    REQUIRE(wrong.errcode() == 40125);
    const auto w = ask(rid_of(wrong)).json()["request"];
    CHECK(nlohmann::json::parse(w["request_body"].get<std::string>())["secret"] == "***");
    CHECK(w["response_body"] == wrong.body);
  }
  SECTION("a secret under a percent-encoded name is masked too (handlers decode names)") {
    // Sent as raw bytes: a later cpp-httplib client would normalise %5F to '_' itself.
    raw c(f.mock.port());
    REQUIRE(c.send("GET /wxa/checksession?access%5Ftoken=" + token +
                   "&openid=onobody&sig%6Eature=abc&sig_method=hmac_sha256 HTTP/1.1\r\n\r\n"));
    const std::string answer = c.read_response();
    REQUIRE(answer.find("\r\n\r\n") != std::string::npos);
    const reply enc{200, "", answer.substr(answer.find("\r\n\r\n") + 4)};
    REQUIRE(enc.errcode() == 40003);  // the encoded name authenticated
    const auto e = ask(rid_of(enc)).json()["request"];
    CHECK(e["request_url"] == "access%5Ftoken=***&openid=onobody&sig%6Eature=***&sig_method=hmac_sha256");
    CHECK(e.dump().find(token) == std::string::npos);
  }
  SECTION("another app's rid: 76003; a rid that named no app: 76003") {
    const std::string other = f.token(mp2, "mp2-secret");
    check_error_shape(ask(rid, other), 76003, path, f.world().now());
    CHECK(ask(rid_of(ask(rid, other)), other).errcode() == 0);  // its own failure it may read
    const reply garbage = f.get("/wxa/checksession?access_token=garbage&openid=x");
    CHECK(ask(rid_of(garbage)).errcode() == 76003);
  }
  SECTION("unknown, malformed, /sns/*, older than 7 days") {
    const auto now = f.world().now();
    check_error_shape(ask("6b04bdfc-788b670a-5c7476a8"), 76001, path, now);
    check_error_shape(ask("not-a-rid"), 76002, path, now);
    check_error_shape(post_with(f, path, token, nlohmann::json::object()), 76002, path, now);
    check_error_shape(f.get(path + "?access_token=" + token), 43002, path, now);
    check_error_shape(post_with(f, path, "garbage", {{"rid", rid}}), 40014, path, now);
    const reply sns = f.code2session(mp, mp_secret, "nosuchcode");
    check_error_shape(ask(rid_of(sns)), 76022, path, now);
    f.world().clock().advance(7 * 86400);
    const std::string later = f.token(mp, mp_secret);
    CHECK(ask(rid, later).errcode() == 0);  // 7 days: still there
    f.world().clock().advance(1);
    check_error_shape(ask(rid, later), 76001, path, f.world().now());
  }
}

TEST_CASE("openapi/rid/get with the journal off knows no rid", "[mock][rid]") {
  mock_wechat::options o;
  o.journal = 0;
  fixture f(o);
  f.add_standard_apps();
  const std::string token = f.token(mp, mp_secret);
  const reply failed = f.get("/wxa/checksession?access_token=" + token + "&openid=onobody");
  const reply r = post_with(f, "/cgi-bin/openapi/rid/get", token,
                            {{"rid", wechat::detail::extract_rid(failed.body)}});
  check_error_shape(r, 76001, "/cgi-bin/openapi/rid/get", f.world().now());
}

// The code tables keep codes packed (issue 16: a 24-byte key, interned strings, the
// session_key as 16 bytes): through the world's own API, every edge answers as it did
// when codes were strings in a map.
namespace {

void add_code_apps(mock_wechat::world& w) {
  using T = mock_wechat::app_type;
  w.add_app({mp, mp_secret, T::miniprogram, "acct-1"});
  w.add_app({mp2, "mp2-secret", T::miniprogram, "acct-1"});
  w.add_app({oa, oa_secret, T::official_account, "acct-1"});
  w.add_app({web, "web-secret", T::website, "acct-1"});
}

struct code_world {
  mock_wechat::world w;
  code_world() {
    add_code_apps(w);
    w.clock().set(1800000000);
  }
  wechat::api_errc js(const std::string& appid, const std::string& secret,
                      std::string_view code) {
    return w.exchange_js_code(appid, secret, code).errc;
  }
};

}  // namespace

TEST_CASE("login codes packed: the exact session_key and ids, used twice 40163, another "
          "app's 40029",
          "[mock][codes]") {
  code_world c;
  auto& w = c.w;
  // users of every length the admin API takes, in and beyond the short-string buffer
  for (const std::string& user : {std::string("a"), std::string("alice"),
                                  std::string("用户-with-a-name-longer-than-fifteen"),
                                  std::string(128, 'u')}) {
    const std::string code = w.login(mp, user);
    REQUIRE(code.size() == 32);
    const auto key = w.current_session_key(mp, user);
    REQUIRE(key);
    const auto got = w.exchange_js_code(mp, mp_secret, code);
    REQUIRE(got.ok());
    CHECK(got.value.session_key == *key);  // the same 24 characters back from 16 bytes
    CHECK(got.value.openid == mock_wechat::openid(mp, user));
    CHECK(got.value.unionid == mock_wechat::unionid("acct-1", user));
    CHECK(c.js(mp, mp_secret, code) == wechat::api_errc::code_been_used);
  }
  const std::string bob = w.login(mp, "bob");
  CHECK(c.js(mp2, "mp2-secret", bob) == wechat::api_errc::invalid_code);  // another app's
  CHECK(c.js(mp, mp_secret, bob) == wechat::api_errc{});  // not used up by that
  CHECK(c.js(mp2, "mp2-secret", bob) == wechat::api_errc::invalid_code);  // used, still not its
  CHECK(w.sizes()["js_codes"] == 5);  // used codes are kept (a reuse says 40163)
}

TEST_CASE("codes packed: anything but 32 characters of [A-Za-z0-9] is unknown (40029)",
          "[mock][codes]") {
  code_world c;
  auto& w = c.w;
  const std::string code = w.login(mp, "alice");
  std::string flipped = code;  // another character in one place: another (unknown) code
  flipped[7] = flipped[7] == 'A' ? 'B' : 'A';
  const std::string bad[] = {"",
                             "x",
                             code.substr(0, 31),
                             code + "A",
                             code.substr(0, 31) + "-",
                             code.substr(0, 31) + "_",
                             code.substr(0, 31) + "=",
                             code.substr(0, 31) + " ",
                             code.substr(0, 30) + "\xc3\xa9",  // é: 32 bytes, not alnum
                             std::string(code).replace(0, 1, 1, '\0'),
                             flipped,
                             std::string(32, 'A')};
  for (const std::string& b : bad) {
    INFO("code: " << b);
    CHECK(c.js(mp, mp_secret, b) == wechat::api_errc::invalid_code);
    CHECK(w.phone_number(*w.find_app(mp), b, "").errc == wechat::api_errc::invalid_code);
    CHECK(w.exchange_oauth_code(oa, oa_secret, b).errc == wechat::api_errc::invalid_code);
    CHECK(w.plugin_open_pid(*w.find_app(mp), b).errc == wechat::api_errc::invalid_code);
  }
  CHECK(c.js(mp, mp_secret, code) == wechat::api_errc{});  // none of them touched it
}

TEST_CASE("codes packed: alive until the second before their lifetime, then 40029",
          "[mock][codes][clock]") {
  code_world c;
  auto& w = c.w;
  const std::string a = w.login(mp, "alice"), b = w.login(mp, "bob");
  const std::string phone = w.phone(mp, "alice").code;
  const std::string phone_late = w.phone(mp, "bob").code;
  const std::string oa_code = w.oauth_code(oa, "alice", "snsapi_userinfo");
  const std::string oa_late = w.oauth_code(oa, "bob", "snsapi_base");
  const std::string web_code = w.oauth_code(web, "alice", "snsapi_login");
  const std::string web_late = w.oauth_code(web, "bob", "snsapi_login");
  const std::string plug = w.plugin_login(mp, "wx9000000000000009", "alice");
  const auto app = *w.find_app(mp);
  w.clock().advance(299);
  CHECK(c.js(mp, mp_secret, a) == wechat::api_errc{});
  const auto p = w.phone_number(app, phone, "");
  REQUIRE(p.ok());
  CHECK(p.value.pure_phone_number.size() == 11);
  CHECK(p.value.country_code == "86");
  CHECK(p.value.phone_number == "+86" + p.value.pure_phone_number);
  CHECK(w.phone_number(app, phone, "").errc == wechat::api_errc::code_been_used);
  const auto o = w.exchange_oauth_code(oa, oa_secret, oa_code);
  REQUIRE(o.ok());
  CHECK(o.value.scope == "snsapi_userinfo");
  CHECK(o.value.openid == mock_wechat::openid(oa, "alice"));
  CHECK(w.exchange_oauth_code(oa, oa_secret, oa_code).errc == wechat::api_errc::code_been_used);
  const auto pid = w.plugin_open_pid(app, plug);
  REQUIRE(pid.ok());
  CHECK(pid.value == mock_wechat::world::openpid("wx9000000000000009", "alice"));
  w.clock().advance(1);  // 300 s: the login, phone and OAuth codes of an app are gone
  CHECK(c.js(mp, mp_secret, b) == wechat::api_errc::invalid_code);
  CHECK(c.js(mp, mp_secret, a) == wechat::api_errc::invalid_code);  // used, and past its life
  CHECK(w.phone_number(app, phone_late, "").errc == wechat::api_errc::invalid_code);
  CHECK(w.exchange_oauth_code(oa, oa_secret, oa_late).errc == wechat::api_errc::invalid_code);
  const auto wc = w.exchange_oauth_code(web, "web-secret", web_code);  // a website's: 600 s
  REQUIRE(wc.ok());
  CHECK(wc.value.scope == "snsapi_login");
  w.clock().advance(299);
  CHECK(w.exchange_oauth_code(web, "web-secret", web_code).errc ==
        wechat::api_errc::code_been_used);
  w.clock().advance(1);
  CHECK(w.exchange_oauth_code(web, "web-secret", web_late).errc == wechat::api_errc::invalid_code);
}

TEST_CASE("codes packed: another app's phone code 40013, a login code for a plugin 1007",
          "[mock][codes]") {
  code_world c;
  auto& w = c.w;
  const std::string login = w.login(mp, "alice");
  const std::string phone = w.phone(mp, "alice", "+8613912345678").code;
  CHECK(w.phone_number(*w.find_app(mp2), phone, "").errc == wechat::api_errc::invalid_appid);
  CHECK(w.phone_number(*w.find_app(mp), phone, "onobody").errc ==
        wechat::api_errc::invalid_openid);  // refused by the check: not used up
  const auto p = w.phone_number(*w.find_app(mp), phone, mock_wechat::openid(mp, "alice"));
  REQUIRE(p.ok());
  CHECK(p.value.pure_phone_number == "13912345678");
  CHECK(w.plugin_open_pid(*w.find_app(mp), login).errc == wechat::api_errc::not_plugin_code);
  CHECK(w.plugin_open_pid(*w.find_app(mp2), login).errc == wechat::api_errc::not_plugin_code);
  const std::string snap = w.oauth_code(oa, "carol", "snsapi_userinfo", true);
  CHECK(w.exchange_oauth_code(web, "web-secret", snap).errc == wechat::api_errc::invalid_code);
  const auto s = w.exchange_oauth_code(oa, oa_secret, snap);
  REQUIRE(s.ok());
  CHECK(s.value.scope == "snsapi_base");
  CHECK(s.value.snapshot_user);
}

TEST_CASE("codes packed: a reset forgets every code, and codes work again after it",
          "[mock][codes]") {
  code_world c;
  auto& w = c.w;
  std::vector<std::pair<std::string, std::string>> codes;  // appid, code
  for (int i = 0; i < 100; ++i) {
    const std::string& appid = i % 2 ? mp : mp2;
    codes.emplace_back(appid, w.login(appid, "user-" + std::to_string(i % 7)));
  }
  const std::string phone = w.phone(mp, "user-1").code;
  const std::string oauth = w.oauth_code(oa, "user-1", "snsapi_base");
  const std::string plug = w.plugin_login(mp, "wx9000000000000009", "user-1");
  CHECK(w.sizes()["js_codes"] == 100);
  w.reset();
  CHECK(w.sizes()["js_codes"] == 0);
  CHECK(w.sizes()["phone_codes"] == 0);
  CHECK(w.sizes()["oauth_codes"] == 0);
  CHECK(w.sizes()["plugin_codes"] == 0);
  add_code_apps(w);
  w.clock().set(1800000000);
  for (const auto& [appid, code] : codes)
    CHECK(c.js(appid, appid == mp ? mp_secret : "mp2-secret", code) ==
          wechat::api_errc::invalid_code);
  CHECK(w.phone_number(*w.find_app(mp), phone, "").errc == wechat::api_errc::invalid_code);
  CHECK(w.exchange_oauth_code(oa, oa_secret, oauth).errc == wechat::api_errc::invalid_code);
  CHECK(w.plugin_open_pid(*w.find_app(mp), plug).errc == wechat::api_errc::invalid_code);
  // new codes after the reset carry their own strings (interned again from nothing)
  const std::string fresh = w.login(mp, "zed");
  const auto got = w.exchange_js_code(mp, mp_secret, fresh);
  REQUIRE(got.ok());
  CHECK(got.value.openid == mock_wechat::openid(mp, "zed"));
  CHECK(got.value.session_key == *w.current_session_key(mp, "zed"));
}

TEST_CASE("codes packed: logins, exchanges and resets from several threads at once",
          "[mock][codes][threads]") {
  code_world c;
  auto& w = c.w;
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        const std::string user = "u" + std::to_string(t) + "-" + std::to_string(i % 50);
        std::string code;
        try {
          code = w.login(mp, user);
        } catch (const mock_wechat::admin_error&) {
          continue;  // the app is gone for a moment: a reset
        }
        const auto got = w.exchange_js_code(mp, mp_secret, code);
        // a reset between the two may have forgotten the code, or the app; never a code
        // that answers for someone else
        if (got.ok() && got.value.openid != mock_wechat::openid(mp, user)) ++wrong;
      }
    });
  std::thread resetter([&] {
    while (!stop) {
      w.reset();
      w.add_app({mp, mp_secret, mock_wechat::app_type::miniprogram, "acct-1"});
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  for (auto& t : threads)
    t.join();
  stop = true;
  resetter.join();
  CHECK(wrong == 0);
}
