// wechat/transport.hpp - the tiny HTTP interface the client speaks through.
//
// A transport sends one request to the configured WeChat host and returns the response,
// or sets a transport_errc. The default implementation is transport/httplib.hpp (the only
// header that includes <httplib.h>); tests and unusual deployments can supply their own.
// A round trip costs far more than the virtual call.
#pragma once

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

/// Sends requests. Implementations must be safe to call from many threads at once.
class transport {
public:
  virtual ~transport() = default;
  /// Sends `req`; on failure sets ec (transport_errc) and returns an empty response (but
  /// for `failure`, which may say what happened, and `status` for http_status).
  virtual http_response send(const http_request& req, std::error_code& ec) = 0;
};

}  // namespace wechat
