// mock_wechat/world/tokens.hpp - access tokens, as WeChat rotates them (wechat-api.md
// sections 4, 5 and 7):
//   cgi-bin/token: each fetch mints a new token; the previous one keeps working for 5
//     minutes, then answers 40001; 2000 fetches a day.
//   cgi-bin/stable_token: one current token per app, handed to every caller, renewed 5
//     minutes before it expires; force_refresh mints a new one and kills the old at once,
//     20 a day, 30 s apart.
//   OAuth (sns/oauth2): a user token (2 hours) and a refresh token (30 days) per exchange.
//   Open Platform (notes-issue17.md section 2): component_access_token rotates as
//     cgi-bin/token does (each fetch mints one, the previous lives 5 more minutes: a mock
//     choice, WeChat's docs only say a new fetch invalidates the old); an
//     authorizer_access_token is an app token of the authorizer app, rotating the same way
//     in a slot of its own per (platform, app).
//   WeCom (cgi-bin/gettoken): one token per corp handed to every caller while it is
//     valid, a new one once it has expired (stable_token's rule with no early renewal).
// Tokens are kept until a day after they die (then they answer 40014 like any garbage).
// App tokens and OAuth user tokens are in tables of their own: a peer can mint user tokens
// without a secret (refresh_token), and filling their table must not stop apps getting
// theirs. A full table answers 45009.
#pragma once

#include <wechat/detail/quota.hpp>
#include <wechat/error.hpp>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "mock_wechat/ids.hpp"
#include "mock_wechat/world/sharded_map.hpp"
#include "mock_wechat/world/types.hpp"

namespace mock_wechat::detail {

/// Whose token it is: an app's (cgi-bin/token, stable_token, an authorizer token), an
/// OAuth user's, an Open Platform third-party platform's, a WeCom corp's. A token is valid
/// only where its kind is asked for (another kind is 40014).
enum class token_kind : std::uint8_t { app, user, component, corp };

class token_table {
public:
  explicit token_table(const world_limits& l) {
    tokens_.set_limit(l.tokens);
    user_tokens_.set_limit(l.user_tokens);
    refresh_tokens_.set_limit(l.refresh_tokens);
  }

  void clear() {
    tokens_.clear();
    user_tokens_.clear();
    refresh_tokens_.clear();
    std::lock_guard<std::mutex> lock(apps_mutex_);
    apps_.clear();
  }

  /// cgi-bin/token for `appid` at `t`: 45009 past the day's quota (or a full table).
  outcome<token_grant> fetch_classic(const std::string& appid, std::int64_t t) {
    return fetch_rotating(appid, token_kind::app, appid, t);
  }

  /// A token that rotates as cgi-bin/token's does, for `owner` (an appid, a
  /// component_appid) of `kind`, kept in the rotation slot `slot` (the appid for
  /// cgi-bin/token; slot_key() for the others): each fetch mints one, the slot's previous
  /// one lives 5 more minutes. 45009 past the slot's 2000 a day (or a full table).
  outcome<token_grant> fetch_rotating(const std::string& slot, token_kind kind,
                                      const std::string& owner, std::int64_t t) {
    std::lock_guard<std::mutex> lock(apps_mutex_);
    auto& st = apps_[slot];
    if (st.classic_quota.spent(t))
      return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
    auto minted = mint(kind, owner, t);
    if (!minted) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
    st.classic_quota.take(t);
    if (!st.classic.empty()) supersede(st.classic, t);
    st.classic = std::move(*minted);
    outcome<token_grant> out;
    out.value.access_token = st.classic;
    out.value.expires_in = limits::token_lifetime;
    return out;
  }

  /// cgi-bin/stable_token for `appid` at `t`, forced or not: 45009 past the forced
  /// refreshes of the day (or a full table). A force within 30 s of the last is served as
  /// a normal call.
  outcome<token_grant> fetch_stable(const std::string& appid, std::int64_t t, bool force) {
    return fetch_shared(appid, token_kind::app, appid, t, force, limits::stable_renew_before);
  }

  /// WeCom's cgi-bin/gettoken for `corpid`: the corp's current token while it is valid
  /// (expires_in: what is left of it), a new one once it has expired. 45009 for a full
  /// table.
  outcome<token_grant> fetch_corp(const std::string& corpid, std::int64_t t) {
    return fetch_shared(slot_key(token_kind::corp, corpid), token_kind::corp, corpid, t, false, 0);
  }

  /// Forgets the slot `slot` and kills its tokens at `t` (an app withdrew a platform's
  /// authorization: the authorizer tokens it had die with it, and the slot's memory goes).
  void retire_slot(const std::string& slot, std::int64_t t) {
    std::lock_guard<std::mutex> lock(apps_mutex_);
    const auto it = apps_.find(slot);
    if (it == apps_.end()) return;
    if (!it->second.classic.empty()) kill(it->second.classic, t);
    if (!it->second.stable.empty()) kill(it->second.stable, t);
    apps_.erase(it);
  }

