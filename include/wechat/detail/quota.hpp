// wechat/detail/quota.hpp - a count of events per fixed window of time (a day, a minute),
// as WeChat counts its quotas: the count starts afresh when a new window begins. Used by
// the token provider (stable_token force refreshes a day) and by the mock (every quota it
// enforces).
#pragma once

#include <cstdint>

namespace wechat::detail {

/// At most `limit` events per window of `window` time units (the unit is the caller's:
/// seconds or milliseconds, the same for `now`). Not thread safe: the owner locks.
class window_quota {
public:
  constexpr window_quota(std::int64_t window, int limit) noexcept
      : window_(window), limit_(limit) {}

  /// Whether the window holding `now` has no room left.
  bool spent(std::int64_t now) noexcept {
    roll(now);
    return count_ >= limit_;
  }
  /// Counts one event at `now`.
  void take(std::int64_t now) noexcept {
    roll(now);
    ++count_;
  }
  /// Counts one event at `now` if there is room; false (nothing counted) otherwise.
  bool try_take(std::int64_t now) noexcept {
    if (spent(now)) return false;
    ++count_;
    return true;
  }

private:
  void roll(std::int64_t now) noexcept {
    const std::int64_t w = now / window_;
    if (w != current_) {
      current_ = w;
      count_ = 0;
    }
  }
  std::int64_t window_;
  int limit_;
  std::int64_t current_ = INT64_MIN;
  int count_ = 0;
};

}  // namespace wechat::detail
