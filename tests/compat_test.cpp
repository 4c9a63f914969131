// Code written against 0.1.0 keeps compiling and working in 0.2.0: every name renamed in
// 0.2.0 is still there, deprecated (this file silences the warnings it is about), and
// does what its new name does. CHANGELOG.md lists them.
#include "mock_support.hpp"

#include <wechat/transport/httplib.hpp>
#include <wechat/wechat.hpp>

using namespace mocktest;

TEST_CASE("0.1.0 names: wechat::clock, client::user_info, token_provider::throw_on", "[compat]") {
  fixture f;
  f.add_standard_apps();
  std::shared_ptr<const wechat::clock> clk = std::make_shared<wechat::manual_clock>(1800000000);
  CHECK(clk->now() == 1800000000);
  wechat::httplib_transport_options t;
  t.base_url = f.mock.base_url();
  wechat::client wx({oa, oa_secret}, wechat::httplib_transport::create(t));
  f.admin("follow", {{"user", "ann"}, {"appid", oa}});
  const std::string oid = mock_wechat::openid(oa, "ann");
  const wechat::follower_info old = wx.user_info(oid);  // now client::follower
  CHECK(old.subscribed);
  CHECK(old.openid == oid);
  std::error_code ec;
  wx.user_info("o-nobody", ec);
  CHECK(ec == wechat::api_errc::invalid_openid);
  wechat::error_detail d;
  d.errcode = 40003;
  CHECK_THROWS_AS(wechat::token_provider::throw_on(ec, d, "user_info"), wechat::api_error);
}

TEST_CASE("0.1.0 names of the mock: world::user_info, follower_info, channel::user_info_api",
          "[compat]") {
  fixture f;
  f.add_standard_apps();
  f.login(mp, "bo");
  const mock_wechat::user_info_payload p = f.world().user_info(mp, "bo");  // get_user_info
  CHECK_FALSE(p.encrypted_data.empty());
  const auto app = f.world().find_app(oa);
  REQUIRE(app);
  const mock_wechat::outcome<mock_wechat::follower_info> r =
      f.world().follower(*app, mock_wechat::openid(oa, "nobody"));
  CHECK(r.errc == wechat::api_errc::invalid_openid);
  CHECK(mock_wechat::channel::user_info_api == mock_wechat::channel::follower);
}
