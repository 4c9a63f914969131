// A parent project's offline test links wechat::mock: the embedded mock and the client.
#include <mock_wechat/mock_wechat.hpp>
#include <wechat/wechat.hpp>

#include <iostream>

int main() {
  mock_wechat::server mock;
  mock.world().add_app({"wx1000000000000001", "s", mock_wechat::app_type::miniprogram, "acct"});
  wechat::httplib_transport_options t;
  t.base_url = mock.base_url();
  wechat::client wx({"wx1000000000000001", "s"}, wechat::httplib_transport::create(t));
  std::error_code ec;
  const auto s = wx.code2session(mock.world().login("wx1000000000000001", "alice"), ec);
  if (ec || s.openid != mock_wechat::openid("wx1000000000000001", "alice")) {
    std::cerr << "consumer_mock: " << ec.message() << '\n';
    return 1;
  }
  std::cout << "consumer_mock: signed in " << s.openid << '\n';
  return 0;
}
