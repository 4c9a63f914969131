// unionid: the UnionID rules, one user at a time, against the embedded mock. For each
// situation the backend resolves the user's UnionID with what it has in hand and prints
// either the UnionID and the channel that gave it, or the diagnosis: why it is missing and
// what to do. First today's rules (WeChat since 2021-02-23: every user of a bound mini
// program gets it from code2session), then the legacy ones (before that date: a follow, an
// authorization, consent or a payment was needed). Then the identity directory links one
// person's openids across apps.
//
//   unionid
#include <mock_wechat/mock_wechat.hpp>
#include <wechat/wechat.hpp>

#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <tuple>

namespace {

const std::string mp = "wx1111111111111111", mp_secret = "mp-secret";  // bound to "acme"
const std::string lone = "wx2222222222222222";                         // not bound
const std::string game = "wx3333333333333333";                         // mini game, "acme"
const std::string oa = "wx4444444444444444";                           // official account of "acme"
const std::string app = "wx5555555555555555";                          // mobile app of "acme"

void show(const std::string& situation, const wechat::unionid_result& r) {
  std::cout << "\n- " << situation << "\n";
  if (r.unionid) {
    std::cout << "    unionid " << *r.unionid << " (channel: " << wechat::to_string(r.channel)
              << ")\n";
  } else if (r.diagnosis) {
    std::cout << "    no unionid: " << wechat::to_string(r.diagnosis->reason) << "\n"
              << "    why:        " << r.diagnosis->text() << "\n"
              << "    next step:  " << r.diagnosis->next_step() << "\n";
  }
}

}  // namespace

