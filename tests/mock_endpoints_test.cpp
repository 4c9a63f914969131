// The mock's WeChat endpoints over real HTTP on loopback: each success with its exact
// shape, and each error code in the order WeChat checks them.
#include "mock_support.hpp"

#include <wechat/decrypt.hpp>

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
