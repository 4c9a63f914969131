// wechat/clock.hpp - time behind an interface, so expiry, refresh-ahead and the 5-minute
// windows can be tested without sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace wechat {

/// A source of wall-clock time. Time points are Unix time: now_ms() in milliseconds, now()
/// in whole seconds (the unit WeChat's timestamps use); durations are std::chrono types.
class time_source {
public:
  virtual ~time_source() = default;
  virtual std::int64_t now_ms() const = 0;
  std::int64_t now() const { return now_ms() / 1000; }  ///< Unix seconds
};

/// The system clock.
class system_clock final : public time_source {
public:
  std::int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

/// A clock that moves only when told to: for tests.
class manual_clock final : public time_source {
public:
  /// Starts at `unix_seconds` and moves only when told.
  explicit manual_clock(std::int64_t unix_seconds = 1800000000) : ms_(unix_seconds * 1000) {}
  std::int64_t now_ms() const override { return ms_.load(); }
  /// Jumps to `unix_seconds`.
  void set(std::int64_t unix_seconds) { ms_.store(unix_seconds * 1000); }
  /// Moves forward by `d`.
  void advance(std::chrono::milliseconds d) { ms_.fetch_add(d.count()); }

private:
  std::atomic<std::int64_t> ms_;
};

/// Deprecated since 0.2.0 (it collides with ::clock from <ctime>): use time_source.
using clock [[deprecated("use wechat::time_source")]] = time_source;

/// The process-wide system clock.
inline std::shared_ptr<const time_source> default_clock() {
  static const auto c = std::make_shared<const system_clock>();
  return c;
}

}  // namespace wechat
