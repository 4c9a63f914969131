// wechat/transport.hpp - the tiny HTTP interface the client speaks through.
//
// A transport sends one request to the configured WeChat host and returns the response,
// or sets a transport_errc. The default implementation is transport/httplib.hpp (the only
// header that includes <httplib.h>); tests and unusual deployments can supply their own.
// A round trip costs far more than the virtual call.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <system_error>

#include "wechat/error.hpp"
#include "wechat/url_encode.hpp"  // url_encode, part of this header's API

namespace wechat {

/// One HTTP request to the WeChat API host.
struct http_request {
  std::string method = "GET";  ///< "GET" or "POST"
  std::string target;          ///< path and query, already encoded: "/sns/jscode2session?appid=..."
  std::string body;            ///< POST body
  std::string content_type;    ///< of the body
};

/// The response, whatever its status or Content-Type.
struct http_response {
  int status = 0;
  std::string body;
  std::string content_type;
  /// On a failed send: which host and why, in words ("api.weixin.qq.com:443: DNS lookup
  /// failed: ..."), for error_detail::cause. Never a secret: no request target (its query
  /// carries the appsecret), no body, no header value. A transport may leave it empty.
  /// (Its `{}` keeps `{status, body, content_type}` free of -Wmissing-field-initializers.)
  std::string failure{};
};

/// The settings of the library's HTTP transports (httplib_transport, beast_transport):
/// where WeChat is, trust, timeouts, limits. Both keep the same rules with them.
struct http_transport_options {
  std::string base_url = "https://api.weixin.qq.com";
  /// Tried once when base_url cannot be connected to. Empty: no fallback. Used only when
  /// base_url is WeChat's default host exactly (https, api.weixin.qq.com, port 443);
  /// checked as base_url is (invalid_url, insecure_url).
  std::string fallback_base_url = "https://api2.weixin.qq.com";
  std::string ca_file;  ///< PEM bundle to trust instead of the system's; empty: system's
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds read_timeout{5000};
  std::size_t max_response_bytes = 1 << 20;
  /// Idle keep-alive connections kept per host. httplib_transport closes the others at
  /// once; beast_transport keeps them for a second after a burst (the next burst reuses
  /// them), then closes them.
  std::size_t max_connections = 32;
  bool allow_insecure_http = false;  ///< allow http:// to a non-loopback host
  /// Disables TLS certificate verification. Never in production: anyone on the path can
  /// then read the appsecret.
  bool disable_tls_verification_insecure = false;
};

/// Sends requests. Implementations must be safe to call from many threads at once.
class transport {
public:
  virtual ~transport() = default;
  /// Sends `req`; on failure sets ec (transport_errc) and returns an empty response (but
  /// for `failure`, which may say what happened, and `status` for http_status).
  virtual http_response send(const http_request& req, std::error_code& ec) = 0;
};

}  // namespace wechat
