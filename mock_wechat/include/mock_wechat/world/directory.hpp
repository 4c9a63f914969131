// mock_wechat/world/directory.hpp - who exists in the world: the apps, the users with
// what they did (follows, authorizations, profile, risk flag), and which user is behind
// each openid. It also gathers the facts the UnionID rule engine (rules.hpp) needs about
// a user of an app. Control-side failures throw admin_error.
#pragma once

#include <wechat/crypto.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mock_wechat/detail/fields.hpp"
#include "mock_wechat/ids.hpp"
#include "mock_wechat/rules.hpp"
#include "mock_wechat/world/sharded_map.hpp"
#include "mock_wechat/world/types.hpp"

namespace mock_wechat::detail {

class directory {
public:
  explicit directory(const world_limits& l) : limits_(l) {
    users_.set_limit(l.users);
    openids_.set_limit(l.sessions);
  }

  void clear() {
    {
      std::unique_lock<std::shared_mutex> lock(apps_mutex_);
      apps_.clear();
    }
    users_.clear();
    openids_.clear();
  }

  // ------------------------------------------------------------------------- apps --

  /// Registers (or replaces) an app; see world::add_app.
  app add_app(app a) {
    check_appid_shape(a.appid, "appid");
    if (has_control_char(a.secret))  // the value is never echoed: it is a secret
      throw admin_error(400, "field 'secret' must not contain control characters");
    if (has_control_char(a.open_account))
      throw admin_error(400, "field 'open_account' must not contain control characters");
    if (a.secret.empty()) a.secret = wechat::to_hex(random_chars(16));
    std::unique_lock<std::shared_mutex> lock(apps_mutex_);
    if (apps_.size() >= limits_.apps && apps_.count(a.appid) == 0)
      throw limit_reached("apps", limits_.apps);
    apps_[a.appid] = std::make_shared<const app>(a);
    return a;
  }

  /// 400 naming `field` unless `appid` is shaped like an appid: 1-64 characters without
  /// spaces, control characters or URL delimiters (apps, platforms, corps alike).
  static void check_appid_shape(const std::string& appid, const char* field) {
    if (appid.empty()) throw admin_error(400, std::string("field '") + field + "' is required");
    if (appid.size() > 64 || appid.find_first_of(" /?&=#%\"\\") != std::string::npos ||
        has_control_char(appid))
      throw admin_error(400, std::string("field '") + field +
                                 "' must be 1-64 characters without spaces, control "
                                 "characters (NUL, CR, LF...) or URL delimiters");
  }

  std::shared_ptr<const app> find_app(std::string_view appid) const {
    std::shared_lock<std::shared_mutex> lock(apps_mutex_);
    const auto it = apps_.find(std::string(appid));
    return it == apps_.end() ? nullptr : it->second;
  }

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

  std::size_t app_count() const {
    std::shared_lock<std::shared_mutex> lock(apps_mutex_);
    return apps_.size();
  }

  /// The app (control side): 400 without an appid, 404 for an unknown one.
  std::shared_ptr<const app> require_app(const std::string& appid) const {
    if (appid.empty()) throw admin_error(400, "field 'appid' is required");
    auto a = find_app(appid);
    if (!a)
      throw admin_error(404, "unknown appid " + appid + " (register it with POST /__mock/apps)");
    return a;
  }

  /// The app, which must be a mini program or mini game (400 otherwise).
  std::shared_ptr<const app> require_mini_app(const std::string& appid, const char* what) const {
    auto a = require_app(appid);
    expect_type(*a, is_mini(a->type), what, "a mini program or mini game");
    return a;
  }

  /// 400 unless `a` is an official account, mobile app or website.
  static void check_web_app(const app& a, const char* what) {
    expect_type(a, !is_mini(a.type), what, "an official account, mobile app or website");
  }

  /// 400 unless `a` is an official account.
  static void check_official_account(const app& a, const char* what) {
    expect_type(a, a.type == app_type::official_account, what, "an official account");
  }

  // ------------------------------------------------------------------------ users --

  static void check_user(const std::string& user) {
    if (user.empty()) throw admin_error(400, "field 'user' is required");
    if (user.size() > 128) throw admin_error(400, "field 'user' must be at most 128 characters");
  }

  void set_high_risk(const std::string& user, bool high_risk) {
    with_user(user, [&](user_state& u) { u.high_risk = high_risk; });
  }
  void set_profile(const std::string& user, const profile& p) {
    with_user(user, [&](user_state& u) { u.prof = p; });
  }
  /// The user's profile (explicit, or derived from the name).
  profile profile_of(const std::string& user) {
    std::optional<profile> p;
    read_user(user, [&](const user_state& u) { p = u.prof; });
    return p ? *p : default_profile(user);
  }

