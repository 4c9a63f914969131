// mock_wechat/world.hpp - the simulated WeChat: apps, users and what they did, codes,
// sessions, payments and tokens, with WeChat's rules applied to them.
//
// A thin facade over the world's parts (mock_wechat/world/), each with one job:
//   directory.hpp  apps, users (follows, authorizations, profile, risk), openid -> user,
//                  and the facts the UnionID rule engine (rules.hpp) needs
//   codes.hpp      single-use codes, one lifecycle for every kind (login, phone, OAuth)
//   sessions.hpp   session keys per (app, user), jscode2session's minute quota
//   tokens.hpp     access tokens: cgi-bin/token, stable_token, OAuth, their rotation
//   payments.hpp   WeChat Pay payments for getpaidunionid
//   components.hpp Open Platform third-party platforms (tickets, pushes, authorizations)
//                  and WeCom corps
//   types.hpp, sharded_map.hpp  the values, the limits and how state is stored
// This file says what each device action and each WeChat endpoint does with them: one
// short method each, about 30 of them, hence its ~530 lines; no state lives here.
//
// Two faces, two error models:
//   the device and control side (add_app, login, get_user_info, pay, follow...): what the
//   admin API and the embedded API call; failures throw mock_wechat::admin_error (an
//   HTTP status: 400, 404, or 507 at a limit of world_limits);
//   the WeChat side (exchange_js_code, fetch_token, ...): what the endpoint handlers
//   (api.hpp) call after the presence checks; failures are the wechat::api_errc to answer,
//   in the returned outcome<T>, never exceptions.
//
// Thread safety: every method may be called from any thread. State is sharded by key
// (codes, users, sessions, tokens, payments) so concurrent logins do not share a lock;
// the app table is read-mostly behind a shared_mutex.
#pragma once

#include <wechat/crypto.hpp>
#include <wechat/decrypt.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mock_wechat/clock.hpp"
#include "mock_wechat/ids.hpp"
#include "mock_wechat/rules.hpp"
#include "mock_wechat/world/codes.hpp"
#include "mock_wechat/world/components.hpp"
#include "mock_wechat/world/directory.hpp"
#include "mock_wechat/world/payments.hpp"
#include "mock_wechat/world/quotas.hpp"
#include "mock_wechat/world/sessions.hpp"
#include "mock_wechat/world/tokens.hpp"
#include "mock_wechat/world/types.hpp"

namespace mock_wechat {

class world {
public:
  explicit world(unionid_rules rules = unionid_rules::bound, world_limits l = {},
                 profile_era profiles = profile_era::anonymous)
      : rules_(rules), profiles_(profiles), limits_(l), dir_(l), sessions_(l),
        js_codes_("login codes", l.codes), phone_codes_("phone codes", l.codes),
        oauth_codes_("OAuth codes", l.codes), tokens_(l), payments_(l),
        plugin_codes_("plugin codes", l.codes), quotas_(l), components_(l), corps_(l),
        wecom_codes_("WeCom codes", l.codes) {}
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  const world_limits& limits() const noexcept { return limits_; }
  virtual_clock& clock() noexcept { return *clock_; }
  std::int64_t now() const noexcept { return clock_->now(); }
  /// The virtual clock as the library's time source: give it to wechat::client and
  /// unionid_resolver (and verify_options::clock) so that a test that moves the mock's
  /// time moves the library's too. Shared: it stays valid after the world is gone.
  std::shared_ptr<const wechat::time_source> time_source() const { return clock_; }
  unionid_rules rules() const noexcept { return rules_.load(); }
  void set_rules(unionid_rules r) noexcept { rules_.store(r); }
  profile_era profiles() const noexcept { return profiles_.load(); }
  void set_profiles(profile_era e) noexcept { profiles_.store(e); }

  /// Empties the world (apps, users, codes, tokens, payments); the clock back to real time.
  void reset() {
    dir_.clear();
    sessions_.clear();
    js_codes_.clear();
    phone_codes_.clear();
    oauth_codes_.clear();
    tokens_.clear();
    payments_.clear();
    plugin_codes_.clear();
    quotas_.clear();
    components_.clear();
    corps_.clear();
    wecom_codes_.clear();
    clock_->reset();
    risk_requests_ = 0;
  }

  // ------------------------------------------------------------------ control side --

  /// Registers (or replaces) an app. An empty appid is an error, and so is a third-party
  /// platform's; an empty secret gets a random 32-hex one. Returns the app as stored.
  app add_app(app a) {
    if (components_.exists(a.appid))
      throw admin_error(400, "appid " + a.appid + " is a third-party platform's component_appid");
    return dir_.add_app(std::move(a));
  }
  /// The app, or nullptr.
  std::shared_ptr<const app> find_app(std::string_view appid) const { return dir_.find_app(appid); }
  /// Every app, sorted by appid.
  std::vector<app> apps() const { return dir_.apps(); }

  /// Flags a user as high-risk (jscode2session then answers 40226) or not.
  void set_high_risk(const std::string& user, bool high_risk) {
    dir_.check_user(user);
    dir_.set_high_risk(user, high_risk);
  }
  /// Sets what wx.getUserInfo reveals of a user.
  void set_profile(const std::string& user, const profile& p) {
    dir_.check_user(user);
    dir_.set_profile(user, p);
  }
  /// The user's profile (explicit, or derived from the name).
  profile profile_of(const std::string& user) { return dir_.profile_of(user); }

  /// The user follows official account `appid`.
  void follow(const std::string& user, const std::string& appid) {
    const auto a = dir_.require_app(appid);
    dir_.check_user(user);
    dir_.check_official_account(*a, "follow");
    dir_.remember_openid(*a, user);
    dir_.follow(user, appid, now());
  }
  void unfollow(const std::string& user, const std::string& appid) {
    const auto a = dir_.require_app(appid);
    dir_.check_user(user);
    dir_.check_official_account(*a, "unfollow");
    dir_.unfollow(user, appid);
  }

  /// The user authorized (logged into) an official account, mobile app or website.
  void authorize(const std::string& user, const std::string& appid) {
    const auto a = dir_.require_app(appid);
    dir_.check_user(user);
    dir_.check_web_app(*a, "authorize");
    dir_.remember_openid(*a, user);
    dir_.add_authorization(user, appid);
  }

  /// wx.login on the device: a fresh session_key becomes the user's current one for this
  /// app (the previous one dies now) and a 5-minute single-use code carries it.
  std::string login(const std::string& appid, const std::string& user) {
    device_action(appid, user, "login");
    const std::string key = new_session_key();
    const std::int64_t t = now();
    return js_codes_.issue(t, [&] {
      sessions_.start(appid, user, key, t);
      return js_code{appid, user, key};
    });
  }

