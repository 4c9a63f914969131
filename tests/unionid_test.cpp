// The resolver against the mock: for every combination of (mock mode: bound = WeChat since
// 2021-02-23, conditional = before) x (the resolver's rule set: current, legacy) x (app
// bound) x (follows a same-account official account) x (authorized a same-account app) x
// (device data: none, getUserInfo, getUserProfile) x (paid: no, inside the window, outside
// it), in both profile eras (anonymous, real), the unionid and channel, or the reason, are what the rules say; and the mock's rule
// engine and the resolver agree on every row. Then the identity directory.
#include "mock_support.hpp"

#include <wechat/transport/httplib.hpp>
#include <wechat/unionid.hpp>

using namespace mocktest;

namespace {
enum class paid { no, inside, outside };
enum class consent { none, user_info, user_profile };
}  // namespace

TEST_CASE("the resolver follows the UnionID rules on every row, both rule sets, both mock modes",
          "[unionid][resolver]") {
  for (const auto mode :
       {mock_wechat::unionid_rules::bound, mock_wechat::unionid_rules::conditional})
  for (const auto era : {mock_wechat::profile_era::anonymous, mock_wechat::profile_era::real}) {
    mock_wechat::options opt;
    opt.rules = mode;
    opt.profiles = era;  // the profile era changes the profile, never the ids
    fixture f(opt);
    f.add_standard_apps();
    f.world().clock().set(1800000000);
    auto clk = std::make_shared<wechat::manual_clock>(1800000000);
    wechat::httplib_transport_options t;
    t.base_url = f.mock.base_url();
    auto transport = wechat::httplib_transport::create(t);
    int row = 0;
    for (const bool bound : {true, false}) {
      const std::string appid = bound ? mp : lone, secret = bound ? mp_secret : "lone-secret";
      wechat::client wx({appid, secret}, transport, nullptr, clk);
      for (const bool follows : {false, true})
        for (const bool authorized : {false, true})
          for (const consent c : {consent::none, consent::user_info, consent::user_profile})
            for (const paid p : {paid::no, paid::inside, paid::outside}) {
              const std::string user = "u" + std::to_string(row++);
              if (follows) f.admin("follow", {{"user", user}, {"appid", oa}});
              if (authorized) f.admin("authorize", {{"user", user}, {"appid", app_id}});
              wechat::unionid_evidence e;
              e.session = wx.code2session(f.login(appid, user));
              if (c != consent::none) {
                const auto u = f.admin(c == consent::user_info ? "user_info" : "user_profile",
                                       {{"appid", appid}, {"user", user}});
                e.user_info = wechat::encrypted_user_info{u["encryptedData"], u["iv"], u["rawData"],
                                                          u["signature"]};
              }
              if (p != paid::no) {
                const auto pay = f.admin("pay", {{"appid", appid}, {"user", user}});
                e.payment = wechat::payment_evidence{
                    wechat::paid_order::by_transaction(pay["transaction_id"]), f.world().now()};
              }
              if (p == paid::outside) {
                f.world().clock().advance(301);
                clk->advance(std::chrono::seconds(301));
              }
              // What the mock's rules give, restated: code2session...
              const bool session =
                  bound && (mode == mock_wechat::unionid_rules::bound || follows || authorized);
              // ...and the channel that gives it, whatever the resolver's rule set.
              std::optional<wechat::unionid_channel> channel;
              if (session)
                channel = wechat::unionid_channel::session;
              else if (bound && c == consent::user_info)
                channel = wechat::unionid_channel::user_info;
              else if (bound && p == paid::inside)
                channel = wechat::unionid_channel::paid;

              for (const auto rules : {wechat::unionid_rules::current, wechat::unionid_rules::legacy}) {
                wechat::resolver_options ro;
                ro.appid = appid;  // binding unknown to the resolver: it must infer it
                ro.rules = rules;
                wechat::unionid_resolver resolver(ro, wx, clk);
                const auto paid_calls = f.mock.journal().count("/wxa/getpaidunionid");
                const auto r = resolver.resolve(e);

                // The diagnosis when no channel gives it: definitive facts first (an
                // unbound app proven by a verified getUserInfo or by getPaidUnionId's
                // 89002; getUserProfile data, which has no ids), then what the rule set
                // makes of code2session's silence, then the payment window.
                std::optional<wechat::unionid_reason> reason;
                if (!channel) {
                  if (!bound && (c == consent::user_info || p == paid::inside))
                    reason = wechat::unionid_reason::app_not_bound;
                  else if (c == consent::user_profile)
                    reason = wechat::unionid_reason::profile_without_ids;
                  else if (rules == wechat::unionid_rules::current)
                    reason = wechat::unionid_reason::likely_not_bound;
                  else if (p == paid::outside)
                    reason = wechat::unionid_reason::payment_window_closed;
                  else
                    reason = wechat::unionid_reason::no_relationship;
                }

                INFO("mode=" << mock_wechat::to_string(mode) << " era=" << mock_wechat::to_string(era)
                             << " rules=" << wechat::to_string(rules)
                             << " bound=" << bound << " follows=" << follows
                             << " authorized=" << authorized << " consent=" << static_cast<int>(c)
                             << " paid=" << static_cast<int>(p));
                if (channel) {
                  REQUIRE(r.unionid);
                  CHECK(*r.unionid == mock_wechat::unionid("acct-1", user));
                  CHECK(r.channel == *channel);
                  CHECK_FALSE(r.diagnosis);
                } else {
                  CHECK_FALSE(r.unionid);
                  REQUIRE(r.diagnosis);
                  CHECK(r.diagnosis->reason == *reason);
                  CHECK(std::string(r.diagnosis->next_step()).size() > 20);
                }
                // Never a call it did not need: getPaidUnionId only when the payment is the
                // channel left to try, and never outside the window.
                const bool should_call =
                    !session && !(bound && c == consent::user_info) && p == paid::inside;
                CHECK(f.mock.journal().count("/wxa/getpaidunionid") - paid_calls ==
                      (should_call ? 1u : 0u));
              }
              // The mock's own engine agrees: the session channel matches wxcontext.
              const auto ctx = f.admin("wxcontext", {{"appid", appid}, {"user", user}});
              CHECK(ctx.contains("UNIONID") == session);
            }
    }
    CHECK(row == 72);
  }
}

