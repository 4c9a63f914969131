// wechat/async/manual_transport.hpp - an async_transport for tests: no sockets, no
// threads. Requests wait until the test answers them, in any order; posted functions and
// answers run when the test calls run(); time is virtual and moves with advance().
//
//   auto t = std::make_shared<wechat::manual_transport>();
//   auto wx = wechat::async_client::create(opts, t);
//   wx->code2session("code", [&](auto r) { got = std::move(r); });
//   t->run();                                               // the call sends its request
//   auto req = t->pending().at(0);                          // see what it sent
//   t->respond(req.id, 200, R"({"openid":"o","session_key":"k"})");
//   t->run();                                               // the handler runs here
//
// The thread that calls run() or advance() is "the loop" while it does (running_in_loop).
// Requests left waiting hold their calls, and a call holds its client and the client its
// transport: call stop() when a test ends with requests unanswered, as a real loop's
// queue is destroyed when it stops.
// It keeps the transport contract: handlers never run inside async_send, post or
// post_after; each request's handler runs exactly once (an answer, a failure, or
// std::errc::operation_canceled when its send_options::cancel fires first).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "wechat/async/transport.hpp"

namespace wechat {

class manual_transport final : public async_transport,
                               public std::enable_shared_from_this<manual_transport> {
public:
  /// A request waiting for the test's answer.
  struct request_record {
    std::uint64_t id = 0;
    http_request request;
    std::chrono::milliseconds timeout{0};  ///< send_options::timeout
  };

  void async_send(http_request req, send_options opt, send_handler h) override {
    std::uint64_t id = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (stopped_) {
        lock.unlock();
        h = nullptr;  // destroyed uncalled, unlocked
        return;
      }
      id = ++next_id_;
      ++sent_;
      auto& p = pending_[id];
      p.record = request_record{id, std::move(req), opt.timeout};
      p.handler = std::move(h);
    }
    if (!opt.cancel.can_be_cancelled()) return;
    // Registered unlocked: an already cancelled token runs the callback at once.
    auto reg = opt.cancel.on_cancel([w = weak_from_this(), id] {
      if (auto self = w.lock())
        self->complete(id, {}, make_error_code(std::errc::operation_canceled), true);
    });
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = pending_.find(id);
    if (it != pending_.end()) it->second.cancel = std::move(reg);
  }
  void post(unique_function<void()> f) override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopped_) {
      lock.unlock();
      f = nullptr;
      return;
    }
    ready_.push_back(std::move(f));
  }
  void post_after(std::chrono::milliseconds delay, unique_function<void()> f) override {
    add_timer(delay, std::move(f));
  }
  /// A cancelled timer is dropped (its function destroyed uncalled, outside the lock) and
  /// no longer counts in timers().
  bool post_after_cancellable(std::chrono::milliseconds delay, unique_function<void()> f,
                              const cancel_token& cancel) override {
    const std::uint64_t id = add_timer(delay, std::move(f));
    if (id == 0 || !cancel.can_be_cancelled()) return false;
    // Registered unlocked: an already cancelled token runs the callback at once. The timer
    // is queued: nothing is thrown from here on (a cancel that cannot be registered leaves
    // a timer that runs in its time).
    cancel_token::registration reg;
    try {
      reg = cancel.on_cancel([w = weak_from_this(), id] {
        if (auto self = w.lock()) self->drop_timer(id);
      });
    } catch (...) {
      return false;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& t : timers_)
      if (t.second.id == id) {
        t.second.cancel = std::move(reg);
        break;
      }
    return true;
  }
  std::chrono::steady_clock::time_point now() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return now_;
  }
  bool running_in_loop() const noexcept override {
    return loop_thread_.load() == std::this_thread::get_id();
  }

  // ---------------------------------------------------------------- the test's side --

  /// Requests sent and not yet answered, oldest first.
  std::vector<request_record> pending() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<request_record> out;
    for (const auto& p : pending_)
      out.push_back(p.second.record);
    return out;
  }
  std::size_t pending_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending_.size();
  }
  /// Requests sent so far; of them, aborted through send_options::cancel.
  std::uint64_t sent() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return sent_;
  }
  std::uint64_t cancelled() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cancelled_;
  }
  /// Timers armed and not yet due (a cancelled one is not).
  std::size_t timers() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return timers_.size();
  }

  /// Answers request `id` (its handler runs at the next run()). False: no such request
  /// waits (answered, cancelled, never sent).
  bool respond(std::uint64_t id, int status, std::string body,
               std::string content_type = "application/json") {
    http_response r;
    r.status = status;
    r.body = std::move(body);
    r.content_type = std::move(content_type);
    std::error_code ec;
    if (status < 200 || status > 299) ec = transport_errc::http_status;
    return complete(id, std::move(r), ec, false);
  }
  /// Fails request `id` with a transport error; `failure` is http_response::failure.
  bool fail(std::uint64_t id, std::error_code ec, std::string failure = {}) {
    http_response r;
    r.failure = std::move(failure);
    return complete(id, std::move(r), ec, false);
  }

  /// Runs posted functions and answers, on this thread, until none is left (what they
  /// post runs too). Returns how many ran.
  std::size_t run() {
    std::size_t n = 0;
    const auto previous = loop_thread_.exchange(std::this_thread::get_id());
    for (;;) {
      unique_function<void()> f;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (ready_.empty()) break;
        f = std::move(ready_.front());
        ready_.pop_front();
      }
      f();
      ++n;
    }
    loop_thread_.store(previous);
    return n;
  }
  /// Moves virtual time forward by `d`, firing timers as their time comes (in order, each
  /// followed by run()). Returns how many functions ran.
  std::size_t advance(std::chrono::milliseconds d) {
    std::size_t n = run();
    std::chrono::steady_clock::time_point until;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      until = now_ + d;
    }
    cancel_token::registration done;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (timers_.empty() || timers_.begin()->first > until) {
          now_ = until;
          break;
        }
        auto it = timers_.begin();
        now_ = std::max(now_, it->first);
        ready_.push_back(std::move(it->second.f));
        done = std::move(it->second.cancel);  // unregistered below, unlocked
        timers_.erase(it);
      }
      done.reset();
      n += run();
    }
    return n + run();
  }

  /// The loop stops for good: every request, posted function and timer is destroyed
  /// without being called (as a real loop's queue is when it is destroyed), which releases
  /// whatever they held; so is whatever is handed over afterwards.
  void stop() {
    std::map<std::uint64_t, waiting> pending;
    std::deque<unique_function<void()>> ready;
    std::multimap<std::chrono::steady_clock::time_point, timer> timers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopped_ = true;
      pending.swap(pending_);
      ready.swap(ready_);
      timers.swap(timers_);
    }
  }

