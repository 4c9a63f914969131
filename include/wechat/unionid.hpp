// wechat/unionid.hpp - the UnionID rules from the backend's side.
//
// unionid_resolver tries every channel the backend has in hand, in order:
//   1. session       code2session's unionid
//   2. user_info     the device's encrypted wx.getUserInfo data (getUserProfile data has
//                    no ids at all)
//   3. paid          getPaidUnionId, only while the 5-minute payment window is open
//   4. cloud         a cloud function's getWXContext() UNIONID, forwarded to the backend
// and returns the unionid with the channel that gave it. When none does, it returns a
// diagnosis: a reason from a fixed set (unionid_reason) with a one-line explanation and
// the next step. It never calls an endpoint it does not need, and never calls
// getPaidUnionId outside its window.
//
// The diagnosis depends on the rules the app lives under (resolver_options::rules):
//   current (the default): WeChat since 2021-02-23 ("小程序登录、用户信息相关接口调整说明",
//     developers.weixin.qq.com community doc 000cacfa20ce88df04cb468bc52801): code2session
//     gives the unionid to every user of a mini program or mini game bound to an Open
//     Platform account. Its absence means the app is not bound (likely_not_bound), or,
//     for an app you say is bound, something is wrong (bound_but_missing).
//   legacy: before 2021-02-23, only after the user followed an official account or
//     authorized an app of the same account, or consented through getUserInfo; its
//     absence was ordinary (no_relationship).
//
// identity_directory links one person's openids across apps through the unionid.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "wechat/client.hpp"
#include "wechat/decrypt.hpp"
#include "wechat/error.hpp"
#include "wechat/store.hpp"

