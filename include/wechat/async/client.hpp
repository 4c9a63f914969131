// wechat/async/client.hpp - wechat::async_client: every call of wechat::client, for a
// backend that runs on an event loop (Asio, Drogon, brpc...), without a thread per call.
//
//   auto wx = wechat::async_client::create({"wx...appid", "secret"}, transport);
//   wx->code2session(code, [](wechat::result<wechat::session_info> r) {  // on the loop
//     if (!r) return reply_error(r.error(), r.detail());
//     log_in(r->openid, r->unionid);
//   });
//   auto f = wx->code2session(code, wechat::use_future);  // from a thread off the loop
//   auto r = co_await wx->code2session(code, wechat::use_coroutine);  // C++20
//
// The sync client's rules, kept without blocking:
// - the same requests and the same reading of answers (detail/calls.hpp serves both);
// - code2session: concurrent calls with one code share one request (a waiter list), and a
//   success is remembered for client_options::code_memory (the double-submit window);
// - tokens: async_token_provider (cache, refresh ahead, one refresh for all callers, the
//   store's lock); a call rejected for its token (40001, 40014, 42001) invalidates it,
//   refreshes once and is made once more;
// - -1 and transport failures retried with backoff and jitter on the transport's timers,
//   only for calls safe to repeat; 45009/45011 never.
// And what a loop needs:
// - every call has an overall deadline (call_options::timeout, 15 s by default, tokens,
//   retries and backoff included), enforced by the client's own timer: the caller gets
//   transport_errc::timeout when it passes, whatever the transport's own timeouts;
// - call_options::cancel detaches that caller only (std::errc::operation_canceled). A
//   request of that caller alone is aborted through send_options::cancel; a code exchange
//   already sent is never aborted: its result is remembered for the window, as in the
//   sync client, and other callers of the same code still get it;
// - handlers run on the transport's loop, never inside the call that starts them, exactly
//   once (unless the loop stops for good first, or refuses the completion: its post
//   throws, on bad_alloc or in a user's transport; the handler is then dropped, and a
//   future reports transport_errc::failed). A handler must not throw.
// - the client is a shared object: each operation in flight keeps it (and the transport)
//   alive, so dropping the last user reference mid-call is safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__cpp_impl_coroutine) && __cpp_impl_coroutine >= 201902L && __has_include(<coroutine>)
#include <coroutine>
#define WECHAT_ASYNC_COROUTINES 1
#endif

#include "wechat/api_types.hpp"
#include "wechat/async/result.hpp"
#include "wechat/async/token.hpp"
#include "wechat/async/transport.hpp"
#include "wechat/client.hpp"
#include "wechat/detail/async_exchange.hpp"
#include "wechat/detail/calls.hpp"
#include "wechat/detail/code_memory.hpp"
#include "wechat/detail/token_call.hpp"
#include "wechat/unionid.hpp"

namespace wechat {

/// One call's deadline and cancellation.
struct call_options {
  /// The whole call, from the moment it is made: token fetch, retries and backoff
  /// included. 0 or less: no deadline of the call's own (the transport's timeouts still
  /// bound each request).
  std::chrono::milliseconds timeout{15000};
  /// Cancelling detaches this caller only: its handler gets std::errc::operation_canceled.
  cancel_token cancel{};
};

#ifdef WECHAT_ASYNC_COROUTINES
/// Tag (C++20): make a call return an awaiter; `co_await` gives its result<T>. The
/// coroutine resumes on the transport's loop. Works in any coroutine type that awaits
/// standard awaiters (drogon::Task, cppcoro, a hand-written task).
struct use_coroutine_t {};
inline constexpr use_coroutine_t use_coroutine{};
#endif

namespace detail {

/// The deadlines of one client's calls. A timer is armed for the earliest deadline only,
/// and armed again when it fires: with one timeout for every call, the loop holds one
/// timer however many calls are in flight. A call with an earlier deadline than the armed
/// one arms another. On a transport that cancels timers (post_after_cancellable returns
/// true: beast_transport, manual_transport) the later timer is then cancelled, and so is
/// the armed one when the last call queued ends: an idle client holds no timer on the loop
/// (an Asio io_context's run() returns once the last call ends). On one that does not,
/// the armed timer stays when the queue empties (later calls then need no timer of their
/// own until it fires), and a later timer fires in its time and does nothing. A call that
/// ends leaves the queue at once. Thread safe.
///
/// The timer is set with the queue's lock held, so what the queue records is always what
/// the transport holds: a timer the transport refuses (its call throws) changes nothing
/// (the call that needed it is not queued, and its caller hears why); a re-arm refused
/// when a timer fires leaves the deadlines queued to the next call or completion, which
/// arms one. post_after_cancellable must therefore not call into the client (the contract
/// already forbids running `f` inside it).
class deadline_queue : public std::enable_shared_from_this<deadline_queue> {
public:
  struct expirable {
    expirable() = default;
    expirable(const expirable&) = delete;
    expirable& operator=(const expirable&) = delete;
    virtual ~expirable() = default;
    virtual void expire() = 0;
  };
  using key = std::pair<std::int64_t, std::uint64_t>;  // (deadline in steady ns, id)

