// engine_floor: the mock's event engine (mock_wechat/detail/event_engine.hpp) answering every
// request with a fixed body and nothing behind it. benchmarks/mock_load measures it beside
// nginx and the mock: what remains between it and nginx is the cost of the engine, and what
// remains between it and the mock is the cost of the mock's logic.
//
//   engine_floor PORT        serves until SIGINT/SIGTERM
#include <mock_wechat/detail/event_engine.hpp>

#include "stop_signals.hpp"

#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: engine_floor PORT\n";
    return 2;
  }
  const sigset_t stop = bench::block_stop_signals();
  const std::string body =
      "{\"session_key\":\"tiihtNczf5v6AKRyjwEUhQ==\",\"openid\":\"oGZUI0egBJY1zhBYw2KhdUfwVJJE\","
      "\"unionid\":\"oGZUI0egBJY1zhBYw2KhdUfwVJJE\"}\n";
  mock_wechat::detail::engine_limits l;
  l.workers = 2 * std::size_t{std::max(2u, std::thread::hardware_concurrency())};  // as the mock
  mock_wechat::detail::event_engine engine(
      [&body](const mock_wechat::http_request&) {
        mock_wechat::http_response r;
        r.content_type = "text/plain";
        r.body = body;
        r.length = body.size();
        return r;
      },
      "127.0.0.1", std::stoi(argv[1]), l);
  bench::wait_for_stop(stop);
  return 0;
}
