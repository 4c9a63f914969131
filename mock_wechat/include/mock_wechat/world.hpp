// mock_wechat/world.hpp - the simulated WeChat: apps, users and what they did, codes,
// sessions, payments and tokens, with WeChat's rules applied to them.
//
// Two faces:
//   the device and control side (add_app, login, user_info, pay, follow...): what the
//   admin API and the embedded API call; failures throw mock_wechat::admin_error;
//   the WeChat side (exchange_js_code, fetch_token, ...): what the endpoint handlers call;
//   failures are WeChat errcodes in the returned outcome, never exceptions.
//
// Thread safety: every method may be called from any thread. State is sharded by key
// (codes, users, sessions, tokens, payments) so concurrent logins do not share a lock;
// the app table is read-mostly behind a shared_mutex.
#pragma once

#include <wechat/decrypt.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "mock_wechat/clock.hpp"
#include "mock_wechat/ids.hpp"
#include "mock_wechat/rules.hpp"

namespace mock_wechat {

/// Lifetimes and limits (wechat-api.md section 7).
namespace limits {
inline constexpr std::int64_t code_lifetime = 300;          ///< wx.login, phone, OAuth codes
inline constexpr std::int64_t website_code_lifetime = 600;  ///< website OAuth codes
inline constexpr std::int64_t token_lifetime = 7200;        ///< every access_token
inline constexpr std::int64_t token_overlap = 300;          ///< old token after a new fetch
inline constexpr std::int64_t stable_renew_before = 300;    ///< stable_token renewal
inline constexpr int stable_force_per_day = 20;
inline constexpr std::int64_t stable_force_min_gap = 30;
inline constexpr int token_fetches_per_day = 2000;
inline constexpr int js_code_per_user_minute = 100;
inline constexpr std::int64_t payment_window = 300;
inline constexpr std::int64_t refresh_token_lifetime = std::int64_t{30} * 86400;
}  // namespace limits

/// How much the world holds at most, so that nothing an admin caller or a network peer
/// does can grow the mock's memory without end (docs/bounds.md). Time bounds come first
/// (codes are forgotten 5 minutes after issue, payments 6, tokens a day after they die,
/// refresh tokens after their 30 days); these counts hold even with a frozen clock.
/// At a limit the admin API answers 507 naming it; the WeChat side answers 45009 when no
/// new access token can be kept.
struct world_limits {
  std::size_t apps = 10000;
  std::size_t users = 1000000;        ///< users with flags, a profile, follows or authorizations
  std::size_t sessions = 4000000;     ///< (app, user) pairs that logged in: session keys, openids
  std::size_t codes = 4000000;        ///< unexpired codes of each kind (login, phone, OAuth)
  std::size_t payments = 4000000;     ///< payments, kept 6 minutes
  std::size_t tokens = 1000000;       ///< app access tokens, kept until a day after they die
  std::size_t user_tokens = 4000000;  ///< OAuth user access tokens, likewise
  std::size_t refresh_tokens = 1000000;  ///< OAuth refresh tokens, kept 30 days and 1
};

/// A control-side failure: HTTP status (400 bad request, 404 unknown thing, 507 a limit of
/// world_limits) and message.
class admin_error : public std::runtime_error {
public:
  admin_error(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

private:
  int status_;
};

/// An app registered with the mock.
struct app {
  std::string appid;
  std::string secret;
  app_type type = app_type::miniprogram;
  std::string open_account;  ///< Open Platform account it is bound to; empty: unbound
  bool bound() const noexcept { return !open_account.empty(); }
};

/// What wx.getUserInfo reveals of a user. Defaults are derived from the user's name.
struct profile {
  std::string nickname;
  int gender = 0;
  std::string language = "zh_CN";
  std::string city = "Guangzhou";
  std::string province = "Guangdong";
  std::string country = "China";
  std::string avatar_url;
};

/// The result of a WeChat-side operation: a value, or the WeChat errcode to answer.
template <class T> struct outcome {
  wechat::api_errc errc{};  ///< api_errc{} (0) on success
  T value{};
  bool ok() const noexcept { return errc == wechat::api_errc{}; }
  static outcome fail(wechat::api_errc e) {
    outcome o;
    o.errc = e;
    return o;
  }
};
/// The value of an outcome that has none beyond success.
struct done {};

struct session_grant {  ///< jscode2session success
  std::string session_key, openid;
  std::optional<std::string> unionid;
};
struct token_grant {  ///< cgi-bin/token, stable_token, sns/oauth2 success
  std::string access_token;
  std::int64_t expires_in = 0;
  std::string refresh_token, openid, scope;
  std::optional<std::string> unionid;
};
struct token_owner {  ///< whom a presented access_token belongs to
  std::shared_ptr<const mock_wechat::app> app;
  std::string user, scope;  ///< sns tokens only
};
struct phone_grant {
  std::string phone_number, pure_phone_number, country_code;
  std::int64_t timestamp = 0;
};
struct sns_user {
  std::string openid;
  profile prof;
  std::optional<std::string> unionid;
};
struct follower_info {
  bool subscribed = false;
  std::string openid;
  std::int64_t subscribe_time = 0;
  std::optional<std::string> unionid;
};

/// What the device gets from wx.getUserInfo.
struct user_info_payload {
  std::string raw_data, signature, encrypted_data, iv;
};
/// What the device gets from the phone-number button.
struct phone_payload {
  std::string code, encrypted_data, iv;
};
/// A WeChat Pay payment.
struct payment_record {
  std::string transaction_id, mch_id, out_trade_no;
};
/// What cloud.getWXContext() returns inside a cloud function.
struct wx_context {
  std::string openid, appid;
  std::optional<std::string> unionid;
  std::string env = "mock-env", source = "wx_client";
};

namespace detail {

template <class V, std::size_t N = 16> class sharded_map {
public:
  struct shard {
    std::mutex mutex;
    std::unordered_map<std::string, V> map;
    std::int64_t next_sweep = 0;
    std::size_t limit = SIZE_MAX;        ///< this shard's share of the map's limit
    std::int64_t forced_at = INT64_MIN;  ///< when make_room last swept it at the limit
    bool full() const noexcept { return map.size() >= limit; }
    /// Whether `key` may be set: it is there already, or the shard is below its limit.
    bool room_for(const std::string& key) const { return !full() || map.count(key) != 0; }
  };
  shard& of(std::string_view key) { return shards_[std::hash<std::string_view>{}(key) % N]; }
  /// At most about `total` entries in all: each of the N shards holds at most
  /// ceil(total / N), at least 1 (keys spread evenly over the shards).
  void set_limit(std::size_t total) {
    for_each_shard([&](shard& s) { s.limit = std::max<std::size_t>(1, (total + N - 1) / N); });
  }
  template <class F> void for_each_shard(F&& f) {
    for (auto& s : shards_) {
      std::lock_guard<std::mutex> lock(s.mutex);
      f(s);
    }
  }
  void clear() {
    for_each_shard([](shard& s) {
      s.map.clear();
      s.next_sweep = 0;
    });
  }
  std::size_t size() {
    std::size_t n = 0;
    for_each_shard([&](shard& s) { n += s.map.size(); });
    return n;
  }

private:
  std::array<shard, N> shards_;
};

// Erases a shard's entries for which dead(v) holds, at most every `every` seconds of the
// world's clock, and at once when the clock was moved back (the next sweep would
// otherwise wait for it to catch up). The caller holds the shard's lock.
template <class Shard, class Dead>
void sweep(Shard& s, std::int64_t now, std::int64_t every, Dead&& dead) {
  if (now < s.next_sweep && s.next_sweep - now <= every) return;
  s.next_sweep = now + every;
  for (auto it = s.map.begin(); it != s.map.end();) {
    if (dead(it->second))
      it = s.map.erase(it);
    else
      ++it;
  }
}

// Before an insert into a shard: the periodic sweep of what dead() says (every `every`
// seconds), then, at the limit, a sweep now of what dead_when_full() says (tokens: also
// those dead but kept to answer 42001), and whether there is room. Entries die only as the
// clock moves, so a shard still full is not swept again until it has: at the limit an
// insert costs one scan per clock second, not one per attempt. The caller holds the
// shard's lock.
template <class Shard, class Dead, class DeadWhenFull>
bool make_room(Shard& s, std::int64_t now, std::int64_t every, Dead&& dead,
               DeadWhenFull&& dead_when_full) {
  sweep(s, now, every, dead);
  if (!s.full()) return true;
  if (s.forced_at == now) return false;
  s.forced_at = now;
  const std::int64_t next = s.next_sweep;
  s.next_sweep = 0;
  sweep(s, now, 0, dead_when_full);
  s.next_sweep = next;
  return !s.full();
}
template <class Shard, class Dead>
bool make_room(Shard& s, std::int64_t now, std::int64_t every, Dead&& dead) {
  return make_room(s, now, every, dead, dead);
}

// The key of a pair ("a\nb"), written into `k` (a reused buffer: no allocation once warm).
inline void pair_key(std::string& k, std::string_view a, std::string_view b) {
  k.reserve(a.size() + b.size() + 1);
  k.assign(a).push_back('\n');
  k.append(b);
}

inline std::string pair_key(std::string_view a, std::string_view b) {
  std::string k;
  pair_key(k, a, b);
  return k;
}

/// A JSON string literal for `s`; invalid UTF-8 is replaced, never thrown on.
inline std::string json_escape(std::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace detail

class world {
public:
  explicit world(unionid_rules rules = unionid_rules::conditional, world_limits l = {})
      : rules_(rules), limits_(l) {
    users_.set_limit(l.users);
    sessions_.set_limit(l.sessions);
    openids_.set_limit(l.sessions);
    js_codes_.set_limit(l.codes);
    phone_codes_.set_limit(l.codes);
    oauth_codes_.set_limit(l.codes);
    payments_.set_limit(l.payments);
    trades_.set_limit(l.payments);
    tokens_.set_limit(l.tokens);
    user_tokens_.set_limit(l.user_tokens);
    refresh_tokens_.set_limit(l.refresh_tokens);
  }
  const world_limits& limits() const noexcept { return limits_; }
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  virtual_clock& clock() noexcept { return clock_; }
  std::int64_t now() const noexcept { return clock_.now(); }
  unionid_rules rules() const noexcept { return rules_.load(); }
  void set_rules(unionid_rules r) noexcept { rules_.store(r); }

  /// Empties the world (apps, users, codes, tokens, payments); the clock back to real time.
  void reset() {
    {
      std::unique_lock<std::shared_mutex> lock(apps_mutex_);
      apps_.clear();
    }
    users_.clear();
    sessions_.clear();
    js_codes_.clear();
    phone_codes_.clear();
    oauth_codes_.clear();
    openids_.clear();
    payments_.clear();
    trades_.clear();
    tokens_.clear();
    user_tokens_.clear();
    refresh_tokens_.clear();
    {
      std::lock_guard<std::mutex> lock(app_tokens_mutex_);
      app_tokens_.clear();
    }
    clock_.reset();
  }

  // ------------------------------------------------------------------ control side --

  /// Registers (or replaces) an app. An empty appid is an error; an empty secret gets a
  /// random 32-hex one. Returns the app as stored.
  app add_app(app a) {
    if (a.appid.empty()) throw admin_error(400, "field 'appid' is required");
    if (a.appid.size() > 64 || a.appid.find_first_of(" \t\r\n/?&=#%\"\\") != std::string::npos)
      throw admin_error(400,
                        "field 'appid' must be 1-64 characters without spaces or URL delimiters");
    if (a.secret.empty()) a.secret = wechat::to_hex(random_chars(16));
    std::unique_lock<std::shared_mutex> lock(apps_mutex_);
    if (apps_.size() >= limits_.apps && apps_.count(a.appid) == 0) throw full("apps", limits_.apps);
    apps_[a.appid] = std::make_shared<const app>(a);
    return a;
  }

  /// The app, or nullptr.
  std::shared_ptr<const app> find_app(std::string_view appid) const {
    std::shared_lock<std::shared_mutex> lock(apps_mutex_);
    const auto it = apps_.find(std::string(appid));
    return it == apps_.end() ? nullptr : it->second;
  }

  /// Every app, sorted by appid.
  std::vector<app> apps() const {
    std::vector<app> out;
    {
      std::shared_lock<std::shared_mutex> lock(apps_mutex_);
      for (const auto& [id, a] : apps_)
        out.push_back(*a);
    }
    std::sort(out.begin(), out.end(), [](const app& x, const app& y) { return x.appid < y.appid; });
    return out;
  }

  /// Flags a user as high-risk (jscode2session then answers 40226) or not.
  void set_high_risk(const std::string& user, bool high_risk) {
    check_user(user);
    with_user(user, [&](user_state& u) { u.high_risk = high_risk; });
  }
  /// Sets what wx.getUserInfo reveals of a user.
  void set_profile(const std::string& user, const profile& p) {
    check_user(user);
    with_user(user, [&](user_state& u) { u.prof = p; });
  }
  /// The user's profile (explicit, or derived from the name).
  profile profile_of(const std::string& user) {
    std::optional<profile> p;
    read_user(user, [&](const user_state& u) { p = u.prof; });
    return p ? *p : default_profile(user);
  }

  /// The user follows official account `appid`.
  void follow(const std::string& user, const std::string& appid) {
    const auto a = require_app(appid);
    check_user(user);
    if (a->type != app_type::official_account)
      throw admin_error(400, "follow takes an official account; " + appid + " is a " +
                                 to_string(a->type));
    remember_openid(*a, user);
    with_user(user, [&](user_state& u) {
      if (std::find(u.follows.begin(), u.follows.end(), appid) == u.follows.end()) {
        u.follows.push_back(appid);
        u.follow_times[appid] = now();
      }
    });
  }
  void unfollow(const std::string& user, const std::string& appid) {
    const auto a = require_app(appid);
    check_user(user);
    if (a->type != app_type::official_account)
      throw admin_error(400, "unfollow takes an official account; " + appid + " is a " +
                                 to_string(a->type));
    with_user(user, [&](user_state& u) {
      u.follows.erase(std::remove(u.follows.begin(), u.follows.end(), appid), u.follows.end());
      u.follow_times.erase(appid);
    });
  }

  /// The user authorized (logged into) an official account, mobile app or website.
  void authorize(const std::string& user, const std::string& appid) {
    const auto a = require_app(appid);
    check_user(user);
    if (a->type == app_type::miniprogram || a->type == app_type::minigame)
      throw admin_error(400, "authorize takes an official account, mobile app or website; " +
                                 appid + " is a " + to_string(a->type));
    remember_openid(*a, user);
    add_authorization(user, appid);
  }

  /// wx.login on the device: a fresh session_key becomes the user's current one for this
  /// app (the previous one dies now) and a 5-minute single-use code carries it.
  std::string login(const std::string& appid, const std::string& user) {
    const auto a = device_action(appid, user, "login");
    const std::string key = new_session_key();
    std::string code = random_chars(32);
    const std::int64_t t = now();
    auto& cs = js_codes_.of(code);
    std::lock_guard<std::mutex> code_lock(cs.mutex);
    make_room_for_code(cs, t, "login codes");
    {
      const std::string k = detail::pair_key(appid, user);
      auto& s = sessions_.of(k);
      std::lock_guard<std::mutex> lock(s.mutex);
      if (!s.room_for(k)) throw full("sessions", limits_.sessions);
      auto& sess = s.map[k];
      sess.key = key;
      sess.created = t;
    }
    cs.map[code] = js_code{appid, user, key, t, false};
    return code;
  }

  /// The user's current session_key for the app, if the user ever logged in.
  std::optional<std::string> current_session_key(const std::string& appid,
                                                 const std::string& user) {
    auto& s = sessions_.of(detail::pair_key(appid, user));
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(detail::pair_key(appid, user));
    if (it == s.map.end() || it->second.key.empty()) return std::nullopt;
    return it->second.key;
  }

  /// wx.getUserInfo: the user's profile, encrypted with the current session_key, with
  /// rawData signed as WeChat signs it. Carries unionId when the mini program is bound.
  user_info_payload user_info(const std::string& appid, const std::string& user) {
    const auto a = device_action(appid, user, "user_info");
    const std::string key = require_session(appid, user);
    const profile p = profile_of(user);
    const nlohmann::json raw = {{"nickName", p.nickname},   {"gender", p.gender},
                                {"language", p.language},   {"city", p.city},
                                {"province", p.province},   {"country", p.country},
                                {"avatarUrl", p.avatar_url}};
    nlohmann::json plain = {{"openId", openid(appid, user)}};
    for (const auto& [k, v] : raw.items())
      plain[k] = v;
    if (unionid_allowed(rules(), channel::user_info, facts(*a, user)))
      plain["unionId"] = unionid(a->open_account, user);
    plain["watermark"] = {{"timestamp", now()}, {"appid", appid}};
    user_info_payload out;
    out.raw_data = raw.dump();
    out.signature = wechat::raw_data_signature(out.raw_data, key);
    out.iv = new_session_key();  // 16 random bytes, base64
    out.encrypted_data = wechat::encrypt_data(key, plain.dump(), out.iv);
    return out;
  }

  /// The phone-number button: a code for wxa/business/getuserphonenumber and the
  /// old-style encryptedData (current session_key). `phone` defaults to a number derived
  /// from the user's name; "+86" prefixes are accepted.
  phone_payload phone(const std::string& appid, const std::string& user, std::string phone = "") {
    const auto a = device_action(appid, user, "phone");
    const std::string key = require_session(appid, user);
    if (phone.rfind("+86", 0) == 0) phone = phone.substr(3);
    if (phone.empty()) phone = default_phone(user);
    if (phone.size() < 5 || phone.size() > 15 ||
        phone.find_first_not_of("0123456789") != std::string::npos)
      throw admin_error(400, "field 'phone' must be 5-15 digits, optionally after +86");
    phone_payload out;
    out.code = random_chars(32);
    const std::int64_t t = now();
    {
      auto& s = phone_codes_.of(out.code);
      std::lock_guard<std::mutex> lock(s.mutex);
      make_room_for_code(s, t, "phone codes");
      s.map[out.code] = phone_code{appid, user, phone, "86", t, false};
    }
    const nlohmann::json plain = {{"phoneNumber", phone},
                                  {"purePhoneNumber", phone},
                                  {"countryCode", "86"},
                                  {"watermark", {{"timestamp", t}, {"appid", appid}}}};
    out.iv = new_session_key();
    out.encrypted_data = wechat::encrypt_data(key, plain.dump(), out.iv);
    return out;
  }

  /// A WeChat Pay payment by the user in the app, now.
  payment_record pay(const std::string& appid, const std::string& user) {
    const auto a = device_action(appid, user, "pay");
    payment_record p;
    p.transaction_id = "4200" + digits(24);
    p.mch_id = "1" + digits(9);
    p.out_trade_no = random_chars(32);
    const std::int64_t t = now();
    // A payment is of use (getpaidunionid) for 5 minutes; forget it a minute after that,
    // so that a long load run paying all the time keeps a flat memory.
    auto stale = [t](std::int64_t paid_at) {
      return t - paid_at > limits::payment_window + 60 || t < paid_at - 86400;
    };
    const auto dead_payment = [&](const stored_payment& e) { return stale(e.paid_at); };
    const auto dead_trade = [&](const stored_trade& e) { return stale(e.paid_at); };
    auto& ps = payments_.of(p.transaction_id);
    std::lock_guard<std::mutex> payment_lock(ps.mutex);
    auto& ts = trades_.of(detail::pair_key(p.mch_id, p.out_trade_no));
    std::lock_guard<std::mutex> trade_lock(ts.mutex);
    if (!detail::make_room(ps, t, 30, dead_payment) || !detail::make_room(ts, t, 30, dead_trade))
      throw full("payments", limits_.payments, true);
    ps.map[p.transaction_id] = stored_payment{p, appid, user, t};
    ts.map[detail::pair_key(p.mch_id, p.out_trade_no)] = stored_trade{p.transaction_id, t};
    return p;
  }

  /// Web/app OAuth on the device: a code for sns/oauth2/access_token. scope:
  /// snsapi_base (silent), snsapi_userinfo (consent), snsapi_login (website login).
  std::string oauth_code(const std::string& appid, const std::string& user,
                         const std::string& scope) {
    const auto a = require_app(appid);
    check_user(user);
    if (a->type == app_type::miniprogram || a->type == app_type::minigame)
      throw admin_error(400, "oauth_code takes an official account, mobile app or website; " +
                                 appid + " is a " + to_string(a->type));
    if (scope != "snsapi_base" && scope != "snsapi_userinfo" && scope != "snsapi_login")
      throw admin_error(400, "field 'scope' must be snsapi_base, snsapi_userinfo or snsapi_login");
    remember_openid(*a, user);
    // the exchange of a consent code records an authorization: the user's state exists by
    // then, so the WeChat side never meets the users limit
    if (scope != "snsapi_base") with_user(user, [](user_state&) {});
    std::string code = random_chars(32);
    const std::int64_t t = now();
    auto& s = oauth_codes_.of(code);
    std::lock_guard<std::mutex> lock(s.mutex);
    make_room_for_code(s, t, "OAuth codes");
    s.map[code] = oauth_code_entry{appid,
                                   user,
                                   scope,
                                   t,
                                   a->type == app_type::website ? limits::website_code_lifetime
                                                                : limits::code_lifetime,
                                   false};
    return code;
  }

  /// cloud.getWXContext() in a cloud function of the app, for the user.
  wx_context wxcontext(const std::string& appid, const std::string& user) {
    const auto a = device_action(appid, user, "wxcontext");
    wx_context c;
    c.openid = openid(appid, user);
    c.appid = appid;
    if (unionid_allowed(rules(), channel::wxcontext, facts(*a, user)))
      c.unionid = unionid(a->open_account, user);
    return c;
  }

  /// The user behind an openid of the app, if the mock has seen it.
  std::optional<std::string> user_of(std::string_view appid, std::string_view oid) {
    const std::string k = detail::pair_key(appid, oid);
    auto& s = openids_.of(k);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(k);
    if (it == s.map.end()) return std::nullopt;
    return it->second;
  }

  /// Counts of live state, for /__mock/stats and memory checks.
  nlohmann::json sizes() {
    std::size_t apps = 0, app_tokens = 0;
    {
      std::shared_lock<std::shared_mutex> lock(apps_mutex_);
      apps = apps_.size();
    }
    {
      std::lock_guard<std::mutex> lock(app_tokens_mutex_);
      app_tokens = app_tokens_.size();
    }
    return {{"js_codes", js_codes_.size()},
            {"phone_codes", phone_codes_.size()},
            {"oauth_codes", oauth_codes_.size()},
            {"sessions", sessions_.size()},
            {"openids", openids_.size()},
            {"tokens", tokens_.size()},
            {"user_tokens", user_tokens_.size()},
            {"refresh_tokens", refresh_tokens_.size()},
            {"payments", payments_.size()},
            {"trades", trades_.size()},
            {"users", users_.size()},
            {"apps", apps},
            {"app_tokens", app_tokens}};
  }

  // ------------------------------------------------------------------- WeChat side --

  /// jscode2session after the presence checks: identity (40013, 40125), then state
  /// (40029, 40163, 45011, 40226). Success consumes the code.
  outcome<session_grant> exchange_js_code(std::string_view appid, std::string_view secret,
                                          std::string_view code) {
    const auto a = find_app(appid);
    if (!a || (a->type != app_type::miniprogram && a->type != app_type::minigame))
      return outcome<session_grant>::fail(wechat::api_errc::invalid_appid);
    if (!wechat::constant_time_equal(a->secret, secret)) return outcome<session_grant>::fail(wechat::api_errc::invalid_appsecret);
    const std::int64_t t = now();
    outcome<session_grant> out;
    std::string uid;
    rule_facts f;
    {
      auto& s = js_codes_.of(code);
      std::lock_guard<std::mutex> lock(s.mutex);
      thread_local std::string key;  // no allocation per lookup
      key.assign(code);
      const auto it = s.map.find(key);
      if (it == s.map.end() || it->second.appid != appid ||
          t - it->second.issued >= limits::code_lifetime)
        return outcome<session_grant>::fail(wechat::api_errc::invalid_code);
      js_code& entry = it->second;
      if (entry.used) return outcome<session_grant>::fail(wechat::api_errc::code_been_used);
      if (!count_js_code_call(*a, entry.user, t, out.value.openid, uid))
        return outcome<session_grant>::fail(wechat::api_errc::minute_quota_reached);
      bool high_risk = false;
      f = facts(*a, entry.user, &high_risk);
      if (high_risk) return outcome<session_grant>::fail(wechat::api_errc::code_blocked);
      entry.used = true;
      out.value.session_key = entry.session_key;
    }
    if (unionid_allowed(rules(), channel::code2session, f)) out.value.unionid = std::move(uid);
    return out;
  }

  /// cgi-bin/token after the presence checks: 40013, 40125, 45009. Each fetch mints a new
  /// token; the previous one keeps working for 5 minutes, then answers 40001.
  outcome<token_grant> fetch_token(std::string_view appid, std::string_view secret) {
    const auto a = find_app(appid);
    if (!a || a->type == app_type::mobile_app || a->type == app_type::website)
      return outcome<token_grant>::fail(wechat::api_errc::invalid_appid);
    if (!wechat::constant_time_equal(a->secret, secret)) return outcome<token_grant>::fail(wechat::api_errc::invalid_appsecret);
    const std::int64_t t = now();
    std::lock_guard<std::mutex> lock(app_tokens_mutex_);
    auto& st = app_tokens_[a->appid];
    const std::int64_t day = t / 86400;
    if (st.classic_day != day) {
      st.classic_day = day;
      st.classic_count = 0;
    }
    if (st.classic_count >= limits::token_fetches_per_day) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
    auto minted = mint_token(token_kind::classic, a->appid, t, limits::token_lifetime);
    if (!minted) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);  // the mock's token table is full
    ++st.classic_count;
    if (!st.classic.empty()) supersede(st.classic, t);
    st.classic = std::move(*minted);
    outcome<token_grant> out;
    out.value.access_token = st.classic;
    out.value.expires_in = limits::token_lifetime;
    return out;
  }

  /// cgi-bin/stable_token after the presence checks: 40013, 40125, 45009. Normal mode
  /// returns the current token with its remaining lifetime, renewing it 5 minutes before
  /// expiry (the old one lives out its time); force_refresh mints a new one and kills the
  /// old at once, at most 20 a day and never within 30 s of the previous force.
  outcome<token_grant> fetch_stable_token(std::string_view appid, std::string_view secret,
                                          bool force) {
    const auto a = find_app(appid);
    if (!a || a->type == app_type::mobile_app || a->type == app_type::website)
      return outcome<token_grant>::fail(wechat::api_errc::invalid_appid);
    if (!wechat::constant_time_equal(a->secret, secret)) return outcome<token_grant>::fail(wechat::api_errc::invalid_appsecret);
    const std::int64_t t = now();
    std::lock_guard<std::mutex> lock(app_tokens_mutex_);
    auto& st = app_tokens_[a->appid];
    const bool live = !st.stable.empty() && st.stable_expires - t > limits::stable_renew_before;
    if (force &&
        !(st.last_force != INT64_MIN && t - st.last_force < limits::stable_force_min_gap)) {
      const std::int64_t day = t / 86400;
      if (st.force_day != day) {
        st.force_day = day;
        st.force_count = 0;
      }
      if (st.force_count >= limits::stable_force_per_day) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
      auto minted = mint_token(token_kind::stable, a->appid, t, limits::token_lifetime);
      if (!minted) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
      ++st.force_count;
      st.last_force = t;
      if (!st.stable.empty()) kill_token(st.stable);
      st.stable = std::move(*minted);
      st.stable_expires = t + limits::token_lifetime;
    } else if (!live) {
      auto minted = mint_token(token_kind::stable, a->appid, t, limits::token_lifetime);
      if (!minted) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
      st.stable = std::move(*minted);
      st.stable_expires = t + limits::token_lifetime;
    }
    outcome<token_grant> out;
    out.value.access_token = st.stable;
    out.value.expires_in = st.stable_expires - t;
    return out;
  }

  /// Validates an app access_token (cgi-bin/token or stable_token): 41001 missing,
  /// 40014 unknown, 40001 superseded more than 5 minutes ago (or force-refreshed),
  /// 42001 expired.
  outcome<token_owner> check_app_token(std::string_view token) { return check_token(token, false); }

  /// getpaidunionid after the token check: 40003, 40101, 89002, 89300.
  outcome<std::string> paid_unionid(const app& a, std::string_view oid,
                                    std::string_view transaction_id, std::string_view mch_id,
                                    std::string_view out_trade_no) {
    if (oid.empty()) return outcome<std::string>::fail(wechat::api_errc::invalid_openid);
    if (transaction_id.empty() && (mch_id.empty() || out_trade_no.empty()))
      return outcome<std::string>::fail(wechat::api_errc::missing_parameter);
    const auto user = user_of(a.appid, oid);
    if (!user) return outcome<std::string>::fail(wechat::api_errc::invalid_openid);
    if (!a.bound()) return outcome<std::string>::fail(wechat::api_errc::open_not_exists);
    std::string tid(transaction_id);
    if (tid.empty()) {
      auto& s = trades_.of(detail::pair_key(mch_id, out_trade_no));
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto it = s.map.find(detail::pair_key(mch_id, out_trade_no));
      if (it == s.map.end()) return outcome<std::string>::fail(wechat::api_errc::invalid_trade);
      tid = it->second.transaction_id;
    }
    stored_payment p;
    {
      auto& s = payments_.of(tid);
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto it = s.map.find(tid);
      if (it == s.map.end()) return outcome<std::string>::fail(wechat::api_errc::invalid_trade);
      p = it->second;
    }
    const std::int64_t t = now();
    if (p.appid != a.appid || p.user != *user || t - p.paid_at > limits::payment_window ||
        t < p.paid_at || !unionid_allowed(rules(), channel::paid, facts(a, *user)))
      return outcome<std::string>::fail(wechat::api_errc::invalid_trade);
    outcome<std::string> out;
    out.value = unionid(a.open_account, *user);
    return out;
  }

  /// checksession after the token check: 87008, 40003, 87009.
  outcome<done> check_session(const app& a, std::string_view oid, std::string_view signature,
                    std::string_view sig_method) {
    if (sig_method != "hmac_sha256") return outcome<done>::fail(wechat::api_errc::invalid_sig_method);
    const auto user = user_of(a.appid, oid);
    if (!user) return outcome<done>::fail(wechat::api_errc::invalid_openid);
    const auto key = current_session_key(a.appid, *user);
    if (!key || !wechat::constant_time_equal(wechat::session_key_signature(*key), signature))
      return outcome<done>::fail(wechat::api_errc::invalid_signature);
    return {};
  }

  /// resetusersessionkey after the token check: 40097, 87008, 40003, 87007, 87009.
  /// Success: a new current key; the old one dies at once.
  outcome<session_grant> reset_session(const app& a, std::string_view oid,
                                       std::string_view signature, std::string_view sig_method) {
    if (oid.empty() || signature.empty() || sig_method.empty())
      return outcome<session_grant>::fail(wechat::api_errc::invalid_args);
    if (sig_method != "hmac_sha256") return outcome<session_grant>::fail(wechat::api_errc::invalid_sig_method);
    const auto user = user_of(a.appid, oid);
    if (!user) return outcome<session_grant>::fail(wechat::api_errc::invalid_openid);
    const std::string k = detail::pair_key(a.appid, *user);
    auto& s = sessions_.of(k);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(k);
    if (it == s.map.end() || it->second.key.empty()) return outcome<session_grant>::fail(wechat::api_errc::session_key_not_exist);
    if (!wechat::constant_time_equal(wechat::session_key_signature(it->second.key), signature))
      return outcome<session_grant>::fail(wechat::api_errc::invalid_signature);
    it->second.key = new_session_key();
    outcome<session_grant> out;
    out.value.openid = std::string(oid);
    out.value.session_key = it->second.key;
    return out;
  }

  /// getuserphonenumber after the token check: 40029 (unknown, expired), 40163 (used),
  /// 40013 (code of another app), 40003 (openid given and not the code's user).
  outcome<phone_grant> phone_number(const app& a, std::string_view code, std::string_view oid) {
    const std::int64_t t = now();
    auto& s = phone_codes_.of(code);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(std::string(code));
    if (it == s.map.end() || t - it->second.issued >= limits::code_lifetime)
      return outcome<phone_grant>::fail(wechat::api_errc::invalid_code);
    if (it->second.appid != a.appid) return outcome<phone_grant>::fail(wechat::api_errc::invalid_appid);
    if (it->second.used) return outcome<phone_grant>::fail(wechat::api_errc::code_been_used);
    if (!oid.empty() && oid != openid(a.appid, it->second.user))
      return outcome<phone_grant>::fail(wechat::api_errc::invalid_openid);
    it->second.used = true;
    outcome<phone_grant> out;
    out.value.pure_phone_number = it->second.pure_phone;
    out.value.country_code = it->second.country_code;
    out.value.phone_number = "+" + it->second.country_code + it->second.pure_phone;
    out.value.timestamp = t;
    return out;
  }

  /// sns/oauth2/access_token after the presence checks: 40013, 40125, 40029, 40163.
  /// A snsapi_userinfo/snsapi_login code records the user's authorization of the app.
  outcome<token_grant> exchange_oauth_code(std::string_view appid, std::string_view secret,
                                           std::string_view code) {
    const auto a = find_app(appid);
    if (!a || a->type == app_type::miniprogram || a->type == app_type::minigame)
      return outcome<token_grant>::fail(wechat::api_errc::invalid_appid);
    if (!wechat::constant_time_equal(a->secret, secret)) return outcome<token_grant>::fail(wechat::api_errc::invalid_appsecret);
    const std::int64_t t = now();
    oauth_code_entry entry;
    {
      auto& s = oauth_codes_.of(code);
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto it = s.map.find(std::string(code));
      if (it == s.map.end() || it->second.appid != appid ||
          t - it->second.issued >= it->second.lifetime)
        return outcome<token_grant>::fail(wechat::api_errc::invalid_code);
      if (it->second.used) return outcome<token_grant>::fail(wechat::api_errc::code_been_used);
      it->second.used = true;
      entry = it->second;
    }
    const bool consent = entry.scope != "snsapi_base";
    outcome<token_grant> out;
    out.value.refresh_token = random_chars(86, true);
    bool kept = false;
    {
      auto& s = refresh_tokens_.of(out.value.refresh_token);
      std::lock_guard<std::mutex> lock(s.mutex);
      // kept a day past their 30 days, so that a late refresh says 42002 (expired)
      const auto expired = [t](const refresh_entry& e) { return t >= e.expires + 86400; };
      if (detail::make_room(s, t, 3600, expired)) {
        if (auto minted = mint_token(token_kind::sns, entry.appid, t, limits::token_lifetime,
                                     entry.user, entry.scope)) {
          out.value.access_token = std::move(*minted);
          out.value.expires_in = limits::token_lifetime;
          s.map[out.value.refresh_token] = refresh_entry{entry.appid, entry.user, entry.scope,
                                                         t + limits::refresh_token_lifetime};
          kept = true;
        }
      }
    }
    if (!kept) {  // the mock's tables are full: the code stays unused, to be tried again
      auto& s = oauth_codes_.of(code);
      std::lock_guard<std::mutex> lock(s.mutex);
      if (const auto it = s.map.find(std::string(code)); it != s.map.end()) it->second.used = false;
      return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
    }
    if (consent) add_authorization(entry.user, entry.appid);
    out.value.openid = openid(appid, entry.user);
    out.value.scope = entry.scope;
    rule_facts f = facts(*a, entry.user);
    f.userinfo_scope = consent;
    if (unionid_allowed(rules(), channel::oauth, f))
      out.value.unionid = unionid(a->open_account, entry.user);
    return out;
  }

  /// sns/oauth2/refresh_token after the presence checks: 40013, 40030, 42002.
  outcome<token_grant> refresh_oauth(std::string_view appid, std::string_view refresh_token) {
    const auto a = find_app(appid);
    if (!a) return outcome<token_grant>::fail(wechat::api_errc::invalid_appid);
    const std::int64_t t = now();
    refresh_entry r;
    {
      auto& s = refresh_tokens_.of(refresh_token);
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto it = s.map.find(std::string(refresh_token));
      if (it == s.map.end() || it->second.appid != appid) return outcome<token_grant>::fail(wechat::api_errc::invalid_refresh_token);
      if (t >= it->second.expires) return outcome<token_grant>::fail(wechat::api_errc::refresh_token_expired);
      r = it->second;
    }
    outcome<token_grant> out;
    auto minted = mint_token(token_kind::sns, r.appid, t, limits::token_lifetime, r.user, r.scope);
    if (!minted) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
    out.value.access_token = std::move(*minted);
    out.value.expires_in = limits::token_lifetime;
    out.value.refresh_token = std::string(refresh_token);
    out.value.openid = openid(appid, r.user);
    out.value.scope = r.scope;
    return out;
  }

  /// Validates a user access_token from OAuth: 41001, 40014, 42001.
  outcome<token_owner> check_sns_token(std::string_view token) { return check_token(token, true); }

  /// sns/userinfo after the token check: 40003 (openid not the token's user), 48001
  /// (snsapi_base scope).
  outcome<sns_user> sns_userinfo(const token_owner& owner, std::string_view oid) {
    if (oid != openid(owner.app->appid, owner.user)) return outcome<sns_user>::fail(wechat::api_errc::invalid_openid);
    if (owner.scope == "snsapi_base") return outcome<sns_user>::fail(wechat::api_errc::api_unauthorized);
    outcome<sns_user> out;
    out.value.openid = std::string(oid);
    out.value.prof = profile_of(owner.user);
    if (unionid_allowed(rules(), channel::sns_userinfo, facts(*owner.app, owner.user)))
      out.value.unionid = unionid(owner.app->open_account, owner.user);
    return out;
  }

  /// cgi-bin/user/info after the token check: 40003 (unknown openid for this account, or
  /// the app is not an official account).
  outcome<follower_info> follower(const app& a, std::string_view oid) {
    if (a.type != app_type::official_account) return outcome<follower_info>::fail(wechat::api_errc::invalid_openid);
    const auto user = user_of(a.appid, oid);
    if (!user) return outcome<follower_info>::fail(wechat::api_errc::invalid_openid);
    outcome<follower_info> out;
    out.value.openid = std::string(oid);
    read_user(*user, [&](const user_state& u) {
      const auto it = u.follow_times.find(a.appid);
      out.value.subscribed = it != u.follow_times.end();
      if (out.value.subscribed) out.value.subscribe_time = it->second;
    });
    rule_facts f = facts(a, *user);
    f.follows_this_oa = out.value.subscribed;
    if (unionid_allowed(rules(), channel::user_info_api, f))
      out.value.unionid = unionid(a.open_account, *user);
    return out;
  }

private:
  enum class token_kind { classic, stable, sns };

  struct user_state {
    std::vector<std::string> follows, authorized;
    std::unordered_map<std::string, std::int64_t> follow_times;
    bool high_risk = false;
    std::optional<profile> prof;
  };
  struct session_state {
    std::string key;
    std::int64_t created = 0;
    std::int64_t rate_minute = -1;
    int rate_count = 0;
    std::string openid;  ///< the user's openid in the app, computed once (a SHA-1)
    std::string unionid, unionid_account;  ///< its unionid, and the account it is under
  };
  struct js_code {
    std::string appid, user, session_key;
    std::int64_t issued = 0;
    bool used = false;
  };
  struct phone_code {
    std::string appid, user, pure_phone, country_code;
    std::int64_t issued = 0;
    bool used = false;
  };
  struct oauth_code_entry {
    std::string appid, user, scope;
    std::int64_t issued = 0, lifetime = limits::code_lifetime;
    bool used = false;
  };
  struct stored_payment {
    payment_record record;
    std::string appid, user;
    std::int64_t paid_at = 0;
  };
  struct stored_trade {
    std::string transaction_id;
    std::int64_t paid_at = 0;
  };
  struct token_entry {
    token_kind kind = token_kind::classic;
    std::string appid, user, scope;
    std::int64_t expires = 0;
    std::int64_t dies = INT64_MAX;  ///< superseded: unusable from this time (40001)
  };
  struct refresh_entry {
    std::string appid, user, scope;
    std::int64_t expires = 0;
  };
  struct app_token_state {
    std::string classic;
    std::int64_t classic_day = -1;
    int classic_count = 0;
    std::string stable;
    std::int64_t stable_expires = 0;
    std::int64_t force_day = -1;
    int force_count = 0;
    std::int64_t last_force = INT64_MIN;
  };

  static void check_user(const std::string& user) {
    if (user.empty()) throw admin_error(400, "field 'user' is required");
    if (user.size() > 128) throw admin_error(400, "field 'user' must be at most 128 characters");
  }

  std::shared_ptr<const app> require_app(const std::string& appid) const {
    if (appid.empty()) throw admin_error(400, "field 'appid' is required");
    auto a = find_app(appid);
    if (!a)
      throw admin_error(404, "unknown appid " + appid + " (register it with POST /__mock/apps)");
    return a;
  }

  std::shared_ptr<const app> require_mini_app(const std::string& appid, const char* what) const {
    auto a = require_app(appid);
    if (a->type != app_type::miniprogram && a->type != app_type::minigame)
      throw admin_error(400, std::string(what) + " takes a mini program or mini game; " + appid +
                                 " is a " + to_string(a->type));
    return a;
  }

  // A device action of `user` in mini program (or game) `appid`: the app, once the app and
  // the user are checked; the user's openid in that app is known from now on.
  std::shared_ptr<const app> device_action(const std::string& appid, const std::string& user,
                                           const char* what) {
    auto a = require_mini_app(appid, what);
    check_user(user);
    remember_openid(*a, user);
    return a;
  }

  std::string require_session(const std::string& appid, const std::string& user) {
    auto key = current_session_key(appid, user);
    if (!key)
      throw admin_error(400, "user " + user + " has no session_key in " + appid +
                                 ": the device must log in first (POST /__mock/login)");
    return *key;
  }

  // Changes a user's state, creating it (within the users limit).
  template <class F> void with_user(const std::string& user, F&& f) {
    auto& s = users_.of(user);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.room_for(user)) throw full("users", limits_.users);
    f(s.map[user]);
  }
  // Reads a user's state, if the user has any; creates nothing.
  template <class F> void read_user(const std::string& user, F&& f) {
    auto& s = users_.of(user);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(user);
    if (it != s.map.end()) f(static_cast<const user_state&>(it->second));
  }

