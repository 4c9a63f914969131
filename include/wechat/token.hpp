// wechat/token.hpp - access tokens: cached, refreshed ahead of expiry, fetched by exactly
// one thread at a time (single flight), shared through a pluggable store.
//
// Mode `stable` (default) uses POST /cgi-bin/stable_token: the platform hands every caller
// the same token until it renews it, so several servers sharing an app do not invalidate
// each other's tokens. Mode `classic` uses GET /cgi-bin/token, where every fetch
// supersedes the previous token (5 minutes later it answers 40001): use it only from one
// place per app, or with a shared store (the Redis store does that for a fleet).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "wechat/clock.hpp"
#include "wechat/crypto.hpp"
#include "wechat/detail/api_response.hpp"
#include "wechat/detail/quota.hpp"
#include "wechat/detail/retry.hpp"
#include "wechat/detail/single_flight.hpp"
#include "wechat/error.hpp"
#include "wechat/store.hpp"
#include "wechat/transport.hpp"
#include "wechat/url_encode.hpp"

namespace wechat {

/// How access tokens are fetched: POST /cgi-bin/stable_token (safe for several servers
/// sharing one app) or GET /cgi-bin/token (each fetch invalidates the previous token after
/// 5 minutes).
enum class token_mode { stable, classic };

/// How a token_provider fetches and refreshes.
struct token_options {
  std::string appid;
  std::string secret;
  token_mode mode = token_mode::stable;
  /// Fetch a new token this long before the cached one expires (the old one keeps being
  /// used meanwhile).
  std::chrono::seconds refresh_ahead{300};
  /// Attempts for one fetch when WeChat answers -1 (busy) or the transport fails.
  int max_attempts = 3;
  /// First backoff between attempts; doubled each time, with jitter.
  std::chrono::milliseconds backoff{100};
  /// How long a refresh may hold the store's lock; if its holder dies, the others take
  /// over after this long.
  std::chrono::milliseconds lock_ttl{5000};
};

/// One upstream attempt at a token: the token and when it expires, or an error with its
/// detail. What a token_fetch returns.
using token_fetch_result = detail::shared_result<stored_token>;

/// One upstream attempt at a token of another kind than an app's access token (the
/// component token, an authorizer token, a WeCom token): a token_provider built with one
/// caches it, fetches it in a single flight under the store's lock, refreshes it ahead and
/// retries the attempt on -1 and transport failures, as for an app's token.
using token_fetch = std::function<token_fetch_result()>;

namespace detail {
/// Reads a token endpoint's answer into `r`: the token in `field`, expiring `expires_in`
/// seconds (7200 when WeChat leaves it out, or writes no integer) after `sent_ms`, when the
/// request was sent. A missing token is protocol_errc::missing_field, named in r.detail.
/// expires_in is taken within [0, 2^31) seconds (about 68 years): a negative one expires
/// the token at once (it serves the call that fetched it; the next call fetches again),
/// and a larger one could not be made milliseconds without overflowing.
inline void read_token_answer(const detail::answer& j, const char* field, std::int64_t sent_ms,
                              token_fetch_result& r) {
  r.value.value = required_string(j, field, r.ec, &r.detail);
  if (r.ec) return;
  const std::int64_t expires_in =
      std::clamp<std::int64_t>(integer_field(j, "expires_in", 7200), 0, INT32_MAX);
  r.value.expires_at_ms = sent_ms + expires_in * 1000;
}

/// When a token obtained at `now` is refreshed: `ahead_ms` before it expires; or, when it
/// came already inside that window, at its expiry. A platform that hands back its current
/// token until it expires (WeCom's gettoken, WeChat's stable_token near its renewal) would
/// otherwise be asked again at every call of the window, and answer the same token each
/// time. Shared by token_provider and async_token_provider.
inline std::int64_t refresh_at(const stored_token& t, std::int64_t now, std::int64_t ahead_ms) {
  return now < t.expires_at_ms - ahead_ms ? t.expires_at_ms - ahead_ms : t.expires_at_ms;
}

/// A random owner for the store's refresh lock (16 bytes, hex), so that only its holder
/// releases it.
inline std::string random_lock_owner() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::string s(16, '\0');
  for (auto& c : s)
    c = static_cast<char>(rng() & 0xff);
  return to_hex(s);
}

/// The request for the app's access token of `o` (its read: read_token_answer with
/// "access_token"): POST /cgi-bin/stable_token (`force` sets force_refresh) in mode
/// stable, GET /cgi-bin/token in mode classic. One attempt of a token_provider's fetch.
inline http_request access_token_request(const token_options& o, bool force) {
  http_request req;
  if (o.mode == token_mode::stable) {
    req.method = "POST";
    req.target = "/cgi-bin/stable_token";
    req.content_type = "application/json";
    req.body = nlohmann::json{
        {"grant_type", "client_credential"},
        {"appid", o.appid},
        {"secret", o.secret},
        {"force_refresh",
         force}}.dump();
  } else {
    req.target = "/cgi-bin/token?grant_type=client_credential&appid=" + url_encode(o.appid) +
                 "&secret=" + url_encode(o.secret);
  }
  return req;
}
}  // namespace detail

