// mock_wechat/world/quotas.hpp - an app's daily API quotas as cgi-bin/openapi/quota/get
// reports them and cgi-bin/clear_quota resets them (wechat-api.md section 8): a counter
// per (app, path) per virtual day, and clear_quota's own 10 resets per calendar month.
// Days and months are UTC, like every quota of the mock (window_quota counts whole days
// of Unix time). Only the /cgi-bin/* and /wxa/* paths the mock serves have a quota (WeChat
// answers 76022 for /sns/* paths); cgi-bin/token's 2000 a day is counted and enforced by
// the token table (tokens.hpp), the other counters are reported and never refuse a call.
// One entry per registered app that made a counted call: bounded by world_limits::apps.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "mock_wechat/world/sharded_map.hpp"
#include "mock_wechat/world/types.hpp"

namespace mock_wechat::detail {

/// A path with a daily quota, and that quota.
struct quota_path {
  std::string_view path;
  std::int64_t daily_limit;
};

/// Every path with a quota (the mock's choice of limits, docs/mock.md; cgi-bin/token's is
/// WeChat's). /cgi-bin/clear_quota's limit is per month.
inline constexpr quota_path quota_paths[] = {
    {"/cgi-bin/token", limits::token_fetches_per_day},
    {"/cgi-bin/stable_token", 10000},
    {"/cgi-bin/user/info", 5000000},
    {"/cgi-bin/clear_quota", limits::quota_clears_per_month},
    {"/cgi-bin/openapi/quota/get", 10000},
    {"/cgi-bin/openapi/rid/get", 10000},
    {"/wxa/getpaidunionid", 1000000},
    {"/wxa/checksession", 1000000},
    {"/wxa/resetusersessionkey", 1000000},
    {"/wxa/business/getuserphonenumber", 1000000},
    {"/wxa/business/getuserencryptkey", 1000000},
    {"/wxa/getpluginopenpid", 1000000},
    {"/wxa/getuserriskrank", 1000000},
};
inline constexpr std::size_t quota_path_count = sizeof(quota_paths) / sizeof(quota_paths[0]);

/// The index of `path` in quota_paths, or -1.
inline int quota_index(std::string_view path) noexcept {
  for (std::size_t i = 0; i < quota_path_count; ++i)
    if (quota_paths[i].path == path) return static_cast<int>(i);
  return -1;
}

/// The calendar month (UTC) holding Unix time `t`, as year * 12 + month - 1.
inline std::int64_t utc_month(std::int64_t t) noexcept {
  // days since 1970-01-01 to a civil date (Howard Hinnant's days_from_civil, inverted)
  std::int64_t z = (t >= 0 ? t : t - 86399) / 86400 + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return y * 12 + (m - 1);
}

class quota_table {
public:
  explicit quota_table(const world_limits& l) { apps_.set_limit(l.apps); }

  void clear() { apps_.clear(); }
  std::size_t size() { return apps_.size(); }

  /// Counts one call of `appid` (a registered app) to quota path `index` at `t`. A full
  /// table (more apps than world_limits::apps made calls) counts nothing.
  void count(const std::string& appid, int index, std::int64_t t) {
    with_app(appid, t, true, [&](app_quota& q) { ++q.used[static_cast<std::size_t>(index)]; });
  }

  /// Calls of `appid` to quota path `index` on the day holding `t`.
  std::int64_t used(const std::string& appid, int index, std::int64_t t) {
    std::int64_t n = 0;
    with_app(appid, t, false, [&](app_quota& q) { n = q.used[static_cast<std::size_t>(index)]; });
    return n;
  }

  /// clear_quota's resets by `appid` in the month holding `t`.
  std::int64_t clears(const std::string& appid, std::int64_t t) {
    std::int64_t n = 0;
    with_app(appid, t, false, [&](app_quota& q) { n = q.clears; });
    return n;
  }

  /// cgi-bin/clear_quota for `appid` at `t`: 48006 past 10 resets in the month; else
  /// today's counters start again from 0 (the call itself, counted before, included).
  /// quota/get reports clear_quota's own path as these resets against its monthly 10.
  outcome<done> clear_daily(const std::string& appid, std::int64_t t) {
    outcome<done> out;
    with_app(appid, t, true, [&](app_quota& q) {
      if (q.clears >= limits::quota_clears_per_month) {
        out = outcome<done>::fail(wechat::api_errc::clear_quota_limit_reached);
        return;
      }
      ++q.clears;
      for (auto& u : q.used)
        u = 0;
    });
    return out;
  }

private:
  struct app_quota {
    std::int64_t day = INT64_MIN;    ///< the UTC day the counters are for
    std::int64_t month = INT64_MIN;  ///< the UTC month `clears` is for
    std::int64_t used[quota_path_count] = {};
    std::int64_t clears = 0;
  };

  // f(the app's counters, rolled to `t`'s day and month); `create`: make the entry if
  // there is room (else f is not called).
  template <class F> void with_app(const std::string& appid, std::int64_t t, bool create, F&& f) {
    auto& s = apps_.of(appid);
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.map.find(appid);
    if (it == s.map.end()) {
      if (!create || s.full()) {
        app_quota empty;
        roll(empty, t);
        f(empty);
        return;
      }
      it = s.map.emplace(appid, app_quota{}).first;
    }
    roll(it->second, t);
    f(it->second);
  }

  static void roll(app_quota& q, std::int64_t t) {
    const std::int64_t day = (t >= 0 ? t : t - 86399) / 86400, month = utc_month(t);
    if (q.month != month) {
      q.month = month;
      q.clears = 0;
    }
    if (q.day != day) {
      q.day = day;
      for (auto& u : q.used)
        u = 0;
    }
  }

  sharded_map<app_quota> apps_;
};

}  // namespace mock_wechat::detail
