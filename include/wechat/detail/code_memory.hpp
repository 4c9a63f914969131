// wechat/detail/code_memory.hpp - the single flight and double-submit memory of a
// code2session: concurrent calls with the same code share one request and one result; a
// successful result is remembered for a short window (the same code again gets it instead
// of WeChat's "code been used"), then forgotten. Used by client::code2session,
// component_client::code2session, wecom_client::code2session and async_client (its table).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "wechat/clock.hpp"
#include "wechat/detail/single_flight.hpp"
#include "wechat/error.hpp"

namespace wechat::detail {

/// The bookkeeping of codes in flight and remembered, whatever a flight holds (the sync
/// client's shared_future, the async client's list of waiters): which code leads, which
/// result is still within the window, and forgetting the oldest. Not thread safe: its
/// owner holds a mutex around every call.
template <class Flight> class code_table {
public:
  struct entry {
    Flight flight{};
    bool done = false;         // false: in flight
    std::int64_t done_at = 0;  // when it was remembered (clock ms)
    std::uint64_t seq = 0;     // which remembering: its record in done_order_
  };

  code_table(std::chrono::seconds memory, std::size_t max)
      : memory_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(memory).count()),
        max_(max) {}

  /// The entry of `key` when it is in flight, or remembered and within the window at
  /// `now`; nullptr when the caller must lead a new exchange.
  entry* find(const std::string& key, std::int64_t now) {
    sweep(now);
    const auto it = codes_.find(key);
    if (it != codes_.end() && (!it->second.done || now - it->second.done_at < memory_ms_))
      return &it->second;
    return nullptr;
  }
  /// Starts the flight of `key` (replacing a remembered result past its time).
  entry& start(const std::string& key, Flight f) {
    entry& e = codes_[key];
    e = entry{std::move(f)};
    return e;
  }
  /// The entry of a flight in progress (only its leader ends it), or nullptr.
  entry* flying(const std::string& key) {
    const auto it = codes_.find(key);
    return it == codes_.end() || it->second.done ? nullptr : &it->second;
  }
  /// Ends `key`'s flight: remembered when it succeeded, forgotten when it failed (failures
  /// are shared with concurrent callers, never remembered).
  void land(const std::string& key, bool succeeded, std::int64_t now) {
    const auto it = codes_.find(key);  // the leader's: only it replaces or erases the entry
    if (it == codes_.end()) return;    // cannot happen: an entry in flight is never swept
    if (!succeeded) {
      codes_.erase(it);
      return;
    }
    it->second.done = true;
    it->second.done_at = now;
    it->second.seq = ++seq_;
    done_order_.emplace_back(key, it->second.seq);
    sweep(now);
  }
  /// Forgets `key` (its leader threw).
  void erase(const std::string& key) { codes_.erase(key); }
  /// Codes held at `now`, in flight included.
  std::size_t size(std::int64_t now) {
    sweep(now);
    return codes_.size();
  }

private:
  // Forgets remembered codes, oldest first: those past `memory`, and the oldest while more
  // than `max` codes are held. Every successful exchange pushes one record to done_order_
  // and every record is popped once, so this is O(1) amortized per login. A record whose
  // entry has since been replaced (same code exchanged again) or erased only pops. Codes
  // in flight are never in done_order_: their callers are waiting.
  void sweep(std::int64_t now) {
    while (!done_order_.empty()) {
      const auto it = codes_.find(done_order_.front().first);
      const bool current =
          it != codes_.end() && it->second.done && it->second.seq == done_order_.front().second;
      if (current && now - it->second.done_at < memory_ms_ && codes_.size() <= max_)
        break;  // the oldest record is live and within both bounds: so is every later one
      if (current) codes_.erase(it);
      done_order_.pop_front();
    }
  }

  const std::int64_t memory_ms_;
  const std::size_t max_;
  std::unordered_map<std::string, entry> codes_;                  // in flight and remembered
  std::deque<std::pair<std::string, std::uint64_t>> done_order_;  // remembered, oldest first
  std::uint64_t seq_ = 0;
};

/// Codes in flight and remembered, each with its result T, for callers that wait (the
/// sync clients). Thread safe.
template <class T> class code_memory {
public:
  using result = shared_result<T>;

  /// Remembers successes for `memory` (0: nothing, concurrent callers still share one
  /// request), at most `max` of them; `clk` dates them.
  code_memory(std::chrono::seconds memory, std::size_t max,
              std::shared_ptr<const wechat::time_source> clk)
      : table_(memory, max), clock_(std::move(clk)) {}

  /// The result for `key`: a remembered one, the one in flight, or the one `work(result&)`
  /// produces (called by exactly one caller per key at a time; it may throw, and then every
  /// caller waiting for it gets the exception and nothing is remembered). Failures are
  /// shared with concurrent callers, never remembered.
  template <class Work>
  T run(const std::string& key, std::error_code& ec, error_detail* d, Work&& work) {
    ec.clear();
    flight<result> f;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (const auto* e = table_.find(key, clock_->now_ms())) {
        f = flight<result>::follow(e->flight);
      } else {
        f = flight<result>::lead();  // the one caller that sends
        table_.start(key, f.shared());
      }
    }
    if (f.leads()) {
      result r;
      try {
        work(r);
      } catch (...) {  // a transport that throws: forget the flight, wake the followers
        std::lock_guard<std::mutex> lock(mutex_);
        table_.erase(key);
        f.abandon(std::current_exception());
        throw;
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        table_.land(key, !r.ec, clock_->now_ms());
      }
      f.land(std::move(r));
    }
    return f.wait().deliver(ec, d);
  }

  /// Codes held now, in flight included: at most `max` plus those in flight, none older
  /// than `memory`.
  std::size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return table_.size(clock_->now_ms());
  }

private:
  code_table<std::shared_future<result>> table_;
  std::shared_ptr<const wechat::time_source> clock_;
  std::mutex mutex_;
};

}  // namespace wechat::detail