TEST_CASE("today's rules: a bound app without a unionid from code2session is an anomaly",
          "[unionid][resolver]") {
  // A world that still applies the legacy rules stands in for the anomaly: the backend
  // says the app is bound, code2session says nothing.
  mock_wechat::options opt;
  opt.rules = mock_wechat::unionid_rules::conditional;
  fixture f(opt);
  f.add_standard_apps();
  wechat::httplib_transport_options t;
  t.base_url = f.mock.base_url();
  wechat::client wx({mp, mp_secret}, wechat::httplib_transport::create(t));
  wechat::resolver_options ro;
  ro.appid = mp;
  ro.bound = true;
  wechat::unionid_evidence e;
  e.session = wx.code2session(f.login(mp, "alice"));
  REQUIRE_FALSE(e.session.unionid);
  const auto today = wechat::unionid_resolver(ro, wx).resolve(e);
  REQUIRE(today.diagnosis);
  CHECK(today.diagnosis->reason == wechat::unionid_reason::bound_but_missing);
  CHECK(std::string(today.diagnosis->text()).find("2021-02-23") != std::string::npos);
  ro.rules = wechat::unionid_rules::legacy;
  const auto legacy = wechat::unionid_resolver(ro, wx).resolve(e);
  REQUIRE(legacy.diagnosis);
  CHECK(legacy.diagnosis->reason == wechat::unionid_reason::no_relationship);
  CHECK(std::string(legacy.diagnosis->next_step()).find("getUserInfo") != std::string::npos);
  // getUserInfo consent still gives it under either rule set (the payload carries it)
  const auto u = f.admin("user_info", {{"appid", mp}, {"user", "alice"}});
  e.user_info = wechat::encrypted_user_info{u["encryptedData"], u["iv"], u["rawData"], u["signature"]};
  for (const auto rules : {wechat::unionid_rules::current, wechat::unionid_rules::legacy}) {
    ro.rules = rules;
    const auto r = wechat::unionid_resolver(ro, wx).resolve(e);
    REQUIRE(r.unionid);
    CHECK(r.channel == wechat::unionid_channel::user_info);
  }
}