  /// 404 for an unknown appid, 400 for an app that is not a mini program or mini game:
  /// what a device action (`what`: "login", "user_info"...) says of its app, with the same
  /// words, before it does anything.
  void check_mini_app(const std::string& appid, const char* what) const {
    dir_.require_mini_app(appid, what);
  }

  /// The ids jscode2session gives for a code of `user` in mini program `appid` redeemed
  /// now: the user's openid in the app, and the unionid when the UnionID rules (rules(),
  /// channel::code2session) allow it on the user's follows and authorizations as they are
  /// now (what redeem_js_code decides, by the same function). A later follow, unfollow or
  /// rule change can change the answer. session_key is left empty. 404/400 as
  /// check_mini_app("login").
  session_grant code2session_ids(const std::string& appid, const std::string& user) {
    const auto a = dir_.require_mini_app(appid, "login");
    session_grant g;
    g.openid = openid(a->appid, user);
    if (code2session_carries_unionid(dir_.facts(*a, user)))
      g.unionid = unionid(a->open_account, user);
    return g;
  }

  /// The user's current session_key for the app, if the user ever logged in.
  std::optional<std::string> current_session_key(const std::string& appid,
                                                 const std::string& user) {
    return sessions_.current_key(appid, user);
  }

  /// wx.getUserInfo: the profile of the era (profiles(): the anonymous one by default),
  /// encrypted with the current session_key, with rawData signed as WeChat signs it.
  /// Carries openId, and unionId when the mini program is bound.
  user_info_payload get_user_info(const std::string& appid, const std::string& user) {
    const auto a = device_action(appid, user, "user_info");
    std::optional<std::string> uid;
    if (unionid_allowed(rules(), channel::user_info, dir_.facts(*a, user)))
      uid = unionid(a->open_account, user);
    return profile_payload(appid, user, openid(appid, user), uid);
  }
  /// wx.getUserProfile (base library 2.10.4+, since 2021-04): the same profile with no
  /// openId and no unionId inside (wechat-api.md section 8).
  user_info_payload get_user_profile(const std::string& appid, const std::string& user) {
    device_action(appid, user, "user_profile");
    return profile_payload(appid, user, std::nullopt, std::nullopt);
  }
  /// What a user-info API shows of the user in this era: the anonymous profile, or the
  /// user's own (explicit, or derived from the name) under profile_era::real.
  profile shown_profile(const std::string& user) {
    return profiles() == profile_era::real ? profile_of(user) : anonymous_profile();
  }
  /// Deprecated since 0.2.0: get_user_info (the device's wx.getUserInfo).
  [[deprecated("use world::get_user_info")]] user_info_payload user_info(const std::string& appid,
                                                                         const std::string& user) {
    return get_user_info(appid, user);
  }

  /// The phone-number button: a code for wxa/business/getuserphonenumber and the
  /// old-style encryptedData (current session_key). `phone` defaults to a number derived
  /// from the user's name; "+86" prefixes are accepted.
  phone_payload phone(const std::string& appid, const std::string& user, std::string phone = "") {
    device_action(appid, user, "phone");
    const std::string key = require_session(appid, user);
    phone = checked_phone(std::move(phone));
    if (phone.empty()) phone = default_phone(user);
    phone_payload out;
    const std::int64_t t = now();
    out.code = phone_codes_.issue(t, [&] { return phone_code{appid, user, phone, "86"}; });
    const nlohmann::json plain = {{"phoneNumber", phone},
                                  {"purePhoneNumber", phone},
                                  {"countryCode", "86"},
                                  {"watermark", {{"timestamp", t}, {"appid", appid}}}};
    out.iv = new_session_key();
    out.encrypted_data = wechat::encrypt_data(key, plain.dump(), out.iv);
    return out;
  }

  /// The phone button's `phone` as phone() takes it: without a "+86" prefix; empty when it
  /// was empty (or only "+86": phone() then uses a number derived from the user's name).
  /// admin_error 400 unless it is 5-15 digits.
  static std::string checked_phone(std::string phone) {
    if (phone.rfind("+86", 0) == 0) phone = phone.substr(3);
    if (!phone.empty() && (phone.size() < 5 || phone.size() > 15 ||
                           phone.find_first_not_of("0123456789") != std::string::npos))
      throw admin_error(400, "field 'phone' must be 5-15 digits, optionally after +86");
    return phone;
  }

  /// A WeChat Pay payment by the user in the app, now.
  payment_record pay(const std::string& appid, const std::string& user) {
    device_action(appid, user, "pay");
    return payments_.record(appid, user, now());
  }

  /// Web/app OAuth on the device: a code for sns/oauth2/access_token. scope:
  /// snsapi_base (silent), snsapi_userinfo (consent), snsapi_login (website login).
  /// `snapshot`: the official account's snapshot page (since 2022-07-12, community doc
  /// 000c2c34068880629ced91a2f56001): the exchange answers is_snapshotuser 1, a virtual
  /// openid, no unionid, scope snsapi_base, whatever scope the page asked for.
  std::string oauth_code(const std::string& appid, const std::string& user,
                         const std::string& scope, bool snapshot = false) {
    const auto a = dir_.require_app(appid);
    dir_.check_user(user);
    dir_.check_web_app(*a, "oauth_code");
    if (scope != "snsapi_base" && scope != "snsapi_userinfo" && scope != "snsapi_login")
      throw admin_error(400, "field 'scope' must be snsapi_base, snsapi_userinfo or snsapi_login");
    if (snapshot && a->type != app_type::official_account)
      throw admin_error(400, "oauth_code: 'snapshot' is an official account's page; " + appid +
                                 " is a " + to_string(a->type));
    if (snapshot)  // a snapshot user is nobody in particular: no state, no openid to learn
      return oauth_codes_.issue(now(), [&] {
        return oauth_code_grant{appid, user, snapshot_scope, limits::code_lifetime};
      });
    dir_.remember_openid(*a, user);
    // the exchange of a consent code records an authorization: the user's state exists by
    // then, so the WeChat side never meets the users limit
    if (scope != "snsapi_base") dir_.ensure_user(user);
    const std::int64_t lifetime =
        a->type == app_type::website ? limits::website_code_lifetime : limits::code_lifetime;
    return oauth_codes_.issue(now(), [&] {
      return oauth_code_grant{appid, user, scope, lifetime};
    });
  }

  /// cloud.getWXContext() in a cloud function of the app, for the user.
  wx_context wxcontext(const std::string& appid, const std::string& user) {
    const auto a = device_action(appid, user, "wxcontext");
    wx_context c;
    c.openid = openid(appid, user);
    c.appid = appid;
    if (unionid_allowed(rules(), channel::wxcontext, dir_.facts(*a, user)))
      c.unionid = unionid(a->open_account, user);
    return c;
  }

  /// The user behind an openid of the app, if the mock has seen it.
  std::optional<std::string> user_of(std::string_view appid, std::string_view oid) {
    return dir_.user_of(appid, oid);
  }

