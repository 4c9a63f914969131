// mock_wechat/world/sessions.hpp - sessions and keys: per (app, user), the current
// session_key (each wx.login makes a new one and the previous one dies at that moment, so
// "the device logged in again and the backend kept the old key" fails as it does live),
// jscode2session's per-user minute quota, and the user's ids in the app, computed once.
// wechat-api.md section 3.
#pragma once

#include <wechat/crypto.hpp>
#include <wechat/decrypt.hpp>
#include <wechat/detail/quota.hpp>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "mock_wechat/ids.hpp"
#include "mock_wechat/world/sharded_map.hpp"
#include "mock_wechat/world/types.hpp"

namespace mock_wechat::detail {

class session_table {
public:
  explicit session_table(const world_limits& l) : limit_(l.sessions) {
    sessions_.set_limit(limit_);
  }

  void clear() { sessions_.clear(); }
  std::size_t size() { return sessions_.size(); }

  /// wx.login: `key` becomes the current session_key of `user` in `appid` from `t`; the
  /// previous one dies now. admin_error 507 at the sessions limit.
  void start(const std::string& appid, const std::string& user, const std::string& key,
             std::int64_t t) {
    const std::string k = pair_key(appid, user);
    auto& s = sessions_.of(k);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.room_for(k)) throw limit_reached("sessions", limit_);
    auto& sess = s.map[k];
    sess.key = key;
    sess.created = t;
  }

  /// The current session_key, if the user ever logged in to the app.
  std::optional<std::string> current_key(std::string_view appid, std::string_view user) {
    const std::string k = pair_key(appid, user);
    auto& s = sessions_.of(k);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(k);
    if (it == s.map.end() || it->second.key.empty()) return std::nullopt;
    return it->second.key;
  }

  /// The ids jscode2session gives out for `user` in `a`.
  struct ids {
    std::string openid;
    std::string unionid;  ///< empty when the app is unbound
  };

  /// Counts one jscode2session of `user` in `a` at `t` against the per-user minute quota
  /// (100 a minute); false past it. Fills `out` with the user's openid in the app and,
  /// bound, unionid under its Open Platform account: SHA-1s computed once and kept with
  /// the session.
  bool count_exchange(const app& a, const std::string& user, std::int64_t t, ids& out) {
    thread_local std::string k;  // no allocation per call
    pair_key(k, a.appid, user);
    auto& s = sessions_.of(k);
    std::lock_guard<std::mutex> lock(s.mutex);
    auto& sess = s.map[k];  // made by the login that issued the code
    if (sess.openid.empty()) sess.openid = openid(a.appid, user);
    out.openid = sess.openid;
    if (a.bound()) {
      if (sess.unionid.empty() || sess.unionid_account != a.open_account) {
        sess.unionid = unionid(a.open_account, user);
        sess.unionid_account = a.open_account;
      }
      out.unionid = sess.unionid;
    }
    return sess.exchanges.try_take(t);
  }

  /// resetusersessionkey for `user` in `appid`, the caller proving the current key with
  /// `signature`: 87007 without a key, 87009 for a wrong or stale one; else a new key is
  /// the current one from now on (the old one dies at once) and is returned.
  outcome<std::string> reset(const std::string& appid, const std::string& user,
                             std::string_view signature) {
    const std::string k = pair_key(appid, user);
    auto& s = sessions_.of(k);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(k);
    if (it == s.map.end() || it->second.key.empty())
      return outcome<std::string>::fail(wechat::api_errc::session_key_not_exist);
    if (!wechat::constant_time_equal(wechat::session_key_signature(it->second.key), signature))
      return outcome<std::string>::fail(wechat::api_errc::invalid_signature);
    it->second.key = new_session_key();
    outcome<std::string> out;
    out.value = it->second.key;
    return out;
  }

private:
  struct session_state {
    std::string key;
    std::int64_t created = 0;
    wechat::detail::window_quota<60, limits::js_code_per_user_minute> exchanges;
    std::string openid;                    ///< the user's openid in the app (a SHA-1)
    std::string unionid, unionid_account;  ///< its unionid, and the account it is under
  };

  std::size_t limit_;
  sharded_map<session_state> sessions_;
};

}  // namespace mock_wechat::detail
