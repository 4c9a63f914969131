// wechat/transport/httplib.hpp - the default transport, on cpp-httplib (Debian's 0.11.4).
// The only header of the library that includes <httplib.h>.
//
// - HTTPS with certificate verification on; the CA bundle is the system's unless
//   ca_file names another (the mock's test CA). Turning verification off takes an option
//   whose name says what it does.
// - Plain http:// only to loopback hosts, unless allow_insecure_http is set: a production
//   appsecret must not cross a network in clear text because of a typo.
// - A pool of keep-alive connections shared by all threads (one httplib::Client holds one
//   connection and serialises its requests), TCP_NODELAY on.
// - Connect and read timeouts; a cap on the response size.
// - With the default base URL, a connection failure is retried once on the fallback
//   host api2.weixin.qq.com.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "wechat/error.hpp"
#include "wechat/transport.hpp"

namespace wechat {

/// The cpp-httplib transport's settings: where WeChat is, trust, timeouts, limits.
struct httplib_transport_options {
  std::string base_url = "https://api.weixin.qq.com";
  /// Tried once when base_url cannot be connected to. Empty: no fallback. By default
  /// set only when base_url is WeChat's default host.
  std::string fallback_base_url = "https://api2.weixin.qq.com";
  std::string ca_file;  ///< PEM bundle to trust instead of the system's; empty: system's
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds read_timeout{5000};
  std::size_t max_response_bytes = 1 << 20;
  std::size_t max_connections = 32;  ///< keep-alive connections kept per host
  bool allow_insecure_http = false;  ///< allow http:// to a non-loopback host
  /// Disables TLS certificate verification. Never in production: anyone on the path can
  /// then read the appsecret.
  bool disable_tls_verification_insecure = false;
};

namespace detail {

struct parsed_url {
  std::string scheme, host;
  int port = 0;
};

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

inline bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// A pool of keep-alive clients for one base URL.
class client_pool {
public:
  client_pool(const std::string& url, const httplib_transport_options& o) : url_(url), opt_(o) {}

  http_response send(const http_request& req, std::error_code& ec) {
    std::unique_ptr<httplib::Client> c = acquire();
    httplib::Request r;
    r.method = req.method;
    r.path = req.target;
    r.body = req.body;
    if (!req.content_type.empty()) r.headers.emplace("Content-Type", req.content_type);
    r.headers.emplace("Accept", "application/json");
    std::string body;
    bool too_large = false;
    const std::size_t cap = opt_.max_response_bytes;
    r.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      if (body.size() + n > cap) {
        too_large = true;
        return false;
      }
      body.append(data, n);
      return true;
    };
    const auto start = std::chrono::steady_clock::now();
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    const bool sent = c->send(r, res, err);  // the non-const overload: no copy of the request
    http_response out;
    if (!sent) {
      const auto took = std::chrono::steady_clock::now() - start;
      if (too_large)
        ec = transport_errc::response_too_large;
      else if (err == httplib::Error::Connection || err == httplib::Error::BindIPAddress)
        ec = transport_errc::connect_failed;
      else if (err == httplib::Error::ConnectionTimeout)
        ec = transport_errc::timeout;
      else if (err == httplib::Error::SSLConnection ||
               err == httplib::Error::SSLServerVerification ||
               err == httplib::Error::SSLLoadingCerts)
        ec = transport_errc::tls_failed;
      else if (err == httplib::Error::Read)
        ec = took + std::chrono::milliseconds(50) >= opt_.read_timeout
                 ? transport_errc::timeout
                 : transport_errc::connection_closed;
      else
        ec = transport_errc::failed;
      return out;  // the connection is broken: do not return it to the pool
    }
    out.status = res.status;
    out.body = std::move(body);
    out.content_type = res.get_header_value("Content-Type");
    release(std::move(c));
    if (out.status < 200 || out.status > 299) ec = transport_errc::http_status;
    return out;
  }

private:
  std::unique_ptr<httplib::Client> acquire() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<httplib::Client>(url_);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    const auto ct = opt_.connect_timeout.count(), rt = opt_.read_timeout.count();
    c->set_connection_timeout(ct / 1000, (ct % 1000) * 1000);
    c->set_read_timeout(rt / 1000, (rt % 1000) * 1000);
    c->set_write_timeout(rt / 1000, (rt % 1000) * 1000);
    if (!opt_.ca_file.empty()) c->set_ca_cert_path(opt_.ca_file.c_str());
    c->enable_server_certificate_verification(!opt_.disable_tls_verification_insecure);
    return c;
  }
  void release(std::unique_ptr<httplib::Client> c) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.size() < opt_.max_connections) idle_.push_back(std::move(c));
  }

  std::string url_;
  httplib_transport_options opt_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<httplib::Client>> idle_;
};

}  // namespace detail

/// The default transport. Thread safe; share one per process (or per host).
class httplib_transport final : public transport {
public:
  /// Validates the options. Errors: transport_errc::invalid_url, insecure_url.
  static std::shared_ptr<httplib_transport> create(httplib_transport_options o,
                                                   std::error_code& ec) {
    ec.clear();
    detail::parsed_url u;
    if (!detail::parse_base_url(o.base_url, u)) {
      ec = transport_errc::invalid_url;
      return nullptr;
    }
    if (u.scheme == "http" && !detail::is_loopback_host(u.host) && !o.allow_insecure_http) {
      ec = transport_errc::insecure_url;
      return nullptr;
    }
    if (o.base_url.rfind("https://api.weixin.qq.com", 0) != 0) o.fallback_base_url.clear();
    return std::shared_ptr<httplib_transport>(new httplib_transport(std::move(o)));
  }

  /// Throwing form of create().
  static std::shared_ptr<httplib_transport> create(httplib_transport_options o = {}) {
    std::error_code ec;
    auto t = create(std::move(o), ec);
    throw_if_error(ec, "httplib_transport");
    return t;
  }

  http_response send(const http_request& req, std::error_code& ec) override {
    ec.clear();
    http_response r = primary_.send(req, ec);
    if (ec == transport_errc::connect_failed && fallback_) {
      ec.clear();
      r = fallback_->send(req, ec);
    }
    return r;
  }

  const httplib_transport_options& options() const noexcept { return opt_; }

private:
  explicit httplib_transport(httplib_transport_options o)
      : opt_(std::move(o)), primary_(strip_slash(opt_.base_url), opt_) {
    if (!opt_.fallback_base_url.empty())
      fallback_ = std::make_unique<detail::client_pool>(strip_slash(opt_.fallback_base_url), opt_);
  }
  static std::string strip_slash(std::string s) {
    if (!s.empty() && s.back() == '/') s.pop_back();
    return s;
  }

  httplib_transport_options opt_;
  detail::client_pool primary_;
  std::unique_ptr<detail::client_pool> fallback_;
};

}  // namespace wechat
