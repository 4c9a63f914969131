// wechat/async/token.hpp - the app's access token for the async client: the sync
// token_provider's rules (cache, refresh ahead of expiry, one refresh at a time, the
// store's lock across a fleet, retries with backoff, a forced stable_token when WeChat
// rejected the very token it hands back) as a state machine on the transport's timers.
// Nothing waits, sleeps, or calls out while holding the lock: callers who arrive during a
// refresh append a continuation to the waiter list and return; the refresh's leader runs
// them after unlocking.
//
// The token_store interface is synchronous. A store that answers at once (the in-memory
// store: token_store::answers_at_once) is called where the refresh runs; any other (Redis,
// or a store of the user's) on a worker thread of this provider's, one call after another
// in the order they were made (an erase before the read that follows it), each answer
// handed back to the loop with post(): a Redis that is away (its timeout, 500 ms, twice:
// the connection retries once) holds that thread, never the loop. A fetched token lands
// once saved; the lock's release is queued after the save. The store is called only when a token is
// refreshed (about every two hours), while a peer's refresh is awaited (one read every 20 ms), and
// when WeChat rejects a token (invalidate's erase); a cache hit touches no store.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "wechat/async/transport.hpp"
#include "wechat/clock.hpp"
#include "wechat/crypto.hpp"
#include "wechat/detail/async_exchange.hpp"
#include "wechat/detail/quota.hpp"
#include "wechat/detail/single_flight.hpp"
#include "wechat/detail/store_worker.hpp"
#include "wechat/error.hpp"
#include "wechat/store.hpp"
#include "wechat/token.hpp"

namespace wechat {

/// The access token of one app, for async_client: get() hands a valid token to a
/// continuation, fetching it (once for all callers) when the cache cannot. Thread safe.
/// Shares the store key (and so, through a shared store, the token and the refresh lock)
/// with a sync token_provider of the same app and mode.
class async_token_provider : public std::enable_shared_from_this<async_token_provider> {
public:
  /// The token (value.value), or an error with its detail.
  using token_result = detail::shared_result<stored_token>;
  using token_handler = unique_function<void(const token_result&)>;

  static std::shared_ptr<async_token_provider>
  create(token_options o, std::shared_ptr<async_transport> t,
         std::shared_ptr<token_store> store = nullptr,
         std::shared_ptr<const wechat::time_source> clk = nullptr) {
    return std::shared_ptr<async_token_provider>(
        new async_token_provider(std::move(o), std::move(t), std::move(store), std::move(clk)));
  }

  /// Calls `h` once with a valid token: from the cache at once, on this thread; otherwise
  /// when the refresh in progress (or the one this call starts) lands, on the loop (or at
  /// once, on this thread, when a store that answers at once had a fresh token). Failures
  /// reach every waiter; one whose continuation the loop refused (its post threw, or it
  /// stopped for good) reaches them on the thread that found it so: the store's worker,
  /// for a store that does not answer at once.
  void get(token_handler h) {
    const std::int64_t now = clock_->now_ms();
    std::string hit;
    std::string rejected;
    bool lead = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      const bool valid = !cached_.value.empty() && now < cached_.expires_at_ms;
      // What can throw (bad_alloc) comes before refreshing_ is set: a throw to the
      // caller must not leave a refresh marked that no one leads.
      if (valid) hit = cached_.value;
      if (!(valid && now < refresh_at_ms_)) {
        if (!refreshing_) {
          rejected = rejected_;
          lead = true;
        }
        // Someone refreshes ahead of expiry (perhaps this caller): keep using the
        // still-valid token. Without one, wait for the refresh.
        if (!valid) {
          waiters_.push_back(std::move(h));
          if (lead) refreshing_ = true;
          lock.unlock();
          if (lead) refresh(rejected);
          return;
        }
        if (lead) refreshing_ = true;
      }
    }
    if (lead) refresh(rejected);
    token_result r;
    r.value.value = std::move(hit);
    h(r);
  }

