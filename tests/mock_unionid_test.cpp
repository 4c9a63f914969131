// The UnionID rules as a table, over every channel, in both modes: bound (today's, WeChat
// since 2021-02-23) and conditional (before it). The expected column restates the rules
// here, independently of mock_wechat/rules.hpp.
#include "mock_support.hpp"

#include <wechat/decrypt.hpp>

using namespace mocktest;

namespace {

const std::string lone_game = "wx9000000000000009";  // mini game, unbound
const std::string lone_oa = "wxa00000000000000a";    // official account, unbound

enum class follow_kind { none, same_account, other_account };
enum class auth_kind { none, official_account, mobile_app, website, other_account_oa };

struct observed {
  bool code2session, wxcontext, user_info, paid;
  int paid_errcode;
};

observed observe(fixture& f, const std::string& appid, const std::string& secret,
                 const std::string& user) {
  observed o{};
  const auto s = f.code2session(appid, secret, f.login(appid, user)).json();
  o.code2session = s.contains("unionid");
  if (o.code2session) CHECK(s["unionid"] == mock_wechat::unionid("acct-1", user));
  const auto c = f.admin("wxcontext", {{"appid", appid}, {"user", user}});
  o.wxcontext = c.contains("UNIONID");
  CHECK(c["OPENID"] == mock_wechat::openid(appid, user));
  const auto p = f.admin("user_info", {{"appid", appid}, {"user", user}});
  wechat::verify_options v;
  v.appid = appid;
  const auto u = wechat::decrypt_user_info(
      s["session_key"].get<std::string>(),
      {p["encryptedData"].get<std::string>(), p["iv"].get<std::string>(),
       p["rawData"].get<std::string>(), p["signature"].get<std::string>()},
      v);
  o.user_info = u.unionid.has_value();
  const auto pay = f.admin("pay", {{"appid", appid}, {"user", user}});
  const auto r = f.get("/wxa/getpaidunionid?access_token=" + f.token(appid, secret) +
                       "&openid=" + mock_wechat::openid(appid, user) +
                       "&transaction_id=" + pay["transaction_id"].get<std::string>());
  o.paid_errcode = r.errcode();
  o.paid = o.paid_errcode == 0;
  return o;
}

}  // namespace

TEST_CASE("the UnionID rule table: code2session, wxcontext, user_info, getpaidunionid",
          "[mock][unionid]") {
  for (const auto mode :
       {mock_wechat::unionid_rules::conditional, mock_wechat::unionid_rules::bound}) {
    mock_wechat::options opt;
    opt.rules = mode;
    fixture f(opt);
    f.add_standard_apps();
    f.world().add_app({lone_game, "lg-secret", mock_wechat::app_type::minigame, ""});
    f.world().add_app({lone_oa, "lo-secret", mock_wechat::app_type::official_account, ""});
    int row = 0;
    for (const bool is_game : {false, true}) {
      for (const bool bound : {true, false}) {
        for (const auto fk :
             {follow_kind::none, follow_kind::same_account, follow_kind::other_account}) {
          for (const auto ak : {auth_kind::none, auth_kind::official_account, auth_kind::mobile_app,
                                auth_kind::website, auth_kind::other_account_oa}) {
            const std::string user = "user-" + std::to_string(row++);
            const std::string appid = is_game ? (bound ? game : lone_game) : (bound ? mp : lone);
            const std::string secret = is_game ? (bound ? "game-secret" : "lg-secret")
                                               : (bound ? mp_secret : "lone-secret");
            if (fk == follow_kind::same_account) f.admin("follow", {{"user", user}, {"appid", oa}});
            if (fk == follow_kind::other_account)
              f.admin("follow", {{"user", user}, {"appid", oa2}});
            const std::string auth_app = ak == auth_kind::official_account   ? oa
                                         : ak == auth_kind::mobile_app       ? app_id
                                         : ak == auth_kind::website          ? web
                                         : ak == auth_kind::other_account_oa ? oa2
                                                                             : "";
            if (!auth_app.empty()) f.admin("authorize", {{"user", user}, {"appid", auth_app}});

            // The seed's rules, restated.
            const bool condition = fk == follow_kind::same_account ||
                                   (ak != auth_kind::none && ak != auth_kind::other_account_oa);
            const bool session_expected =
                bound && (mode == mock_wechat::unionid_rules::bound || condition);
            const bool user_info_expected = bound;
            const bool paid_expected = bound && !is_game;
            const int paid_errcode = paid_expected ? 0 : (!bound ? 89002 : 89300);

            const observed o = observe(f, appid, secret, user);
            INFO("mode=" << mock_wechat::to_string(mode) << " game=" << is_game
                         << " bound=" << bound << " follow=" << static_cast<int>(fk)
                         << " auth=" << static_cast<int>(ak));
            CHECK(o.code2session == session_expected);
            CHECK(o.wxcontext == session_expected);
            CHECK(o.user_info == user_info_expected);
            CHECK(o.paid == paid_expected);
            CHECK(o.paid_errcode == paid_errcode);
          }
        }
      }
    }
    CHECK(row == 60);
  }
}

