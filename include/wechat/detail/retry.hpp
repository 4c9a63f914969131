// wechat/detail/retry.hpp - the one retry policy, shared by token fetches and API calls.
#pragma once

#include <chrono>
#include <random>
#include <system_error>
#include <thread>

#include "wechat/error.hpp"

namespace wechat::detail {

/// Failures worth another attempt, for a call that is safe to repeat: WeChat busy (-1) and
/// transport failures. Never 45009/45011 (quota: retrying makes it worse) nor any other
/// errcode (the answer would not change).
inline bool retryable(const std::error_code& ec) noexcept {
  return ec == api_errc::system_busy || ec == transport_errc::connect_failed ||
         ec == transport_errc::timeout || ec == transport_errc::connection_closed ||
         ec == transport_errc::http_status;
}

/// How long to wait before attempt `attempt + 1`: base * 2^(attempt-1), plus up to half
/// again of jitter so that a fleet does not retry in step. Zero when no backoff is asked
/// for (no jitter either). The sync retry sleeps it; the async client arms a timer.
inline std::chrono::milliseconds backoff_delay(std::chrono::milliseconds base, int attempt) {
  if (base.count() <= 0) return std::chrono::milliseconds(0);
  thread_local std::mt19937 rng(std::random_device{}());
  const long long b = base.count() << (attempt - 1);
  return std::chrono::milliseconds(b + std::uniform_int_distribution<long long>(0, b / 2 + 1)(rng));
}

/// Sleeps backoff_delay(base, attempt) before attempt `attempt + 1`.
inline void backoff_sleep(std::chrono::milliseconds base, int attempt) {
  const auto delay = backoff_delay(base, attempt);
  if (delay.count() > 0) std::this_thread::sleep_for(delay);
}

/// The one retry policy: runs `attempt(n)` for n = 1, 2, ... until it returns no error, an
/// error not worth repeating (retryable() above), or `max_attempts` ran (at least one
/// always does), sleeping backoff_sleep() between attempts. Returns the attempts made.
/// Only for calls that are safe to repeat: a single-use code is sent with max_attempts 1.
template <class Attempt>
int retry(int max_attempts, std::chrono::milliseconds backoff, Attempt&& attempt) {
  for (int n = 1;; ++n) {
    const std::error_code ec = attempt(n);
    if (!ec || n >= max_attempts || !retryable(ec)) return n;
    backoff_sleep(backoff, n);
  }
}

}  // namespace wechat::detail