  /// Counts of live state, for /__mock/stats and memory checks.
  nlohmann::json sizes() {
    return {{"js_codes", js_codes_.size()},
            {"phone_codes", phone_codes_.size()},
            {"oauth_codes", oauth_codes_.size()},
            {"sessions", sessions_.size()},
            {"openids", dir_.openid_count()},
            {"tokens", tokens_.app_token_count()},
            {"user_tokens", tokens_.user_token_count()},
            {"refresh_tokens", tokens_.refresh_token_count()},
            {"payments", payments_.payment_count()},
            {"trades", payments_.trade_count()},
            {"users", dir_.user_count()},
            {"apps", dir_.app_count()},
            {"app_tokens", tokens_.app_count()},
            {"plugin_codes", plugin_codes_.size()},
            {"quota_apps", quotas_.size()},
            {"components", components_.size()},
            {"component_authorizations", components_.authorization_count()},
            {"corps", corps_.size()},
            {"wecom_codes", wecom_codes_.size()}};
  }

  // ------------------------------------------------------------------- WeChat side --

  /// jscode2session after the presence checks: identity (40013, 40125), then state
  /// (40029, 40163, 45011, 40226). Success consumes the code.
  outcome<session_grant> exchange_js_code(std::string_view appid, std::string_view secret,
                                          std::string_view code) {
    const auto caller = authenticate(appid, secret, is_mini);
    if (!caller.ok()) return outcome<session_grant>::fail(caller.errc);
    return redeem_js_code(*caller.value, code);
  }

  /// cgi-bin/token after the presence checks: 40013, 40125, 45009. Each fetch mints a new
  /// token; the previous one keeps working for 5 minutes, then answers 40001.
  outcome<token_grant> fetch_token(std::string_view appid, std::string_view secret) {
    const auto a = authenticate(appid, secret, has_app_tokens);
    if (!a.ok()) return outcome<token_grant>::fail(a.errc);
    return tokens_.fetch_classic(a.value->appid, now());
  }

  /// cgi-bin/stable_token after the presence checks: 40013, 40125, 45009. Normal mode
  /// returns the current token with its remaining lifetime, renewing it 5 minutes before
  /// expiry (the old one lives out its time); force_refresh mints a new one and kills the
  /// old at once, at most 20 a day and never within 30 s of the previous force.
  outcome<token_grant> fetch_stable_token(std::string_view appid, std::string_view secret,
                                          bool force) {
    const auto a = authenticate(appid, secret, has_app_tokens);
    if (!a.ok()) return outcome<token_grant>::fail(a.errc);
    return tokens_.fetch_stable(a.value->appid, now(), force);
  }

  /// Validates an app access_token (cgi-bin/token or stable_token): 41001 missing,
  /// 40014 unknown, 40001 superseded more than 5 minutes ago (or force-refreshed),
  /// 42001 expired.
  outcome<token_owner> check_app_token(std::string_view token) { return check_token(token, false); }

  /// getpaidunionid after the token check: 40003, 40101, 89002, 89300.
  outcome<std::string> paid_unionid(const app& a, std::string_view oid,
                                    std::string_view transaction_id, std::string_view mch_id,
                                    std::string_view out_trade_no) {
    using wechat::api_errc;
    if (oid.empty()) return outcome<std::string>::fail(api_errc::invalid_openid);
    if (transaction_id.empty() && (mch_id.empty() || out_trade_no.empty()))
      return outcome<std::string>::fail(api_errc::missing_parameter);
    const auto user = user_of(a.appid, oid);
    if (!user) return outcome<std::string>::fail(api_errc::invalid_openid);
    if (!a.bound()) return outcome<std::string>::fail(api_errc::open_not_exists);
    const auto p = payments_.find(transaction_id, mch_id, out_trade_no);
    if (!p) return outcome<std::string>::fail(api_errc::invalid_trade);
    const std::int64_t t = now();
    if (p->appid != a.appid || p->user != *user || t - p->paid_at > limits::payment_window ||
        t < p->paid_at || !unionid_allowed(rules(), channel::paid, dir_.facts(a, *user)))
      return outcome<std::string>::fail(api_errc::invalid_trade);
    outcome<std::string> out;
    out.value = unionid(a.open_account, *user);
    return out;
  }

  /// checksession after the token check: 87008, 40003, 87009.
  outcome<done> check_session(const app& a, std::string_view oid, std::string_view signature,
                              std::string_view sig_method) {
    using wechat::api_errc;
    if (sig_method != "hmac_sha256") return outcome<done>::fail(api_errc::invalid_sig_method);
    const auto user = user_of(a.appid, oid);
    if (!user) return outcome<done>::fail(api_errc::invalid_openid);
    const auto key = current_session_key(a.appid, *user);
    if (!key || !wechat::constant_time_equal(wechat::session_key_signature(*key), signature))
      return outcome<done>::fail(api_errc::invalid_signature);
    return {};
  }

  /// resetusersessionkey after the token check: 40097, 87008, 40003, 87007, 87009.
  /// Success: a new current key; the old one dies at once.
  outcome<session_grant> reset_session(const app& a, std::string_view oid,
                                       std::string_view signature, std::string_view sig_method) {
    using wechat::api_errc;
    if (oid.empty() || signature.empty() || sig_method.empty())
      return outcome<session_grant>::fail(api_errc::invalid_args);
    if (sig_method != "hmac_sha256")
      return outcome<session_grant>::fail(api_errc::invalid_sig_method);
    const auto user = user_of(a.appid, oid);
    if (!user) return outcome<session_grant>::fail(api_errc::invalid_openid);
    auto key = sessions_.reset(a.appid, *user, signature);
    if (!key.ok()) return outcome<session_grant>::fail(key.errc);
    outcome<session_grant> out;
    out.value.session_key = std::move(key.value);
    out.value.openid = std::string(oid);
    return out;
  }

  /// getuserphonenumber after the token check: 40029 (unknown, expired), 40013 (code of
  /// another app), 40163 (used), 40003 (openid given and not the code's user).
  outcome<phone_grant> phone_number(const app& a, std::string_view code, std::string_view oid) {
    const std::int64_t t = now();
    outcome<phone_grant> out;
    const auto redeemed = phone_codes_.redeem(code, a.appid, t, wechat::api_errc::invalid_appid,
                                              [&](const phone_code& c) {
                                                if (!oid.empty() && oid != openid(a.appid, c.user))
                                                  return wechat::api_errc::invalid_openid;
                                                out.value.pure_phone_number = c.pure_phone;
                                                out.value.country_code = c.country_code;
                                                return wechat::api_errc{};
                                              });
    if (!redeemed.ok()) return outcome<phone_grant>::fail(redeemed.errc);
    out.value.phone_number = "+" + out.value.country_code + out.value.pure_phone_number;
    out.value.timestamp = t;
    return out;
  }