namespace wechat {

/// The UnionID rules the app lives under (wechat-api.md sections 6 and 8).
enum class unionid_rules {
  /// WeChat since 2021-02-23: every user of a bound mini program or mini game gets the
  /// unionid from code2session (the mock's `--unionid-rules bound`, its default).
  current = 1,
  /// WeChat before 2021-02-23: only after a follow or an authorization of the same Open
  /// Platform account, or getUserInfo consent (the mock's `--unionid-rules conditional`).
  legacy,
};

inline const char* to_string(unionid_rules r) noexcept {
  return r == unionid_rules::legacy ? "legacy" : "current";
}

/// Where a unionid came from.
enum class unionid_channel { session = 1, user_info, paid, cloud };

inline const char* to_string(unionid_channel c) noexcept {
  switch (c) {
  case unionid_channel::session: return "session";
  case unionid_channel::user_info: return "user_info";
  case unionid_channel::paid: return "paid";
  case unionid_channel::cloud: return "cloud";
  }
  return "?";
}

/// Why no channel gave a unionid. Stable enumerators; see unionid_reason_text() and
/// unionid_next_step().
enum class unionid_reason {
  app_not_bound = 1,       ///< the app has no Open Platform account (89002, or configured so)
  no_relationship,         ///< legacy rules: no follow, authorization, consent or payment
  user_info_invalid,       ///< the device's user info failed to decrypt or verify (see cause)
  payment_window_closed,   ///< the payment is older than 5 minutes
  payment_not_found,       ///< no such payment by this openid (89300 inside the window)
  cloud_context_mismatch,  ///< the cloud context is for another openid or appid
  mini_game,               ///< mini games get no unionid from getPaidUnionId
  wechat_unavailable,      ///< a call needed to decide failed (busy, network): try again
  profile_without_ids,     ///< the user info is getUserProfile data: no ids in it, ever
  likely_not_bound,        ///< current rules: code2session gave none, so the app is unbound
  bound_but_missing,       ///< current rules: the app is bound, yet code2session gave none
};

inline const char* to_string(unionid_reason r) noexcept {
  switch (r) {
  case unionid_reason::app_not_bound: return "app_not_bound";
  case unionid_reason::no_relationship: return "no_relationship";
  case unionid_reason::user_info_invalid: return "user_info_invalid";
  case unionid_reason::payment_window_closed: return "payment_window_closed";
  case unionid_reason::payment_not_found: return "payment_not_found";
  case unionid_reason::cloud_context_mismatch: return "cloud_context_mismatch";
  case unionid_reason::mini_game: return "mini_game";
  case unionid_reason::wechat_unavailable: return "wechat_unavailable";
  case unionid_reason::profile_without_ids: return "profile_without_ids";
  case unionid_reason::likely_not_bound: return "likely_not_bound";
  case unionid_reason::bound_but_missing: return "bound_but_missing";
  }
  return "?";
}

/// One line: what the reason means.
inline const char* unionid_reason_text(unionid_reason r) noexcept {
  switch (r) {
  case unionid_reason::app_not_bound:
    return "the app is not bound to an Open Platform account, so WeChat gives it no unionid at all";
  case unionid_reason::no_relationship:
    return "under the legacy rules (WeChat before 2021-02-23), the user has neither followed an "
           "official account nor authorized an app of the same Open Platform account, and has "
           "not consented through getUserInfo";
  case unionid_reason::user_info_invalid:
    return "the device's user info did not decrypt or verify, so its unionId cannot be trusted";
  case unionid_reason::payment_window_closed:
    return "getPaidUnionId answers only within 5 minutes after the payment, and that time has "
           "passed";
  case unionid_reason::payment_not_found:
    return "WeChat knows no payment with that order id by this user in this app";
  case unionid_reason::cloud_context_mismatch:
    return "the cloud context forwarded by the cloud function is for another user or app";
  case unionid_reason::mini_game: return "mini games get no unionid through getPaidUnionId";
  case unionid_reason::wechat_unavailable:
    return "a WeChat call needed to decide failed (busy or unreachable)";
  case unionid_reason::profile_without_ids:
    return "no ids in getUserProfile data: wx.getUserProfile's encryptedData carries neither "
           "openId nor unionId (WeChat since 2021-04), so it can never give a unionid";
  case unionid_reason::likely_not_bound:
    return "code2session gave no unionid; since 2021-02-23 WeChat gives one to every user of a "
           "mini program bound to an Open Platform account, so this app is almost certainly not "
           "bound";
  case unionid_reason::bound_but_missing:
    return "the app is configured as bound, yet code2session gave no unionid, which WeChat has "
           "given to every user of a bound mini program since 2021-02-23: an anomaly";
  }
  return "?";
}

/// One line: what a developer or the product can do next.
inline const char* unionid_next_step(unionid_reason r) noexcept {
  switch (r) {
  case unionid_reason::app_not_bound:
    return "bind the mini program to your Open Platform account (open.weixin.qq.com), or identify "
           "users "
           "by openid only";
  case unionid_reason::no_relationship:
    return "(legacy rules) ask for consent with getUserInfo (send encryptedData and iv), or "
           "invite the user to follow your official account; after a payment, call "
           "getPaidUnionId within 5 minutes; today, binding the app gives every user's unionid";
  case unionid_reason::user_info_invalid:
    return "fix the decryption (see the cause: usually a session_key from an older wx.login), then "
           "retry "
           "with fresh data";
  case unionid_reason::payment_window_closed:
    return "call getPaidUnionId right after the payment notification; for this user, ask for "
           "getUserInfo "
           "consent instead";
  case unionid_reason::payment_not_found:
    return "check the transaction_id (or mch_id + out_trade_no) and that it was this openid who "
           "paid";
  case unionid_reason::cloud_context_mismatch:
    return "forward the getWXContext() of the same user's session, from this app's cloud "
           "environment";
  case unionid_reason::mini_game:
    return "take it from code2session: a bound mini game gets it for every user since "
           "2021-02-23 (legacy rules: getUserInfo consent, or a follow/authorization)";
  case unionid_reason::wechat_unavailable: return "retry later; the cause says what failed";
  case unionid_reason::profile_without_ids:
    return "take the unionid from code2session: a bound app gets it there for every user, so "
           "if code2session gave none the app is not bound (bind it at open.weixin.qq.com); "
           "use getUserProfile data for the profile only (anonymous since 2022-11-08)";
  case unionid_reason::likely_not_bound:
    return "bind the mini program to your Open Platform account (open.weixin.qq.com, "
           "management center), or identify users by openid; if it is bound, set "
           "resolver_options::bound to true";
  case unionid_reason::bound_but_missing:
    return "check on open.weixin.qq.com that this appid is bound to the account you expect, "
           "that the appid and secret are this app's, and that code2session's answer reaches "
           "you whole (no proxy or wrapper dropping fields); meanwhile identify the user by "
           "openid";
  }
  return "?";
}

/// Why there is no unionid, and what to do.
struct unionid_diagnosis {
  unionid_reason reason = unionid_reason::no_relationship;
  std::error_code cause;  ///< the underlying failure, when there was one
  const char* text() const noexcept { return unionid_reason_text(reason); }
  const char* next_step() const noexcept { return unionid_next_step(reason); }
};

/// The resolver's answer: a unionid and its channel, or a diagnosis.
struct unionid_result {
  std::optional<std::string> unionid;
  unionid_channel channel = unionid_channel::session;
  std::optional<unionid_diagnosis> diagnosis;
  std::vector<unionid_channel> tried;  ///< the channels tried, in order
  explicit operator bool() const noexcept { return unionid.has_value(); }
};

/// The device's encrypted user info, as received.
struct encrypted_user_info {
  std::string encrypted_data, iv, raw_data, signature;
};

/// A payment the user made in the mini program.
struct payment_evidence {
  paid_order order;
  std::int64_t paid_at = 0;  ///< Unix seconds of the payment (from the payment notification)
};

/// getWXContext() as a cloud function forwarded it.
struct cloud_context {
  std::string openid, appid;
  std::optional<std::string> unionid;
};

/// What the backend has in hand for one user of one app.
struct unionid_evidence {
  session_info session;  ///< from code2session (required)
  std::optional<encrypted_user_info> user_info;
  std::optional<payment_evidence> payment;
  std::optional<cloud_context> cloud;
};

/// What the resolver knows of the app.
struct resolver_options {
  std::string appid;
  /// Whether the app is bound to an Open Platform account, if you know it. When false,
  /// the resolver answers app_not_bound without calling anything.
  std::optional<bool> bound;
  bool mini_game = false;                     ///< the app is a mini game
  std::chrono::seconds user_info_max_age{0};  ///< freshness check on the user info watermark
  /// The rules the diagnosis assumes: today's (default) or the legacy ones.
  unionid_rules rules = unionid_rules::current;
};

/// How the resolver asks WeChat's getPaidUnionId: client::get_paid_unionid, or anything
/// callable like it (a test's lambda, a cache in front of the client). The only call the
/// resolver ever makes.
using paid_unionid_lookup = std::function<std::string(
    std::string_view openid, const paid_order& order, std::error_code& ec)>;

namespace detail {

/// The resolver's channels in two steps around its one call, getPaidUnionId: begin() runs
/// channels 1 and 2 and says whether channel 3 must ask WeChat; resume() takes that
/// answer and runs the rest. unionid_resolver asks in between with a blocking call,
/// async_client::resolve_unionid with a callback.
class unionid_steps {
  // Keeps the most telling reason so far in r.diagnosis.
  struct noter {
    unionid_result& r;
    void operator()(unionid_reason reason, std::error_code cause) const {
      if (!r.diagnosis || rank(reason) < rank(r.diagnosis->reason))
        r.diagnosis = unionid_diagnosis{reason, cause};
    }
  };

public:
  unionid_steps(resolver_options o, std::shared_ptr<const wechat::time_source> clk)
      : opt_(std::move(o)), clock_(clk ? std::move(clk) : default_clock()) {}

