// wechat/transport/httplib.hpp - the default transport, on cpp-httplib (Debian's 0.11.4).
// The only header of the library that includes <httplib.h>.
//
// - HTTPS with certificate verification on; the CA bundle is the system's unless
//   ca_file names another (the mock's test CA). Turning verification off takes an option
//   whose name says what it does. TLS 1.2 at least, and the host must be named in the
//   certificate's subjectAltName (not only its CN): detail::harden_tls, on cpp-httplib's
//   OpenSSL backend (the only one this header builds with).
// - Plain http:// only to loopback hosts (detail::is_loopback_host: localhost, or an
//   address literal in 127.0.0.0/8 or ::1), unless allow_insecure_http is set: a
//   production appsecret must not cross a network in clear text because of a typo.
// - A pool of keep-alive connections shared by all threads (one httplib::Client holds one
//   connection and serialises its requests), TCP_NODELAY on.
// - Connect and read timeouts; a cap on the response size.
// - With the default base URL (exactly https://api.weixin.qq.com, port 443), a connection
//   failure is retried once on the fallback host api2.weixin.qq.com.
// - A failed send says which host and why in http_response::failure (so in
//   error_detail::cause and the exception's text): a name that does not resolve, a port
//   refused, the certificate's verification error, the timeout that ran out.
#pragma once

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "wechat/detail/connect_failure.hpp"
#include "wechat/detail/http_url.hpp"
#include "wechat/detail/net.hpp"
#include "wechat/detail/tls.hpp"
#include "wechat/error.hpp"
#include "wechat/transport.hpp"

namespace wechat {

/// The cpp-httplib transport's settings (http_transport_options, in wechat/transport.hpp).
using httplib_transport_options = http_transport_options;

namespace detail {

// The SSL_CTX under a client, whichever cpp-httplib: 0.11.x calls it ssl_context(), later
// releases tls_context() (an opaque handle that is an SSL_CTX* on the OpenSSL backend, the
// only backend this library builds with). nullptr for a plain-http client.
template <class C>
auto ssl_ctx_of(C& c, int) -> decltype(c.ssl_context(), static_cast<SSL_CTX*>(nullptr)) {
  return c.ssl_context();
}
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT  // with another TLS backend no overload matches: no build
template <class C>
auto ssl_ctx_of(C& c, long) -> decltype(c.tls_context(), static_cast<SSL_CTX*>(nullptr)) {
  return static_cast<SSL_CTX*>(c.tls_context());
}
#endif

// cpp-httplib after 0.11 reports a host name mismatch apart from a chain failure.
template <class E, class = void> struct has_hostname_error : std::false_type {};
template <class E>
struct has_hostname_error<E, std::void_t<decltype(E::SSLServerHostnameVerification)>>
    : std::true_type {};
template <class E> bool is_hostname_error(E err) {
  if constexpr (has_hostname_error<E>::value)
    return err == E::SSLServerHostnameVerification;
  else
    return false;
}

// The certificate verification result cpp-httplib 0.11.x keeps in the client (later
// releases give it in the Result only: send_request below).
template <class C>
auto verify_result_of(C& c, int) -> decltype(long(c.get_openssl_verify_result())) {
  return c.get_openssl_verify_result();
}
template <class C> long verify_result_of(C&, long) {
  return 0;
}

// Sends `r` on `c`: true when an answer came (in `res`); otherwise `err` and, for a TLS
// failure, what OpenSSL said. cpp-httplib after 0.11 hands the TLS backend's error over in
// the Result only (the verification result for a refused certificate, else OpenSSL's
// error code), so that form is used there, at the cost of a copy of the request.
template <class C>
auto send_request(C& c, httplib::Request& r, httplib::Response& res, httplib::Error& err,
                  tls_failure& tls, int)
    -> decltype(c.send(std::as_const(r)).ssl_backend_error(), bool()) {
  auto result = c.send(std::as_const(r));  // auto: 0.11's Result has no ssl_backend_error()
  err = result.error();
  if (result) {
    res = std::move(*result);
    return true;
  }
  const unsigned long code = result.ssl_backend_error();
  if (code != 0 && ERR_GET_LIB(code) == 0)  // a small number: X509_V_ERR_*
    tls.verify_result = static_cast<long>(code);
  else
    tls.ssl_error = code;
  return false;
}
// cpp-httplib 0.11.x: the verification result is kept in the client; a handshake's error
// is left in this thread's OpenSSL error queue (emptied first: only this send's is read).
template <class C>
bool send_request(C& c, httplib::Request& r, httplib::Response& res, httplib::Error& err,
                  tls_failure& tls, long) {
  ERR_clear_error();
  const bool sent = c.send(r, res, err);  // the non-const overload: no copy of the request
  if (!sent) {
    if (err == httplib::Error::SSLServerVerification || is_hostname_error(err))
      tls.verify_result = verify_result_of(c, 0);
    tls.ssl_error = ERR_peek_error();  // the first error is the cause; later ones followed
    ERR_clear_error();
  }
  return sent;
}

// A pool of keep-alive clients for one base URL.
class client_pool {
public:
  client_pool(const std::string& url, const httplib_transport_options& o) : url_(url), opt_(o) {
    if (parse_base_url(url, where_) && where_.scheme == "https") tls_host_ = where_.host;
    name_ = host_port(where_);
  }

