// wechat/detail/async_exchange.hpp - one request of the async client, from the transport's
// answer to the caller's: read as the sync client reads it (detail::read_response), retried
// with the sync retry policy (detail::retryable, detail::backoff_delay) on the transport's
// timers instead of a sleeping thread, stopped when its owner leaves, and answered exactly
// once even when the transport drops it (answer_once). What every async call and the async
// token provider send goes through exchange_async.
#pragma once

#include <chrono>
#include <memory>
#include <system_error>
#include <utility>

#include "wechat/async/transport.hpp"
#include "wechat/detail/api_response.hpp"
#include "wechat/detail/retry.hpp"
#include "wechat/error.hpp"

namespace wechat::detail {

/// What a request made once, retried when safe, hands back: the parsed answer, or an error
/// with its detail (detail.attempts: the requests made).
using answer_handler = unique_function<void(answer, std::error_code, error_detail)>;

/// Whoever waits for a request: when it stops waiting (its deadline passed, it cancelled),
/// retries stop and `stop` fires, for the transport to abort the request. A request shared
/// by several callers, or one that consumes a code, has none.
struct request_owner {
  request_owner() = default;
  request_owner(const request_owner&) = delete;
  request_owner& operator=(const request_owner&) = delete;
  virtual ~request_owner() = default;
  /// Time left before the owner's deadline (at least 1 ms; 0: no deadline).
  virtual std::chrono::milliseconds remaining() const = 0;
  virtual bool gone() const = 0;
  cancel_source stop;
};

/// Calls its handler exactly once: when called, or, if it is destroyed uncalled (the loop
/// stopped for good, or async_send threw), with transport_errc::failed from its
/// destructor, so that the waiters behind a request (a code's callers, a token's) are not
/// left waiting and what they hold is released.
class answer_once {
public:
  explicit answer_once(answer_handler h) : h_(std::move(h)) {}
  answer_once(answer_once&&) noexcept = default;
  answer_once& operator=(answer_once&&) = delete;
  answer_once(const answer_once&) = delete;
  answer_once& operator=(const answer_once&) = delete;
  ~answer_once() {
    if (!h_) return;
    auto h = std::move(h_);
    error_detail d;
    try {
      d.cause = "the transport dropped the request: its loop stopped, or it could not take "
                "the call";
    } catch (...) {  // bad_alloc: reported without the words
    }
    try {
      h(answer(), make_error_code(transport_errc::failed), std::move(d));
    } catch (...) {  // a destructor does not throw
    }
  }
  /// Whether it still has to be called.
  explicit operator bool() const noexcept { return static_cast<bool>(h_); }
  /// Runs on the loop, inside the transport's completion: what the handler throws (a
  /// continuation of the library's that ran out of memory) stops here, not in the loop.
  void operator()(answer j, std::error_code ec, error_detail d) noexcept {
    auto h = std::move(h_);
    try {
      h(std::move(j), ec, std::move(d));
    } catch (...) {
    }
  }

private:
  answer_handler h_;
};

// An attempt that may be followed by another, waiting for its backoff: its answer, given
// to the caller when no next attempt is made.
struct last_attempt {
  last_attempt(answer_once h, answer a, std::error_code e, error_detail dt)
      : done(std::move(h)), j(std::move(a)), ec(e), d(std::move(dt)) {}
  void give() { done(std::move(j), ec, std::move(d)); }
  answer_once done;
  detail::answer j;
  std::error_code ec;
  error_detail d;
};

// read_response, on the loop: a bad_alloc parsing the body is this request's failure
// (std::errc::not_enough_memory), not thrown into the loop.
inline answer read_response_on_loop(http_response&& res, const std::error_code& sent,
                                    std::error_code& ec, error_detail& d) noexcept {
  try {
    return read_response(std::move(res), sent, ec, d);
  } catch (...) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return answer();
  }
}

// One attempt: the request goes to the transport; a copy stays in the handler for the
// next attempt only when one may follow (attempt < max_attempts), so that a call made once
// (code2session, every unsafe call) copies nothing.
inline void exchange_attempt(const std::shared_ptr<async_transport>& t, http_request req,
                             int max_attempts, std::chrono::milliseconds backoff,
                             std::shared_ptr<request_owner> owner, answer_once done, int attempt) {
  send_options so;
  if (owner) {
    so.timeout = owner->remaining();
    so.cancel = owner->stop.token();
  }
  try {
    http_request next;
    if (attempt < max_attempts) next = req;
    auto handler = [t, next = std::move(next), max_attempts, backoff, owner, done = std::move(done),
                    attempt](http_response res, std::error_code sent) mutable {
      std::error_code ec;
      error_detail d;
      auto j = read_response_on_loop(std::move(res), sent, ec, d);
      d.attempts = attempt;
      if (!ec || attempt >= max_attempts || !retryable(ec) || (owner && owner->gone())) {
        done(std::move(j), ec, std::move(d));
        return;
      }
      // The attempt's own answer, kept where both the timer and a refusal can reach it.
      std::shared_ptr<last_attempt> last;
      std::chrono::milliseconds delay{};
      try {
        delay = backoff_delay(backoff, attempt);
        last = std::make_shared<last_attempt>(std::move(done), std::move(j), ec, std::move(d));
      } catch (...) {  // bad_alloc (make_shared allocates before it moves): no retry
        if (done) done(std::move(j), ec, std::move(d));
        return;
      }
      try {
        t->post_after(delay, [t, next = std::move(next), max_attempts, backoff,
                              owner = std::move(owner), last, attempt]() mutable {
          if (!last->done) return;       // (already answered, below)
          if (owner && owner->gone()) {  // its caller left during the backoff: no more attempts
            last->give();
            return;
          }
          exchange_attempt(t, std::move(next), max_attempts, backoff, std::move(owner),
                           std::move(last->done), attempt + 1);
        });
      } catch (...) {
        // No timer for the next attempt (post_after threw: bad_alloc, a user's transport):
        // the caller gets this attempt's own answer, its error and its count of requests.
        // This runs on the loop, inside the transport's completion: nothing is thrown into
        // it.
        if (last->done) last->give();
      }
    };
    t->async_send(std::move(req), std::move(so), std::move(handler));
  } catch (...) {
    // The copy failed (bad_alloc), or a transport threw (a user's: bad_alloc, a broken
    // invariant) without taking the handler: `done`, in the handler destroyed here or
    // still this function's, is destroyed uncalled, and answer_once reports
    // transport_errc::failed. Nothing escapes to the caller.
  }
}

/// One request with the retry policy of detail::retry (retryable(), backoff_delay between
/// attempts), on the transport's timers instead of a sleeping thread: `done` is called
/// once, on the loop, with the last attempt's answer (also when the timer for the next
/// attempt cannot be set); or with transport_errc::failed when the transport drops the
/// request or throws taking it. A request whose owner has left is not attempted again.
inline void exchange_async(const std::shared_ptr<async_transport>& t, http_request&& req,
                           int max_attempts, std::chrono::milliseconds backoff,
                           std::shared_ptr<request_owner> owner, answer_handler done) {
  exchange_attempt(t, std::move(req), max_attempts, backoff, std::move(owner),
                   answer_once(std::move(done)), 1);
}

}  // namespace wechat::detail
