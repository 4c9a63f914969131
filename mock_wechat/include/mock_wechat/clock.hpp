// mock_wechat/clock.hpp - the mock's virtual clock. Like the library's clocks
// (wechat/clock.hpp): time points are Unix time, now() in seconds (WeChat's unit) and
// now_ms() in milliseconds; set() takes Unix seconds; durations are std::chrono types
// (advance also takes plain seconds, the admin API's unit). Every expiry in the mock reads it:
// 5-minute codes, 7200 s tokens, the 5-minute token overlap, the payment window,
// per-minute rate limits, daily quotas.
//
// It runs in real time until told otherwise. set(t) moves it to t and freezes it there
// (so a test can put an expiry exactly at the second); advance(s) moves it forward,
// frozen or running; resume() lets a frozen clock run again from where it stands;
// reset() returns to real time.
#pragma once

#include <wechat/clock.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

namespace mock_wechat {

/// A wechat::time_source too: give it to the library's client, resolver and
/// verify_options (world::time_source()) and one clock governs both sides of a test.
class virtual_clock : public wechat::time_source {
public:
  /// Virtual Unix time in milliseconds.
  std::int64_t now_ms() const noexcept final {
    if (frozen_.load(std::memory_order_acquire))
      return frozen_at_ms_.load(std::memory_order_acquire);
    return real_ms() + offset_ms_.load(std::memory_order_relaxed);
  }
  /// Virtual Unix time in whole seconds.
  std::int64_t now() const noexcept { return now_ms() / 1000; }
  bool frozen() const noexcept { return frozen_.load(std::memory_order_acquire); }

  /// Moves the clock to `unix_seconds`; frozen there unless `freeze` is false.
  void set(std::int64_t unix_seconds, bool freeze = true) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::int64_t t = unix_seconds * 1000;
    if (freeze) {
      frozen_at_ms_.store(t, std::memory_order_release);
      frozen_.store(true, std::memory_order_release);
    } else {
      offset_ms_.store(t - real_ms(), std::memory_order_relaxed);
      frozen_.store(false, std::memory_order_release);
    }
  }
  /// Moves the clock forward (or back, with a negative value) by `seconds`, the unit of
  /// the admin API's {"advance":seconds}.
  void advance(std::int64_t seconds) { advance_ms(seconds * 1000); }
  /// Moves the clock by a std::chrono duration, as wechat::manual_clock::advance does.
  template <class Rep, class Period> void advance(std::chrono::duration<Rep, Period> d) {
    advance_ms(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  }
  /// Lets a frozen clock run again from where it stands.
  void resume() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!frozen_.load()) return;
    offset_ms_.store(frozen_at_ms_.load() - real_ms());
    frozen_.store(false, std::memory_order_release);
  }
  /// Back to real time, running.
  void reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    offset_ms_.store(0);
    frozen_.store(false, std::memory_order_release);
  }

private:
  void advance_ms(std::int64_t ms) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (frozen_.load())
      frozen_at_ms_.fetch_add(ms);
    else
      offset_ms_.fetch_add(ms);
  }
  static std::int64_t real_ms() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::mutex mutex_;  // serialises writers; readers are lock-free
  std::atomic<bool> frozen_{false};
  std::atomic<std::int64_t> frozen_at_ms_{0};
  std::atomic<std::int64_t> offset_ms_{0};
};

}  // namespace mock_wechat
