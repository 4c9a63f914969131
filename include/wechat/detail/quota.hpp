// wechat/detail/quota.hpp - a count of events per fixed window of time (a day, a minute),
// as WeChat counts its quotas: the count starts afresh when a new window begins. Used by
// the token provider (stable_token force refreshes a day) and by the mock (every quota it
// enforces).
#pragma once

#include <cstdint>

namespace wechat::detail {

/// At most `Limit` events per window of `Window` time units (the unit is the caller's:
/// seconds or milliseconds, the same for `now`). Window and limit are template arguments
/// so that a quota kept per session costs 16 bytes. Not thread safe: the owner locks.
template <std::int64_t Window, int Limit> class window_quota {
public:
  static_assert(Window > 0 && Limit >= 0, "a window of time and a limit");

  /// Whether the window holding `now` has no room left.
  bool spent(std::int64_t now) noexcept {
    roll(now);
    return count_ >= Limit;
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

  /// How many events the window holding `now` has counted.
  int used(std::int64_t now) noexcept {
    roll(now);
    return count_;
  }
  /// Forgets the current window's events (WeChat's clear_quota).
  void clear() noexcept { count_ = 0; }

private:
  void roll(std::int64_t now) noexcept {
    const std::int64_t w = now / Window;
    if (w != current_) {
      current_ = w;
      count_ = 0;
    }
  }
  std::int64_t current_ = INT64_MIN;
  int count_ = 0;
};

}  // namespace wechat::detail
