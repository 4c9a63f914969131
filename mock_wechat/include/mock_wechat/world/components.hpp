// mock_wechat/world/components.hpp - Open Platform third-party platforms ("components"):
// their configuration, the component_verify_ticket they are pushed, the record of those
// pushes, and which apps authorized which platform (with the authorizer_refresh_token
// that authorization gave). The rules, from WeChat's docs (read 2026) and what developers
// logged (notes-issue17.md section 2):
//   - a ticket is pushed every 10 minutes; it is "ticket@@@" + 86 url-safe characters
//     (three live examples) and valid 12 hours
//     (https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/component_verify_ticket.html);
//   - api_component_token accepts the latest ticket and the one before it (DESIGN.md's
//     choice: WeChat only says "use the latest"; wechatpy PR #294 shows the previous one
//     keeps working), 61006 for any other (unknown, empty, null, another platform's:
//     WxJava #2967, zoujingli/WeChatDeveloper#29), 61005 past its 12 hours;
//   - an authorizer_refresh_token ("refreshtoken@@@" + 43 characters, seen live) does not
//     change on use; a new authorization mints a new one and the old one dies (61023)
//     (https://developers.weixin.qq.com/community/develop/doc/000c6c30848ed0ae9b2dd71fe56400).
// The HTTP push itself is push.hpp's: this table hands out what to push (ticket_push) and
// takes back what came of it, and no lock of it is held while the push travels.
#pragma once

#include <wechat/crypto.hpp>
#include <wechat/error.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mock_wechat/detail/fields.hpp"
#include "mock_wechat/ids.hpp"
#include "mock_wechat/world/sharded_map.hpp"
#include "mock_wechat/world/types.hpp"

namespace mock_wechat {

/// An Open Platform third-party platform as registered (POST /__mock/components).
struct component {
  std::string component_appid;
  std::string secret;            ///< component_appsecret
  std::string token;             ///< the message token (3-32 letters and digits)
  std::string encoding_aes_key;  ///< 43 letters and digits
  std::string ticket_url;        ///< where tickets are pushed; empty: nowhere
};

/// One push of a ticket as the mock recorded it.
struct push_record {
  std::int64_t at = 0;         ///< the virtual time of the push (the ticket's CreateTime)
  bool ticket_pushed = false;  ///< an HTTP answer came back
  std::string answer;          ///< its body, the first 256 bytes
  std::string error;           ///< why nothing came back ("no ticket_url", ...); empty if it did
  /// WeChat's test of a push: the receiver answered exactly "success".
  bool ok() const noexcept { return ticket_pushed && answer == "success"; }
};

/// A push to make: what push.hpp needs, copied out of the world.
struct ticket_push {
  std::string component_appid, token, encoding_aes_key, ticket_url;
  std::string ticket;            ///< the fresh component_verify_ticket
  std::int64_t create_time = 0;  ///< its CreateTime: the virtual now when it was minted
};

namespace detail {

/// The due pushes claimed and not yet delivered. Claiming (taking the due pushes out of the
/// table) and counting them happen under one lock, so a clock call that claims nothing can
/// still wait for the pushes the pusher thread claimed a moment before; no lock is held
/// while a push travels (the receiver may call the mock back).
class push_flights {
public:
  /// Runs `claim` (which returns the pushes it took) and counts them as in flight.
  template <class Claim> auto claim(Claim&& claim) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto taken = claim();
    in_flight_ += taken.size();
    return taken;
  }
  /// `n` claimed pushes were delivered (or failed).
  void landed(std::size_t n) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      in_flight_ -= std::min(n, in_flight_);
    }
    done_.notify_all();
  }
  /// Waits until no claimed push is in flight, or `timeout` has passed.
  template <class Duration> bool wait_idle(Duration timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return done_.wait_for(lock, timeout, [this] { return in_flight_ == 0; });
  }

private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::size_t in_flight_ = 0;
};

