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
//
// Its range is 0 (1970-01-01) to max_unix (9999-12-31T23:59:59Z): set() and advance()
// throw std::out_of_range rather than leave it (a huge advance used to wrap around and
// move time back; a negative time made every expiry meaningless).
#pragma once

#include <wechat/clock.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>

namespace mock_wechat {

/// A wechat::time_source too: give it to the library's client, resolver and
/// verify_options (world::time_source()) and one clock governs both sides of a test.
class virtual_clock : public wechat::time_source {
public:
  /// The latest time the clock takes, in Unix seconds: 9999-12-31T23:59:59Z. Far beyond
  /// any test, and every expiry the mock computes from it (now + 30 days...) and its
  /// milliseconds stay far from overflowing 64 bits.
  static constexpr std::int64_t max_unix = 253402300799;

  /// Virtual Unix time in milliseconds.
  std::int64_t now_ms() const noexcept final {
    if (frozen_.load(std::memory_order_acquire))
      return frozen_at_ms_.load(std::memory_order_acquire);
    return real_ms() + offset_ms_.load(std::memory_order_relaxed);
  }
  /// Virtual Unix time in whole seconds.
  std::int64_t now() const noexcept { return now_ms() / 1000; }
  bool frozen() const noexcept { return frozen_.load(std::memory_order_acquire); }

  /// Moves the clock to `unix_seconds`; frozen there unless `freeze` is false. Throws
  /// std::out_of_range (the clock unchanged) outside 0 to max_unix.
  void set(std::int64_t unix_seconds, bool freeze = true) {
    if (unix_seconds < 0 || unix_seconds > max_unix)
      throw std::out_of_range("the virtual time must be from 0 to " + std::to_string(max_unix) +
                              " (Unix seconds), not " + std::to_string(unix_seconds));
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
  /// the admin API's {"advance":seconds}. Throws std::out_of_range (the clock unchanged)
  /// when the time would leave 0 to max_unix.
  void advance(std::int64_t seconds) {
    if (seconds < -max_unix || seconds > max_unix) leaves_range(std::to_string(seconds));
    advance_ms(seconds * 1000);
  }
  /// Moves the clock by a std::chrono duration, as wechat::manual_clock::advance does;
  /// std::out_of_range as advance(seconds).
  template <class Rep, class Period> void advance(std::chrono::duration<Rep, Period> d) {
    const auto s = std::chrono::duration_cast<std::chrono::duration<double>>(d).count();
    if (!(s >= -static_cast<double>(max_unix) && s <= static_cast<double>(max_unix)))
      leaves_range(std::to_string(s));
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
  // |ms| is at most max_unix * 1000: no overflow below.
  void advance_ms(std::int64_t ms) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::int64_t now = now_ms();
    if (now + ms < 0 || now + ms > max_unix * 1000 + 999)
      leaves_range(std::to_string(ms / 1000) + " from " + std::to_string(now / 1000));
    if (frozen_.load())
      frozen_at_ms_.fetch_add(ms);
    else
      offset_ms_.fetch_add(ms);
  }
  [[noreturn]] static void leaves_range(const std::string& by) {
    throw std::out_of_range("advancing the virtual time by " + by + " s would leave 0 to " +
                            std::to_string(max_unix) + " (Unix seconds)");
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
