// The async client inside Asio's own coroutines (C++20, GCC): wechat::asio_token adapts
// use_awaitable and use_future; the Beast transport runs on the test's io_context, the
// way an Asio/Beast backend runs it, with no thread of the library's own.
#include <utility>  // first: Boost 1.74's asio::awaitable under C++20 needs it

#include "mock_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <wechat/async.hpp>
#include <wechat/transport/beast.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace mocktest;

TEST_CASE("asio::awaitable: log in and check the session on the caller's io_context",
          "[async][asio][coroutine]") {
  fixture f;
  f.add_standard_apps();
  boost::asio::io_context ioc;
  wechat::beast_transport_options t;
  t.base_url = f.mock.base_url();
  auto transport = wechat::beast_transport::create(ioc, t);
  wechat::client_options o;
  o.appid = mp;
  o.secret = mp_secret;
  auto wx = wechat::async_client::create(o, transport);
  std::vector<std::string> codes;
  for (int i = 0; i < 20; ++i)
    codes.push_back(f.login(mp, "user-" + std::to_string(i)));

  int ok = 0;
  std::string failure;
  std::thread::id loop_thread;
  std::atomic<bool> calls_done{false};
  std::chrono::steady_clock::time_point calls_done_at{};  // written before calls_done
  boost::asio::co_spawn(
      ioc,
      [&]() -> boost::asio::awaitable<void> {
        loop_thread = std::this_thread::get_id();
        for (const auto& code : codes) {
          auto s = co_await wx->code2session(code, wechat::asio_token(boost::asio::use_awaitable));
          if (!s) {
            failure = s.error().message();
            break;
          }
          auto k = co_await wx->check_session_key(s->openid, s->session_key,
                                                  wechat::asio_token(boost::asio::use_awaitable));
          if (k && std::this_thread::get_id() == loop_thread) ++ok;
        }
        // An error comes back as a result: a spent code is 40163 after the 10 s window
        // only; within it, the remembered session.
        auto again =
            co_await wx->code2session(codes[0], wechat::asio_token(boost::asio::use_awaitable));
        if (!again) failure = "the remembered code failed: " + again.error().message();
        calls_done_at = std::chrono::steady_clock::now();
        calls_done = true;
      },
      boost::asio::detached);
  // run() returns once the last call has ended: no deadline timer is left armed (the
  // calls' deadline is the default 15 s; a watchdog stops the loop 5 s after the last
  // call, should one be left).
  std::mutex m;
  std::condition_variable ran;
  bool returned = false, watchdog_fired = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(m);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (!returned) {
      ran.wait_for(lock, std::chrono::milliseconds(100));
      const bool late = calls_done.load() &&
                        std::chrono::steady_clock::now() - calls_done_at > std::chrono::seconds(5);
      if (!returned && (late || std::chrono::steady_clock::now() > give_up)) {
        watchdog_fired = true;
        ioc.stop();
        break;
      }
    }
  });
  ioc.run();
  {
    std::lock_guard<std::mutex> lock(m);
    returned = true;
  }
  ran.notify_one();
  watchdog.join();
  CHECK_FALSE(watchdog_fired);
  CHECK(failure.empty());
  CHECK(ok == 20);
  CHECK(f.mock.journal().count("/sns/jscode2session") == 20);
}

TEST_CASE("asio use_future through asio_token, on the transport's own thread", "[async][asio]") {
  fixture f;
  f.add_standard_apps();
  wechat::beast_transport_options t;
  t.base_url = f.mock.base_url();
  wechat::client_options o;
  o.appid = mp;
  o.secret = mp_secret;
  auto wx = wechat::async_client::create(o, wechat::beast_transport::create(t));
  std::future<wechat::result<std::string>> token =
      wx->access_token(wechat::asio_token(boost::asio::use_future));
  const auto r = token.get();
  REQUIRE(r.ok());
  CHECK_FALSE(r.value().empty());
}
