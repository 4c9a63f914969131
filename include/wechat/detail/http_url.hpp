// wechat/detail/http_url.hpp - the base URL rules every transport keeps (the cpp-httplib
// one and the Boost.Beast one): how a base URL is read, which URLs are refused
// (invalid_url, insecure_url), when the api2 fallback applies, and how a failure names
// the host it talked to. No HTTP library here.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "wechat/detail/net.hpp"
#include "wechat/error.hpp"

namespace wechat::detail {

struct parsed_url {
  std::string scheme, host;
  int port = 0;
};

/// Reads "scheme://host[:port][/]" (scheme http or https, an IPv6 host in brackets, no
/// path). False for anything else.
inline bool parse_base_url(const std::string& url, parsed_url& out) {
  const auto sep = url.find("://");
  if (sep == std::string::npos) return false;
  out.scheme = url.substr(0, sep);
  if (out.scheme != "http" && out.scheme != "https") return false;
  std::string rest = url.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) return false;
  std::string port;
  if (rest[0] == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos) return false;
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return false;
      port = rest.substr(close + 2);
    }
  } else {
    const auto colon = rest.find(':');
    out.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (out.host.empty()) return false;
  if (port.empty()) {
    out.port = out.scheme == "https" ? 443 : 80;
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
    out.port = std::stoi(port);
    if (out.port <= 0 || out.port > 65535) return false;
  }
  return true;
}

// "host:port", an IPv6 address in brackets: how a failure names the host it talked to.
inline std::string host_port(const parsed_url& u) {
  const bool v6 = u.host.find(':') != std::string::npos;
  return (v6 ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
}

// Is `u` WeChat's default API host (https, api.weixin.qq.com, port 443), exactly: the
// api2 fallback is for that host only.
inline bool is_wechat_default_host(const parsed_url& u) {
  if (u.scheme != "https" || u.port != 443) return false;
  static constexpr std::string_view name = "api.weixin.qq.com";
  if (u.host.size() != name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = u.host[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != name[i]) return false;
  }
  return true;
}

// A transport's URL checks, done when it is created: base_url must parse (invalid_url)
// and be https unless its host is loopback or allow_insecure_http (insecure_url). The
// fallback is cleared unless base_url is WeChat's default host; a fallback kept gets the
// same checks (it receives the same secrets).
inline std::error_code check_base_urls(const std::string& base_url, std::string& fallback_base_url,
                                       bool allow_insecure_http) {
  const auto check = [&](const parsed_url& u) -> std::error_code {
    if (u.scheme == "http" && !is_loopback_host(u.host) && !allow_insecure_http)
      return transport_errc::insecure_url;
    return {};
  };
  parsed_url u;
  if (!parse_base_url(base_url, u)) return transport_errc::invalid_url;
  if (auto ec = check(u)) return ec;
  if (!is_wechat_default_host(u)) fallback_base_url.clear();
  if (fallback_base_url.empty()) return {};
  parsed_url f;
  if (!parse_base_url(fallback_base_url, f)) return transport_errc::invalid_url;
  return check(f);
}

}  // namespace wechat::detail