  /// Forgets `token` if it is still the current one (WeChat rejected it: 40001, 40014,
  /// 42001), here and in the store; the next get() fetches a new one. Calls rejected
  /// together with one token ask the store to erase it once: a token that is already the
  /// last one rejected (until a refresh replaces it) is not erased again, so a burst of K
  /// rejections of one token queues one erase, not K.
  void invalidate(const std::string& token) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_.value == token) {
        cached_ = stored_token{};
        refresh_at_ms_ = 0;
      }
      if (rejected_ == token) return;  // its erase is already queued (or made)
      rejected_ = token;
    }
    // (queued before the load of the refresh that follows: the store's calls keep their
    // order)
    tell_store([token](token_store& store, const std::string& key, std::error_code& ec) {
      store.erase_if(key, token, ec);
    });
  }

  /// Calls `f` once, on the loop, when no refresh is left in progress (one started ahead of
  /// expiry runs behind cache hits, with no caller waiting for it) and the store calls
  /// queued by then (the lock's release, erases) are done. For a shutdown that leaves
  /// nothing running: stop calling, wait for your calls' handlers and for this, then stop
  /// the loop and destroy the clients (the provider's destruction then waits for nothing);
  /// or to read fetches() once the calls have stopped. A refresh that starts after the
  /// one `f` waited for is not waited for. As any handler, `f` is destroyed uncalled if
  /// the loop stops for good first, or if the transport refuses to post it once its time
  /// has come (bad_alloc): wait for it with a bound. Throws what the transport's post or
  /// the store's worker throws when `f` is handed over at once (bad_alloc; std::
  /// system_error when the worker's thread cannot start).
  void when_idle(unique_function<void()> f) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (refreshing_) {
        idle_waiters_.push_back(std::move(f));
        return;
      }
    }
    after_store(std::move(f));
  }

  /// Upstream token requests made so far.
  std::uint64_t fetches() const noexcept { return fetches_.load(); }
  const std::string& store_key() const noexcept { return key_; }