/// Whether `s` is 1-`max` characters of [A-Za-z0-9].
inline bool alnum_only(std::string_view s, std::size_t min, std::size_t max) noexcept {
  if (s.size() < min || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

/// The scheme://authority part of an http:// or https:// URL and the rest ("/path?query",
/// "/" when empty); false for anything else (another scheme, no host, spaces or control
/// characters, longer than 2048).
inline bool split_url(std::string_view url, std::string& base, std::string& target) {
  if (url.size() > 2048) return false;
  for (const char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  std::size_t start = 0;
  if (url.rfind("http://", 0) == 0)
    start = 7;
  else if (url.rfind("https://", 0) == 0)
    start = 8;
  else
    return false;
  const std::size_t slash = url.find_first_of("/?#", start);
  if (slash == start) return false;  // no host
  base.assign(url.substr(0, slash));
  target = slash == std::string_view::npos ? std::string("/") : std::string(url.substr(slash));
  if (!target.empty() && target[0] != '/') target.insert(0, "/");
  if (const auto hash = target.find('#'); hash != std::string::npos) target.erase(hash);
  return true;
}

class component_table {
public:
  explicit component_table(const world_limits& l) : limits_(l) {}

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    components_.clear();
    authorizations_.clear();
  }

  /// Checks a platform's fields (400 naming the field); the appid's shape and uniqueness
  /// are the caller's (world::add_component).
  static void check_fields(const component& c) {
    if (c.secret.empty()) throw admin_error(400, "field 'secret' is required");
    if (has_control_char(c.secret))  // never echoed: it is a secret
      throw admin_error(400, "field 'secret' must not contain control characters");
    // WeChat's console: "Token: 3-32 characters, letters and digits"
    if (!alnum_only(c.token, 3, 32))
      throw admin_error(400, "field 'token' must be 3-32 letters or digits");
    if (!alnum_only(c.encoding_aes_key, 43, 43))
      throw admin_error(400, "field 'encoding_aes_key' must be exactly 43 letters or digits");
    std::string base, target;
    if (!c.ticket_url.empty() && !split_url(c.ticket_url, base, target))
      throw admin_error(400, "field 'ticket_url' must be an http:// or https:// URL (at most "
                             "2048 characters, no spaces)");
  }

  /// Registers a platform at `t` (its fields checked): 400 when the appid is taken, 507
  /// at the limit. Its first ticket is minted now: the push to make.
  ticket_push add(const component& c, std::int64_t t) {
    check_fields(c);
    std::lock_guard<std::mutex> lock(mutex_);
    if (components_.count(c.component_appid) != 0)
      throw admin_error(400, "component_appid " + c.component_appid + " is already registered");
    if (components_.size() >= limits_.components)
      throw limit_reached("components", limits_.components);
    auto& st = components_[c.component_appid];
    st.config = c;
    return mint(st, t);
  }

  bool exists(std::string_view appid) {
    std::lock_guard<std::mutex> lock(mutex_);
    return components_.count(std::string(appid)) != 0;
  }

  /// A fresh ticket for `appid` now (POST /__mock/component_push): 404 for an unknown one.
  ticket_push push_now(const std::string& appid, std::int64_t t) {
    std::lock_guard<std::mutex> lock(mutex_);
    return mint(require(appid), t);
  }

  /// The pushes due at `t`, claimed: a platform whose last push is 10 minutes old or more
  /// gets one fresh ticket, however long ago that was (a jump of an hour pushes once). A
  /// clock moved back before the last push starts the 10 minutes again from now.
  std::vector<ticket_push> due(std::int64_t t) {
    std::vector<ticket_push> out;
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, st] : components_) {
      if (t < st.last_push) st.last_push = t;
      if (t - st.last_push >= limits::ticket_push_interval) out.push_back(mint(st, t));
    }
    return out;
  }

  /// Records what came of a push (nothing when the platform is gone: a reset meanwhile).
  void record(const std::string& appid, push_record r) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = components_.find(appid);
    if (it == components_.end()) return;
    auto& p = it->second.pushes;
    p.push_back(std::move(r));
    while (p.size() > static_cast<std::size_t>(limits::pushes_kept))
      p.pop_front();
  }

  /// The last pushes to `appid`, oldest first: 404 for an unknown platform.
  std::vector<push_record> pushes(const std::string& appid) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto& p = require(appid).pushes;
    return {p.begin(), p.end()};
  }

  /// api_component_token's checks after the presence checks: 61011 (not a platform),
  /// 40125 (wrong secret), 61006 (a ticket neither the latest nor the previous one of this
  /// platform), 61005 (one of them, older than 12 hours).
  outcome<done> check_credentials(std::string_view appid, std::string_view secret,
                                  std::string_view ticket, std::int64_t t) {
    using wechat::api_errc;
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = components_.find(std::string(appid));
    if (it == components_.end()) return outcome<done>::fail(api_errc::invalid_component);
    const auto& st = it->second;
    if (!wechat::constant_time_equal(st.config.secret, secret))
      return outcome<done>::fail(api_errc::invalid_appsecret);
    const minted_ticket* match = nullptr;
    for (const auto* k : {&st.latest, &st.previous})
      if (!ticket.empty() && !k->value.empty() && wechat::constant_time_equal(k->value, ticket))
        match = k;
    if (match == nullptr) return outcome<done>::fail(api_errc::component_ticket_invalid);
    if (t - match->create_time >= limits::ticket_lifetime)
      return outcome<done>::fail(api_errc::component_ticket_expired);
    return {};
  }

  /// `appid` (a registered mini program, mini game or official account: the caller's
  /// check) authorizes platform `component_appid`: a new authorizer_refresh_token, the
  /// previous one of the pair dead from now. 404 for an unknown platform, 507 at the limit.
  std::string authorize(const std::string& component_appid, const std::string& appid) {
    std::lock_guard<std::mutex> lock(mutex_);
    require(component_appid);
    const std::string key = pair_key(component_appid, appid);
    if (authorizations_.count(key) == 0 &&
        authorizations_.size() >= limits_.component_authorizations)
      throw limit_reached("component authorizations", limits_.component_authorizations);
    std::string refresh = "refreshtoken@@@" + random_chars(43, true);
    authorizations_[key] = refresh;
    return refresh;
  }

  /// `appid` withdraws its authorization of the platform (404 for an unknown platform).
  void revoke(const std::string& component_appid, const std::string& appid) {
    std::lock_guard<std::mutex> lock(mutex_);
    require(component_appid);
    authorizations_.erase(pair_key(component_appid, appid));
  }

  /// Whether `appid` has authorized the platform (61003 when not).
  bool authorized(std::string_view component_appid, std::string_view appid) {
    std::lock_guard<std::mutex> lock(mutex_);
    return authorizations_.count(pair_key(component_appid, appid)) != 0;
  }

  /// api_authorizer_token's state checks: 61003 (no authorization), 61023 (not the
  /// pair's current refresh token).
  outcome<done> check_refresh(std::string_view component_appid, std::string_view appid,
                              std::string_view refresh_token) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = authorizations_.find(pair_key(component_appid, appid));
    if (it == authorizations_.end())
      return outcome<done>::fail(wechat::api_errc::component_not_authorized);
    if (!wechat::constant_time_equal(it->second, refresh_token))
      return outcome<done>::fail(wechat::api_errc::authorizer_refresh_token_invalid);
    return {};
  }

  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return components_.size();
  }
  std::size_t authorization_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return authorizations_.size();
  }