  /// sns/oauth2/access_token after the presence checks: 40013, 40125, 40029, 40163.
  /// A snsapi_userinfo/snsapi_login code records the user's authorization of the app.
  outcome<token_grant> exchange_oauth_code(std::string_view appid, std::string_view secret,
                                           std::string_view code) {
    const auto caller = authenticate(appid, secret, [](app_type t) { return !is_mini(t); });
    if (!caller.ok()) return outcome<token_grant>::fail(caller.errc);
    const auto& a = caller.value;
    const std::int64_t t = now();
    oauth_code_grant entry;
    const auto redeemed = oauth_codes_.redeem(code, appid, t, wechat::api_errc::invalid_code,
                                              [&](const oauth_code_grant& c) {
                                                entry = c;
                                                return wechat::api_errc{};
                                              });
    if (!redeemed.ok()) return outcome<token_grant>::fail(redeemed.errc);
    auto out = tokens_.grant_oauth(entry.appid, entry.user, entry.scope, t);
    if (!out.ok()) {  // the mock's tables are full: the code stays unused, to be tried again
      oauth_codes_.unredeem(code);
      return out;
    }
    // a snapshot-page user is nobody in particular: no consent recorded, virtual ids
    const bool snapshot = entry.scope == snapshot_scope;
    const bool consent = !snapshot && entry.scope != "snsapi_base";
    if (consent) dir_.add_authorization(entry.user, entry.appid);
    rule_facts f = dir_.facts(*a, entry.user);
    f.userinfo_scope = consent;
    f.snapshot_user = snapshot;
    if (unionid_allowed(rules(), channel::oauth, f))
      out.value.unionid = unionid(a->open_account, entry.user);
    if (snapshot) {
      as_snapshot(out.value, appid, entry.user);
    } else {
      out.value.openid = openid(appid, entry.user);
      out.value.scope = entry.scope;
    }
    return out;
  }

  /// sns/oauth2/refresh_token after the presence checks: 40013, 40030, 42002.
  outcome<token_grant> refresh_oauth(std::string_view appid, std::string_view refresh_token) {
    if (!find_app(appid)) return outcome<token_grant>::fail(wechat::api_errc::invalid_appid);
    std::string user;
    auto out = tokens_.refresh_oauth(appid, refresh_token, now(), user);
    if (!out.ok()) return out;
    if (out.value.scope == snapshot_scope)
      as_snapshot(out.value, appid, user);
    else
      out.value.openid = openid(appid, user);
    return out;
  }

  /// The openid an OAuth user token stands for: the user's in the app, or the virtual one
  /// of a snapshot-page user.
  std::string openid_of(const token_owner& owner) const {
    return owner.scope == snapshot_scope ? snapshot_openid(owner.app->appid, owner.user)
                                         : openid(owner.app->appid, owner.user);
  }

  /// Validates a user access_token from OAuth: 41001, 40014, 42001.
  outcome<token_owner> check_sns_token(std::string_view token) { return check_token(token, true); }

  /// sns/userinfo after the token check: 40003 (openid not the token's user), 48001
  /// (snsapi_base scope).
  /// A snapshot-page user's token is 48001 too (its scope is snsapi_base).
  outcome<sns_user> sns_userinfo(const token_owner& owner, std::string_view oid) {
    if (oid != openid_of(owner))
      return outcome<sns_user>::fail(wechat::api_errc::invalid_openid);
    if (owner.scope == "snsapi_base" || owner.scope == snapshot_scope)
      return outcome<sns_user>::fail(wechat::api_errc::api_unauthorized);
    outcome<sns_user> out;
    out.value.openid = std::string(oid);
    // since 2021-10-20 (community doc 00028edbe3c58081e7cc834705b801) no gender or region;
    // the nickname and avatar are still the user's own
    out.value.prof = profile_of(owner.user);
    if (profiles() == profile_era::anonymous) {
      const profile anon = anonymous_profile();
      out.value.prof.gender = anon.gender;
      out.value.prof.city = anon.city;
      out.value.prof.province = anon.province;
      out.value.prof.country = anon.country;
    }
    if (unionid_allowed(rules(), channel::sns_userinfo, dir_.facts(*owner.app, owner.user)))
      out.value.unionid = unionid(owner.app->open_account, owner.user);
    return out;
  }

  /// cgi-bin/user/info after the token check: 40003 (unknown openid for this account, or
  /// the app is not an official account).
  outcome<follower_record> follower(const app& a, std::string_view oid) {
    if (a.type != app_type::official_account)
      return outcome<follower_record>::fail(wechat::api_errc::invalid_openid);
    const auto user = user_of(a.appid, oid);
    if (!user) return outcome<follower_record>::fail(wechat::api_errc::invalid_openid);
    outcome<follower_record> out;
    out.value.openid = std::string(oid);
    if (const auto since = dir_.follows_since(*user, a.appid)) {
      out.value.subscribed = true;
      out.value.subscribe_time = *since;
    }
    rule_facts f = dir_.facts(a, *user);
    f.follows_this_oa = out.value.subscribed;
    if (unionid_allowed(rules(), channel::follower, f))
      out.value.unionid = unionid(a.open_account, *user);
    return out;
  }

  // ------------------------------- login-adjacent endpoints (wechat-api.md section 8) --

  /// Sets the rank getuserriskrank answers for `user` (0-4; 400 otherwise). Without one,
  /// a high-risk user's rank is 4 and anyone else's 0.
  void set_risk_rank(const std::string& user, int rank) {
    dir_.check_user(user);
    if (rank < 0 || rank > 4) throw admin_error(400, "field 'risk_rank' must be 0, 1, 2, 3 or 4");
    dir_.set_risk_rank(user, rank);
  }

  /// wx.pluginLogin inside plugin `plugin_appid` used by mini program `appid`: a 5-minute
  /// single-use code for getpluginopenpid, called with the host mini program's token.
  std::string plugin_login(const std::string& appid, const std::string& plugin_appid,
                           const std::string& user) {
    if (plugin_appid.empty()) throw admin_error(400, "field 'plugin_appid' is required");
    if (plugin_appid.size() > 64 ||
        plugin_appid.find_first_of(" \t\r\n/?&=#%\"\\") != std::string::npos)
      throw admin_error(
          400, "field 'plugin_appid' must be 1-64 characters without spaces or URL delimiters");
    device_action(appid, user, "plugin_login");
    return plugin_codes_.issue(now(), [&] { return plugin_code{appid, plugin_appid, user}; });
  }

  /// The user's openpid in a plugin: one id per (plugin, user), whichever mini program
  /// hosts the plugin; not the user's openid anywhere.
  static std::string openpid(std::string_view plugin_appid, std::string_view user) {
    return "o" + detail::hashed_id("openpid", plugin_appid, user);
  }