  explicit deadline_queue(std::shared_ptr<async_transport> t) : transport_(std::move(t)) {}
  deadline_queue(const deadline_queue&) = delete;
  deadline_queue& operator=(const deadline_queue&) = delete;
  ~deadline_queue() { cancel(std::move(armed_.cancel)); }

  /// A key for a deadline at `at`, unique in this queue: its owner keeps it before add().
  key make_key(std::chrono::steady_clock::time_point at) {
    return key{at.time_since_epoch().count(), next_id_.fetch_add(1) + 1};
  }
  /// Queues `w` to expire at its key's time (it may expire before add() returns). Throws
  /// what post_after_cancellable throws when a timer is needed and cannot be set, and
  /// bad_alloc: `w` is then not queued, and nothing else changed.
  void add(const key& k, std::weak_ptr<expirable> w) {
    std::optional<cancel_source> replaced;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.emplace(k, std::move(w));
      try {
        arm_earliest(replaced);
      } catch (...) {
        queue_.erase(k);
        throw;
      }
    }
    cancel(std::move(replaced));
  }
  void remove(const key& k) {
    std::optional<cancel_source> gone;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.erase(k);
      if (queue_.empty()) {
        unarmed_ = false;  // nothing left to cover
        gone = disarm_if_cancellable();
      } else if (unarmed_) {  // a re-arm was refused when a timer fired: try again
        try {
          arm_earliest(gone);
        } catch (...) {  // refused again: the next call or completion tries
        }
      }
    }
    cancel(std::move(gone));
  }
  /// Calls queued now (for tests: a call that ended is not held).
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size();
  }

private:
  struct armed_timer {
    std::int64_t at = INT64_MAX;  // the deadline it is armed for; INT64_MAX: none
    std::uint64_t id = 0;
    std::optional<cancel_source> cancel;
    bool cancellable = false;  // the transport said it honours that cancel
  };

  // Cancels a timer no longer needed (unlocked); if that cannot be done (the transport's
  // post threw in its cancel), the timer fires at its time and does nothing.
  static void cancel(std::optional<cancel_source> s) noexcept {
    if (!s) return;
    try {
      s->cancel();
    } catch (...) {
    }
  }
  // With no call queued, the armed timer goes, if the transport can cancel it: its cancel
  // is returned, to be fired unlocked. Locked.
  std::optional<cancel_source> disarm_if_cancellable() {
    std::optional<cancel_source> out;
    if (armed_.at == INT64_MAX || !armed_.cancellable) return out;
    out.swap(armed_.cancel);
    armed_ = armed_timer{};
    return out;
  }

  // Sets a timer for the earliest queued deadline when none is armed that early; the
  // cancel of the timer it replaces goes to `replaced` (to be fired unlocked). Locked.
  // Throws what the transport (or its clock) throws, and bad_alloc, with nothing changed.
  void arm_earliest(std::optional<cancel_source>& replaced) {
    if (queue_.empty() || queue_.begin()->first.first >= armed_.at) return;
    const std::int64_t at = queue_.begin()->first.first;
    cancel_source fresh;
    const std::uint64_t id = ++last_timer_;  // (never reused, even if refused: a transport
                                             // may have queued it before it threw)
    const std::int64_t wait_ns = at - transport_->now().time_since_epoch().count();
    const auto delay = std::chrono::milliseconds(wait_ns <= 0 ? 0 : (wait_ns + 999999) / 1000000);
    const bool cancellable = transport_->post_after_cancellable(
        delay,
        [w = weak_from_this(), id] {
          if (auto q = w.lock()) q->fire(id);
        },
        fresh.token());
    unarmed_ = false;
    if (armed_.cancellable) replaced = std::move(armed_.cancel);
    armed_ = armed_timer{at, id, std::move(fresh), cancellable};
  }

  // Timer `id` fired: the deadlines due expire, one at a time, then a timer is armed for
  // the next. Throws nothing into the loop: a clock or a timer that fails leaves the
  // deadlines queued to the next call or completion, which arms one.
  void fire(std::uint64_t id) noexcept {
    armed_timer spent;  // (destroyed unlocked)
    std::optional<cancel_source> replaced;
    try {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (armed_.id == id) {        // (otherwise a timer replaced by an earlier one, its cancel
          spent = std::move(armed_);  // ignored or too late: it only sweeps)
          armed_ = armed_timer{};
        }
      }
      const std::int64_t now = transport_->now().time_since_epoch().count();
      for (;;) {
        std::shared_ptr<expirable> due;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (queue_.empty() || queue_.begin()->first.first > now) break;
          due = queue_.begin()->second.lock();
          queue_.erase(queue_.begin());
        }
        if (!due) continue;
        try {
          due->expire();  // (its call leaves the queue: remove() finds it gone)
        } catch (...) {   // bad_alloc building its cause: the others still expire
        }
      }
      std::lock_guard<std::mutex> lock(mutex_);
      try {
        arm_earliest(replaced);
      } catch (...) {
        unarmed_ = armed_.at == INT64_MAX && !queue_.empty();
      }
    } catch (...) {  // the transport's clock threw (or a lock could not be taken)
      try {
        std::lock_guard<std::mutex> lock(mutex_);
        unarmed_ = armed_.at == INT64_MAX && !queue_.empty();
      } catch (...) {
      }
    }
    cancel(std::move(replaced));
  }

  std::shared_ptr<async_transport> transport_;
  std::mutex mutex_;
  std::map<key, std::weak_ptr<expirable>> queue_;
  armed_timer armed_;  // the timer set for the earliest deadline, if any
  std::uint64_t last_timer_ = 0;
  bool unarmed_ = false;  // deadlines are queued with no timer: a re-arm was refused
  std::atomic<std::uint64_t> next_id_{0};
};