  // The admin API's answer at a limit of world_limits. `expires`: the entries die with
  // time (codes, payments), so moving the clock makes room; others stay until a reset.
  static admin_error full(const char* what, std::size_t limit, bool expires = false) {
    return admin_error(507, std::string("the mock is at its limit of ") + std::to_string(limit) +
                                " " + what +
                                " (mock_wechat::world_limits, spread over 16 shards); " +
                                (expires ? "they are forgotten as the clock moves past their life, "
                                           "or POST /__mock/reset"
                                         : "POST /__mock/reset, or raise the limit"));
  }

  void add_authorization(const std::string& user, const std::string& appid) {
    with_user(user, [&](user_state& u) {
      if (std::find(u.authorized.begin(), u.authorized.end(), appid) == u.authorized.end())
        u.authorized.push_back(appid);
    });
  }

  void remember_openid(const app& a, const std::string& user) {
    const std::string k = detail::pair_key(a.appid, openid(a.appid, user));
    auto& s = openids_.of(k);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.room_for(k)) throw full("openids", limits_.sessions);
    s.map.emplace(k, user);
  }

  // What the rule engine needs about `user` in app `a`; and whether the user is marked
  // high risk, when asked (one lookup of the user for both).
  rule_facts facts(const app& a, const std::string& user, bool* high_risk = nullptr) {
    rule_facts f;
    f.type = a.type;
    f.bound = a.bound();
    if (!f.bound && high_risk == nullptr) return f;
    std::vector<std::string> follows, authorized;
    read_user(user, [&](const user_state& u) {
      if (high_risk != nullptr) *high_risk = u.high_risk;
      if (!f.bound) return;
      follows = u.follows;
      authorized = u.authorized;
    });
    for (const auto& id : follows) {
      const auto o = find_app(id);
      if (o && o->type == app_type::official_account && o->open_account == a.open_account)
        f.follows_same_account_oa = true;
    }
    for (const auto& id : authorized) {
      const auto o = find_app(id);
      if (o && o->open_account == a.open_account &&
          (o->type == app_type::official_account || o->type == app_type::mobile_app ||
           o->type == app_type::website))
        f.authorized_same_account_app = true;
    }
    return f;
  }