private:
  struct waiting {
    request_record record;
    send_handler handler;
    cancel_token::registration cancel;
  };
  struct timer {
    std::uint64_t id = 0;
    unique_function<void()> f;
    cancel_token::registration cancel;  // post_after_cancellable's
  };

  // Returns the timer's id; 0: the loop has stopped, `f` was dropped.
  std::uint64_t add_timer(std::chrono::milliseconds delay, unique_function<void()> f) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopped_) {
      lock.unlock();
      f = nullptr;
      return 0;
    }
    const std::uint64_t id = ++next_timer_id_;
    timers_.emplace(now_ + (delay.count() < 0 ? std::chrono::milliseconds(0) : delay),
                    timer{id, std::move(f), {}});
    return id;
  }
  void drop_timer(std::uint64_t id) {
    timer dropped;  // destroyed after the lock is released
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = timers_.begin(); it != timers_.end(); ++it)
      if (it->second.id == id) {
        dropped = std::move(it->second);
        timers_.erase(it);
        return;
      }
  }

  // Everything that may destroy a handler (and so run the client's continuation, which
  // calls post) happens with the lock released.
  bool complete(std::uint64_t id, http_response r, std::error_code ec, bool by_cancel) {
    waiting w;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = pending_.find(id);
      if (it == pending_.end()) return false;
      w.handler = std::move(it->second.handler);
      if (by_cancel) ++cancelled_;
      w.cancel = std::move(it->second.cancel);
      pending_.erase(it);
    }
    unique_function<void()> f = [h = std::move(w.handler), r = std::move(r), ec]() mutable {
      h(std::move(r), ec);
    };
    post(std::move(f));
    return true;  // w.cancel unregisters here, outside the lock
  }

  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 0, sent_ = 0, cancelled_ = 0;
  std::map<std::uint64_t, waiting> pending_;
  std::deque<unique_function<void()>> ready_;
  std::multimap<std::chrono::steady_clock::time_point, timer> timers_;
  std::uint64_t next_timer_id_ = 0;
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1)};
  std::atomic<std::thread::id> loop_thread_{};
  bool stopped_ = false;
};

}  // namespace wechat