  /// Channels 1 and 2, and whether channel 3 applies. `asks` true: call getPaidUnionId
  /// for (e.session.openid, e.payment->order) and pass its outcome to resume(); the result
  /// is partial meanwhile (its diagnosis is the most telling reason so far). Otherwise the
  /// result is final. ec is set only for misuse (no openid in the session).
  unionid_result begin(const unionid_evidence& e, std::error_code& ec, bool& asks) const {
    ec.clear();
    asks = false;
    unionid_result r;
    if (e.session.openid.empty()) {
      ec = protocol_errc::missing_field;
      return r;
    }
    if (opt_.bound == false) return diagnose(r, unionid_reason::app_not_bound, {});
    noter note{r};

    // 1. code2session's own answer. Under today's rules its absence is itself telling.
    r.tried.push_back(unionid_channel::session);
    if (e.session.unionid) return give(r, *e.session.unionid, unionid_channel::session);
    if (opt_.rules == unionid_rules::current)
      note(opt_.bound == true ? unionid_reason::bound_but_missing
                              : unionid_reason::likely_not_bound,
           {});

    // 2. the device's user info: consent. Carries unionId whenever the app is bound.
    if (e.user_info) {
      r.tried.push_back(unionid_channel::user_info);
      if (auto u = from_user_info(e, note)) return give(r, *u, unionid_channel::user_info);
    }

    // 3. getPaidUnionId, inside the 5-minute window only: the caller asks.
    if (e.payment && payment_in_window(*e.payment, note)) {
      r.tried.push_back(unionid_channel::paid);
      asks = true;
      return r;
    }
    return rest(e, r);
  }