private:
  async_token_provider(token_options o, std::shared_ptr<async_transport> t,
                       std::shared_ptr<token_store> store,
                       std::shared_ptr<const wechat::time_source> clk)
      : opt_(std::move(o)), transport_(std::move(t)),
        store_(store ? std::move(store) : std::make_shared<memory_token_store>()),
        clock_(clk ? std::move(clk) : default_clock()),
        key_("access_token:" + opt_.appid +
             (opt_.mode == token_mode::stable ? ":stable" : ":classic")) {}

  std::int64_t ahead_ms() const noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(opt_.refresh_ahead).count();
  }
  bool usable(const std::optional<stored_token>& s, const std::string& rejected,
              std::int64_t now) const {
    return s && s->value != rejected && now < s->expires_at_ms - ahead_ms();
  }

  // A store call that throws counts as an unreachable store (the sync provider lets the
  // exception reach its caller; here no caller is on the stack).
  template <class F> static void guarded(F&& f, std::error_code& ec) {
    try {
      f();
    } catch (...) {
      ec = store_errc::unavailable;
    }
  }

  static token_result failed(const char* cause) {
    token_result r;
    r.ec = make_error_code(transport_errc::failed);
    r.detail.cause = cause;
    return r;
  }

  // The refresh in progress, held by whichever step runs it now, with the store's lock
  // when it may hold it. Landing releases the lock. Dropped before it landed (a step threw:
  // bad_alloc, a clock that throws; the loop stopped for good with the poll's timer or a
  // store answer's continuation; the loop refused to take one), it releases the lock and
  // lands the refresh as failed: the waiters are never left behind, refreshing_ never
  // stays set, and the fleet does not wait out the lock's TTL. A step that throws after
  // taking the guard lands nothing itself.
  class refresh_guard {
  public:
    refresh_guard(std::shared_ptr<async_token_provider> p, std::string rejected)
        : p_(std::move(p)), rejected_(std::move(rejected)) {}
    refresh_guard(refresh_guard&&) noexcept = default;
    refresh_guard& operator=(refresh_guard&&) = delete;
    refresh_guard(const refresh_guard&) = delete;
    refresh_guard& operator=(const refresh_guard&) = delete;
    ~refresh_guard() {
      if (!p_) return;
      auto p = std::move(p_);
      p->release_lock(lock_owner_);
      if (fetched_) {  // a token was fetched: its waiters get it, saved or not
        p->land(*fetched_, rejected_);
        return;
      }
      p->land_failed("the access token's refresh was dropped: its loop stopped, a step "
                     "could not be scheduled, or something on its way threw",
                     rejected_);
    }
    async_token_provider& provider() const noexcept { return *p_; }
    const std::string& rejected() const noexcept { return rejected_; }
    /// The store's lock may be held by `owner` (set before asking for it: an answer that
    /// never comes back may have taken it); empty: not held.
    void may_hold_lock(std::string owner) noexcept { lock_owner_ = std::move(owner); }
    /// What landing on drop gives the waiters, instead of a failure: a fetched token.
    void land_on_drop(std::shared_ptr<const token_result> r) noexcept { fetched_ = std::move(r); }
    /// Releases the lock, if held, and lands the refresh with `r`.
    void land(const token_result& r) noexcept {
      auto p = std::move(p_);
      p->release_lock(lock_owner_);
      p->land(r, rejected_);
    }

  private:
    std::shared_ptr<async_token_provider> p_;
    std::string rejected_;
    std::string lock_owner_;
    std::shared_ptr<const token_result> fetched_;
  };

  // A store call that answers with a value: `op(provider, ec)` returns it; `then(guard,
  // value, ec)` takes it. A store that answers at once runs both here, on this thread
  // (what `then` throws reaches the caller, after the guard landed the refresh); any other
  // runs `op` on the worker thread and `then` on the loop.
  template <class Op, class Then> static void ask_store(refresh_guard g, Op op, Then then) {
    auto& p = g.provider();
    if (p.store_->answers_at_once()) {
      std::error_code ec;
      decltype(op(p, ec)) v{};
      guarded([&] { v = op(p, ec); }, ec);
      then(std::move(g), std::move(v), ec);
      return;
    }
    p.worker_.submit([g = std::move(g), op = std::move(op), then = std::move(then)]() mutable {
      auto& q = g.provider();
      std::error_code ec;
      decltype(op(q, ec)) v{};
      guarded([&] { v = op(q, ec); }, ec);
      // Refused (bad_alloc, a user's transport), the closure and its guard are destroyed:
      // the refresh lands as failed, here on the worker thread.
      auto t = q.transport_;  // (a post that drops the closure may free the provider)
      t->post([g = std::move(g), v = std::move(v), ec, then = std::move(then)]() mutable {
        try {
          then(std::move(g), std::move(v), ec);
        } catch (...) {  // the guard has landed the refresh: nothing is thrown into the loop
        }
      });
    });
  }

  // A store call whose answer no one waits for (release, erase): `op(store, key, ec)`,
  // after the calls queued before it; at once when made on the worker thread itself (a
  // guard dropped there, perhaps with the provider's last reference: the worker then
  // drops its queue, and this release must not be in it). A failure is ignored (a lock
  // not released expires after its TTL). The job holds the store, not the provider: the
  // provider's destruction, on whichever thread drops its last reference (often the
  // loop), waits for the jobs still queued (store_worker joins).
  template <class Op> void tell_store(Op op) noexcept {
    bool here = false;
    try {
      here = worker_.running_here();
    } catch (...) {  // (a mutex that cannot be locked: queued, as any other call)
    }
    if (store_->answers_at_once() || here) {
      std::error_code ignored;
      guarded([&] { op(*store_, key_, ignored); }, ignored);
      return;
    }
    try {
      worker_.submit([store = store_, key = key_, op = std::move(op)]() mutable {
        std::error_code ignored;
        guarded([&] { op(*store, key, ignored); }, ignored);
      });
    } catch (...) {  // bad_alloc, no thread: as a store that failed
    }
  }

  // Posts `f` to the loop once the store calls queued so far are done (at once for a
  // store that answers at once, or when no store call was ever queued).
  void after_store(unique_function<void()> f) {
    if (store_->answers_at_once() || !worker_.started()) {
      transport_->post(std::move(f));
      return;
    }
    worker_.submit([t = transport_, f = std::move(f)]() mutable { t->post(std::move(f)); });
  }

  void release_lock(const std::string& owner) noexcept {
    if (owner.empty()) return;
    try {
      tell_store([owner](token_store& store, const std::string& key, std::error_code& ec) {
        store.release(key + ":lock", owner, ec);
      });
    } catch (...) {  // bad_alloc copying the owner: the lock expires after its TTL
    }
  }

  static std::optional<stored_token> load(async_token_provider& p, std::error_code& ec) {
    auto s = p.store_->load(p.key_, ec);
    if (ec) s.reset();
    return s;
  }

  // The leader's refresh: a token another process saved, else under the store's lock a
  // fetch (or the token a peer saved while we waited for the lock). Never throws.
  void refresh(const std::string& rejected) noexcept {
    std::optional<refresh_guard> g;
    try {
      g.emplace(shared_from_this(), rejected);
    } catch (...) {
      land_failed("the access token's refresh threw", rejected);
      return;
    }
    try {
      ask_store(std::move(*g), load,
                [](refresh_guard next, std::optional<stored_token> s, std::error_code ec) {
                  if (!land_if_usable(next, s, ec))
                    try_lock(std::move(next), detail::random_lock_owner());
                });
    } catch (...) {  // the guard has landed the refresh
    }
  }

  // A token read from the store (`s`, read with `ec`) that this refresh may use (not the
  // one rejected, not due for refresh) lands it: true. Otherwise `g` is left to go on.
  static bool land_if_usable(refresh_guard& g, std::optional<stored_token>& s, std::error_code ec) {
    auto& p = g.provider();
    if (ec || !p.usable(s, g.rejected(), p.clock_->now_ms())) return false;
    token_result r;
    r.value = std::move(*s);
    g.land(r);
    return true;
  }

  // The store's lock; then, holding it (or when the store cannot say: as the sync
  // provider, fetch without it), the store once more and a fetch; else a poll.
  static void try_lock(refresh_guard g, std::string owner) {
    g.may_hold_lock(owner);
    ask_store(
        std::move(g),
        [owner](async_token_provider& p, std::error_code& ec) {
          return p.store_->acquire(p.key_ + ":lock", owner, p.opt_.lock_ttl, ec);
        },
        [owner](refresh_guard next, bool got, std::error_code lec) mutable {
          auto& p = next.provider();
          if (lec) {  // the store cannot say: fetched without it (as the sync provider), not
                      // saved, and released (a compare-and-delete) should the SET have
                      // gone through without its answer
            fetch_and_save(std::move(next), false);
          } else if (got) {
            recheck(std::move(next));
          } else {
            next.may_hold_lock({});
            // A peer holds the lock: read the store every 20 ms for its token, up to the
            // lock's TTL (+100 ms), in real time; then try for the lock again.
            const auto until =
                p.transport_->now() + p.opt_.lock_ttl + std::chrono::milliseconds(100);
            poll(std::move(next), std::move(owner), until);
          }
        });
  }

  // Holding the lock: a token another process saved while we queued for it, else a fetch.
  static void recheck(refresh_guard g) {
    ask_store(std::move(g), load,
              [](refresh_guard next, std::optional<stored_token> s, std::error_code ec) {
                if (!land_if_usable(next, s, ec)) fetch_and_save(std::move(next), true);
              });
  }

  // The fetch, then its token saved (when the store answered): the refresh lands once the
  // save is done, as the sync provider's does, so a peer (or this process, restarted) can
  // find the token its waiters have; then the lock is released (queued after the save).
  static void fetch_and_save(refresh_guard g, bool store_ok) {
    auto& p = g.provider();
    const std::string rejected = g.rejected();
    p.fetch(rejected, [g = std::move(g), store_ok](const token_result& r) mutable {
      std::optional<stored_token> t;
      std::shared_ptr<const token_result> fetched;
      if (!r.ec && store_ok) {
        try {
          t = r.value;
          fetched =
              std::make_shared<const token_result>(r);  // (a copy: `r` lands below if this throws)
        } catch (...) {  // bad_alloc copying the token: not saved (the next refresh fetches)
          t.reset();
        }
      }
      if (!fetched) {
        g.land(r);
        return;
      }
      // Should the save not be made or its answer not come back (bad_alloc, the loop
      // refusing it), the waiters still get the token.
      g.land_on_drop(fetched);
      try {
        ask_store(
            std::move(g),
            [t = std::move(*t)](async_token_provider& q, std::error_code& ec) {
              q.store_->save(q.key_, t, ec);
              return true;
            },
            [fetched](refresh_guard next, bool, std::error_code) { next.land(*fetched); });
      } catch (...) {  // the guard has landed the refresh
      }
    });
  }

  // If post_after throws (bad_alloc, a user's transport), the guard, destroyed with the
  // closure, lands the refresh as failed; nothing is thrown into the loop.
  static void poll(refresh_guard g, std::string owner,
                   std::chrono::steady_clock::time_point until) {
    auto t = g.provider().transport_;
    try {
      t->post_after(std::chrono::milliseconds(20), [g = std::move(g), owner = std::move(owner),
                                                    until]() mutable {
        try {
          ask_store(std::move(g), load,
                    [owner = std::move(owner), until](refresh_guard next,
                                                      std::optional<stored_token> s,
                                                      std::error_code ec) mutable {
                      if (land_if_usable(next, s, ec)) return;
                      if (!ec && next.provider().transport_->now() < until)
                        poll(std::move(next), std::move(owner), until);
                      else
                        try_lock(std::move(next), std::move(owner));
                    });
        } catch (...) {  // the guard has landed the refresh: nothing is thrown into the loop
        }
      });
    } catch (...) {  // the guard, destroyed with the closure, has landed the refresh
    }
  }

  // One upstream fetch with retries; then, in stable mode, a forced one when WeChat handed
  // back the very token it rejected (within its limits: 30 s apart, 20 a day).
  // `done` is called exactly once, on the loop, and must not throw; fetch throws only
  // before it took `done` (bad_alloc), to its caller.
  void fetch(const std::string& rejected, unique_function<void(token_result)> done) {
    fetch_once(
        false, opt_.max_attempts,
        [self = shared_from_this(), rejected, done = std::move(done)](token_result r) mutable {
          // `done`, shared with the forced fetch's continuation, stays callable here until
          // that continuation exists; `r` is copied into it, so it is still whole here.
          std::shared_ptr<unique_function<void(token_result)>> box;
          try {
            if (!r.ec && self->opt_.mode == token_mode::stable && !rejected.empty() &&
                r.value.value == rejected && self->force_allowed(self->clock_->now_ms())) {
              box = std::make_shared<unique_function<void(token_result)>>(std::move(done));
              self->fetch_once(true, 1, [r, box](token_result forced) mutable {
                (*box)(forced.ec ? std::move(r) : std::move(forced));
              });
              return;
            }
          } catch (...) {  // no forced fetch (bad_alloc, a clock that throws): the token
          }                // WeChat handed back is used as it is
          if (box)
            (*box)(std::move(r));
          else
            done(std::move(r));
        });
  }

  void fetch_once(bool force, int attempts, unique_function<void(token_result)> done) {
    std::int64_t sent = 0;
    http_request req;
    try {
      sent = clock_->now_ms();
      req = detail::access_token_request(opt_, force);
    } catch (...) {  // e.g. an appid or secret that is not UTF-8 (the JSON body refuses it)
      done(failed("the access token request could not be built"));
      return;
    }
    detail::exchange_async(transport_, std::move(req), attempts, opt_.backoff, nullptr,
                           [self = shared_from_this(), sent,
                            done = std::move(done)](const detail::answer& j, std::error_code ec,
                                                    error_detail d) mutable {
                             self->fetches_ += static_cast<std::uint64_t>(d.attempts);
                             token_result r;
                             try {
                               r.ec = ec;
                               r.detail = std::move(d);
                               if (!ec) detail::read_token_answer(j, "access_token", sent, r);
                             } catch (...) {  // bad_alloc reading the answer
                               r = out_of_memory();
                             }
                             done(std::move(r));
                           });
  }

  bool force_allowed(std::int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (force_quota_.spent(now) || (last_force_ms_ != 0 && now - last_force_ms_ < 30000))
      return false;
    force_quota_.take(now);
    last_force_ms_ = now;
    return true;
  }

  static token_result out_of_memory() noexcept {
    token_result r;
    r.ec = std::make_error_code(std::errc::not_enough_memory);
    return r;
  }

  // Lands the refresh as failed with `cause` (transport_errc::failed), or, when that
  // result cannot be made (bad_alloc), with std::errc::not_enough_memory.
  void land_failed(const char* cause, const std::string& rejected) noexcept {
    token_result r;
    try {
      r = failed(cause);
    } catch (...) {
      r = out_of_memory();
    }
    land(r, rejected);
  }

  // Publishes the refresh's outcome and runs the waiters, after unlocking. Never throws.
  void land(const token_result& r, const std::string& rejected) noexcept {
    std::vector<token_handler> waiters;
    std::vector<unique_function<void()>> idle;
    // The cache's copy first, unlocked: if it cannot be made (bad_alloc), or dated (a
    // clock that throws), the waiters still get the token and the next get() fetches
    // again; nothing below throws.
    std::optional<stored_token> fresh;
    std::int64_t now = 0;
    if (!r.ec) {
      try {
        now = clock_->now_ms();
        fresh = r.value;
      } catch (...) {
        fresh.reset();
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      refreshing_ = false;
      if (fresh) {
        refresh_at_ms_ = detail::refresh_at(*fresh, now, ahead_ms());
        cached_ = std::move(*fresh);
        if (rejected_ == rejected) rejected_.clear();
      }
      waiters.swap(waiters_);
      idle.swap(idle_waiters_);
    }
    // A waiter that throws (bad_alloc: its request or its completion could not be made)
    // loses only its own caller; the others still run, and nothing is thrown into the loop.
    for (auto& w : waiters) {
      try {
        w(r);
      } catch (...) {
      }
    }
    // when_idle's callers, after the store calls this refresh queued (its lock's release
    // was queued before it landed); one the loop refuses is dropped uncalled.
    for (auto& f : idle) {
      try {
        after_store(std::move(f));
      } catch (...) {
      }
    }
  }

  token_options opt_;
  std::shared_ptr<async_transport> transport_;
  std::shared_ptr<token_store> store_;
  std::shared_ptr<const wechat::time_source> clock_;
  std::string key_;

  std::mutex mutex_;
  stored_token cached_;
  std::int64_t refresh_at_ms_ = 0;
  bool refreshing_ = false;
  std::vector<token_handler> waiters_;  // callers waiting for the refresh in progress
  std::vector<unique_function<void()>> idle_waiters_;  // when_idle's, for that refresh
  std::string rejected_;                // the last token WeChat rejected
  detail::window_quota<86400000, 20> force_quota_;
  std::int64_t last_force_ms_ = 0;
  std::atomic<std::uint64_t> fetches_{0};
  detail::store_worker worker_;  // last: its thread ends (or is detached) first
};

}  // namespace wechat