TEST_CASE("the UnionID rule table: OAuth and user/info", "[mock][unionid][oauth]") {
  for (const auto mode :
       {mock_wechat::unionid_rules::conditional, mock_wechat::unionid_rules::bound}) {
    mock_wechat::options opt;
    opt.rules = mode;
    fixture f(opt);
    f.add_standard_apps();
    f.world().add_app({lone_oa, "lo-secret", mock_wechat::app_type::official_account, ""});
    struct row {
      std::string appid, secret, scope;
      bool expected;
      bool snapshot = false;
    };
    const row rows[] = {
        {oa, oa_secret, "snsapi_base", false},
        {oa, oa_secret, "snsapi_userinfo", true},
        {oa, oa_secret, "snsapi_userinfo", false, true},  // the snapshot page (2022-07-12)
        {app_id, "app-secret", "snsapi_base", true},
        {app_id, "app-secret", "snsapi_userinfo", true},
        {web, "web-secret", "snsapi_login", true},
        {lone_oa, "lo-secret", "snsapi_userinfo", false},
    };
    for (const auto& r : rows) {
      INFO(mock_wechat::to_string(mode) << " " << r.appid << " " << r.scope << " " << r.snapshot);
      const std::string code = f.admin("oauth_code", {{"appid", r.appid},
                                                      {"user", "alice"},
                                                      {"scope", r.scope},
                                                      {"snapshot", r.snapshot}})["code"];
      const auto j = f.get("/sns/oauth2/access_token?appid=" + r.appid + "&secret=" + r.secret +
                           "&code=" + code + "&grant_type=authorization_code")
                         .json();
      CHECK(j.contains("unionid") == r.expected);
    }
    // user/info: only followers of a bound official account
    const std::string t = f.token(oa, oa_secret), tl = f.token(lone_oa, "lo-secret");
    f.admin("follow", {{"user", "bob"}, {"appid", oa}});
    f.admin("follow", {{"user", "bob"}, {"appid", lone_oa}});
    f.admin("authorize", {{"user", "carol"}, {"appid", oa}});
    CHECK(
        f.get("/cgi-bin/user/info?access_token=" + t + "&openid=" + mock_wechat::openid(oa, "bob"))
            .json()
            .contains("unionid"));
    CHECK_FALSE(f.get("/cgi-bin/user/info?access_token=" + tl +
                      "&openid=" + mock_wechat::openid(lone_oa, "bob"))
                    .json()
                    .contains("unionid"));
    CHECK_FALSE(f.get("/cgi-bin/user/info?access_token=" + t +
                      "&openid=" + mock_wechat::openid(oa, "carol"))
                    .json()
                    .contains("unionid"));
  }
}

TEST_CASE("an snsapi_userinfo OAuth exchange is an authorization but snsapi_base is not",
          "[mock][unionid][oauth]") {
  mock_wechat::options opt;
  opt.rules = mock_wechat::unionid_rules::conditional;  // only the legacy rules can tell
  fixture f(opt);
  f.add_standard_apps();
  for (const std::string scope : {"snsapi_base", "snsapi_userinfo"}) {
    const std::string user = "dave-" + scope;
    const std::string code =
        f.admin("oauth_code", {{"appid", oa}, {"user", user}, {"scope", scope}})["code"];
    REQUIRE(f.get("/sns/oauth2/access_token?appid=" + oa + "&secret=" + oa_secret +
                  "&code=" + code + "&grant_type=authorization_code")
                .errcode() == 0);
    const auto s = f.code2session(mp, mp_secret, f.login(mp, user)).json();
    CHECK(s.contains("unionid") == (scope == "snsapi_userinfo"));
  }
}

TEST_CASE("one person: one openid per app, one unionid per Open Platform account",
          "[mock][unionid]") {
  CHECK(mock_wechat::openid(mp, "alice") != mock_wechat::openid(mp2, "alice"));
  CHECK(mock_wechat::openid(mp, "alice") == mock_wechat::openid(mp, "alice"));
  CHECK(mock_wechat::unionid("acct-1", "alice") != mock_wechat::unionid("acct-2", "alice"));
  CHECK(mock_wechat::unionid("acct-1", "alice").size() == 28);
  CHECK(mock_wechat::openid(mp, "alice")[0] == 'o');
  CHECK(mock_wechat::make_appid("shop").size() == 18);
  CHECK(mock_wechat::make_appid("shop").rfind("wx", 0) == 0);
}
