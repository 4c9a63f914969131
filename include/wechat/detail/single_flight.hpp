// wechat/detail/single_flight.hpp - the single flight: one caller does the work, everyone
// who asks meanwhile waits for that caller's result. Used by code2session (per code) and
// the token provider (per app).
#pragma once

#include <exception>
#include <future>
#include <optional>
#include <system_error>
#include <utility>

#include "wechat/error.hpp"

namespace wechat::detail {

/// What a flight hands to each of its callers: a value, or an error with its detail.
template <class T> struct shared_result {
  T value{};
  std::error_code ec;
  error_detail detail;

  /// One caller's copy: sets `out` (and `*d`) and returns an empty T on failure.
  T deliver(std::error_code& out, error_detail* d) const {
    if (ec) {
      out = ec;
      if (d != nullptr) *d = detail;
      return T{};
    }
    return value;
  }
};

/// One caller's place in a single flight. The leader (the first to ask) does the work and
/// lands its result; followers (whoever asks while it runs) wait for that same result,
/// success or failure, instead of doing the work again. The owner keeps `shared()` of the
/// flight in progress, under its own mutex, for later callers to follow.
template <class R> class flight {
public:
  flight() = default;

  /// Starts a new flight, led by the caller.
  static flight lead() {
    flight f;
    f.promise_.emplace();
    f.result_ = f.promise_->get_future().share();
    return f;
  }
  /// Joins `running`, a flight in progress, as a follower.
  static flight follow(std::shared_future<R> running) {
    flight f;
    f.result_ = std::move(running);
    return f;
  }

  /// Whether the caller leads (must do the work and land()).
  bool leads() const noexcept { return promise_.has_value(); }
  /// What later callers follow.
  const std::shared_future<R>& shared() const noexcept { return result_; }
  /// The leader publishes its result to every follower (once).
  void land(R r) { promise_->set_value(std::move(r)); }
  /// The leader's work threw (a user's transport or store, or bad_alloc): every follower's
  /// wait() rethrows it, rather than waiting for ever or meeting a broken promise. The
  /// owner must also forget the flight, so that the next caller leads a new one.
  void abandon(std::exception_ptr e) { promise_->set_exception(std::move(e)); }
  /// Waits for the result: the leader's own, or the one it is following.
  const R& wait() const { return result_.get(); }

private:
  std::optional<std::promise<R>> promise_;
  std::shared_future<R> result_;
};

}  // namespace wechat::detail