  /// The user's encryption keys in `appid` at the world's now, newest first: the last 3
  /// (wx.getUserCryptoManager's keys on the device). Each lives 3600 s; a new one takes
  /// over as the previous expires. Deterministic: a function of (appid, user, time), so
  /// nothing is stored; each (app, user) has its own phase within the hour.
  std::vector<encrypt_key_record> encrypt_keys(std::string_view appid, std::string_view user) {
    constexpr std::int64_t life = limits::encrypt_key_lifetime;
    const std::string seed = wechat::sha1_hex(std::string("encrypt key\n")
                                                  .append(appid)
                                                  .append("\n")
                                                  .append(user));
    const std::int64_t phase = static_cast<std::int64_t>(std::stoul(seed.substr(0, 6), nullptr, 16) % life);
    const std::int64_t t = now(), shifted = t - phase;
    const std::int64_t slot = (shifted >= 0 ? shifted : shifted - (life - 1)) / life;
    auto bytes = [](const std::string& hex) {
      std::string out;
      for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
      return out;
    };
    std::vector<encrypt_key_record> keys;
    for (int i = 0; i < limits::encrypt_keys_listed; ++i) {
      encrypt_key_record k;
      const std::int64_t s = slot - i;
      const std::string h = wechat::sha1_hex(seed + "\n" + std::to_string(s));
      k.encrypt_key = wechat::base64_encode(bytes(h.substr(0, 32)));
      k.iv = h.substr(24, 16);
      k.version = s;
      k.create_time = s * life + phase;
      k.expire_in = i == 0 ? k.create_time + life - t : 0;
      keys.push_back(std::move(k));
    }
    return keys;
  }

  /// getuserencryptkey after the token check: checksession's checks (87008, 40003, 87009:
  /// the signature must be of the user's current session_key), then the user's keys.
  outcome<std::vector<encrypt_key_record>> user_encrypt_keys(const app& a, std::string_view oid,
                                                             std::string_view signature,
                                                             std::string_view sig_method) {
    const auto checked = check_session(a, oid, signature, sig_method);
    if (!checked.ok()) return outcome<std::vector<encrypt_key_record>>::fail(checked.errc);
    // looked up again: a reset from another thread may have emptied the world since
    const auto user = user_of(a.appid, oid);
    if (!user) return outcome<std::vector<encrypt_key_record>>::fail(wechat::api_errc::invalid_openid);
    outcome<std::vector<encrypt_key_record>> out;
    out.value = encrypt_keys(a.appid, *user);
    return out;
  }

  /// getpluginopenpid after the token check and presence checks: 40029 (unknown, expired,
  /// or a code of another host app), 1007 (a wx.login code), 40163 (used).
  outcome<std::string> plugin_open_pid(const app& a, std::string_view code) {
    const std::int64_t t = now();
    std::string plugin_appid, user;
    const auto redeemed = plugin_codes_.redeem(code, a.appid, t, wechat::api_errc::invalid_code,
                                               [&](const plugin_code& c) {
                                                 plugin_appid = c.plugin_appid;
                                                 user = c.user;
                                                 return wechat::api_errc{};
                                               });
    if (!redeemed.ok()) {
      if (redeemed.errc == wechat::api_errc::invalid_code && js_codes_.known(code, t))
        return outcome<std::string>::fail(wechat::api_errc::not_plugin_code);
      return outcome<std::string>::fail(redeemed.errc);
    }
    outcome<std::string> out;
    out.value = openpid(plugin_appid, user);
    return out;
  }

  /// getuserriskrank after the token check and presence checks: 40013 (`appid` not the
  /// token's app), 48001 (not a mini program or game), 40003 (an openid the app has not
  /// seen). The rank is the user's (set_risk_rank); unoin_id counts the calls.
  outcome<risk_grant> user_risk_rank(const app& a, std::string_view appid, std::string_view oid) {
    using wechat::api_errc;
    if (appid != a.appid) return outcome<risk_grant>::fail(api_errc::invalid_appid);
    if (!is_mini(a.type)) return outcome<risk_grant>::fail(api_errc::api_unauthorized);
    const auto user = user_of(a.appid, oid);
    if (!user) return outcome<risk_grant>::fail(api_errc::invalid_openid);
    outcome<risk_grant> out;
    out.value.risk_rank = dir_.risk_rank_of(*user);
    out.value.unoin_id = ++risk_requests_;
    return out;
  }

  /// Counts a call to `path` by the holder of app access token `token` against the app's
  /// daily quota for the path (quotas.hpp); nothing for a path without one, for an invalid
  /// token, or for cgi-bin/token (its table counts it).
  void count_call(std::string_view path, std::string_view token) {
    const int i = detail::quota_index(path);
    if (i < 0 || path == "/cgi-bin/token" || token.empty()) return;
    const auto owner = check_app_token(token);
    if (owner.ok()) quotas_.count(owner.value.app->appid, i, now());
  }
  /// Counts a call to `path` by app `appid` (stable_token, which carries no token), if
  /// the app is registered.
  void count_call_by_app(std::string_view path, std::string_view appid) {
    const int i = detail::quota_index(path);
    if (i < 0 || path == "/cgi-bin/token") return;
    if (const auto a = find_app(appid)) quotas_.count(a->appid, i, now());
  }

  /// clear_quota after the token check and presence checks: 40013 (`appid` not the
  /// token's app), 48006 (10 resets this month already). Success: every daily quota of
  /// the app counts from 0 again, cgi-bin/token's 2000 and stable_token's 20 forced
  /// refreshes included.
  outcome<done> clear_quota(const app& a, std::string_view appid) {
    if (appid != a.appid) return outcome<done>::fail(wechat::api_errc::invalid_appid);
    auto out = quotas_.clear_daily(a.appid, now());
    if (out.ok()) tokens_.clear_quotas(a.appid);
    return out;
  }

  /// quota/get after the token check and presence checks: 76022 for a /sns/* path (WeChat
  /// keeps no quota for them), 76021 for a path the mock does not serve. clear_quota's
  /// own quota is per month.
  outcome<quota_usage> api_quota(const app& a, std::string_view cgi_path) {
    if (cgi_path.rfind("/sns/", 0) == 0)
      return outcome<quota_usage>::fail(wechat::api_errc::cgi_path_no_permission);
    const int i = detail::quota_index(cgi_path);
    if (i < 0) return outcome<quota_usage>::fail(wechat::api_errc::cgi_path_not_found);
    const std::int64_t t = now();
    outcome<quota_usage> out;
    out.value.daily_limit = detail::quota_paths[i].daily_limit;
    if (cgi_path == "/cgi-bin/token")
      out.value.used = tokens_.classic_used(a.appid, t);
    else if (cgi_path == "/cgi-bin/clear_quota")
      out.value.used = quotas_.clears(a.appid, t);
    else
      out.value.used = quotas_.used(a.appid, i, t);
    out.value.remain = std::max<std::int64_t>(0, out.value.daily_limit - out.value.used);
    return out;
  }