TEST_CASE("the resolver: configured unbound, cloud context, invalid user info",
          "[unionid][resolver]") {
  // The legacy rules, in the world and the resolver: code2session gives no unionid, so
  // the later channels are reached and their own failures are the diagnosis.
  mock_wechat::options opt;
  opt.rules = mock_wechat::unionid_rules::conditional;
  fixture f(opt);
  f.add_standard_apps();
  wechat::httplib_transport_options t;
  t.base_url = f.mock.base_url();
  wechat::client wx({mp, mp_secret}, wechat::httplib_transport::create(t));
  wechat::resolver_options ro;
  ro.appid = mp;
  ro.rules = wechat::unionid_rules::legacy;
  wechat::unionid_evidence e;
  e.session = wx.code2session(f.login(mp, "alice"));
  REQUIRE_FALSE(e.session.unionid);
  SECTION("configured as unbound: app_not_bound, no call") {
    ro.bound = false;
    wechat::unionid_resolver r(ro, wx);
    const auto res = r.resolve(e);
    REQUIRE(res.diagnosis);
    CHECK(res.diagnosis->reason == wechat::unionid_reason::app_not_bound);
    CHECK(std::string(res.diagnosis->text()).find("Open Platform") != std::string::npos);
  }
  SECTION("the cloud context carries it (a cloud function forwarded getWXContext)") {
    f.admin("follow", {{"user", "alice"}, {"appid", oa}});
    const auto ctx = f.admin("wxcontext", {{"appid", mp}, {"user", "alice"}});
    e.cloud = wechat::cloud_context{ctx["OPENID"], ctx["APPID"], ctx["UNIONID"].get<std::string>()};
    wechat::unionid_resolver r(ro, wx);
    const auto res = r.resolve(e);
    REQUIRE(res.unionid);
    CHECK(res.channel == wechat::unionid_channel::cloud);
    e.cloud->openid = "osomeoneelse";
    CHECK(r.resolve(e).diagnosis->reason == wechat::unionid_reason::cloud_context_mismatch);
  }
  SECTION("user info from an older login: user_info_invalid, with the decrypt error as cause") {
    const auto u = f.admin("user_info", {{"appid", mp}, {"user", "alice"}});
    f.login(mp, "alice");  // the key rotates; e.session keeps the old one
    const auto u2 = f.admin("user_info", {{"appid", mp}, {"user", "alice"}});
    e.user_info = wechat::encrypted_user_info{u2["encryptedData"], u2["iv"], "", ""};
    wechat::unionid_resolver r(ro, wx);
    const auto res = r.resolve(e);
    REQUIRE(res.diagnosis);
    CHECK(res.diagnosis->reason == wechat::unionid_reason::user_info_invalid);
    CHECK(res.diagnosis->cause.category() == wechat::decrypt_category());
    e.user_info =
        wechat::encrypted_user_info{u["encryptedData"], u["iv"], u["rawData"], u["signature"]};
    CHECK(r.resolve(e).channel ==
          wechat::unionid_channel::user_info);  // the old payload, the old key
  }
  SECTION("a session without an openid is misuse") {
    wechat::unionid_resolver r(ro, wx);
    std::error_code ec;
    r.resolve(wechat::unionid_evidence{}, ec);
    CHECK(ec == wechat::protocol_errc::missing_field);
    CHECK_THROWS_AS(r.resolve(wechat::unionid_evidence{}), wechat::error);
  }
}

TEST_CASE("every unionid_reason has a name, a text and a next step", "[unionid]") {
  for (int v = 1; v <= 11; ++v) {
    const auto r = static_cast<wechat::unionid_reason>(v);
    CHECK(std::string(wechat::to_string(r)) != "?");
    CHECK(std::string(wechat::unionid_reason_text(r)).size() > 20);
    CHECK(std::string(wechat::unionid_next_step(r)).size() > 20);
  }
}