int main() {
  mock_wechat::server mock;  // today's WeChat: --unionid-rules bound, --profiles anonymous
  auto& w = mock.world();
  using T = mock_wechat::app_type;
  w.add_app({mp, mp_secret, T::miniprogram, "acme"});
  w.add_app({lone, "lone-secret", T::miniprogram, ""});
  w.add_app({game, "game-secret", T::minigame, "acme"});
  w.add_app({oa, "oa-secret", T::official_account, "acme"});
  w.add_app({app, "app-secret", T::mobile_app, "acme"});

  wechat::httplib_transport_options t;
  t.base_url = mock.base_url();
  auto transport = wechat::httplib_transport::create(t);
  auto resolver_for = [&](const std::string& appid, const std::string& secret, bool mini_game,
                          std::optional<bool> bound = std::nullopt,
                          wechat::unionid_rules rules = wechat::unionid_rules::current) {
    auto c = std::make_shared<wechat::client>(wechat::client_options{appid, secret}, transport);
    wechat::resolver_options ro;
    ro.appid = appid;
    ro.mini_game = mini_game;
    ro.bound = bound;  // what you know of your own app's binding, if anything
    ro.rules = rules;  // the rules the diagnosis assumes (today's by default)
    return std::make_pair(c, std::make_shared<wechat::unionid_resolver>(ro, *c));
  };
  auto [wx, resolver] = resolver_for(mp, mp_secret, false);
  auto login = [&](wechat::client& c, const std::string& appid, const std::string& user) {
    wechat::unionid_evidence e;
    e.session = c.code2session(w.login(appid, user));
    return e;
  };

  std::cout << "Today's rules (WeChat since 2021-02-23): code2session gives the unionid to every\n"
               "user of a mini program bound to an Open Platform account\n";
  {
    auto [c, r] = resolver_for(lone, "lone-secret", false);
    show("a mini program with no Open Platform account (the resolver not told)",
         r->resolve(login(*c, lone, "ann")));
    auto [c2, r2] = resolver_for(lone, "lone-secret", false, false);
    show("the same, with resolver_options::bound = false", r2->resolve(login(*c2, lone, "ann")));
    // wx.getUserProfile data never has ids (and since 2022-11-08 its profile is anonymous)
    auto pe = login(*c, lone, "ann");
    const auto prof = w.get_user_profile(lone, "ann");
    pe.user_info =
        wechat::encrypted_user_info{prof.encrypted_data, prof.iv, prof.raw_data, prof.signature};
    show("the device sent wx.getUserProfile data", r->resolve(pe));
  }
  auto e = login(*wx, mp, "bo");
  show("any user of a bound mini program: no follow, no consent needed", resolver->resolve(e));
  {
    auto [c, r] = resolver_for(game, "game-secret", true);
    show("any user of a bound mini game", r->resolve(login(*c, game, "gus")));
  }
  {
    // Said to be bound, yet code2session gives nothing: an anomaly worth its own reason.
    // (A world on the legacy rules stands in for whatever went wrong.)
    w.set_rules(mock_wechat::unionid_rules::conditional);
    auto [c, r] = resolver_for(mp, mp_secret, false, true);
    show("an app configured as bound whose code2session gives no unionid",
         r->resolve(login(*c, mp, "kim")));
  }

  std::cout << "\nThe legacy rules (WeChat before 2021-02-23; mock --unionid-rules conditional,\n"
               "resolver_options::rules = legacy)\n";
  w.set_rules(mock_wechat::unionid_rules::conditional);
  std::tie(wx, resolver) =
      resolver_for(mp, mp_secret, false, std::nullopt, wechat::unionid_rules::legacy);
  e = login(*wx, mp, "bo2");
  show("a new user of a bound mini program, nothing else known", resolver->resolve(e));

  w.follow("cy", oa);
  show("the user follows the account's official account", resolver->resolve(login(*wx, mp, "cy")));

  w.authorize("di", app);
  show("the user has logged in to the account's mobile app",
       resolver->resolve(login(*wx, mp, "di")));

  e = login(*wx, mp, "ed");
  const auto info = w.get_user_info(mp, "ed");
  e.user_info =
      wechat::encrypted_user_info{info.encrypted_data, info.iv, info.raw_data, info.signature};
  show("the user consented: wx.getUserInfo, decrypted with the session_key", resolver->resolve(e));

  e = login(*wx, mp, "fay");
  const auto paid = w.pay(mp, "fay");  // the payment notification tells the backend when
  e.payment = wechat::payment_evidence{wechat::paid_order::by_transaction(paid.transaction_id),
                                       std::time(nullptr)};
  show("the user has just paid (getPaidUnionId, within 5 minutes)", resolver->resolve(e));
  e.payment->paid_at = std::time(nullptr) - 360;
  show("a payment 6 minutes old", resolver->resolve(e));

  {
    auto [c, r] = resolver_for(game, "game-secret", true, std::nullopt,
                               wechat::unionid_rules::legacy);
    auto ge = login(*c, game, "gus2");
    const auto gp = w.pay(game, "gus2");
    ge.payment = wechat::payment_evidence{wechat::paid_order::by_transaction(gp.transaction_id),
                                          std::time(nullptr)};
    show("a mini game, after a payment", r->resolve(ge));
  }

  w.follow("hal", oa);
  e = login(*wx, mp, "hal");
  const auto ctx = w.wxcontext(mp, "hal");
  e.session.unionid.reset();  // say the backend did not keep it: the cloud context has it
  e.cloud = wechat::cloud_context{ctx.openid, ctx.appid, ctx.unionid};
  show("a cloud function's getWXContext() (the user follows the official account)",
       resolver->resolve(e));
  w.set_rules(mock_wechat::unionid_rules::bound);  // back to today
  std::tie(wx, resolver) = resolver_for(mp, mp_secret, false);

  // One person, two apps, two openids, one unionid.
  std::cout << "\nThe directory: one person across the mini program and the official account\n";
  wechat::identity_directory directory;
  e = login(*wx, mp, "ivy");
  directory.link(mp, e.session.openid);  // first seen, say before the binding: no unionid yet
  const auto r = resolver->resolve(login(*wx, mp, "ivy"));
  if (r.unionid) directory.link(mp, e.session.openid, *r.unionid);  // merged once known
  wechat::client oa_client({oa, "oa-secret"}, transport);
  const auto web = oa_client.oauth_exchange(w.oauth_code(oa, "ivy", "snsapi_userinfo"));
  if (web.unionid) directory.link(oa, web.openid, *web.unionid);
  // The official account's snapshot page (since 2022-07-12): a virtual openid, not ivy's.
  const auto snap =
      oa_client.oauth_exchange(w.oauth_code(oa, "ivy", "snsapi_userinfo", /*snapshot=*/true));
  if (snap.is_snapshot_user)
    std::cout << "    (a snapshot-page visit gave the virtual openid " << snap.openid
              << ": not linked)\n";
  for (const auto& who : directory.openids_of(r.unionid.value_or("")))
    std::cout << "    " << r.unionid.value_or("?") << " -> " << who.appid << " / " << who.openid
              << "\n";
  std::cout << "\nunionid example finished\n";
  return 0;
}
