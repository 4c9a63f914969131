// libFuzzer: any bytes the network returns. A transport answers every request with the
// fuzzer's bytes (the first byte picks the HTTP status and Content-Type), and every client
// call reads them: a typed error or a result, never a crash or an escaped exception.
#include <wechat/client.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace {

class fuzz_transport final : public wechat::transport {
public:
  wechat::http_response answer;
  wechat::http_response send(const wechat::http_request&, std::error_code& ec) override {
    ec.clear();
    return answer;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  auto t = std::make_shared<fuzz_transport>();
  static const int statuses[] = {200, 200, 200, 200, 500, 502, 404, 301};
  static const char* types[] = {"application/json; charset=UTF-8", "text/plain", "text/html", ""};
  t->answer.status = statuses[data[0] & 7];
  t->answer.content_type = types[(data[0] >> 3) & 3];
  t->answer.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  wechat::client_options o;
  o.appid = "wx1000000000000001";
  o.secret = "fuzz-secret";
  o.max_attempts = 1;
  o.backoff = std::chrono::milliseconds(0);
  wechat::client wx(o, t);
  std::error_code ec;
  (void)wx.code2session("code", ec);
  (void)wx.tokens().get(ec);
  wx.check_session_key("openid", "tiihtNczf5v6AKRyjwEUhQ==", ec);
  (void)wx.reset_session_key("openid", "tiihtNczf5v6AKRyjwEUhQ==", ec);
  (void)wx.get_paid_unionid("openid", wechat::paid_order::by_transaction("42"), ec);
  (void)wx.get_phone_number("code", "", ec);
  (void)wx.oauth_exchange("code", ec);
  (void)wx.oauth_refresh("refresh", ec);
  (void)wx.follower("openid", ec);
  (void)wx.sns_userinfo("token", "openid", ec);
  // the login-adjacent calls (wechat-api.md section 8)
  (void)wx.get_user_encrypt_key("openid", "tiihtNczf5v6AKRyjwEUhQ==", ec);
  (void)wx.get_plugin_open_pid("code", ec);
  wechat::risk_rank_request rr;
  rr.openid = "openid";
  rr.client_ip = "127.0.0.1";
  (void)wx.get_user_risk_rank(rr, ec);
  wx.clear_quota(ec);
  (void)wx.get_api_quota("/cgi-bin/token", ec);
  (void)wx.get_rid_info("rid", ec);
  return 0;
}