/// A completion token of another library (Asio's use_awaitable, use_future...) wrapped so
/// that the client can hand it a result: a type with a nested `wechat_completion_adapter`
/// and `template <class T> static auto initiate(Token, unique_function<void(
/// result_handler<T>)> start)`, which returns what that library's call returns and calls
/// `start` with a handler that completes it. wechat::asio_token (transport/beast.hpp) is
/// one.
template <class Token, class = void> struct is_completion_adapter : std::false_type {};
template <class Token>
struct is_completion_adapter<Token, std::void_t<typename Token::wechat_completion_adapter>>
    : std::true_type {};

/// One caller's call: its handler, deadline and cancellation. Whichever comes first (the
/// result, the deadline, the cancel) completes it; the rest find it finished.
template <class T> class call_op final : public request_owner, public deadline_queue::expirable {
public:
  call_op(result_handler<T> h, const char* what, std::shared_ptr<async_transport> t,
          std::shared_ptr<deadline_queue> q, std::chrono::milliseconds timeout)
      : handler_(std::move(h)), what_(what), transport_(std::move(t)), deadlines_(std::move(q)),
        timeout_(timeout) {}

  /// Queues the deadline and registers the cancellation (once, right after creation).
  static void arm(const std::shared_ptr<call_op>& op, const cancel_token& cancel) {
    if (op->timeout_.count() > 0) {
      // All set before the op is queued: from add() on, the loop may expire it.
      op->deadline_ = op->transport_->now() + op->timeout_;
      op->key_ = op->deadlines_->make_key(op->deadline_);
      op->queued_ = true;
      op->deadlines_->add(op->key_, op);
    }
    if (cancel.can_be_cancelled())
      op->cancel_ = cancel.on_cancel([w = std::weak_ptr<call_op>(op)] {
        if (auto p = w.lock()) {
          error_detail d;
          d.cause = "the caller cancelled the call";
          p->detach(std::make_error_code(std::errc::operation_canceled), std::move(d));
        }
      });
  }

  /// Completes the call (the first completion wins: true); the handler runs on the loop.
  bool finish(result<T> r) {
    if (finished_.exchange(true)) return false;
    if (queued_) deadlines_->remove(key_);
    try {
      transport_->post([h = std::move(handler_), r = std::move(r)]() mutable { h(std::move(r)); });
    } catch (...) {
      // The loop refused the completion (bad_alloc, a user's transport): this caller's
      // handler is dropped uncalled (a future then reports transport_errc::failed), and
      // nothing is thrown into the loop or at whoever completed the call.
    }
    return true;
  }
  bool fail(std::error_code ec, error_detail d) {
    return finish(result<T>(ec, std::move(d), what_));
  }

  bool gone() const override { return finished_.load(); }
  std::chrono::milliseconds remaining() const override {
    if (!queued_) return std::chrono::milliseconds(0);
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - transport_->now());
    return left.count() < 1 ? std::chrono::milliseconds(1) : left;
  }
  void expire() override {
    error_detail d;
    try {
      d.cause = "the call's deadline (" + std::to_string(timeout_.count()) + " ms) passed";
    } catch (...) {  // bad_alloc: the call still ends, without the words
    }
    detach(make_error_code(transport_errc::timeout), std::move(d));
  }