  /// The app a token was issued to, valid or not (while the mock keeps it); empty if none.
  /// openapi/rid/get uses it to tell whose call a rid belongs to.
  std::string token_appid(std::string_view token) { return tokens_.appid_of(token); }

  // ------------------- Open Platform third-party platforms (notes-issue17.md section 2) --

  /// Registers a third-party platform (POST /__mock/components): 400 for a bad field, or a
  /// component_appid that is already an app's or a platform's; 507 at
  /// world_limits::components. Its first ticket is minted now: the push to make (push.hpp).
  ticket_push add_component(const component& c) {
    detail::directory::check_appid_shape(c.component_appid, "component_appid");
    if (find_app(c.component_appid))
      throw admin_error(400, "component_appid " + c.component_appid + " is an app's appid");
    return components_.add(c, now());
  }
  /// A fresh ticket for the platform now (POST /__mock/component_push): the push to make.
  /// 404 for an unknown platform.
  ticket_push push_component_ticket(const std::string& component_appid) {
    return components_.push_now(component_appid, now());
  }
  /// The pushes due now (every 10 virtual minutes since a platform's last push; one for a
  /// longer jump), their tickets minted: claimed, so two callers never push one twice.
  std::vector<ticket_push> due_ticket_pushes() { return components_.due(now()); }
  /// The pushes claimed and not yet delivered (push.hpp's run_due_pushes): a clock call
  /// that finds some claimed by the pusher thread waits for them (bounded), so they are
  /// delivered before it answers. No lock is held over a delivery.
  detail::push_flights& push_flights() noexcept { return push_flights_; }
  /// What came of a push.
  void record_push(const std::string& component_appid, push_record r) {
    components_.record(component_appid, std::move(r));
  }
  /// The platform's last 16 pushes, oldest first (404 for an unknown platform).
  std::vector<push_record> component_pushes(const std::string& component_appid) {
    return components_.pushes(component_appid);
  }
  /// Mini program, mini game or official account `appid` authorizes the platform: its new
  /// authorizer_refresh_token (the pair's previous one dies). 404 for an unknown app or
  /// platform, 400 for another type of app, 507 at world_limits::component_authorizations.
  std::string authorize_component(const std::string& component_appid, const std::string& appid) {
    check_authorizer(appid);
    return components_.authorize(component_appid, appid);
  }
  /// `appid` withdraws its authorization of the platform; the authorizer tokens fetched
  /// for it stop working (40001).
  void revoke_component(const std::string& component_appid, const std::string& appid) {
    check_authorizer(appid);
    components_.revoke(component_appid, appid);
    // its authorizer tokens die with the authorization (and their slot is forgotten: the
    // slots stay bounded by the authorizations)
    tokens_.retire_slot(detail::token_table::slot_key(detail::token_kind::app,
                                                      detail::pair_key(component_appid, appid)),
                        now());
  }

  /// api_component_token after the presence checks: 61011, 40125, 61006, 61005; 45009
  /// past 2000 a day. Each fetch mints a new token; the previous one keeps working for 5
  /// minutes, then answers 40001 (cgi-bin/token's rule, the same code).
  outcome<token_grant> fetch_component_token(std::string_view component_appid,
                                             std::string_view secret, std::string_view ticket) {
    const std::int64_t t = now();
    const auto checked = components_.check_credentials(component_appid, secret, ticket, t);
    if (!checked.ok()) return outcome<token_grant>::fail(checked.errc);
    const std::string id(component_appid);
    return tokens_.fetch_rotating(detail::token_table::slot_key(detail::token_kind::component, id),
                                  detail::token_kind::component, id, t);
  }
  /// Validates a component_access_token: 41001, 40014 (unknown, or not a platform's),
  /// 40001 (superseded more than 5 minutes ago), 42001. Its value: the component_appid.
  outcome<std::string> check_component_token(std::string_view token) {
    auto held = tokens_.check(token, detail::token_kind::component, now());
    if (!held.ok()) return outcome<std::string>::fail(held.errc);
    outcome<std::string> out;
    out.value = std::move(held.value.appid);
    return out;
  }
  /// api_authorizer_token after the token and presence checks: 61003 (not authorized, or
  /// withdrawn), 61023 (not the current refresh token of the pair). The token is an app
  /// token of the authorizer app (its cgi-bin and wxa calls accept it), rotating in a slot
  /// of its own per (platform, app); the refresh token stays the same.
  outcome<token_grant> fetch_authorizer_token(std::string_view component_appid,
                                              std::string_view authorizer_appid,
                                              std::string_view refresh_token) {
    const auto checked =
        components_.check_refresh(component_appid, authorizer_appid, refresh_token);
    if (!checked.ok()) return outcome<token_grant>::fail(checked.errc);
    const std::string owner(authorizer_appid);
    auto out = tokens_.fetch_rotating(
        detail::token_table::slot_key(detail::token_kind::app,
                                      detail::pair_key(component_appid, authorizer_appid)),
        detail::token_kind::app, owner, now());
    if (out.ok()) out.value.refresh_token = std::string(refresh_token);
    return out;
  }
  /// sns/component/jscode2session after the presence and token checks: 40013 (`appid`
  /// unknown, or not a mini program or game), 61003 (it has not authorized the platform),
  /// then jscode2session's own (redeem_js_code).
  outcome<session_grant> component_exchange_js_code(std::string_view component_appid,
                                                    std::string_view appid, std::string_view code) {
    const auto a = find_app(appid);
    if (!a || !is_mini(a->type))
      return outcome<session_grant>::fail(wechat::api_errc::invalid_appid);
    if (!components_.authorized(component_appid, appid))
      return outcome<session_grant>::fail(wechat::api_errc::component_not_authorized);
    return redeem_js_code(*a, code);
  }

  // ----------------------------------------- WeCom (notes-issue17.md section 3) --