  /// The rotation slot of a kind of token other than an app's own: its own key, so that
  /// it never shares (or supersedes) an app's cgi-bin/token. `owner` may be a pair_key.
  static std::string slot_key(token_kind kind, std::string_view owner) {
    return std::string(1, static_cast<char>('0' + static_cast<int>(kind))) + '\n' +
           std::string(owner);
  }

  /// One current token per slot handed to every caller (stable_token, WeCom's gettoken),
  /// renewed `renew_before` seconds before it expires; `force` (stable_token) mints a new
  /// one and kills the old at once, limited as stable_token's forced refreshes are.
  outcome<token_grant> fetch_shared(const std::string& slot, token_kind kind,
                                    const std::string& owner, std::int64_t t, bool force,
                                    std::int64_t renew_before) {
    std::lock_guard<std::mutex> lock(apps_mutex_);
    auto& st = apps_[slot];
    const bool live = !st.stable.empty() && st.stable_expires - t > renew_before;
    if (force &&
        !(st.last_force != INT64_MIN && t - st.last_force < limits::stable_force_min_gap)) {
      if (st.force_quota.spent(t))
        return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
      auto minted = mint(kind, owner, t);
      if (!minted) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
      st.force_quota.take(t);
      st.last_force = t;
      if (!st.stable.empty()) kill(st.stable, t);
      st.stable = std::move(*minted);
      st.stable_expires = t + limits::token_lifetime;
    } else if (!live) {
      auto minted = mint(kind, owner, t);
      if (!minted) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
      st.stable = std::move(*minted);
      st.stable_expires = t + limits::token_lifetime;
    }
    outcome<token_grant> out;
    out.value.access_token = st.stable;
    out.value.expires_in = st.stable_expires - t;
    return out;
  }

  /// Whose token it is: an app's (`sns` false) or an OAuth user's (`sns` true).
  struct holder {
    std::string appid, user, scope;  ///< user and scope: OAuth tokens only
  };

  /// Checks a presented token at `t`: 41001 missing, 40014 unknown (or of the other kind),
  /// 40001 superseded more than 5 minutes ago or force-refreshed, 42001 expired.
  outcome<holder> check(std::string_view token, bool sns, std::int64_t t) {
    return check(token, sns ? token_kind::user : token_kind::app, t);
  }
  /// The same checks for a token of `kind` (holder::appid: the component_appid or corpid).
  outcome<holder> check(std::string_view token, token_kind kind, std::int64_t t) {
    if (token.empty()) return outcome<holder>::fail(wechat::api_errc::access_token_missing);
    token_entry e;
    {
      auto& s = table_of(kind).of(token);
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto it = s.map.find(std::string(token));
      if (it == s.map.end() || it->second.kind != kind)
        return outcome<holder>::fail(wechat::api_errc::invalid_access_token);
      e = it->second;
    }
    if (t >= e.dies && e.dies < e.expires)
      return outcome<holder>::fail(wechat::api_errc::invalid_credential);
    if (t >= e.expires) return outcome<holder>::fail(wechat::api_errc::access_token_expired);
    outcome<holder> out;
    out.value = holder{std::move(e.appid), std::move(e.user), std::move(e.scope)};
    return out;
  }

  /// An OAuth exchange's tokens for `user` in `appid` with `scope`: a user access token
  /// and a 30-day refresh token. 45009 when either table is full.
  outcome<token_grant> grant_oauth(const std::string& appid, const std::string& user,
                                   const std::string& scope, std::int64_t t) {
    outcome<token_grant> out;
    out.value.refresh_token = random_chars(86, true);
    auto& s = refresh_tokens_.of(out.value.refresh_token);
    std::lock_guard<std::mutex> lock(s.mutex);
    // kept a day past their 30 days, so that a late refresh says 42002 (expired)
    const auto expired = [t](const refresh_entry& e) { return t >= e.expires + 86400; };
    if (!make_room(s, t, 3600, expired))
      return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
    auto minted = mint(token_kind::user, appid, t, user, scope);
    if (!minted) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
    out.value.access_token = std::move(*minted);
    out.value.expires_in = limits::token_lifetime;
    s.map[out.value.refresh_token] =
        refresh_entry{appid, user, scope, t + limits::refresh_token_lifetime};
    return out;
  }

