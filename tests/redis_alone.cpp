// Built against wechat::redis alone (no wechat::wechat, no cpp-httplib): the fleet's
// stores need no HTTP. Run, it stores a token in a Redis that is not there and says
// store_errc::unavailable, which is what a fleet sees when Redis is down.
#include <wechat/store/redis.hpp>

#include <iostream>
#include <memory>

int main() {
  wechat::redis_options o;
  o.port = 1;  // nothing listens there
  o.timeout = std::chrono::milliseconds(200);
  auto redis = std::make_shared<wechat::redis_connection>(o);
  wechat::redis_token_store tokens(redis);
  std::error_code ec;
  tokens.save("k", wechat::stored_token{"v", 1}, ec);
  if (ec != wechat::store_errc::unavailable) {
    std::cerr << "expected store_errc::unavailable, got " << wechat::error_name(ec) << "\n";
    return 1;
  }
  std::cout << "wechat::redis alone: " << wechat::error_name(ec) << "\n";
  return 0;
}