/// Provides the access token of one app (or, built with a token_fetch, any token WeChat
/// hands out with an expires_in). Thread safe; share one per app per process.
class token_provider {
public:
  token_provider(token_options o, std::shared_ptr<transport> t,
                 std::shared_ptr<token_store> store = nullptr,
                 std::shared_ptr<const wechat::time_source> clk = nullptr)
      : opt_(std::move(o)), transport_(std::move(t)),
        store_(store ? std::move(store) : std::make_shared<memory_token_store>()),
        clock_(clk ? std::move(clk) : default_clock()),
        key_("access_token:" + opt_.appid +
             (opt_.mode == token_mode::stable ? ":stable" : ":classic")) {}

  /// A provider of another kind of token: `fetch` makes one upstream attempt; the token is
  /// kept in `store` under `store_key` (its refresh lock under `store_key` + ":lock").
  /// From `o` only refresh_ahead, max_attempts, backoff and lock_ttl are used, and appid
  /// is what appid() answers (mode and secret are not: `fetch` knows how to fetch).
  token_provider(std::string store_key, token_fetch fetch, token_options o,
                 std::shared_ptr<token_store> store = nullptr,
                 std::shared_ptr<const wechat::time_source> clk = nullptr)
      : opt_(std::move(o)),
        store_(store ? std::move(store) : std::make_shared<memory_token_store>()),
        clock_(clk ? std::move(clk) : default_clock()), key_(std::move(store_key)),
        source_(std::move(fetch)) {}

  /// A valid access token: the cached one, or a fresh one fetched by exactly one thread
  /// while the others wait for its result (a failure is reported to all of them).
  /// Errors: api_errc (40013, 40125, 45009, -1...), transport_errc, protocol_errc.
  std::string get(std::error_code& ec, error_detail* d = nullptr) {
    ec.clear();
    const std::int64_t now = clock_->now_ms();
    {
      std::shared_lock<std::shared_mutex> lock(cache_mutex_);
      if (!cached_.value.empty() && now < refresh_at_ms_) return cached_.value;
    }
    return slow_get(now, ec, d);
  }

  /// Throwing overload of get().
  std::string get() {
    std::error_code ec;
    error_detail d;
    auto t = get(ec, &d);
    throw_if_error(ec, d, "access token");
    return t;
  }

  /// Forgets `token` if it is still the current one (WeChat rejected it: 40001, 40014,
  /// 42001), here and in the store, so that the next get() fetches a new one. A token that
  /// was already replaced is left alone.
  void invalidate(const std::string& token) {
    {
      std::unique_lock<std::shared_mutex> lock(cache_mutex_);
      if (cached_.value == token) {
        cached_ = stored_token{};
        refresh_at_ms_ = 0;
      }
    }
    std::lock_guard<std::mutex> lock(flight_mutex_);
    rejected_ = token;
    std::error_code ignored;
    store_->erase_if(key_, token, ignored);
  }

  /// The key of this provider's token in its store.
  const std::string& store_key() const noexcept { return key_; }
  /// Upstream token fetches made so far (for tests and metrics).
  std::uint64_t fetches() const noexcept { return fetches_.load(); }
  const std::string& appid() const noexcept { return opt_.appid; }
  /// The fetch mode in use.
  token_mode mode() const noexcept { return opt_.mode; }

  /// Deprecated since 0.2.0: use wechat::throw_if_error(ec, d, what), which it calls.
  [[deprecated("use wechat::throw_if_error(ec, detail, context)")]] static void
  throw_on(const std::error_code& ec, const error_detail& d, const char* what) {
    throw_if_error(ec, d, what);
  }

private:
  using result = detail::shared_result<stored_token>;