private:
  // The caller stops waiting: its own request, if any, is aborted.
  void detach(std::error_code ec, error_detail d) {
    if (fail(ec, std::move(d))) stop.cancel();
  }

  result_handler<T> handler_;
  const char* what_;
  std::shared_ptr<async_transport> transport_;
  std::shared_ptr<deadline_queue> deadlines_;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point deadline_{};
  deadline_queue::key key_{};
  bool queued_ = false;  // set before the op is shared with anyone
  std::atomic<bool> finished_{false};
  cancel_token::registration cancel_;
};

template <class T> using op_ptr = std::shared_ptr<call_op<T>>;

/// A code's flight in the async code table: the callers waiting for it, then its result.
/// Each waiter takes a result of its own (the last one the flight's, moved).
template <class T> struct async_code_flight {
  std::vector<unique_function<void(shared_result<T>&&)>> waiters;
  shared_result<T> value;
};

}  // namespace detail

#ifdef WECHAT_ASYNC_COROUTINES
/// What a call with use_coroutine returns: starts the call when awaited, resumes the
/// coroutine on the loop with its result<T>. Returned from a function (never a braced
/// temporary: GCC 12.2 miscompiles co_await on a brace-initialised awaiter holding a
/// std::string).
template <class T> class call_awaiter {
public:
  explicit call_awaiter(unique_function<void(result_handler<T>)> start)
      : start_(std::move(start)) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    // Moved out first: the call may complete on the loop, and resume the coroutine (which
    // destroys this awaiter), before start returns.
    auto start = std::move(start_);
    start([this, h](result<T> r) mutable {
      result_.emplace(std::move(r));
      h.resume();
    });
  }
  result<T> await_resume() { return std::move(*result_); }

private:
  unique_function<void(result_handler<T>)> start_;
  std::optional<result<T>> result_;
};
#endif

/// The WeChat server API for one app, asynchronous: every call of wechat::client with a
/// completion token last but for call_options: a handler taking result<T>, use_future,
/// (C++20) use_coroutine, or an Asio token through wechat::asio_token. Create with
/// create(); share it across threads and loops.
class async_client : public std::enable_shared_from_this<async_client> {
public:
  /// `store` shares access tokens (in memory by default; Redis for a fleet); `clk` dates
  /// tokens and remembered codes (the system clock by default).
  static std::shared_ptr<async_client>
  create(client_options o, std::shared_ptr<async_transport> t,
         std::shared_ptr<token_store> store = nullptr,
         std::shared_ptr<const wechat::time_source> clk = nullptr) {
    return std::shared_ptr<async_client>(
        new async_client(std::move(o), std::move(t), std::move(store), std::move(clk)));
  }

  const std::string& appid() const noexcept { return opt_.appid; }
  /// The access token provider this client uses.
  async_token_provider& tokens() noexcept { return *tokens_; }
  /// The transport it sends through.
  const std::shared_ptr<async_transport>& transport() const noexcept { return transport_; }
  /// Codes held now (in flight and remembered): see client::remembered_codes.
  std::size_t remembered_codes() {
    std::lock_guard<std::mutex> lock(codes_mutex_);
    return codes_.size(clock_->now_ms());
  }
  /// Calls whose deadline is queued now (calls in flight with a deadline).
  std::size_t pending_deadlines() { return deadlines_->size(); }

  // ------------------------------------------------------------------ mini program --

  /// client::code2session: GET /sns/jscode2session, one request per code however many
  /// callers, remembered for the double-submit window.
  template <class Token> auto code2session(std::string code, Token&& token, call_options o = {}) {
    return initiate<session_info>(std::forward<Token>(token), std::move(o), "code2session",
                                  [self = shared_from_this(), code = std::move(code)](
                                      const detail::op_ptr<session_info>& op) mutable {
                                    self->start_code2session(std::move(code), op);
                                  });
  }
  /// client::get_paid_unionid: GET /wxa/getpaidunionid.
  template <class Token>
  auto get_paid_unionid(std::string_view openid, const paid_order& order, Token&& token,
                        call_options o = {}) {
    return call<std::string>(std::forward<Token>(token), std::move(o), "get_paid_unionid",
                             detail::calls::get_paid_unionid(openid, order));
  }
  /// client::check_session_key: GET /wxa/checksession. api_errc::invalid_signature: stale.
  template <class Token>
  auto check_session_key(std::string_view openid, std::string_view session_key, Token&& token,
                         call_options o = {}) {
    return call<void>(std::forward<Token>(token), std::move(o), "check_session_key",
                      detail::calls::check_session_key(openid, session_key));
  }
  /// client::reset_session_key: GET /wxa/resetusersessionkey (not retried).
  template <class Token>
  auto reset_session_key(std::string_view openid, std::string_view session_key, Token&& token,
                         call_options o = {}) {
    return call<std::string>(std::forward<Token>(token), std::move(o), "reset_session_key",
                             detail::calls::reset_session_key(openid, session_key));
  }
  /// client::get_phone_number: POST /wxa/business/getuserphonenumber (`openid` may be
  /// empty: not checked).
  template <class Token>
  auto get_phone_number(std::string_view code, std::string_view openid, Token&& token,
                        call_options o = {}) {
    return call<phone_info>(std::forward<Token>(token), std::move(o), "get_phone_number",
                            detail::calls::get_phone_number(code, openid));
  }