  /// getuserriskrank's answer for the user: 0 (no risk) to 4; -1 forgets an explicit
  /// rank (the user's rank is then 4 when flagged high risk, else 0).
  void set_risk_rank(const std::string& user, int rank) {
    with_user(user, [&](user_state& u) { u.risk_rank = rank; });
  }
  /// The user's risk rank: the explicit one, else 4 for a high-risk user, else 0.
  int risk_rank_of(const std::string& user) {
    int rank = 0;
    read_user(user, [&](const user_state& u) {
      rank = u.risk_rank >= 0 ? u.risk_rank : (u.high_risk ? 4 : 0);
    });
    return rank;
  }

  /// `user` follows official account `appid` from `t` (a second follow changes nothing).
  void follow(const std::string& user, const std::string& appid, std::int64_t t) {
    with_user(user, [&](user_state& u) {
      if (std::find(u.follows.begin(), u.follows.end(), appid) == u.follows.end()) {
        u.follows.push_back(appid);
        u.follow_times[appid] = t;
      }
    });
  }
  void unfollow(const std::string& user, const std::string& appid) {
    with_user(user, [&](user_state& u) {
      u.follows.erase(std::remove(u.follows.begin(), u.follows.end(), appid), u.follows.end());
      u.follow_times.erase(appid);
    });
  }
  /// Since when `user` follows `appid`, if they do.
  std::optional<std::int64_t> follows_since(const std::string& user, const std::string& appid) {
    std::optional<std::int64_t> since;
    read_user(user, [&](const user_state& u) {
      const auto it = u.follow_times.find(appid);
      if (it != u.follow_times.end()) since = it->second;
    });
    return since;
  }

  void add_authorization(const std::string& user, const std::string& appid) {
    with_user(user, [&](user_state& u) {
      if (std::find(u.authorized.begin(), u.authorized.end(), appid) == u.authorized.end())
        u.authorized.push_back(appid);
    });
  }

  /// Makes room for the user's state now (within the users limit), so that later changes
  /// on the WeChat side never meet the limit.
  void ensure_user(const std::string& user) {
    with_user(user, [](user_state&) {});
  }

  // ---------------------------------------------------------------------- openids --

  /// From now on, the user's openid in `a` leads back to the user.
  void remember_openid(const app& a, const std::string& user) {
    const std::string k = pair_key(a.appid, openid(a.appid, user));
    auto& s = openids_.of(k);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.room_for(k)) throw limit_reached("openids", limits_.sessions);
    s.map.emplace(k, user);
  }

  /// The user behind an openid of the app, if the mock has seen it.
  std::optional<std::string> user_of(std::string_view appid, std::string_view oid) {
    const std::string k = pair_key(appid, oid);
    auto& s = openids_.of(k);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(k);
    if (it == s.map.end()) return std::nullopt;
    return it->second;
  }

  // ------------------------------------------------------------------------ rules --

  /// What the rule engine needs about `user` in app `a`; and whether the user is marked
  /// high risk, when asked (one lookup of the user for both).
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

  std::size_t user_count() { return users_.size(); }
  std::size_t openid_count() { return openids_.size(); }

private:
  // "<what> takes <takes>; <appid> is a <type>" (400) unless `ok`.
  static void expect_type(const app& a, bool ok, const char* what, const char* takes) {
    if (!ok)
      throw admin_error(400, std::string(what) + " takes " + takes + "; " + a.appid + " is a " +
                                 to_string(a.type));
  }

  struct user_state {
    std::vector<std::string> follows, authorized;
    std::unordered_map<std::string, std::int64_t> follow_times;
    bool high_risk = false;
    std::optional<profile> prof;
    int risk_rank = -1;  ///< getuserriskrank's 0-4 when set (wechat-api.md section 8)
  };

  // Changes a user's state, creating it (within the users limit).
  template <class F> void with_user(const std::string& user, F&& f) {
    auto& s = users_.of(user);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.room_for(user)) throw limit_reached("users", limits_.users);
    f(s.map[user]);
  }
  // Reads a user's state, if the user has any; creates nothing.
  template <class F> void read_user(const std::string& user, F&& f) {
    auto& s = users_.of(user);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(user);
    if (it != s.map.end()) f(static_cast<const user_state&>(it->second));
  }

  static profile default_profile(const std::string& user) {
    profile p;
    p.nickname = user;
    p.avatar_url =
        "https://thirdwx.qlogo.cn/mmopen/vi_32/" + hashed_id("avatar", user, "") + "/132";
    return p;
  }

  const world_limits limits_;
  mutable std::shared_mutex apps_mutex_;
  std::unordered_map<std::string, std::shared_ptr<const app>> apps_;
  sharded_map<user_state> users_;
  sharded_map<std::string> openids_;  // (appid, openid) -> user
};

}  // namespace mock_wechat::detail
