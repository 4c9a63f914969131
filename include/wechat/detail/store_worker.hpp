// wechat/detail/store_worker.hpp - one thread that runs the calls of a token store that
// does not answer at once (Redis), in the order they were queued, for the async token
// provider: such a store is never called on the event loop, where one round trip to a
// Redis that is away would hold every other caller for its timeout (500 ms).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "wechat/async/transport.hpp"

namespace wechat::detail {

/// A FIFO queue of jobs and the thread that runs them, started by the first job.
/// Destroyed on another thread, it lets the queue drain and joins (a job that holds only
/// the store, not the worker's owner, may still be queued: it runs first). A job may hold
/// the last reference to this worker's owner: the worker is then destroyed on its own
/// thread, which it detaches after dropping the jobs still queued, so that no thread is
/// left running store calls nobody owns (at exit, they would race the static
/// destructors). Thread safe.
class store_worker {
public:
  store_worker() = default;
  store_worker(const store_worker&) = delete;
  store_worker& operator=(const store_worker&) = delete;
  ~store_worker() {
    std::thread t;
    std::deque<unique_function<void()>> dropped;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stopping = true;
      t = std::move(thread_);
      if (t.joinable() && t.get_id() == std::this_thread::get_id()) dropped.swap(state_->jobs);
    }
    state_->wake.notify_one();
    if (!t.joinable()) return;
    if (t.get_id() == std::this_thread::get_id())
      t.detach();  // its loop holds the state, finds the queue empty and ends
    else
      t.join();
  }

  /// Whether the calling thread is this worker's own (a job, or what a job destroys).
  bool running_here() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return thread_.joinable() && thread_.get_id() == std::this_thread::get_id();
  }

  /// Whether a job was ever queued (its thread started).
  bool started() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return thread_.joinable();
  }

  /// Queues `job` (run once, on the worker thread; what it throws is dropped). Throws
  /// std::bad_alloc, or std::system_error when the thread cannot be started: `job` is
  /// then destroyed, not run.
  void submit(unique_function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      if (!thread_.joinable()) thread_ = std::thread(&store_worker::run, state_);
      state_->jobs.push_back(std::move(job));
    }
    state_->wake.notify_one();
  }

private:
  struct state {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<unique_function<void()>> jobs;
    bool stopping = false;
  };

  static void run(const std::shared_ptr<state>& s) {
    std::unique_lock<std::mutex> lock(s->mutex);
    for (;;) {
      s->wake.wait(lock, [&] { return s->stopping || !s->jobs.empty(); });
      if (s->jobs.empty()) return;  // stopping, and nothing left to run
      {
        auto job = std::move(s->jobs.front());
        s->jobs.pop_front();
        lock.unlock();
        try {
          job();
        } catch (...) {  // a job reports through its continuation, never by throwing
        }
      }  // destroyed unlocked: it may drop the last reference to this worker's owner
      lock.lock();
    }
  }

  std::shared_ptr<state> state_ = std::make_shared<state>();
  std::thread thread_;  // guarded by state_->mutex
};

}  // namespace wechat::detail