  /// sns/oauth2/refresh_token: a new user token for the refresh token's user. 40030 for
  /// an unknown one (or another app's), 42002 past its 30 days, 45009 with a full table.
  /// The grant's openid is left to the caller; its scope and the user are in `user_out`.
  outcome<token_grant> refresh_oauth(std::string_view appid, std::string_view refresh_token,
                                     std::int64_t t, std::string& user_out) {
    refresh_entry r;
    {
      auto& s = refresh_tokens_.of(refresh_token);
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto it = s.map.find(std::string(refresh_token));
      if (it == s.map.end() || it->second.appid != appid)
        return outcome<token_grant>::fail(wechat::api_errc::invalid_refresh_token);
      if (t >= it->second.expires)
        return outcome<token_grant>::fail(wechat::api_errc::refresh_token_expired);
      r = it->second;
    }
    auto minted = mint(token_kind::user, r.appid, t, r.user, r.scope);
    if (!minted) return outcome<token_grant>::fail(wechat::api_errc::daily_quota_reached);
    outcome<token_grant> out;
    out.value.access_token = std::move(*minted);
    out.value.expires_in = limits::token_lifetime;
    out.value.refresh_token = std::string(refresh_token);
    out.value.scope = r.scope;
    user_out = std::move(r.user);
    return out;
  }

  /// The app a token was issued to (an app token or an OAuth user token), whether or not
  /// it is still valid, while the table keeps it; empty for a token it never issued.
  std::string appid_of(std::string_view token) {
    for (auto* table : {&tokens_, &user_tokens_}) {
      auto& s = table->of(token);
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto it = s.map.find(std::string(token));
      if (it != s.map.end()) return it->second.appid;
    }
    return {};
  }

  /// cgi-bin/token fetches by `appid` on the day holding `t` (what its 2000 a day counts).
  std::int64_t classic_used(const std::string& appid, std::int64_t t) {
    std::lock_guard<std::mutex> lock(apps_mutex_);
    const auto it = apps_.find(appid);
    return it == apps_.end() ? 0 : it->second.classic_quota.used(t);
  }

  /// cgi-bin/clear_quota: today's cgi-bin/token fetches and forced stable_token refreshes
  /// of `appid` count from 0 again.
  void clear_quotas(const std::string& appid) {
    std::lock_guard<std::mutex> lock(apps_mutex_);
    const auto it = apps_.find(appid);
    if (it == apps_.end()) return;
    it->second.classic_quota.clear();
    it->second.force_quota.clear();
  }

  std::size_t app_token_count() { return tokens_.size(); }
  std::size_t user_token_count() { return user_tokens_.size(); }
  std::size_t refresh_token_count() { return refresh_tokens_.size(); }
  std::size_t app_count() {
    std::lock_guard<std::mutex> lock(apps_mutex_);
    return apps_.size();
  }

private:
  struct token_entry {
    token_kind kind = token_kind::app;
    std::string appid, user, scope;
    std::int64_t expires = 0;
    std::int64_t dies = INT64_MAX;  ///< superseded: unusable from this time (40001)
  };
  struct refresh_entry {
    std::string appid, user, scope;
    std::int64_t expires = 0;
  };
  struct app_tokens {  ///< one app's tokens and quotas
    std::string classic;
    wechat::detail::window_quota<86400, limits::token_fetches_per_day> classic_quota;
    std::string stable;
    std::int64_t stable_expires = 0;
    wechat::detail::window_quota<86400, limits::stable_force_per_day> force_quota;
    std::int64_t last_force = INT64_MIN;
  };

  // A new access token, kept until a day after it dies. With the table full, dead tokens
  // are forgotten at once; nullopt when every kept token is still alive.
  std::optional<std::string> mint(token_kind kind, const std::string& appid, std::int64_t t,
                                  const std::string& user = "", const std::string& scope = "") {
    std::string token = new_access_token();
    auto& s = table_of(kind).of(token);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!make_room(
            s, t, 60, [&](const token_entry& e) { return t > std::min(e.expires, e.dies) + 86400; },
            [&](const token_entry& e) { return t >= std::min(e.expires, e.dies); }))
      return std::nullopt;
    s.map[token] = token_entry{kind, appid, user, scope, t + limits::token_lifetime, INT64_MAX};
    return token;
  }

  // The old classic token lives 5 more minutes.
  void supersede(const std::string& token, std::int64_t t) {
    auto& s = tokens_.of(token);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(token);
    if (it != s.map.end()) it->second.dies = std::min(it->second.dies, t + limits::token_overlap);
  }

  // A forced stable_token refresh kills the old token at once.
  void kill(const std::string& token, std::int64_t t) {
    auto& s = tokens_.of(token);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(token);
    if (it != s.map.end()) it->second.dies = std::min(it->second.dies, t);
  }

  // OAuth user tokens in their table; the tokens minted with a secret (apps', platforms',
  // corps') in the other
  sharded_map<token_entry>& table_of(token_kind kind) {
    return kind == token_kind::user ? user_tokens_ : tokens_;
  }

  sharded_map<token_entry> tokens_;       // app, component and corp tokens
  sharded_map<token_entry> user_tokens_;  // OAuth user tokens
  sharded_map<refresh_entry> refresh_tokens_;
  std::mutex apps_mutex_;
  std::unordered_map<std::string, app_tokens> apps_;
};

}  // namespace mock_wechat::detail