  // ------------------------------------------- official accounts, apps, websites --

  /// client::oauth_exchange: GET /sns/oauth2/access_token (one attempt).
  template <class Token>
  auto oauth_exchange(std::string_view code, Token&& token, call_options o = {}) {
    return call<oauth_token>(std::forward<Token>(token), std::move(o), "oauth_exchange",
                             detail::calls::oauth_exchange(opt_.appid, opt_.secret, code));
  }
  /// client::oauth_refresh: GET /sns/oauth2/refresh_token.
  template <class Token>
  auto oauth_refresh(std::string_view refresh_token, Token&& token, call_options o = {}) {
    return call<oauth_token>(std::forward<Token>(token), std::move(o), "oauth_refresh",
                             detail::calls::oauth_refresh(opt_.appid, refresh_token));
  }
  /// client::sns_userinfo: GET /sns/userinfo with a user access token.
  template <class Token>
  auto sns_userinfo(std::string_view access_token, std::string_view openid, Token&& token,
                    call_options o = {}, std::string_view lang = "zh_CN") {
    return call<sns_user_info>(std::forward<Token>(token), std::move(o), "sns_userinfo",
                               detail::calls::sns_userinfo(access_token, openid, lang));
  }
  /// client::sns_userinfo for what oauth_exchange returned: a snapshot-page user gets
  /// api_errc::api_unauthorized at once, without a request.
  template <class Token>
  auto sns_userinfo(const oauth_token& t, Token&& token, call_options o = {}) {
    std::error_code ec;
    error_detail d;
    if (detail::snapshot_refusal(t, ec, &d))
      return initiate<sns_user_info>(
          std::forward<Token>(token), std::move(o), "sns_userinfo",
          [ec, d](const detail::op_ptr<sns_user_info>& op) mutable { op->fail(ec, std::move(d)); });
    return sns_userinfo(t.access_token, t.openid, std::forward<Token>(token), std::move(o));
  }
  /// client::sns_auth: GET /sns/auth. No error: the user access token is valid.
  template <class Token>
  auto sns_auth(std::string_view access_token, std::string_view openid, Token&& token,
                call_options o = {}) {
    return call<void>(std::forward<Token>(token), std::move(o), "sns_auth",
                      detail::calls::sns_auth(access_token, openid));
  }
  /// client::follower: GET /cgi-bin/user/info.
  template <class Token>
  auto follower(std::string_view openid, Token&& token, call_options o = {},
                std::string_view lang = "zh_CN") {
    return call<follower_info>(std::forward<Token>(token), std::move(o), "follower",
                               detail::calls::follower(openid, lang));
  }

  // ------------------------------- login-adjacent calls (wechat-api.md section 8) --

  /// client::get_user_encrypt_key: GET /wxa/business/getuserencryptkey.
  template <class Token>
  auto get_user_encrypt_key(std::string_view openid, std::string_view session_key, Token&& token,
                            call_options o = {}) {
    return call<std::vector<user_encrypt_key>>(
        std::forward<Token>(token), std::move(o), "get_user_encrypt_key",
        detail::calls::get_user_encrypt_key(openid, session_key));
  }
  /// client::get_plugin_open_pid: POST /wxa/getpluginopenpid (not retried).
  template <class Token>
  auto get_plugin_open_pid(std::string_view code, Token&& token, call_options o = {}) {
    return call<std::string>(std::forward<Token>(token), std::move(o), "get_plugin_open_pid",
                             detail::calls::get_plugin_open_pid(code));
  }
  /// client::get_user_risk_rank: POST /wxa/getuserriskrank.
  template <class Token>
  auto get_user_risk_rank(const risk_rank_request& r, Token&& token, call_options o = {}) {
    return call<user_risk_rank>(std::forward<Token>(token), std::move(o), "get_user_risk_rank",
                                detail::calls::get_user_risk_rank(opt_.appid, r));
  }
  /// client::clear_quota: POST /cgi-bin/clear_quota (not retried).
  template <class Token> auto clear_quota(Token&& token, call_options o = {}) {
    return call<void>(std::forward<Token>(token), std::move(o), "clear_quota",
                      detail::calls::clear_quota(opt_.appid));
  }
  /// client::get_api_quota: POST /cgi-bin/openapi/quota/get.
  template <class Token>
  auto get_api_quota(std::string_view cgi_path, Token&& token, call_options o = {}) {
    return call<api_quota>(std::forward<Token>(token), std::move(o), "get_api_quota",
                           detail::calls::get_api_quota(cgi_path));
  }
  /// client::get_rid_info: POST /cgi-bin/openapi/rid/get.
  template <class Token>
  auto get_rid_info(std::string_view rid, Token&& token, call_options o = {}) {
    return call<rid_info>(std::forward<Token>(token), std::move(o), "get_rid_info",
                          detail::calls::get_rid_info(rid));
  }