  // jscode2session's per-user-per-app minute quota. Counts this call; false past it.
  // Gives the user's openid in the app and, if the app is bound, unionid under its Open
  // Platform account on the way (both SHA-1s, computed once and kept with the session).
  bool count_js_code_call(const app& a, const std::string& user, std::int64_t t,
                          std::string& openid_out, std::string& unionid_out) {
    thread_local std::string k;  // no allocation per call
    detail::pair_key(k, a.appid, user);
    auto& s = sessions_.of(k);
    std::lock_guard<std::mutex> lock(s.mutex);
    auto& sess = s.map[k];  // made by login(), which issued the code
    const std::int64_t minute = t / 60;
    if (sess.rate_minute != minute) {
      sess.rate_minute = minute;
      sess.rate_count = 0;
    }
    if (sess.openid.empty()) sess.openid = openid(a.appid, user);
    openid_out = sess.openid;
    if (a.bound()) {
      if (sess.unionid.empty() || sess.unionid_account != a.open_account) {
        sess.unionid = unionid(a.open_account, user);
        sess.unionid_account = a.open_account;
      }
      unionid_out = sess.unionid;
    }
    return ++sess.rate_count <= limits::js_code_per_user_minute;
  }

  static std::int64_t lifetime_of(const oauth_code_entry& c) noexcept { return c.lifetime; }
  template <class Code> static std::int64_t lifetime_of(const Code&) noexcept {
    return limits::code_lifetime;
  }

