// wechat::beast through the package: the async transport runs its loop, and refuses a
// plain-http URL to a non-loopback host.
#include <wechat/transport/beast.hpp>

#include <chrono>
#include <cstdio>
#include <future>

int main() {
  std::error_code ec;
  wechat::beast_transport_options o;
  o.base_url = "http://api.weixin.qq.com";
  if (wechat::beast_transport::create(o, ec) || ec != wechat::transport_errc::insecure_url)
    return 1;
  auto t = wechat::beast_transport::create();
  std::promise<bool> ran;
  t->post([&] { ran.set_value(t->running_in_loop()); });
  auto f = ran.get_future();
  if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready || !f.get()) return 2;
  std::puts("consumer_beast: ok");
  return 0;
}