  /// Channel 3's answer (`unionid`, or the call's error `paid_ec`), then the rest.
  unionid_result resume(const unionid_evidence& e, unionid_result r, const std::string& unionid,
                        const std::error_code& paid_ec) const {
    if (!paid_ec) return give(r, unionid, unionid_channel::paid);
    noter note{r};
    if (paid_ec == api_errc::open_not_exists)
      note(unionid_reason::app_not_bound, paid_ec);
    else if (paid_ec == api_errc::invalid_trade)
      note(unionid_reason::payment_not_found, paid_ec);
    else
      note(unionid_reason::wechat_unavailable, paid_ec);
    return rest(e, r);
  }

private:
  // 4. the cloud context, when it is this user's in this app; then the diagnosis.
  unionid_result rest(const unionid_evidence& e, unionid_result& r) const {
    noter note{r};
    if (e.cloud) {
      r.tried.push_back(unionid_channel::cloud);
      if (e.cloud->openid != e.session.openid || e.cloud->appid != opt_.appid)
        note(unionid_reason::cloud_context_mismatch, {});
      else if (e.cloud->unionid && !e.cloud->unionid->empty())
        return give(r, *e.cloud->unionid, unionid_channel::cloud);
    }
    if (!r.diagnosis) r.diagnosis = unionid_diagnosis{unionid_reason::no_relationship, {}};
    return r;
  }

  // Channel 2: the unionId in the verified user info of this session's user; otherwise
  // notes why there is none.
  template <class Note>
  std::optional<std::string> from_user_info(const unionid_evidence& e, Note& note) const {
    verify_options v;
    v.appid = opt_.appid;
    v.max_age = opt_.user_info_max_age;
    std::error_code dec;
    const auto u = decrypt_user_info(e.session.session_key,
                                     {e.user_info->encrypted_data, e.user_info->iv,
                                      e.user_info->raw_data, e.user_info->signature},
                                     v, dec);
    if (dec == decrypt_errc::profile_without_ids)
      note(unionid_reason::profile_without_ids, {});
    else if (dec)
      note(unionid_reason::user_info_invalid, dec);
    else if (u.openid != e.session.openid)
      note(unionid_reason::user_info_invalid, decrypt_errc::unexpected_payload);
    else if (u.unionid)
      return u.unionid;
    else
      note(unionid_reason::app_not_bound, {});  // verified consent without unionId: unbound
    return std::nullopt;
  }

  // Channel 3 applies: a mini program (not a game) within 5 minutes of the payment.
  template <class Note> bool payment_in_window(const payment_evidence& p, Note& note) const {
    if (opt_.mini_game) {
      note(unionid_reason::mini_game, {});
      return false;
    }
    if (clock_->now() - p.paid_at > 300) {
      note(unionid_reason::payment_window_closed, {});
      return false;
    }
    return true;
  }

  // Lower is more telling: a definitive fact beats a guess. 89300 (payment_not_found)
  // implies a bound app (an unbound one gets 89002 first), so it outranks what today's
  // rules infer from code2session's silence; a closed window says nothing of the binding.
  static int rank(unionid_reason r) noexcept {
    switch (r) {
    case unionid_reason::app_not_bound: return 0;
    case unionid_reason::user_info_invalid: return 1;
    case unionid_reason::profile_without_ids: return 2;
    case unionid_reason::payment_not_found: return 3;
    case unionid_reason::bound_but_missing: return 4;
    case unionid_reason::likely_not_bound: return 5;
    case unionid_reason::payment_window_closed: return 6;
    case unionid_reason::mini_game: return 7;
    case unionid_reason::cloud_context_mismatch: return 8;
    case unionid_reason::wechat_unavailable: return 9;
    case unionid_reason::no_relationship: return 10;
    }
    return 11;
  }
  // A unionid found: the reasons noted on the way no longer matter.
  static unionid_result give(unionid_result& r, const std::string& u, unionid_channel c) {
    r.unionid = u;
    r.channel = c;
    r.diagnosis.reset();
    return r;
  }
  static unionid_result diagnose(unionid_result& r, unionid_reason reason, std::error_code cause) {
    r.diagnosis = unionid_diagnosis{reason, cause};
    return r;
  }