  http_response send(const http_request& req, std::error_code& ec) {
    std::unique_ptr<httplib::Client> c = acquire();
    if (!c) {
      ec = transport_errc::tls_failed;  // OpenSSL refused the TLS settings: no connection
      http_response out;
      out.failure = name_ + ": TLS: OpenSSL refused the client's settings (TLS 1.2 minimum, "
                            "host name check)";
      return out;
    }
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
    tls_failure tls;
    const bool sent = send_request(*c, r, res, err, tls, 0);
    http_response out;
    if (!sent) {
      const auto took = std::chrono::steady_clock::now() - start;
      const auto ms = [](std::chrono::milliseconds t) { return std::to_string(t.count()); };
      std::string why;
      if (too_large) {
        ec = transport_errc::response_too_large;
        why = "the response is larger than max_response_bytes, " + std::to_string(cap) + " bytes";
      } else if (err == httplib::Error::Connection) {
        ec = transport_errc::connect_failed;
        // A failure that took the whole connect_timeout is not tried again to find out why
        // (a hanging DNS server or a host that drops packets would double the wait).
        why = took + std::chrono::milliseconds(50) >= opt_.connect_timeout
                  ? "no connection within the connect_timeout, " + ms(opt_.connect_timeout) + " ms"
                  : connect_failure(
                        where_, std::min(opt_.connect_timeout, std::chrono::milliseconds(1000)));
      } else if (err == httplib::Error::BindIPAddress) {
        ec = transport_errc::connect_failed;
        why = "could not bind the local address";
      } else if (err == httplib::Error::ConnectionTimeout) {
        ec = transport_errc::timeout;
        why = "no connection within the connect_timeout, " + ms(opt_.connect_timeout) + " ms";
      } else if (err == httplib::Error::SSLConnection ||
                 err == httplib::Error::SSLServerVerification ||
                 err == httplib::Error::SSLLoadingCerts || is_hostname_error(err)) {
        ec = transport_errc::tls_failed;
        if (is_hostname_error(err) && tls.verify_result == X509_V_OK)
          tls.verify_result = X509_V_ERR_HOSTNAME_MISMATCH;
        const tls_step step = err == httplib::Error::SSLLoadingCerts ? tls_step::load_certs
                              : err == httplib::Error::SSLConnection ? tls_step::handshake
                                                                     : tls_step::verify;
        why = tls_failure_text(step, tls, where_.host, opt_.ca_file);
      } else if (err == httplib::Error::Read) {
        const bool timed_out = took + std::chrono::milliseconds(50) >= opt_.read_timeout;
        ec = timed_out ? transport_errc::timeout : transport_errc::connection_closed;
        why = timed_out ? "no answer within the read_timeout, " + ms(opt_.read_timeout) + " ms"
                        : "the connection closed after " +
                              ms(std::chrono::duration_cast<std::chrono::milliseconds>(took)) +
                              " ms, before a complete response";
      } else if (err == httplib::Error::Write) {
        ec = transport_errc::failed;
        why = "the connection closed while the request was sent";
      } else {
        ec = transport_errc::failed;
        why = "cpp-httplib error: " + httplib::to_string(err);
      }
      out.failure = name_ + ": " + why;
      return out;  // the connection is broken: do not return it to the pool
    }
    out.status = res.status;
    out.body = std::move(body);
    out.content_type = res.get_header_value("Content-Type");
    release(std::move(c));
    if (out.status < 200 || out.status > 299) {
      ec = transport_errc::http_status;
      out.failure = name_ + ": answered HTTP " + std::to_string(out.status);
    }
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
    if (!tls_host_.empty() &&
        !harden_tls(ssl_ctx_of(*c, 0), tls_host_, !opt_.disable_tls_verification_insecure))
      return nullptr;
    return c;
  }
  void release(std::unique_ptr<httplib::Client> c) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.size() < opt_.max_connections) idle_.push_back(std::move(c));
  }

  std::string url_;
  parsed_url where_;      ///< url_, read
  std::string name_;      ///< "host:port", as failures name it
  std::string tls_host_;  ///< the host to verify (no brackets); empty for http://
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
    ec = detail::check_base_urls(o.base_url, o.fallback_base_url, o.allow_insecure_http);
    if (ec) return nullptr;
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
      std::string first = std::move(r.failure);
      r = fallback_->send(req, ec);
      if (ec) r.failure = first + "; then " + r.failure;  // both hosts, in the order tried
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
