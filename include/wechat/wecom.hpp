// wechat/wecom.hpp - WeCom (企业微信) mini program login, for one corp: the corp's access
// token (GET /cgi-bin/gettoken) and code2session of a wx.qy.login code (GET
// /cgi-bin/miniprogram/jscode2session), on host qyapi.weixin.qq.com.
//
//   wechat::httplib_transport_options to;
//   to.base_url = "https://qyapi.weixin.qq.com";
//   to.fallback_base_url.clear();
//   auto transport = wechat::httplib_transport::create(to);
//   wechat::wecom_client corp({"wwcorpid", "corpsecret"}, transport);
//   wechat::wecom_session s = corp.code2session(code);   // corpid, userid, session_key
//
// WeCom answers errcode 0 on success (api.weixin.qq.com mostly omits it) and its errmsg
// ends with "hint: [...]" rather than a rid (notes on issue 17, section 3). The token is
// token_provider's (cached, refreshed ahead, one fetch at a time, the store's lock for a
// fleet), kept under wecom_access_token:<corpid>:<first 16 hex of sha256(corpsecret)>: each
// secret of a corp (one per app) has its own token, and no secret is written in a key.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "wechat/client.hpp"
#include "wechat/clock.hpp"
#include "wechat/crypto.hpp"
#include "wechat/detail/api_response.hpp"
#include "wechat/detail/code_memory.hpp"
#include "wechat/detail/token_call.hpp"
#include "wechat/error.hpp"
#include "wechat/store.hpp"
#include "wechat/token.hpp"
#include "wechat/transport.hpp"

namespace wechat {

/// A WeCom corp's app: its corpid and the app's secret.
struct wecom_options {
  std::string corpid;
  std::string corpsecret;
  std::chrono::seconds refresh_ahead{300};   ///< fetch a new token this long before expiry
  int max_attempts = 3;                      ///< attempts of a token fetch (-1, transport)
  std::chrono::milliseconds backoff{100};    ///< first backoff; doubled, with jitter
  std::chrono::milliseconds lock_ttl{5000};  ///< the store's refresh lock (a fleet)
  /// code2session's double-submit window, as client_options::code_memory.
  std::chrono::seconds code_memory{10};
  std::size_t code_memory_max = 100000;  ///< at most this many remembered codes
};

/// WeCom's code2session answer.
struct wecom_session {
  /// The user's corp. Several corps can use one mini program: when it differs from this
  /// client's corpid, log in with that corp's credentials (notes on issue 17, section 3).
  std::string corpid;
  std::string userid;       ///< the member's userid in that corp
  std::string session_key;  ///< keep it on the server; never send it to the device
};

namespace detail {
/// The first 16 hex digits of sha256(secret): names a secret in a key without giving it.
inline std::string secret_tag(std::string_view secret) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(secret.data(), secret.size(), md, &len, EVP_sha256(), nullptr) != 1)
    throw error(make_error_code(crypto_errc::openssl_failure), "sha256");
  return to_hex(std::string_view(reinterpret_cast<const char*>(md), len)).substr(0, 16);
}
}  // namespace detail

/// WeCom mini program login for one corp app (corpid + corpsecret). Thread safe; share one
/// per corp app per process.
class wecom_client {
public:
  /// `t` speaks to qyapi.weixin.qq.com; `store` shares the token (memory by default; Redis
  /// for a fleet); `clk` is the time source.
  wecom_client(wecom_options o, std::shared_ptr<transport> t,
               std::shared_ptr<token_store> store = nullptr,
               std::shared_ptr<const wechat::time_source> clk = nullptr)
      : opt_(std::move(o)), transport_(std::move(t)),
        clock_(clk ? std::move(clk) : default_clock()),
        tokens_(
            "wecom_access_token:" + opt_.corpid + ":" + detail::secret_tag(opt_.corpsecret),
            [this] { return fetch_token(); }, provider_options(), std::move(store), clock_),
        codes_(opt_.code_memory, opt_.code_memory_max, clock_) {}

  wecom_client(const wecom_client&) = delete;
  wecom_client& operator=(const wecom_client&) = delete;

  const std::string& corpid() const noexcept { return opt_.corpid; }
  /// The provider of the corp's access token (store_key(), fetches(), invalidate()).
  token_provider& tokens() noexcept { return tokens_; }

  /// The corp app's access token: GET /cgi-bin/gettoken. Errors: api_errc (invalid_appid
  /// for an unknown corpid, invalid_credential for a wrong corpsecret...), transport_errc,
  /// protocol_errc.
  std::string access_token(std::error_code& ec, error_detail* d = nullptr) {
    return tokens_.get(ec, d);
  }
  /// Throwing overload of access_token.
  std::string access_token() {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return access_token(ec, d); },
        "wecom access_token");
  }

  /// Exchanges a wx.qy.login code: GET /cgi-bin/miniprogram/jscode2session. Concurrent calls
  /// with the same code share one request, and the result is remembered for code_memory
  /// (as client::code2session). A token WeCom rejects (40014, 42001) is fetched again
  /// once. Errors: api_errc::invalid_code (unknown, expired, used, another corp's code),
  /// the token's errors, transport_errc, protocol_errc.
  wecom_session code2session(std::string_view code, std::error_code& ec,
                             error_detail* d = nullptr) {
    return codes_.run(std::string(code), ec, d, [&](detail::shared_result<wecom_session>& r) {
      const auto j = detail::with_token(
          tokens_, r.ec, &r.detail,
          [&](const std::string& token, std::error_code& cec, error_detail* cd) {
            http_request req;
            req.target = "/cgi-bin/miniprogram/jscode2session?access_token=" + url_encode(token) +
                         "&js_code=" + url_encode(code) + "&grant_type=authorization_code";
            // Not safe to repeat: a code is single use. One attempt.
            return detail::exchange(*transport_, req, 1, opt_.backoff, cec, cd);
          });
      if (r.ec) return;
      r.value.corpid = detail::required_string(j, "corpid", r.ec, &r.detail);
      if (!r.ec) r.value.userid = detail::required_string(j, "userid", r.ec, &r.detail);
      if (!r.ec) r.value.session_key = detail::required_string(j, "session_key", r.ec, &r.detail);
    });
  }
  /// Throwing overload of code2session.
  wecom_session code2session(std::string_view code) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return code2session(code, ec, d); },
        "wecom code2session");
  }

private:
  token_options provider_options() const {
    token_options t;
    t.appid = opt_.corpid;
    t.refresh_ahead = opt_.refresh_ahead;
    t.max_attempts = opt_.max_attempts;
    t.backoff = opt_.backoff;
    t.lock_ttl = opt_.lock_ttl;
    return t;
  }

  // One attempt at the token (token_provider retries it, in its single flight).
  token_fetch_result fetch_token() {
    token_fetch_result r;
    r.detail.attempts = 1;
    http_request req;
    req.target = "/cgi-bin/gettoken?corpid=" + url_encode(opt_.corpid) +
                 "&corpsecret=" + url_encode(opt_.corpsecret);
    const std::int64_t sent = clock_->now_ms();
    const auto j = detail::round_trip(*transport_, req, r.ec, r.detail);
    if (r.ec) return r;
    // WeCom hands back the same token while it is valid, expires_in being what is left
    // (token_provider then refreshes it at its expiry, not ahead: see its publish()).
    detail::read_token_answer(j, "access_token", sent, r);
    return r;
  }

  wecom_options opt_;
  std::shared_ptr<transport> transport_;
  std::shared_ptr<const wechat::time_source> clock_;
  token_provider tokens_;
  detail::code_memory<wecom_session> codes_;
};

}  // namespace wechat
