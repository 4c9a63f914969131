// wechat/async/result.hpp - what an asynchronous call hands its caller: result<T> (a value,
// or a std::error_code with its error_detail), and async_future<T> for callers that wait
// off the loop.
#pragma once

#include <cassert>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include "wechat/async/transport.hpp"
#include "wechat/error.hpp"

namespace wechat {

namespace detail {
/// What result<T> and result<void> share: the error, its detail, and the throwing check.
class result_status {
public:
  bool ok() const noexcept { return !ec_; }
  explicit operator bool() const noexcept { return ok(); }
  /// The error (empty on success).
  const std::error_code& error() const noexcept { return ec_; }
  /// WeChat's errmsg and rid, the HTTP status, the field, the attempts, the cause.
  const error_detail& detail() const noexcept { return detail_; }

protected:
  result_status() = default;
  result_status(std::error_code ec, error_detail d, const char* what)
      : ec_(ec), detail_(std::move(d)), what_(what) {}
  /// Throws wechat::api_error / wechat::error on a failure.
  void check() const {
    if (ec_) throw_if_error(ec_, detail_, what_);
  }

private:
  std::error_code ec_;
  error_detail detail_;
  const char* what_ = nullptr;
};
}  // namespace detail

/// A call's outcome: a value, or an error (std::error_code, as the sync error_code form
/// sets it) with its error_detail. value() throws on an error exactly as the sync throwing
/// form does (wechat::api_error for WeChat's errcodes, wechat::error otherwise).
template <class T> class result : public detail::result_status {
public:
  /// A success.
  result(T v) : value_(std::move(v)) {}  // NOLINT(google-explicit-constructor)
  /// A failure of the call named `what` ("code2session": what() starts with it).
  result(std::error_code ec, error_detail d, const char* what = nullptr)
      : result_status(ec, std::move(d), what) {}

  /// The value; throws wechat::api_error / wechat::error on a failure.
  T& value() & {
    check();
    return *value_;
  }
  const T& value() const& {
    check();
    return *value_;
  }
  T&& value() && {
    check();
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  T& operator*() & { return value(); }

private:
  std::optional<T> value_;
};

/// The outcome of a call that answers nothing but success or failure.
template <> class result<void> : public detail::result_status {
public:
  result() = default;
  result(std::error_code ec, error_detail d, const char* what = nullptr)
      : result_status(ec, std::move(d), what) {}
  /// Throws wechat::api_error / wechat::error on a failure.
  void value() const { check(); }
};

/// What a handler of a call returning T receives.
template <class T> using result_handler = unique_function<void(result<T>)>;

/// Tag: make a call return an async_future instead of taking a handler.
struct use_future_t {};
inline constexpr use_future_t use_future{};

/// A call's result for a thread that can wait: never the loop's own thread, which would
/// wait for ever (the loop runs the completion). Debug builds assert on it, when the
/// transport can tell (async_transport::running_in_loop). A completion the transport
/// dropped (its loop stopped) gives transport_errc::failed instead of an exception.
template <class T> class async_future {
public:
  async_future() = default;
  async_future(std::future<result<T>> f, std::shared_ptr<async_transport> t)
      : future_(std::move(f)), transport_(std::move(t)) {}

  bool valid() const noexcept { return future_.valid(); }
  /// Waits for the result and takes it (once).
  result<T> get() {
    wait();
    try {
      return future_.get();
    } catch (const std::future_error&) {  // broken promise: the loop dropped the handler
      error_detail d;
      d.cause = "the transport's loop stopped before the call completed, or refused its completion";
      return result<T>(make_error_code(transport_errc::failed), std::move(d));
    }
  }
  void wait() const {
    assert(!(transport_ && transport_->running_in_loop()) &&
           "async_future waited on the transport's loop thread: it would wait for ever");
    future_.wait();
  }
  template <class Rep, class Period>
  std::future_status wait_for(const std::chrono::duration<Rep, Period>& d) const {
    assert(!(transport_ && transport_->running_in_loop()) &&
           "async_future waited on the transport's loop thread: it would wait for ever");
    return future_.wait_for(d);
  }

private:
  std::future<result<T>> future_;
  std::shared_ptr<async_transport> transport_;
};

}  // namespace wechat