  /// Registers a WeCom corp (POST /__mock/corps): 400 for a bad or taken corpid or an
  /// empty secret, 507 at world_limits::corps.
  void add_corp(const std::string& corpid, const std::string& corpsecret) {
    detail::directory::check_appid_shape(corpid, "corpid");
    corps_.add(corpid, corpsecret);
  }
  /// wx.qy.login in the corp's mini program: a 5-minute single-use code for WeCom's
  /// jscode2session. 404 for an unknown corp, 400 for a userid that is not 1-64 of
  /// [A-Za-z0-9_.@-] (WeCom's account rule), 507 at world_limits::codes.
  std::string wecom_login(const std::string& corpid, const std::string& userid) {
    if (corpid.empty()) throw admin_error(400, "field 'corpid' is required");
    if (!corps_.exists(corpid))
      throw admin_error(404, "unknown corpid " + detail::printable(corpid) +
                                 " (register it with POST /__mock/corps)");
    const bool shaped = !userid.empty() && userid.size() <= 64 &&
                        std::all_of(userid.begin(), userid.end(), [](char c) {
                          return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                 (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@' ||
                                 c == '-';
                        });
    if (!shaped) throw admin_error(400, "field 'userid' must be 1-64 of [A-Za-z0-9_.@-]");
    return wecom_codes_.issue(now(), [&] { return wecom_code{corpid, userid}; });
  }
  /// WeCom's gettoken after the presence checks: 40013 (unknown corpid), 40001 (wrong
  /// secret). The corp's token while it is valid, a new one after it expires.
  outcome<token_grant> fetch_corp_token(std::string_view corpid, std::string_view corpsecret) {
    const auto checked = corps_.authenticate(corpid, corpsecret);
    if (!checked.ok()) return outcome<token_grant>::fail(checked.errc);
    return tokens_.fetch_corp(std::string(corpid), now());
  }
  /// Validates a WeCom access_token: 41001, 40014, 42001. Its value: the corpid.
  outcome<std::string> check_corp_token(std::string_view token) {
    auto held = tokens_.check(token, detail::token_kind::corp, now());
    if (!held.ok()) return outcome<std::string>::fail(held.errc);
    outcome<std::string> out;
    out.value = std::move(held.value.appid);
    return out;
  }
  /// WeCom's miniprogram/jscode2session after the token and presence checks: 40029 for a
  /// code unknown, expired, used or of another corp (WeCom answers 40029 for all: "code
  /// can only be used once, within 5 minutes"). A new session_key each time.
  outcome<wecom_session> wecom_exchange_code(const std::string& corpid, std::string_view code) {
    std::string userid;
    const auto redeemed = wecom_codes_.redeem(code, corpid, now(), wechat::api_errc::invalid_code,
                                              [&](const wecom_code& c) {
                                                userid = c.userid;
                                                return wechat::api_errc{};
                                              });
    if (!redeemed.ok()) return outcome<wecom_session>::fail(wechat::api_errc::invalid_code);
    outcome<wecom_session> out;
    out.value = wecom_session{corpid, std::move(userid), new_session_key()};
    return out;
  }

private:
  // An app that may authorize a third-party platform: a registered mini program, mini
  // game or official account (404 unknown, 400 another type).
  void check_authorizer(const std::string& appid) const {
    const auto a = dir_.require_app(appid);
    if (!is_mini(a->type) && a->type != app_type::official_account)
      throw admin_error(400, "component_authorize: " + appid + " is a " + to_string(a->type) +
                                 "; a mini program, mini game or official account authorizes "
                                 "a third-party platform");
  }

  // A snapshot-page OAuth grant's scope as the code and token tables keep it; answered as
  // snsapi_base with is_snapshotuser 1.
  static constexpr const char* snapshot_scope = "snsapi_base/snapshot";
  // The virtual openid of a snapshot-page user: stable per (app, user), never the real one.
  static std::string snapshot_openid(std::string_view appid, std::string_view user) {
    return "o" + detail::hashed_id("snapshot-openid", appid, user);
  }
  // What a snapshot grant answers (its unionid is the rule engine's to decide: none).
  static void as_snapshot(token_grant& g, std::string_view appid, std::string_view user) {
    g.openid = snapshot_openid(appid, user);
    g.scope = "snsapi_base";
    g.snapshot_user = true;
  }

  // wx.getUserInfo / wx.getUserProfile: the era's profile as rawData (signed with the
  // current session_key) and encryptedData (the profile, the ids given, the watermark).
  user_info_payload profile_payload(const std::string& appid, const std::string& user,
                                    const std::optional<std::string>& oid,
                                    const std::optional<std::string>& uid) {
    const std::string key = require_session(appid, user);
    const profile p = shown_profile(user);
    const nlohmann::json raw = {{"nickName", p.nickname},   {"gender", p.gender},
                                {"language", p.language},   {"city", p.city},
                                {"province", p.province},   {"country", p.country},
                                {"avatarUrl", p.avatar_url}};
    nlohmann::json plain = nlohmann::json::object();
    if (oid) plain["openId"] = *oid;
    for (const auto& [k, v] : raw.items())
      plain[k] = v;
    if (uid) plain["unionId"] = *uid;
    plain["watermark"] = {{"timestamp", now()}, {"appid", appid}};
    user_info_payload out;
    out.raw_data = raw.dump();
    out.signature = wechat::raw_data_signature(out.raw_data, key);
    out.iv = new_session_key();  // 16 random bytes, base64
    out.encrypted_data = wechat::encrypt_data(key, plain.dump(), out.iv);
    return out;
  }

  // What each kind of code stands for, and how its code table keeps it (codes.hpp): the
  // strings interned in the table's pool, 4 bytes each; a session_key as its 16 bytes.
  using pool_access = detail::string_pool::access;
  struct js_code {
    std::string appid, user, session_key;
    struct packed {
      std::array<detail::string_pool::id, 2> strings;  // appid, user
      std::array<std::uint8_t, 16> key;                 // session_key, decoded
    };
    void pack(packed& p, pool_access& pool) const {
      // new_session_key()'s 24 base64 characters, canonical: they encode back the same
      std::error_code ec;
      const std::string raw = wechat::base64_decode(session_key, ec);
      if (ec || raw.size() != p.key.size())
        throw std::logic_error("a login code's session_key is not 16 bytes in base64");
      std::memcpy(p.key.data(), raw.data(), raw.size());
      p.strings[0] = pool.intern(appid);
      p.strings[1] = pool.intern(user);
    }
    void unpack(const packed& p, const pool_access& pool) {
      appid.assign(pool[p.strings[0]]);
      user.assign(pool[p.strings[1]]);
      session_key = wechat::base64_encode(
          std::string_view(reinterpret_cast<const char*>(p.key.data()), p.key.size()));
    }
  };
  struct phone_code {
    std::string appid, user, pure_phone, country_code;
    struct packed {
      std::array<detail::string_pool::id, 4> strings;  // in the order above
    };
    void pack(packed& p, pool_access& pool) const {
      p.strings[0] = pool.intern(appid);
      p.strings[1] = pool.intern(user);
      p.strings[2] = pool.intern(pure_phone);
      p.strings[3] = pool.intern(country_code);
    }
    void unpack(const packed& p, const pool_access& pool) {
      appid.assign(pool[p.strings[0]]);
      user.assign(pool[p.strings[1]]);
      pure_phone.assign(pool[p.strings[2]]);
      country_code.assign(pool[p.strings[3]]);
    }
  };
  struct oauth_code_grant {
    std::string appid, user, scope;
    std::int64_t lifetime = limits::code_lifetime;  ///< a website's lives 10 minutes
    struct packed {
      std::array<detail::string_pool::id, 3> strings;  // appid, user, scope
      std::int64_t lifetime;
    };
    void pack(packed& p, pool_access& pool) const {
      p.lifetime = lifetime;
      p.strings[0] = pool.intern(appid);
      p.strings[1] = pool.intern(user);
      p.strings[2] = pool.intern(scope);
    }
    void unpack(const packed& p, const pool_access& pool) {
      appid.assign(pool[p.strings[0]]);
      user.assign(pool[p.strings[1]]);
      scope.assign(pool[p.strings[2]]);
      lifetime = p.lifetime;
    }
  };

  // jscode2session's state checks and answer, whoever calls it (the app with its secret,
  // or a third-party platform on its behalf): 40029 (unknown, another app's, expired),
  // 40163, 45011, 40226; then the session_key of the code's login and the UnionID rules.
  // Success consumes the code.
  outcome<session_grant> redeem_js_code(const app& a, std::string_view code) {
    const std::int64_t t = now();
    outcome<session_grant> out;
    detail::session_table::ids ids;
    rule_facts f;
    const auto redeemed =
        js_codes_.redeem(code, a.appid, t, wechat::api_errc::invalid_code, [&](const js_code& c) {
          if (!sessions_.count_exchange(a, c.user, t, ids))
            return wechat::api_errc::minute_quota_reached;
          bool high_risk = false;
          f = dir_.facts(a, c.user, &high_risk);
          if (high_risk) return wechat::api_errc::code_blocked;
          out.value.session_key = c.session_key;
          return wechat::api_errc{};
        });
    if (!redeemed.ok()) return outcome<session_grant>::fail(redeemed.errc);
    out.value.openid = std::move(ids.openid);
    if (code2session_carries_unionid(f)) out.value.unionid = std::move(ids.unionid);
    return out;
  }

  // Whether jscode2session's answer carries the unionid of a user with facts `f`: for
  // redeem_js_code and code2session_ids alike.
  bool code2session_carries_unionid(const rule_facts& f) const noexcept {
    return unionid_allowed(rules(), channel::code2session, f);
  }

  // A device action of `user` in mini program (or game) `appid`: the app, once the app and
  // the user are checked; the user's openid in that app is known from now on.
  std::shared_ptr<const app> device_action(const std::string& appid, const std::string& user,
                                           const char* what) {
    auto a = dir_.require_mini_app(appid, what);
    dir_.check_user(user);
    dir_.remember_openid(*a, user);
    return a;
  }

  std::string require_session(const std::string& appid, const std::string& user) {
    auto key = current_session_key(appid, user);
    if (!key)
      throw admin_error(400, "user " + user + " has no session_key in " + appid +
                                 ": the device must log in first (POST /__mock/login)");
    return *key;
  }

  // The app calling with its secret (jscode2session, the token endpoints, OAuth): 40013
  // for an unknown app or one of a type the endpoint does not `serve`, 40125 for a wrong
  // secret.
  template <class Serves>
  outcome<std::shared_ptr<const app>> authenticate(std::string_view appid, std::string_view secret,
                                                   Serves&& serve) {
    auto a = find_app(appid);
    if (!a || !serve(a->type))
      return outcome<std::shared_ptr<const app>>::fail(wechat::api_errc::invalid_appid);
    if (!wechat::constant_time_equal(a->secret, secret))
      return outcome<std::shared_ptr<const app>>::fail(wechat::api_errc::invalid_appsecret);
    outcome<std::shared_ptr<const app>> out;
    out.value = std::move(a);
    return out;
  }
  // Apps with app access tokens (cgi-bin/token, stable_token): not mobile apps or websites.
  static bool has_app_tokens(app_type t) noexcept {
    return t != app_type::mobile_app && t != app_type::website;
  }

  outcome<token_owner> check_token(std::string_view token, bool sns) {
    auto held = tokens_.check(token, sns, now());
    if (!held.ok()) return outcome<token_owner>::fail(held.errc);
    outcome<token_owner> out;
    out.value.app = find_app(held.value.appid);
    if (!out.value.app)  // the app is gone (a reset)
      return outcome<token_owner>::fail(wechat::api_errc::invalid_access_token);
    out.value.user = std::move(held.value.user);
    out.value.scope = std::move(held.value.scope);
    return out;
  }

  static std::string default_phone(const std::string& user) {
    const std::string h = wechat::sha1_hex("phone\n" + user);
    std::string d = "138";
    for (std::size_t i = 0; d.size() < 11; ++i)
      d.push_back(static_cast<char>('0' + (h[i] % 10)));
    return d;
  }

  std::atomic<unionid_rules> rules_;
  std::atomic<profile_era> profiles_;
  const world_limits limits_;
  const std::shared_ptr<virtual_clock> clock_ = std::make_shared<virtual_clock>();
  detail::directory dir_;
  detail::session_table sessions_;
  detail::code_table<js_code> js_codes_;
  detail::code_table<phone_code> phone_codes_;
  detail::code_table<oauth_code_grant> oauth_codes_;
  detail::token_table tokens_;
  detail::payment_table payments_;
  // wechat-api.md section 8
  struct plugin_code {
    std::string appid, plugin_appid, user;  ///< appid: the host mini program
    struct packed {
      std::array<detail::string_pool::id, 3> strings;  // in the order above
    };
    void pack(packed& p, pool_access& pool) const {
      p.strings[0] = pool.intern(appid);
      p.strings[1] = pool.intern(plugin_appid);
      p.strings[2] = pool.intern(user);
    }
    void unpack(const packed& p, const pool_access& pool) {
      appid.assign(pool[p.strings[0]]);
      plugin_appid.assign(pool[p.strings[1]]);
      user.assign(pool[p.strings[2]]);
    }
  };
  detail::code_table<plugin_code> plugin_codes_;
  detail::quota_table quotas_;
  std::atomic<std::int64_t> risk_requests_{0};  ///< getuserriskrank's unoin_id
  detail::component_table components_;
  detail::corp_table corps_;
  detail::push_flights push_flights_;
  // wx.qy.login's codes (notes-issue17.md section 3.2): 5 minutes, single use
  struct wecom_code {
    std::string corpid, userid;
    struct packed {
      std::array<detail::string_pool::id, 2> strings;  // in the order above
    };
    void pack(packed& p, pool_access& pool) const {
      p.strings[0] = pool.intern(corpid);
      p.strings[1] = pool.intern(userid);
    }
    void unpack(const packed& p, const pool_access& pool) {
      corpid.assign(pool[p.strings[0]]);
      userid.assign(pool[p.strings[1]]);
    }
  };
  detail::code_table<wecom_code> wecom_codes_;
};

}  // namespace mock_wechat