private:
  struct minted_ticket {
    std::string value;
    std::int64_t create_time = 0;
  };
  struct state {
    component config;
    minted_ticket latest, previous;
    std::int64_t last_push = 0;
    std::deque<push_record> pushes;  ///< the last limits::pushes_kept
  };

  state& require(const std::string& appid) {
    const auto it = components_.find(appid);
    if (it == components_.end())
      throw admin_error(404, "unknown component_appid " + appid +
                                 " (register it with POST /__mock/components)");
    return it->second;
  }

  // A fresh ticket for the platform at `t`: the latest becomes the previous one.
  static ticket_push mint(state& st, std::int64_t t) {
    st.previous = std::move(st.latest);
    st.latest = minted_ticket{"ticket@@@" + random_chars(86, true), t};
    st.last_push = t;
    return ticket_push{st.config.component_appid, st.config.token, st.config.encoding_aes_key,
                       st.config.ticket_url,      st.latest.value, t};
  }

  const world_limits limits_;
  std::mutex mutex_;
  std::map<std::string, state> components_;  // few: one lock, sorted for listings
  std::unordered_map<std::string, std::string> authorizations_;  // pair_key -> refresh token
};

/// WeCom corps (POST /__mock/corps): corpid -> corpsecret, bounded by world_limits::corps.
class corp_table {
public:
  explicit corp_table(const world_limits& l) : limit_(l.corps) {}

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    corps_.clear();
  }

  /// Registers a corp: 400 for a duplicate or a bad secret, 507 at the limit.
  void add(const std::string& corpid, const std::string& corpsecret) {
    if (corpsecret.empty()) throw admin_error(400, "field 'corpsecret' is required");
    if (has_control_char(corpsecret))
      throw admin_error(400, "field 'corpsecret' must not contain control characters");
    std::lock_guard<std::mutex> lock(mutex_);
    if (corps_.count(corpid) != 0)
      throw admin_error(400, "corpid " + corpid + " is already registered");
    if (corps_.size() >= limit_) throw limit_reached("corps", limit_);
    corps_[corpid] = corpsecret;
  }

  bool exists(std::string_view corpid) {
    std::lock_guard<std::mutex> lock(mutex_);
    return corps_.count(std::string(corpid)) != 0;
  }

  /// gettoken's identity checks: 40013 unknown corpid, 40001 wrong secret (WeCom's codes).
  outcome<done> authenticate(std::string_view corpid, std::string_view corpsecret) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = corps_.find(std::string(corpid));
    if (it == corps_.end()) return outcome<done>::fail(wechat::api_errc::invalid_appid);
    if (!wechat::constant_time_equal(it->second, corpsecret))
      return outcome<done>::fail(wechat::api_errc::invalid_credential);
    return {};
  }

  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return corps_.size();
  }

private:
  const std::size_t limit_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::string> corps_;
};

}  // namespace detail
}  // namespace mock_wechat