  // Before a code is issued into shard `s`: forgets codes past their life (a code lives 5
  // minutes, a website's 10; used ones are kept that long so a reuse says 40163), and
  // refuses at the codes limit.
  template <class Shard> void make_room_for_code(Shard& s, std::int64_t t, const char* what) {
    const auto dead = [&](const auto& c) {
      return t - c.issued > lifetime_of(c) || t < c.issued - 86400;
    };
    if (!detail::make_room(s, t, 30, dead)) throw full(what, limits_.codes, true);
  }

  // A new access token, kept until a day after it dies (then it answers 40014 like any
  // garbage). With the token table full, dead tokens are forgotten at once; nullopt when
  // every kept token is still alive.
  std::optional<std::string> mint_token(token_kind kind, const std::string& appid, std::int64_t t,
                                        std::int64_t lifetime, const std::string& user = "",
                                        const std::string& scope = "") {
    std::string token = new_access_token();
    auto& s = (kind == token_kind::sns ? user_tokens_ : tokens_).of(token);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!detail::make_room(
            s, t, 60, [&](const token_entry& e) { return t > std::min(e.expires, e.dies) + 86400; },
            [&](const token_entry& e) { return t >= std::min(e.expires, e.dies); }))
      return std::nullopt;
    s.map[token] = token_entry{kind, appid, user, scope, t + lifetime, INT64_MAX};
    return token;
  }