  /// unionid_resolver::resolve without blocking: channels 1, 2 and 4 from the evidence at
  /// once, and getPaidUnionId through this client when a payment is inside its window.
  /// The result is an error only for misuse (no openid in the session:
  /// protocol_errc::missing_field) or a cancel; a channel that failed (getPaidUnionId's
  /// deadline passing included) is in the diagnosis.
  template <class Token>
  auto resolve_unionid(resolver_options r, unionid_evidence e, Token&& token, call_options o = {}) {
    // The outer call has the cancel only: the deadline is getPaidUnionId's, whose timeout
    // becomes the diagnosis wechat_unavailable, as any failure of that channel does.
    call_options outer;
    outer.timeout = std::chrono::milliseconds(0);
    outer.cancel = o.cancel;
    return initiate<unionid_result>(
        std::forward<Token>(token), std::move(outer), "resolve_unionid",
        [self = shared_from_this(), r = std::move(r), e = std::move(e),
         o](const detail::op_ptr<unionid_result>& op) mutable {
          auto steps = std::make_shared<const detail::unionid_steps>(std::move(r), self->clock_);
          std::error_code ec;
          bool asks = false;
          unionid_result partial = steps->begin(e, ec, asks);
          if (ec) {
            op->fail(ec, error_detail{});
            return;
          }
          if (!asks) {
            op->finish(result<unionid_result>(std::move(partial)));
            return;
          }
          const std::string openid = e.session.openid;
          const paid_order order = e.payment->order;
          self->get_paid_unionid(
              openid, order,
              [steps, e = std::move(e), partial = std::move(partial),
               op](result<std::string> u) mutable {
                try {
                  const std::error_code uec = u.error();
                  const std::string id = uec ? std::string() : std::move(u).value();
                  op->finish(result<unionid_result>(steps->resume(e, std::move(partial), id, uec)));
                } catch (...) {  // bad_alloc: on the loop, nothing is thrown into it
                  op->fail(std::make_error_code(std::errc::not_enough_memory), error_detail());
                }
              },
              o);
        });
  }

  /// A valid access token of this app (token_provider::get), for calls the client does not
  /// wrap. Never log it.
  template <class Token> auto access_token(Token&& token, call_options o = {}) {
    return initiate<std::string>(
        std::forward<Token>(token), std::move(o), "access token",
        [self = shared_from_this()](const detail::op_ptr<std::string>& op) {
          self->tokens_->get([op](const async_token_provider::token_result& r) {
            try {
              if (r.ec)
                op->fail(r.ec, r.detail);
              else
                op->finish(result<std::string>(r.value.value));
            } catch (...) {  // bad_alloc copying the token or the error
              op->fail(std::make_error_code(std::errc::not_enough_memory), error_detail());
            }
          });
        });
  }

private:
  async_client(client_options o, std::shared_ptr<async_transport> t,
               std::shared_ptr<token_store> store, std::shared_ptr<const wechat::time_source> clk)
      : opt_(std::move(o)), transport_(std::move(t)),
        clock_(clk ? std::move(clk) : default_clock()),
        tokens_(async_token_provider::create(token_options{opt_.appid, opt_.secret, opt_.tokens,
                                                           std::chrono::seconds(300),
                                                           opt_.max_attempts, opt_.backoff},
                                             transport_, std::move(store), clock_)),
        deadlines_(std::make_shared<detail::deadline_queue>(transport_)),
        codes_(opt_.code_memory, opt_.code_memory_max) {}

  // The three forms: a handler, use_future, use_coroutine. `start(op)` begins the call.
  template <class T, class Token, class Start>
  auto initiate(Token&& token, call_options o, const char* what, Start&& start) {
    using tag = std::decay_t<Token>;
    if constexpr (std::is_same_v<tag, use_future_t>) {
      std::promise<result<T>> p;
      auto f = p.get_future();
      begin<T>(
          result_handler<T>([p = std::move(p)](result<T> r) mutable { p.set_value(std::move(r)); }),
          o, what, std::forward<Start>(start));
      return async_future<T>(std::move(f), transport_);
#ifdef WECHAT_ASYNC_COROUTINES
    } else if constexpr (std::is_same_v<tag, use_coroutine_t>) {
      return call_awaiter<T>([self = shared_from_this(), o = std::move(o), what,
                              start = std::forward<Start>(start)](result_handler<T> h) mutable {
        self->begin<T>(std::move(h), o, what, std::move(start));
      });
#endif
    } else if constexpr (detail::is_completion_adapter<tag>::value) {
      return tag::template initiate<T>(
          std::forward<Token>(token),
          unique_function<void(result_handler<T>)>(
              [self = shared_from_this(), o = std::move(o), what,
               start = std::forward<Start>(start)](result_handler<T> h) mutable {
                self->begin<T>(std::move(h), o, what, std::move(start));
              }));
    } else {
      static_assert(std::is_invocable_v<tag&, result<T>>,
                    "the completion token must be a handler taking wechat::result<T>, "
                    "wechat::use_future, wechat::use_coroutine or a completion adapter "
                    "(wechat::asio_token)");
      begin<T>(result_handler<T>(std::forward<Token>(token)), o, what, std::forward<Start>(start));
    }
  }