TEST_CASE("the directory links one person's openids across apps, both ways",
          "[unionid][directory]") {
  wechat::identity_directory dir;
  const std::string u = mock_wechat::unionid("acct-1", "alice");
  const std::string o_mp = mock_wechat::openid(mp, "alice"),
                    o_oa = mock_wechat::openid(oa, "alice"),
                    o_app = mock_wechat::openid(app_id, "alice");
  dir.link(mp, o_mp);  // first seen without a unionid
  std::error_code ec;
  CHECK(dir.known(mp, o_mp, ec));
  CHECK_FALSE(dir.unionid_of(mp, o_mp));
  CHECK(dir.openids_of(u).empty());
  dir.link(oa, o_oa, u);
  dir.link(mp, o_mp, u);  // the unionid appears later: merged
  dir.link(mp, o_mp, u);  // idempotent
  dir.link(app_id, o_app, u);
  CHECK(dir.unionid_of(mp, o_mp) == std::optional<std::string>(u));
  const auto all = dir.openids_of(u);
  REQUIRE(all.size() == 3);
  CHECK(all[0] == wechat::app_openid{mp, o_mp});
  CHECK(all[1] == wechat::app_openid{oa, o_oa});
  CHECK(all[2] == wechat::app_openid{app_id, o_app});
  SECTION("an openid never moves to another unionid") {
    dir.link(mp, o_mp, "oanotherunionid", ec);
    CHECK(ec == wechat::store_errc::conflict);
    CHECK_THROWS_AS(dir.link(mp, o_mp, "oanotherunionid"), wechat::error);
    CHECK(dir.unionid_of(mp, o_mp) == std::optional<std::string>(u));  // nothing lost
    CHECK(dir.openids_of(u).size() == 3);
  }
  SECTION("concurrent links from many threads agree") {
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
      threads.emplace_back([&, i] {
        for (int k = 0; k < 200; ++k) {
          const std::string user = "user" + std::to_string(k);
          dir.link(i % 2 ? mp : oa, mock_wechat::openid(i % 2 ? mp : oa, user),
                   mock_wechat::unionid("acct-1", user));
        }
      });
    for (auto& t : threads)
      t.join();
    for (int k = 0; k < 200; ++k)
      CHECK(dir.openids_of(mock_wechat::unionid("acct-1", "user" + std::to_string(k))).size() == 2);
  }
}

TEST_CASE("the resolver asks getPaidUnionId only through the lookup it is given, inside the window",
          "[unionid][resolver]") {
  // No HTTP: the lookup is a lambda that records what it was asked.
  auto clk = std::make_shared<wechat::manual_clock>(1800000000);
  std::vector<std::string> asked;
  std::error_code answer;  // what the lookup answers
  wechat::paid_unionid_lookup lookup = [&](std::string_view openid, const wechat::paid_order& o,
                                           std::error_code& ec) {
    asked.push_back(std::string(openid) + "/" + o.transaction_id);
    ec = answer;
    return ec ? std::string() : std::string("union-42");
  };
  wechat::resolver_options ro;
  ro.appid = "wx-app";
  wechat::unionid_resolver resolver(ro, lookup, clk);
  wechat::unionid_evidence e;
  e.session.openid = "o-1";
  e.session.session_key = "irrelevant";
  wechat::payment_evidence pay;
  pay.order.transaction_id = "tx-9";
  pay.paid_at = 1800000000 - 299;
  e.payment = pay;

  SECTION("inside the window: one call, the unionid and its channel") {
    const auto r = resolver.resolve(e);
    CHECK(asked == std::vector<std::string>{"o-1/tx-9"});
    REQUIRE(r.unionid);
    CHECK(*r.unionid == "union-42");
    CHECK(r.channel == wechat::unionid_channel::paid);
  }
  SECTION("past the 5 minutes: no call, the reason says so") {
    e.payment->paid_at = 1800000000 - 301;
    const auto r = resolver.resolve(e);
    CHECK(asked.empty());
    REQUIRE(r.diagnosis);
    // today's rules: code2session's silence says more (the app is likely unbound)...
    CHECK(r.diagnosis->reason == wechat::unionid_reason::likely_not_bound);
    // ...the legacy rules: the closed window is the reason
    ro.rules = wechat::unionid_rules::legacy;
    const auto l = wechat::unionid_resolver(ro, lookup, clk).resolve(e);
    CHECK(asked.empty());
    REQUIRE(l.diagnosis);
    CHECK(l.diagnosis->reason == wechat::unionid_reason::payment_window_closed);
  }
  SECTION("an empty lookup is refused when the resolver is made") {
    CHECK_THROWS_AS(wechat::unionid_resolver(ro, wechat::paid_unionid_lookup{}, clk),
                    std::invalid_argument);
  }
  SECTION("WeChat says 89300: payment_not_found, the cause kept") {
    answer = wechat::api_errc::invalid_trade;
    const auto r = resolver.resolve(e);
    CHECK(asked.size() == 1);
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->reason == wechat::unionid_reason::payment_not_found);  // both rule sets
    CHECK(r.diagnosis->cause == wechat::api_errc::invalid_trade);
    SECTION("89002: app_not_bound, the cause kept") {
      answer = wechat::api_errc::open_not_exists;
      const auto n = resolver.resolve(e);
      REQUIRE(n.diagnosis);
      CHECK(n.diagnosis->reason == wechat::unionid_reason::app_not_bound);
      CHECK(n.diagnosis->cause == wechat::api_errc::open_not_exists);
    }
  }
}