  void supersede(const std::string& token, std::int64_t t) {
    auto& s = tokens_.of(token);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(token);
    if (it != s.map.end()) it->second.dies = std::min(it->second.dies, t + limits::token_overlap);
  }

  void kill_token(const std::string& token) {
    auto& s = tokens_.of(token);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(token);
    if (it != s.map.end()) it->second.dies = std::min(it->second.dies, now());
  }

  outcome<token_owner> check_token(std::string_view token, bool sns) {
    if (token.empty()) return outcome<token_owner>::fail(wechat::api_errc::access_token_missing);
    token_entry e;
    {
      auto& s = (sns ? user_tokens_ : tokens_).of(token);
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto it = s.map.find(std::string(token));
      if (it == s.map.end() || (it->second.kind == token_kind::sns) != sns)
        return outcome<token_owner>::fail(wechat::api_errc::invalid_access_token);
      e = it->second;
    }
    const std::int64_t t = now();
    if (t >= e.dies && e.dies < e.expires) return outcome<token_owner>::fail(wechat::api_errc::invalid_credential);
    if (t >= e.expires) return outcome<token_owner>::fail(wechat::api_errc::access_token_expired);
    outcome<token_owner> out;
    out.value.app = find_app(e.appid);
    if (!out.value.app) return outcome<token_owner>::fail(wechat::api_errc::invalid_access_token);  // app removed by reset
    out.value.user = e.user;
    out.value.scope = e.scope;
    return out;
  }