  template <class T, class Start>
  void begin(result_handler<T> h, const call_options& o, const char* what, Start&& start) {
    auto op =
        std::make_shared<detail::call_op<T>>(std::move(h), what, transport_, deadlines_, o.timeout);
    detail::call_op<T>::arm(op, o.cancel);
    if (!op->gone()) start(std::move(op));
  }

  // A call of detail/calls.hpp, its value read into T (void for no_value calls).
  template <class T, class Token, class V>
  auto call(Token&& token, call_options o, const char* what, detail::api_call<V> c) {
    return initiate<T>(std::forward<Token>(token), std::move(o), what,
                       [self = shared_from_this(), c = std::move(c)](detail::op_ptr<T> op) mutable {
                         if (c.token)
                           self->token_round<T>(op, std::move(c), 0);
                         else
                           self->send<T>(std::move(op), c, std::string_view{});
                       });
  }

  // A call carrying the access token: rejected once (40001, 40014, 42001), the token is
  // invalidated and the call made once more with a fresh one (detail::token_rejected).
  template <class T, class V>
  void token_round(const detail::op_ptr<T>& op, detail::api_call<V> c, int round) {
    tokens_->get([self = shared_from_this(), op, c = std::move(c),
                  round](const async_token_provider::token_result& r) mutable {
      if (op->gone()) return;
      try {
        if (r.ec) {
          op->fail(r.ec, r.detail);
          return;
        }
        self->send<T>(op, c, r.value.value, round);
      } catch (...) {  // bad_alloc copying the error or making the request
        op->fail(std::make_error_code(std::errc::not_enough_memory), error_detail());
      }
    });
  }

  template <class T, class V>
  void send(detail::op_ptr<T> op, const detail::api_call<V>& c, std::string_view token,
            int round = 1) {
    auto req = c.request(token);
    // A request that spends a single-use code is never aborted: a deadline or a cancel
    // detaches the caller only (the code is spent either way).
    std::shared_ptr<detail::request_owner> owner;
    if (!c.spends_code) owner = op;
    detail::exchange_async(
        transport_, std::move(req), c.safe ? opt_.max_attempts : 1, opt_.backoff, std::move(owner),
        [self = shared_from_this(), op, c = round == 0 ? c : detail::api_call<V>{},
         used = std::string(token), round,
         read = c.read](detail::answer j, std::error_code ec, error_detail d) mutable {
          if (round == 0 && detail::token_rejected(ec)) {
            try {
              self->tokens_->invalidate(used);
              self->token_round<T>(op, std::move(c), 1);
            } catch (...) {  // bad_alloc on the loop: this caller hears of it, the loop not
              op->fail(std::make_error_code(std::errc::not_enough_memory), error_detail());
            }
            return;
          }
          self->deliver<T, V>(*op, j, ec, std::move(d), read);
        });
  }

  template <class T, class V, class Read>
  static void deliver(detail::call_op<T>& op, const detail::answer& j, std::error_code ec,
                      error_detail d, Read read) {
    V v{};
    if (!ec) {
      try {
        read(j, v, ec, &d);
      } catch (...) {  // bad_alloc decoding the answer: on the loop, nothing is thrown into it
        ec = std::make_error_code(std::errc::not_enough_memory);
      }
    }
    if (ec) {
      op.fail(ec, std::move(d));
    } else if constexpr (std::is_void_v<T>) {
      op.finish(result<void>());
    } else {
      op.finish(result<T>(std::move(v)));
    }
  }

