// wechat/detail/retry.hpp - the retry policy shared by token fetches and API calls.
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

/// Sleeps before attempt `attempt + 1`: base * 2^(attempt-1), plus up to half again of
/// jitter so that a fleet does not retry in step.
inline void backoff_sleep(std::chrono::milliseconds base, int attempt) {
  if (base.count() <= 0) return;  // no backoff asked for: no jitter either
  thread_local std::mt19937 rng(std::random_device{}());
  const long long b = base.count() << (attempt - 1);
  std::this_thread::sleep_for(
      std::chrono::milliseconds(b + std::uniform_int_distribution<long long>(0, b / 2 + 1)(rng)));
}

}  // namespace wechat::detail
