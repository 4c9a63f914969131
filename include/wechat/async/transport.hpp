// wechat/async/transport.hpp - the asynchronous transport interface: what an event loop
// (Asio, Drogon, brpc, libuv...) must offer for wechat::async_client to run on it without
// a thread per call. About 60 lines implement it on a framework's HTTP client; the
// Boost.Beast one is wechat/transport/beast.hpp.
//
// The contract, which every implementation keeps (the client relies on each point):
// - async_send, post, post_after and post_after_cancellable never block, and may be
//   called from any thread;
// - a handler is never called inside the call that hands it over (async_send, post,
//   post_after, post_after_cancellable): it runs later, on the transport's own loop;
// - async_send calls its handler exactly once: with the response, or with an error
//   (transport_errc as the sync transport sets them: connect_failed, timeout, tls_failed,
//   connection_closed, response_too_large, http_status...) and an http_response whose
//   `failure` says which host and why, never a secret;
// - post runs `f` once on the loop; post_after runs it once on the loop, no sooner than
//   `delay` from the call; post_after_cancellable too, unless its cancel_token fires
//   first: `f` may then be destroyed uncalled (so that a timer no one needs any more does
//   not hold the loop: an io_context's run() returns only once no timer is armed), or
//   still run (the timer was due, or the transport ignores the token, as the default
//   does, saying so by returning false);
// - when the loop stops for good, functions not yet run may be destroyed without being
//   called (the client then completes its callers with transport_errc::failed). Destroy
//   them with no lock of the transport's held: destroying one may call post, post_after,
//   post_after_cancellable or async_send on the same thread (which may then drop what
//   they are handed);
// - post_after_cancellable (or, when it is not overridden, post_after) and now() are
//   called with a lock of the client's held (its deadline queue's): they must not call
//   into the client, nor destroy functions handed over earlier, nor wait for the loop or
//   any thread that may call into the client;
// - post_after_cancellable throws only before it has scheduled `f` (the client then
//   records no timer): once `f` is queued, a failure to register the cancel returns
//   false instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "wechat/transport.hpp"

namespace wechat {

/// A move-only callable R(Args...). C++17's std::function must be copyable, and a handler
/// often owns what cannot be copied: a promise, a coroutine handle, a unique_ptr.
template <class Sig> class unique_function;

template <class R, class... Args> class unique_function<R(Args...)> {
public:
  unique_function() noexcept = default;
  unique_function(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor)
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, unique_function> &&
                                              std::is_invocable_r_v<R, std::decay_t<F>&, Args...>>>
  unique_function(
      F&& f)  // NOLINT(google-explicit-constructor,bugprone-forwarding-reference-overload)
      : call_(std::make_unique<impl<std::decay_t<F>>>(std::forward<F>(f))) {}
  unique_function(unique_function&&) noexcept = default;
  unique_function& operator=(unique_function&&) noexcept = default;
  unique_function(const unique_function&) = delete;
  unique_function& operator=(const unique_function&) = delete;
  ~unique_function() = default;

  explicit operator bool() const noexcept { return call_ != nullptr; }
  R operator()(Args... args) { return call_->call(std::forward<Args>(args)...); }

private:
  struct base {
    base() = default;
    base(const base&) = delete;
    base& operator=(const base&) = delete;
    virtual ~base() = default;
    virtual R call(Args&&... args) = 0;
  };
  template <class F> struct impl final : base {
    explicit impl(F g) : f(std::move(g)) {}
    R call(Args&&... args) override { return f(std::forward<Args>(args)...); }
    F f;
  };
  std::unique_ptr<base> call_;
};

namespace detail {
struct cancel_state {
  std::mutex mutex;
  bool cancelled = false;
  std::uint64_t next_id = 0;
  std::vector<std::pair<std::uint64_t, unique_function<void()>>> callbacks;
};
}  // namespace detail

/// Tells operations that their caller has stopped waiting. Made by a cancel_source; a
/// default-constructed token is never cancelled. Copies share one state; thread safe.
class cancel_token {
public:
  cancel_token() = default;

  /// Whether cancel() was called on the source.
  bool cancelled() const {
    if (!state_) return false;
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->cancelled;
  }
  /// Whether a source stands behind this token (a default one never cancels).
  bool can_be_cancelled() const noexcept { return state_ != nullptr; }

