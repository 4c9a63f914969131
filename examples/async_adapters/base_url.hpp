// examples/async_adapters/base_url.hpp - the check of the base URL that both adapters make
// at construction, as the library's transports do.
#pragma once

#include <string>

#include "wechat/detail/net.hpp"
#include "wechat/error.hpp"

namespace wechat::examples {

struct checked_url {
  std::string scheme;  ///< "https" or "http"
  std::string name;    ///< "host:port", as http_response::failure names the host
};

/// Accepts "https://host[:port]", and "http://host[:port]" for a loopback host only: the
/// appsecret travels in the query. Throws wechat::error: transport_errc::invalid_url, or
/// insecure_url.
inline checked_url check_base_url(const std::string& url, const char* who) {
  const auto sep = url.find("://");
  const std::string scheme = sep == std::string::npos ? "" : url.substr(0, sep);
  std::string authority = sep == std::string::npos ? "" : url.substr(sep + 3);
  if (!authority.empty() && authority.back() == '/') authority.pop_back();
  const auto close = authority.rfind(']');  // [::1]:8080
  const auto colon = authority.find(':', close == std::string::npos ? 0 : close);
  const std::string host = authority.substr(0, colon);
  if ((scheme != "https" && scheme != "http") || host.empty() ||
      authority.find_first_of("/?#@") != std::string::npos)
    throw_if_error(transport_errc::invalid_url, who);
  if (scheme == "http" && !detail::is_loopback_host(host))
    throw_if_error(transport_errc::insecure_url, who);
  if (colon == std::string::npos) authority += scheme == "https" ? ":443" : ":80";
  return {scheme, authority};
}

}  // namespace wechat::examples