  resolver_options opt_;
  std::shared_ptr<const wechat::time_source> clock_;
};

}  // namespace detail

/// Finds a user's UnionID through every channel WeChat offers, from what the backend has
/// in hand (unionid_evidence), or says why it is missing (unionid_diagnosis). From an
/// event loop, async_client::resolve_unionid does the same without blocking.
class unionid_resolver {
public:
  /// `wx` is used for getPaidUnionId only, and only when needed; it must outlive the
  /// resolver.
  unionid_resolver(resolver_options o, client& wx,
                   std::shared_ptr<const wechat::time_source> clk = nullptr)
      : unionid_resolver(std::move(o),
                         paid_unionid_lookup([&wx](std::string_view openid, const paid_order& order,
                                                   std::error_code& ec) {
                           return wx.get_paid_unionid(openid, order, ec);
                         }),
                         std::move(clk)) {}
  /// Asks getPaidUnionId through `paid` (only when a payment is in hand and inside its
  /// window). An empty `paid` is a programming error: std::invalid_argument.
  unionid_resolver(resolver_options o, paid_unionid_lookup paid,
                   std::shared_ptr<const wechat::time_source> clk = nullptr)
      : steps_(std::move(o), std::move(clk)), paid_(std::move(paid)) {
    if (!paid_) throw std::invalid_argument("unionid_resolver: the paid_unionid_lookup is empty");
  }

  /// Tries the channels in order. ec is set only for misuse (no openid in the session);
  /// a failed channel is part of the diagnosis, not an error.
  unionid_result resolve(const unionid_evidence& e, std::error_code& ec) {
    bool asks = false;
    unionid_result r = steps_.begin(e, ec, asks);
    if (!asks) return r;
    std::error_code pec;
    std::string u = paid_(e.session.openid, e.payment->order, pec);
    return steps_.resume(e, std::move(r), u, pec);
  }

  /// Throwing overload (throws only for misuse; a missing unionid is a diagnosis).
  unionid_result resolve(const unionid_evidence& e) {
    std::error_code ec;
    auto r = resolve(e, ec);
    throw_if_error(ec, "unionid_resolver: the session has no openid");
    return r;
  }

private:
  detail::unionid_steps steps_;
  paid_unionid_lookup paid_;
};

// ------------------------------------------------------------------ the directory --

/// One person's openids across apps, linked through the unionid. A user first seen
/// without a unionid is kept by (appid, openid) and joins the right identity when the
/// unionid appears; linking again is harmless.
class identity_directory {
public:
  explicit identity_directory(std::shared_ptr<identity_store> store = nullptr)
      : store_(store ? std::move(store) : std::make_shared<memory_identity_store>()) {}

  /// Records that `openid` of `appid` is `unionid` (or, with an empty unionid, that it
  /// was seen). Errors: store_errc::conflict, store_errc::unavailable.
  void link(const std::string& appid, const std::string& openid, const std::string& unionid,
            std::error_code& ec) {
    store_->link({appid, openid}, unionid, ec);
  }
  /// Throwing overload of link.
  void link(const std::string& appid, const std::string& openid, const std::string& unionid = "") {
    std::error_code ec;
    link(appid, openid, unionid, ec);
    throw_if_error(ec, "identity_directory::link");
  }

  /// The unionid of an (appid, openid), if known.
  std::optional<std::string> unionid_of(const std::string& appid, const std::string& openid,
                                        std::error_code& ec) {
    bool known = false;
    return store_->unionid_of({appid, openid}, known, ec);
  }
  /// Throwing overload of unionid_of.
  std::optional<std::string> unionid_of(const std::string& appid, const std::string& openid) {
    std::error_code ec;
    auto r = unionid_of(appid, openid, ec);
    throw_if_error(ec, "identity_directory::unionid_of");
    return r;
  }

  /// Whether (appid, openid) was ever recorded, with or without a unionid.
  bool known(const std::string& appid, const std::string& openid, std::error_code& ec) {
    bool k = false;
    store_->unionid_of({appid, openid}, k, ec);
    return k;
  }

  /// Every openid of one person (all apps), sorted by appid then openid.
  std::vector<app_openid> openids_of(const std::string& unionid, std::error_code& ec) {
    return store_->openids_of(unionid, ec);
  }
  /// Throwing overload of openids_of.
  std::vector<app_openid> openids_of(const std::string& unionid) {
    std::error_code ec;
    auto r = openids_of(unionid, ec);
    throw_if_error(ec, "identity_directory::openids_of");
    return r;
  }

private:
  std::shared_ptr<identity_store> store_;
};

}  // namespace wechat