  /// Unregisters its callback when destroyed (or reset). A callback already running on
  /// the cancelling thread is not waited for: callbacks hold weak references.
  class registration {
  public:
    registration() = default;
    registration(registration&& o) noexcept
        : state_(std::move(o.state_)), id_(std::exchange(o.id_, 0)) {}
    registration& operator=(registration&& o) noexcept {
      if (this != &o) {
        reset();
        state_ = std::move(o.state_);
        id_ = std::exchange(o.id_, 0);
      }
      return *this;
    }
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;
    ~registration() { reset(); }
    void reset() noexcept {
      if (!state_) return;
      unique_function<void()> dropped;  // destroyed after the lock is released
      {
        std::lock_guard<std::mutex> lock(state_->mutex);
        for (auto it = state_->callbacks.begin(); it != state_->callbacks.end(); ++it)
          if (it->first == id_) {
            dropped = std::move(it->second);
            state_->callbacks.erase(it);
            break;
          }
      }
      state_.reset();
    }

  private:
    friend class cancel_token;
    registration(std::shared_ptr<detail::cancel_state> s, std::uint64_t id)
        : state_(std::move(s)), id_(id) {}
    std::shared_ptr<detail::cancel_state> state_;
    std::uint64_t id_ = 0;
  };

  /// Runs `f` once when the source is cancelled, on the cancelling thread; at once, on
  /// this thread, if it already was. Nothing happens for a token without a source.
  [[nodiscard]] registration on_cancel(unique_function<void()> f) const {
    if (!state_) return {};
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      if (!state_->cancelled) {
        const std::uint64_t id = ++state_->next_id;
        state_->callbacks.emplace_back(id, std::move(f));
        return registration(state_, id);
      }
    }
    f();
    return {};
  }

private:
  friend class cancel_source;
  explicit cancel_token(std::shared_ptr<detail::cancel_state> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::cancel_state> state_;
};

/// The caller's side of cancellation: hand token() to operations, call cancel() to stop
/// waiting for them. Thread safe; cancel() is idempotent.
class cancel_source {
public:
  cancel_source() : state_(std::make_shared<detail::cancel_state>()) {}
  cancel_token token() const { return cancel_token(state_); }
  bool cancelled() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->cancelled;
  }
  /// Runs every registered callback once, on this thread, outside any lock.
  void cancel() {
    std::vector<std::pair<std::uint64_t, unique_function<void()>>> run;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      if (state_->cancelled) return;
      state_->cancelled = true;
      run.swap(state_->callbacks);
    }
    for (auto& c : run)
      c.second();
  }

private:
  std::shared_ptr<detail::cancel_state> state_;
};

/// How one request is sent.
struct send_options {
  /// The whole request's time (connect, TLS, write, read), enforced by the transport.
  /// 0: the transport's own timeouts.
  std::chrono::milliseconds timeout{0};
  /// Fires when nobody waits for the answer any more: the transport may abort the request
  /// (its handler is still called once, with any error). The client never fires it for a
  /// request that consumes a code.
  cancel_token cancel{};
};

/// What async_send calls once: the response, or a transport error (see the contract).
using send_handler = unique_function<void(http_response, std::error_code)>;

/// Sends requests and runs functions on an event loop. See the contract at the top.
class async_transport {
public:
  async_transport() = default;
  async_transport(const async_transport&) = delete;
  async_transport& operator=(const async_transport&) = delete;
  virtual ~async_transport() = default;

  /// Sends `req` to the WeChat host; calls `h` once, later, on the loop.
  virtual void async_send(http_request req, send_options opt, send_handler h) = 0;
  /// Runs `f` once, later, on the loop.
  virtual void post(unique_function<void()> f) = 0;
  /// Runs `f` once on the loop, no sooner than `delay` from now.
  virtual void post_after(std::chrono::milliseconds delay, unique_function<void()> f) = 0;
  /// post_after, for a timer that may stop being needed: once `cancel` fires, the
  /// transport may destroy `f` uncalled and let the timer go, so that it no longer holds
  /// the loop (the client cancels its deadline timer when no call is left waiting: an Asio
  /// io_context's run() then returns once the last call ends). `f` must cope with running
  /// anyway. Returns whether this transport honours `cancel` (the client keeps a timer it
  /// cannot cancel for later calls instead of arming one each). The default calls
  /// post_after, ignores `cancel` and returns false: a transport that does not override it
  /// keeps its timers until their time, as before.
  virtual bool post_after_cancellable(std::chrono::milliseconds delay, unique_function<void()> f,
                                      const cancel_token& /*cancel*/) {
    post_after(delay, std::move(f));
    return false;
  }
  /// The loop's clock, which post_after's delays are measured on: the client's deadlines
  /// use it. A test transport with virtual time overrides it.
  virtual std::chrono::steady_clock::time_point now() const {
    return std::chrono::steady_clock::now();
  }
  /// Whether the calling thread runs the loop now. A future's wait on the loop thread
  /// would wait for ever (the loop cannot run the completion): debug builds assert on it.
  /// The default says "no", which disables the check.
  virtual bool running_in_loop() const noexcept { return false; }
};

}  // namespace wechat