  // code2session: a remembered result, the flight in progress, or a new flight led by
  // this caller (sent after unlocking).
  void start_code2session(std::string code, const detail::op_ptr<session_info>& op) {
    auto waiter = [op](detail::shared_result<session_info>&& r) {
      if (r.ec)
        op->fail(r.ec, std::move(r.detail));
      else
        op->finish(result<session_info>(std::move(r.value)));
    };
    std::optional<session_info> remembered;
    bool lead = false;
    {
      std::lock_guard<std::mutex> lock(codes_mutex_);
      if (auto* e = codes_.find(code, clock_->now_ms())) {
        if (e->done)
          remembered = e->flight.value.value;
        else
          e->flight.waiters.emplace_back(std::move(waiter));
      } else {
        detail::async_code_flight<session_info> f;
        f.waiters.emplace_back(std::move(waiter));
        codes_.start(code, std::move(f));
        lead = true;
      }
    }
    if (remembered) op->finish(result<session_info>(std::move(*remembered)));
    if (lead) lead_code2session(std::move(code));
  }

  // A code's exchange: one attempt (a code is single use), never aborted (no owner: no
  // caller's deadline or cancel reaches it), landed for every waiter and remembered on
  // success, even when every caller has left.
  void lead_code2session(std::string code) {
    try {
      // Built in place (no default construction and assignment): the hot path of a login.
      const auto c = detail::calls::code2session(opt_.appid, opt_.secret, code);
      auto req = c.request();
      // Nothing below may throw before the inner try: `code` moves into `done`, and the
      // outer catch lands the flight with it.
      static_assert(std::is_pointer_v<decltype(c.read)>, "copying `read` must not throw");
      auto done = [self = shared_from_this(), code = std::move(code),
                   read = c.read](const detail::answer& j, std::error_code ec, error_detail d) {
        detail::shared_result<session_info> r;
        r.ec = ec;
        r.detail = std::move(d);
        if (!r.ec) {
          try {
            read(j, r.value, r.ec, &r.detail);
          } catch (...) {  // bad_alloc decoding the answer
            r = out_of_memory();
          }
        }
        self->land_code2session(code, std::move(r));
      };
      try {
        detail::exchange_async(transport_, std::move(req), 1, opt_.backoff, nullptr,
                               std::move(done));
      } catch (...) {
        // Only the handler's own allocation can throw here, before it took `done`: from
        // there on exchange_async calls it exactly once, whatever happens.
        try {
          done(detail::answer(), std::make_error_code(std::errc::not_enough_memory),
               error_detail());
        } catch (...) {  // (it lands the flight whatever it meets; `code` is its own now)
        }
      }
    } catch (...) {
      // The request could not be made (bad_alloc; `code` is still whole): the flight ends
      // as failed, so the code's waiters are answered and its entry does not stay in
      // flight for ever.
      land_code2session(code, out_of_memory());
    }
  }

  static detail::shared_result<session_info> out_of_memory() noexcept {
    detail::shared_result<session_info> r;
    r.ec = std::make_error_code(std::errc::not_enough_memory);
    return r;
  }

  // Ends a code's flight with `r`: remembered on success, each waiter answered.
  void land_code2session(const std::string& code, detail::shared_result<session_info>&& r) {
    std::vector<unique_function<void(detail::shared_result<session_info> &&)>> waiters;
    {
      std::lock_guard<std::mutex> lock(codes_mutex_);
      bool remember = !r.ec;
      if (auto* e = codes_.flying(code)) {
        waiters.swap(e->flight.waiters);
        if (remember) {
          try {
            e->flight.value = r;  // the memory's own copy, before any move
          } catch (...) {         // bad_alloc: not remembered (the waiters still get r)
            remember = false;
          }
        }
      }
      try {
        codes_.land(code, remember, clock_->now_ms());
      } catch (...) {  // bad_alloc noting the order: forgotten rather than kept for ever
        codes_.erase(code);
      }
    }
    deliver_code2session(waiters, std::move(r));
  }

  static void deliver_code2session(
      std::vector<unique_function<void(detail::shared_result<session_info>&&)>>& waiters,
      detail::shared_result<session_info>&& r) {
    // Every waiter but the last gets a copy; the last (the only one, nearly always)
    // the result itself. A copy that cannot be made (bad_alloc) gives its waiter
    // std::errc::not_enough_memory; a waiter that throws (its completion could not be
    // posted) loses only its own caller: the rest are still answered, and nothing is
    // thrown into the loop.
    if (waiters.empty()) return;
    for (std::size_t i = 0; i + 1 < waiters.size(); ++i) {
      detail::shared_result<session_info> copy;
      try {
        copy = r;
      } catch (...) {
        copy = out_of_memory();
      }
      try {
        waiters[i](std::move(copy));
      } catch (...) {
      }
    }
    try {
      waiters.back()(std::move(r));
    } catch (...) {
    }
  }

  client_options opt_;
  std::shared_ptr<async_transport> transport_;
  std::shared_ptr<const wechat::time_source> clock_;
  std::shared_ptr<async_token_provider> tokens_;
  std::shared_ptr<detail::deadline_queue> deadlines_;
  std::mutex codes_mutex_;
  detail::code_table<detail::async_code_flight<session_info>> codes_;
};

}  // namespace wechat
