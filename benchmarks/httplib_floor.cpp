// httplib_floor: the mock's HTTP engine (cpp-httplib 0.11.4's request parsing and response
// writing, run by mock_wechat's reactor) answering every request with a fixed body and
// nothing behind it. benchmarks/mock_load measures it beside nginx and the mock: what
// remains between it and nginx is the cost of httplib's model, not of the mock's logic.
//
//   httplib_floor PORT        serves until killed
#include <mock_wechat/server.hpp>

#include "stop_signals.hpp"

#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: httplib_floor PORT\n";
    return 2;
  }
  const sigset_t stop = bench::block_stop_signals();

  mock_wechat::detail::http_server s;
  s.limits.workers = 2 * std::size_t{std::max(2u, std::thread::hardware_concurrency())};  // as the mock
  s.new_task_queue = [&s]() -> httplib::TaskQueue* { return s.make_reactor(); };
  s.set_tcp_nodelay(true);
  s.set_keep_alive_max_count(100000);
  const std::string body =
      "{\"session_key\":\"tiihtNczf5v6AKRyjwEUhQ==\",\"openid\":\"oGZUI0egBJY1zhBYw2KhdUfwVJJE\","
      "\"unionid\":\"oGZUI0egBJY1zhBYw2KhdUfwVJJE\"}\n";
  s.Get(".*", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(body, "text/plain");
  });
  int listener = -1;
  s.set_socket_options([&](socket_t sock) {
    int one = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    listener = sock;
  });
  if (!s.bind_to_port("127.0.0.1", std::stoi(argv[1]))) {
    std::cerr << "httplib_floor: cannot bind\n";
    return 1;
  }
  ::listen(listener, 1024);  // as the mock does: 0.11.4 listens with a backlog of 5
  std::thread t([&] { s.listen_after_bind(); });
  bench::wait_for_stop(stop);
  s.stop();
  t.join();
  return 0;
}
