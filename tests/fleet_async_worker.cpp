// One backend process of a fleet on an event loop, for redis_test.cpp (the async twin of
// fleet_worker's "tokens"):
//   fleet_async_worker tokens BASE_URL REDIS_PORT SECONDS INFLIGHT APPID SECRET
//       INFLIGHT chains of async_token_provider::get() on one beast_transport loop read the
//       access token for SECONDS, on the shared Redis store, in classic mode, with a token
//       considered stale 1 s after it was fetched: a refresh cycle a second, shared with
//       the sync processes of the same app (same store key, same lock).
//       Prints {"fetches":N,"tokens":[distinct tokens seen],"failures":F,"gets":G}.
#include <wechat/async.hpp>
#include <wechat/store/redis.hpp>
#include <wechat/transport/beast.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace {

struct chains : std::enable_shared_from_this<chains> {
  std::shared_ptr<wechat::async_transport> loop;
  std::shared_ptr<wechat::async_token_provider> tokens;
  std::chrono::steady_clock::time_point until;
  std::mutex m;
  std::set<std::string> seen;
  std::atomic<int> failures{0};
  std::atomic<long> gets{0};
  std::atomic<int> running{0};

  // One get, then the next from the loop (a cache hit answers at once, on this thread:
  // posting the next keeps the stack flat).
  void next() {
    if (std::chrono::steady_clock::now() >= until) {
      --running;
      return;
    }
    tokens->get([self = shared_from_this()](const wechat::async_token_provider::token_result& r) {
      ++self->gets;
      if (r.ec) {
        ++self->failures;
      } else {
        std::lock_guard<std::mutex> lock(self->m);
        self->seen.insert(r.value.value);
      }
      self->loop->post([self] { self->next(); });
    });
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "tokens" || argc != 8) {
    std::cerr << "usage: see fleet_async_worker.cpp\n";
    return 2;
  }
  wechat::redis_options ro;
  ro.port = std::stoi(argv[3]);
  auto redis = std::make_shared<wechat::redis_connection>(ro);
  wechat::beast_transport_options to;
  to.base_url = argv[2];
  to.fallback_base_url.clear();
  auto loop = wechat::beast_transport::create(to);
  wechat::token_options o;
  o.appid = argv[6];
  o.secret = argv[7];
  o.mode = wechat::token_mode::classic;
  o.refresh_ahead = std::chrono::seconds(7199);
  auto c = std::make_shared<chains>();
  c->loop = loop;
  c->tokens = wechat::async_token_provider::create(
      o, loop, std::make_shared<wechat::redis_token_store>(redis));
  c->until = std::chrono::steady_clock::now() +
             std::chrono::milliseconds(static_cast<long>(std::stod(argv[4]) * 1000));
  const int inflight = std::stoi(argv[5]);
  c->running = inflight;
  for (int i = 0; i < inflight; ++i)
    loop->post([c] { c->next(); });
  while (c->running > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // A refresh may still be in flight (refresh-ahead runs behind cache hits, with no caller
  // waiting): wait for it, so that `fetches` counts every fetch this process made.
  std::promise<void> settled;
  c->tokens->when_idle([&] { settled.set_value(); });
  settled.get_future().wait();
  nlohmann::json out;
  {
    std::lock_guard<std::mutex> lock(c->m);
    out = {{"fetches", c->tokens->fetches()},
           {"tokens", c->seen},
           {"failures", c->failures.load()},
           {"gets", c->gets.load()}};
  }
  std::cout << out.dump() << std::endl;
  return c->failures == 0 ? 0 : 1;
}