  static profile default_profile(const std::string& user) {
    profile p;
    p.nickname = user;
    p.avatar_url =
        "https://thirdwx.qlogo.cn/mmopen/vi_32/" + detail::hashed_id("avatar", user, "") + "/132";
    return p;
  }

  static std::string default_phone(const std::string& user) {
    const std::string h = wechat::sha1_hex("phone\n" + user);
    std::string d = "138";
    for (std::size_t i = 0; d.size() < 11; ++i)
      d.push_back(static_cast<char>('0' + (h[i] % 10)));
    return d;
  }

  static std::string digits(std::size_t n) {
    std::string d(n, '0');
    for (auto& c : d)
      c = static_cast<char>('0' + detail::rng()() % 10);
    return d;
  }

  std::atomic<unionid_rules> rules_;
  world_limits limits_;
  virtual_clock clock_;
  mutable std::shared_mutex apps_mutex_;
  std::unordered_map<std::string, std::shared_ptr<const app>> apps_;
  detail::sharded_map<user_state> users_;
  detail::sharded_map<session_state> sessions_;
  detail::sharded_map<js_code> js_codes_;
  detail::sharded_map<phone_code> phone_codes_;
  detail::sharded_map<oauth_code_entry> oauth_codes_;
  detail::sharded_map<std::string> openids_;
  detail::sharded_map<stored_payment> payments_;
  detail::sharded_map<stored_trade> trades_;
  detail::sharded_map<token_entry> tokens_;  // app tokens (cgi-bin/token, stable_token)
  // OAuth user tokens, apart: a peer can mint them without a secret (refresh_token), and
  // filling their table must not stop apps from getting theirs.
  detail::sharded_map<token_entry> user_tokens_;
  detail::sharded_map<refresh_entry> refresh_tokens_;
  std::mutex app_tokens_mutex_;
  std::unordered_map<std::string, app_token_state> app_tokens_;
};

}  // namespace mock_wechat
