// A parent project's offline test links wechat::mock: the embedded mock and the client.
// With a base URL (consumer_mock http://127.0.0.1:PORT) the same login goes to a standalone
// mock_wechat instead, set up through its admin API as any language's tests would.
#include <httplib.h>

#include <mock_wechat/mock_wechat.hpp>
#include <nlohmann/json.hpp>
#include <wechat/wechat.hpp>

#include <iostream>
#include <optional>
#include <string>

namespace {

const char* const appid = "wx1000000000000001";

// POST /__mock/apps, then POST /__mock/login: the code a device would get from wx.login().
std::string standalone_code(const std::string& base) {
  httplib::Client admin(base);
  const auto app = admin.Post(
      "/__mock/apps",
      nlohmann::json{
          {"appid", appid}, {"secret", "s"}, {"type", "miniprogram"}, {"open_account", "acct"}}
          .dump(),
      "application/json");
  if (!app || app->status != 200) return {};
  const auto login =
      admin.Post("/__mock/login", nlohmann::json{{"appid", appid}, {"user", "alice"}}.dump(),
                 "application/json");
  if (!login || login->status != 200) return {};
  return nlohmann::json::parse(login->body, nullptr, false).value("code", "");
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<mock_wechat::server> embedded;
  wechat::httplib_transport_options t;
  std::string code;
  if (argc > 1) {
    t.base_url = argv[1];
    code = standalone_code(t.base_url);
    if (code.empty()) {
      std::cerr << "consumer_mock: no code from the mock at " << t.base_url << '\n';
      return 1;
    }
  } else {
    embedded.emplace();
    embedded->world().add_app({appid, "s", mock_wechat::app_type::miniprogram, "acct"});
    t.base_url = embedded->base_url();
    code = embedded->world().login(appid, "alice");
  }
  wechat::client wx({appid, "s"}, wechat::httplib_transport::create(t));
  std::error_code ec;
  const auto s = wx.code2session(code, ec);
  if (ec || s.openid != mock_wechat::openid(appid, "alice")) {
    std::cerr << "consumer_mock: " << ec.message() << '\n';
    return 1;
  }
  std::cout << "consumer_mock: signed in " << s.openid << (embedded ? "" : " (standalone mock)")
            << '\n';
  return 0;
}
