// mock_wechat/world/codes.hpp - single-use codes, one lifecycle for every kind (wx.login's
// js_code, the phone button's code, OAuth codes): issued by a device action, 32 random
// characters, alive for their lifetime (5 minutes; a website's OAuth code 10), redeemed
// once by their own app (again: 40163), forgotten when their life is over (a used code is
// kept that long, so that a reuse says 40163 rather than 40029). wechat-api.md sections
// 3, 5 and 7.
#pragma once

#include <wechat/error.hpp>

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "mock_wechat/ids.hpp"
#include "mock_wechat/world/sharded_map.hpp"
#include "mock_wechat/world/types.hpp"

namespace mock_wechat::detail {

/// The codes of one kind; `Payload` is what the code stands for (it holds the `appid` the
/// code was issued to).
template <class Payload> class code_table {
public:
  /// `what` names the codes in the admin API's 507 ("login codes").
  code_table(const char* what, std::size_t limit) : what_(what), limit_(limit) {
    codes_.set_limit(limit);
  }

  /// A new code at `t`, standing for what `make()` returns. `make` runs once there is
  /// room (so a refusal at the limit, admin_error 507, leaves nothing half done) and may
  /// itself throw. The code lives limits::code_lifetime, or the payload's `lifetime`
  /// member when it has one (a website's OAuth code).
  template <class Make> std::string issue(std::int64_t t, Make&& make) {
    std::string code = random_chars(32);
    auto& s = codes_.of(code);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto dead = [t](const entry& c) {
      return t - c.issued > lifetime_of(c.data, 0) || t < c.issued - 86400;  // or clock back
    };
    if (!make_room(s, t, 30, dead)) throw limit_reached(what_, limit_, true);
    Payload data = make();  // before the insert: if it throws, no code was made
    s.map[code] = entry{std::move(data), t, false};
    return code;
  }

  /// Redeems `code` for `appid` at `t`, WeChat's checks in WeChat's order: unknown or past
  /// its life, 40029; issued to another app, `other_app` (40029 for a login or OAuth code,
  /// 40013 for a phone code); used, 40163; then `check(payload)` may refuse with its own
  /// errcode (api_errc{} to accept). `check` runs under the code's lock, so two exchanges
  /// of one code never both pass. Accepted: the code is used from now on.
  template <class Check>
  outcome<done> redeem(std::string_view code, std::string_view appid, std::int64_t t,
                       wechat::api_errc other_app, Check&& check) {
    auto& s = codes_.of(code);
    std::lock_guard<std::mutex> lock(s.mutex);
    thread_local std::string key;  // no allocation per lookup once warm
    key.assign(code);
    const auto it = s.map.find(key);
    if (it == s.map.end() || t - it->second.issued >= lifetime_of(it->second.data, 0))
      return outcome<done>::fail(wechat::api_errc::invalid_code);
    entry& e = it->second;
    if (e.data.appid != appid) return outcome<done>::fail(other_app);
    if (e.used) return outcome<done>::fail(wechat::api_errc::code_been_used);
    const wechat::api_errc refused = check(static_cast<const Payload&>(e.data));
    if (refused != wechat::api_errc{}) return outcome<done>::fail(refused);
    e.used = true;
    return {};
  }

  /// Whether `code` is a code of this kind within its life at `t` (used or not, of any
  /// app): getpluginopenpid tells a wx.login code from an unknown one (1007, not 40029).
  bool known(std::string_view code, std::int64_t t) {
    auto& s = codes_.of(code);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.map.find(std::string(code));
    return it != s.map.end() && t - it->second.issued < lifetime_of(it->second.data, 0);
  }

  /// Makes a redeemed code usable again (the exchange could not be completed).
  void unredeem(std::string_view code) {
    auto& s = codes_.of(code);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (const auto it = s.map.find(std::string(code)); it != s.map.end()) it->second.used = false;
  }

  void clear() { codes_.clear(); }
  std::size_t size() { return codes_.size(); }

private:
  struct entry {
    Payload data;
    std::int64_t issued = 0;
    bool used = false;
  };

  // A payload's own lifetime, if it has one; else every code's 5 minutes.
  template <class P>
  static auto lifetime_of(const P& p, int) noexcept -> decltype(std::int64_t{p.lifetime}) {
    return p.lifetime;
  }
  template <class P> static std::int64_t lifetime_of(const P&, long) noexcept {
    return limits::code_lifetime;
  }

  const char* what_;
  std::size_t limit_;
  sharded_map<entry> codes_;
};

}  // namespace mock_wechat::detail
