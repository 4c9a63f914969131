// One backend process of a fleet, for redis_test.cpp:
//   fleet_worker tokens BASE_URL REDIS_PORT SECONDS THREADS APPID SECRET
//       THREADS threads read the access token for SECONDS through a token provider on
//       the shared Redis store, in classic mode (every upstream fetch supersedes the last),
//       with a token considered stale 1 s after it was fetched: a refresh cycle a second.
//       Prints {"fetches":N,"tokens":[distinct tokens seen]}.
//   fleet_worker hold_lock REDIS_PORT KEY TTL_MS
//       takes the refresh lock KEY, prints "locked", then hangs (the test kills it).
//   fleet_worker link REDIS_PORT WORKER USERS
//       links USERS identities (two apps each) in the shared directory; prints "ok".
#include <wechat/store/redis.hpp>
#include <wechat/token.hpp>
#include <wechat/transport/httplib.hpp>
#include <wechat/unionid.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <iostream>
#include <set>
#include <thread>

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "tokens" && argc == 8) {
    auto redis = std::make_shared<wechat::redis_connection>(
        wechat::redis_options{"127.0.0.1", std::stoi(argv[3])});
    wechat::httplib_transport_options t;
    t.base_url = argv[2];
    wechat::token_options o;
    o.appid = argv[6];
    o.secret = argv[7];
    o.mode = wechat::token_mode::classic;
    o.refresh_ahead = std::chrono::seconds(7199);
    wechat::token_provider p(o, wechat::httplib_transport::create(t),
                             std::make_shared<wechat::redis_token_store>(redis));
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(static_cast<long>(std::stod(argv[4]) * 1000));
    std::mutex m;
    std::set<std::string> seen;
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < std::stoi(argv[5]); ++i)
      threads.emplace_back([&] {
        while (std::chrono::steady_clock::now() < until) {
          std::error_code ec;
          const std::string tok = p.get(ec);
          if (ec) {
            ++failures;
            continue;
          }
          std::lock_guard<std::mutex> lock(m);
          seen.insert(tok);
        }
      });
    for (auto& th : threads)
      th.join();
    std::cout << nlohmann::json{{"fetches", p.fetches()},
                                {"tokens", seen},
                                {"failures", failures.load()}}
                     .dump()
              << std::endl;
    return failures == 0 ? 0 : 1;
  }
  if (mode == "hold_lock" && argc == 5) {
    auto redis = std::make_shared<wechat::redis_connection>(
        wechat::redis_options{"127.0.0.1", std::stoi(argv[2])});
    wechat::redis_token_store store(redis);
    std::error_code ec;
    if (!store.acquire(argv[3], "doomed-holder", std::chrono::milliseconds(std::stol(argv[4])), ec))
      return 1;
    std::cout << "locked" << std::endl;
    for (;;)
      std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (mode == "link" && argc == 5) {
    auto redis = std::make_shared<wechat::redis_connection>(
        wechat::redis_options{"127.0.0.1", std::stoi(argv[2])});
    wechat::identity_directory dir(std::make_shared<wechat::redis_identity_store>(redis));
    const int worker = std::stoi(argv[3]), users = std::stoi(argv[4]);
    for (int k = 0; k < users; ++k) {
      const std::string user = "user" + std::to_string(k);
      const std::string app = worker % 2 ? "wxA" : "wxB";
      dir.link(app, "o-" + app + "-" + user);               // seen first without a unionid
      dir.link(app, "o-" + app + "-" + user, "u-" + user);  // then linked
    }
    std::cout << "ok" << std::endl;
    return 0;
  }
  std::cerr << "usage: see fleet_worker.cpp\n";
  return 2;
}