  std::int64_t ahead_ms() const noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(opt_.refresh_ahead).count();
  }

  std::string slow_get(std::int64_t now, std::error_code& ec, error_detail* d) {
    detail::flight<result> flight;
    std::string rejected;
    {
      std::lock_guard<std::mutex> lock(flight_mutex_);
      {
        std::shared_lock<std::shared_mutex> cl(cache_mutex_);
        if (!cached_.value.empty() && now < refresh_at_ms_) return cached_.value;
        // Someone is already refreshing ahead of expiry: keep using the still-valid token.
        if (flight_.valid() && !cached_.value.empty() && now < cached_.expires_at_ms)
          return cached_.value;
      }
      if (flight_.valid()) {
        flight = detail::flight<result>::follow(flight_);
      } else {
        // Another process (or provider) may have refreshed already.
        std::error_code sec;
        auto stored = store_->load(key_, sec);
        if (!sec && stored && stored->value != rejected_ &&
            now < stored->expires_at_ms - ahead_ms()) {
          publish(*stored, now);
          return stored->value;
        }
        flight = detail::flight<result>::lead();
        flight_ = flight.shared();
        rejected = rejected_;
      }
    }
    if (flight.leads()) {
      result r;
      try {
        r = refresh_with_lock(rejected);  // saves to the store when it can
      } catch (...) {  // a transport or store that throws: no waiter is left hanging
        std::lock_guard<std::mutex> lock(flight_mutex_);
        flight.abandon(std::current_exception());
        flight_ = std::shared_future<result>();
        throw;
      }
      if (!r.ec) publish(r.value, clock_->now_ms());  // this process's cache, store or not
      std::lock_guard<std::mutex> lock(flight_mutex_);
      if (!r.ec && rejected_ == rejected) rejected_.clear();
      flight.land(std::move(r));
      flight_ = std::shared_future<result>();
    }
    return flight.wait().deliver(ec, d).value;
  }

  // The leader's refresh. Across processes sharing the store, exactly one fetches: the one
  // holding the store's lock; the others wait for its token to appear in the store (or
  // for the lock to expire, if its holder died). A store that cannot be reached does not
  // stop this process: it then fetches alone.
  result refresh_with_lock(const std::string& rejected) {
    const std::string lock_key = key_ + ":lock";
    const std::string owner = detail::random_lock_owner();
    const auto lock_ms = opt_.lock_ttl.count();
    for (;;) {
      const std::int64_t now = clock_->now_ms();
      std::error_code lec;
      const bool got = store_->acquire(lock_key, owner, opt_.lock_ttl, lec);
      if (got || lec) {
        std::error_code sec;
        auto stored = lec ? std::nullopt : store_->load(key_, sec);
        result r;
        if (!sec && stored && stored->value != rejected &&
            now < stored->expires_at_ms - ahead_ms()) {
          r.value = *stored;  // another process refreshed while we queued for the lock
        } else {
          r = fetch(now, rejected);
          if (!r.ec && !lec) store_->save(key_, r.value, sec);
        }
        if (!lec) store_->release(lock_key, owner, sec);
        return r;
      }
      // Someone else holds the lock: wait for their token, polling the store. The wait is
      // bounded in real time (the lock's TTL runs in real time in the store), whatever
      // the injected clock says.
      const auto give_up =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(lock_ms + 100);
      while (std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        std::error_code sec;
        auto stored = store_->load(key_, sec);
        if (!sec && stored && stored->value != rejected &&
            clock_->now_ms() < stored->expires_at_ms - ahead_ms()) {
          result r;
          r.value = *stored;
          return r;
        }
        if (sec) break;
      }
    }
  }

  // Caches `t`, to be refreshed at detail::refresh_at.
  void publish(const stored_token& t, std::int64_t now) {
    std::unique_lock<std::shared_mutex> lock(cache_mutex_);
    cached_ = t;
    refresh_at_ms_ = detail::refresh_at(t, now, ahead_ms());
  }

  // One upstream fetch, with retries for -1 and transport failures.
  result fetch(std::int64_t now, const std::string& rejected) {
    result r;
    detail::retry(opt_.max_attempts, opt_.backoff, [&](int attempt) {
      r = fetch_once(false);
      r.detail.attempts = attempt;
      return r.ec;
    });
    // stable_token in normal mode hands back the platform's current token; if that is the
    // very token WeChat just rejected, force a new one (within the platform's limits:
    // 30 s apart, 20 a day).
    if (!r.ec && !source_ && opt_.mode == token_mode::stable && !rejected.empty() &&
        r.value.value == rejected && force_allowed(now)) {
      result forced = fetch_once(true);
      if (!forced.ec) r = forced;
    }
    return r;
  }

  // WeChat allows 20 forced refreshes a day, 30 s apart (wechat-api.md section 4).
  bool force_allowed(std::int64_t now) {
    if (force_quota_.spent(now) || (last_force_ms_ != 0 && now - last_force_ms_ < 30000))
      return false;
    force_quota_.take(now);
    last_force_ms_ = now;
    return true;
  }

  result fetch_once(bool force) {
    ++fetches_;
    if (source_) return source_();
    result r;
    const std::int64_t sent = clock_->now_ms();
    r.detail.attempts = 1;
    const auto j =
        detail::round_trip(*transport_, detail::access_token_request(opt_, force), r.ec, r.detail);
    if (r.ec) return r;
    detail::read_token_answer(j, "access_token", sent, r);
    return r;
  }

  token_options opt_;
  std::shared_ptr<transport> transport_;
  std::shared_ptr<token_store> store_;
  std::shared_ptr<const wechat::time_source> clock_;
  std::string key_;
  token_fetch source_;  // empty: the app's access token (stable_token or cgi-bin/token)

  mutable std::shared_mutex cache_mutex_;
  stored_token cached_;
  std::int64_t refresh_at_ms_ = 0;  // when get() starts a refresh (see publish)

  std::mutex flight_mutex_;
  std::shared_future<result> flight_;  // the refresh in progress, if any
  std::string rejected_;               // the last token WeChat rejected; guarded by flight_mutex_
  detail::window_quota<86400000, 20> force_quota_;  // forced refreshes a day (ms)
  std::int64_t last_force_ms_ = 0;
  std::atomic<std::uint64_t> fetches_{0};
};

}  // namespace wechat
