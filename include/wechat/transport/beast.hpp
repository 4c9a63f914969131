// wechat/transport/beast.hpp - the default asynchronous transport (wechat::async_transport),
// on Boost.Beast and Boost.Asio (Debian 12's Boost 1.74, headers only) with OpenSSL. The
// only header of the library that includes Boost.
//
// It keeps the rules of the sync transport (wechat/transport/httplib.hpp), through the same
// code where there is code to share (detail/http_url.hpp, detail/tls.hpp,
// detail/connect_failure.hpp):
// - HTTPS with certificate verification on (the system's CAs, or ca_file), TLS 1.2 at
//   least, the host checked against the certificate's subjectAltName (detail::harden_tls),
//   SNI set for a host name.
// - Plain http:// only to loopback hosts unless allow_insecure_http (create() refuses it).
// - Connect and read timeouts; a cap on the response size.
// - Pooled keep-alive connections, TCP_NODELAY on. A request never waits for another:
//   with no idle connection it opens a new one. Idle connections are reused newest first;
//   past max_connections idle per host, those idle for a second are closed (a burst's
//   connections serve the requests that follow it instead of being closed and reopened). A
//   pooled connection that the server closed while it was idle is not reused (it is
//   readable: checked before reuse), and a request whose write fails on a reused
//   connection is sent once more on a fresh one. A request written is never sent again
//   (the server may have spent its code), whatever happens to the read.
// - A non-2xx answer is transport_errc::http_status, with the status.
// - With the default base URL (exactly https://api.weixin.qq.com, port 443), a failure to
//   connect is retried once on the fallback host api2.weixin.qq.com; never after the
//   request was written.
// - http_response::failure says which host and why, never the target (its query carries
//   the appsecret).
//
// And the contract of wechat/async/transport.hpp: nothing blocks (the DNS lookup is Asio's
// async_resolve, on a thread of Asio's that a transport destroyed mid-lookup waits for; a
// host given as an IP address is connected to without one), a handler never runs inside
// the call that handed it over, async_send's handler runs exactly once, every call is
// safe from any thread (all state is touched from one thread at a time: the transport's
// own loop thread, or a strand of the caller's io_context). send_options::timeout bounds the
// whole request, and connect_timeout and read_timeout each step within it;
// send_options::cancel aborts the request, whose handler then gets transport_errc::failed
// ("... the request was cancelled").
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "wechat/async/result.hpp"
#include "wechat/async/transport.hpp"
#include "wechat/detail/connect_failure.hpp"
#include "wechat/detail/http_url.hpp"
#include "wechat/detail/net.hpp"
#include "wechat/detail/tls.hpp"
#include "wechat/error.hpp"
#include "wechat/transport.hpp"

namespace wechat {

/// The Boost.Beast transport's settings: http_transport_options (wechat/transport.hpp),
/// the same fields and defaults as httplib_transport_options.
using beast_transport_options = http_transport_options;

namespace detail::beast_impl {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
/// Where a transport's state lives: the io_context's own executor when the transport runs
/// its own io_context (one thread runs it: a strand's lock and queue would add nothing but
/// cost), a strand of it on the caller's io_context (which any number of threads may run).
/// Sockets and timers take it type-erased; posts go through state::post, typed.
using executor_type = asio::any_io_executor;
using strand_type = asio::strand<asio::io_context::executor_type>;
using stream_type = asio::ssl::stream<tcp::socket>;
using steady_clock = std::chrono::steady_clock;

// One connection: the TCP socket, with a TLS session over it for https only (a TLS stream
// and its buffers are about 79 KB: a plain-http connection does not pay for one).
struct connection {
  connection(const executor_type& ex, asio::ssl::context* tls_context) {
    if (tls_context != nullptr)
      tls.emplace(ex, *tls_context);
    else
      plain.emplace(ex);
  }
  std::optional<stream_type> tls;
  std::optional<tcp::socket> plain;
  tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
  void close() {
    boost::system::error_code ignored;
    socket().close(ignored);
  }
};

// An idle keep-alive connection, and since when.
struct idle_connection {
  std::shared_ptr<connection> conn;
  steady_clock::time_point since;
};

// One host (base_url, or the fallback): where it is, its TLS settings, its idle connections.
struct host_pool {
  parsed_url where;
  std::string name;  ///< "host:port", as failures name it
  std::string host_header;
  bool tls = false;
  /// The host is an IP address: connected to without a DNS lookup (and so without Asio's
  /// resolver thread, which a transport destroyed mid-lookup would wait for).
  std::optional<tcp::endpoint> address;
  std::unique_ptr<asio::ssl::context> ssl;  ///< https only
  std::string setup_failure;  ///< non-empty: TLS could not be set up; every request fails
  /// Oldest first: reused from the back (the newest, the likeliest still open), trimmed
  /// from the front.
  std::deque<idle_connection> idle;
};

inline host_pool make_host_pool(const std::string& url, const beast_transport_options& o) {
  host_pool p;
  parse_base_url(url, p.where);  // checked by create()
  p.name = host_port(p.where);
  p.tls = p.where.scheme == "https";
  const bool v6 = p.where.host.find(':') != std::string::npos;
  p.host_header = v6 ? "[" + p.where.host + "]" : p.where.host;
  if (p.where.port != (p.tls ? 443 : 80)) p.host_header += ":" + std::to_string(p.where.port);
  boost::system::error_code not_ip;
  const auto ip = asio::ip::make_address(p.where.host, not_ip);
  if (!not_ip) p.address.emplace(ip, static_cast<unsigned short>(p.where.port));
  if (!p.tls) return p;
  p.ssl = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* ctx = p.ssl->native_handle();
  const bool verify = !o.disable_tls_verification_insecure;
  if (verify) {
    const bool loaded = o.ca_file.empty()
                            ? SSL_CTX_set_default_verify_paths(ctx) == 1
                            : SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) == 1;
    ERR_clear_error();
    if (!loaded)
      p.setup_failure =
          p.name + ": " + tls_failure_text(tls_step::load_certs, {}, p.where.host, o.ca_file);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!harden_tls(ctx, p.where.host, verify))
    p.setup_failure = p.name + ": TLS: OpenSSL refused the client's settings (TLS 1.2 minimum, "
                               "host name check)";
  return p;
}

// What every request shares: the executor all state lives on, the options, the hosts.
struct state {
  /// one_thread: the io_context is the transport's own, run by its thread alone.
  state(asio::io_context& ioc, bool one_thread, beast_transport_options o)
      : loop(ioc.get_executor()),
        strand(one_thread ? std::nullopt : std::optional<strand_type>(asio::make_strand(ioc))),
        ex(strand ? executor_type(*strand) : executor_type(loop)), opt(std::move(o)),
        trim_timer(ex) {
    hosts.push_back(make_host_pool(opt.base_url, opt));
    if (!opt.fallback_base_url.empty()) hosts.push_back(make_host_pool(opt.fallback_base_url, opt));
  }
  asio::io_context::executor_type loop;
  std::optional<strand_type> strand;  ///< on a caller's io_context only
  executor_type ex;  ///< the strand, or the loop: all state is touched from it only
  /// Runs f on ex, never inside this call. Typed: posting through the type-erased ex
  /// allocated twice per call (asio::post's require and prefer, for a strand).
  template <class F> void post(F&& f) const {
    if (strand)
      asio::post(*strand, std::forward<F>(f));
    else
      asio::post(loop, std::forward<F>(f));
  }
  beast_transport_options opt;
  std::vector<host_pool> hosts;  ///< [0] base_url, [1] the fallback if any
  bool closed = false;           ///< the transport is gone: keep no connection idle
  /// Idle connections past max_connections stay this long after their last answer: the
  /// requests that follow a burst find them (closing them at once made the next requests
  /// reopen as many: 0.35 new connections per login at 1,024 in flight).
  static constexpr std::chrono::milliseconds idle_trim{1000};
  asio::steady_timer trim_timer;  ///< armed while a host has more than max_connections idle
  bool trim_armed = false;
};

// Closes the idle connections past max_connections that have been idle for idle_trim, the
// oldest first, and re-arms while some host still has more. On the state's executor.
inline void trim_idle(const std::shared_ptr<state>& st) {
  if (st->trim_armed || st->closed) return;
  steady_clock::time_point next{};
  const auto now = steady_clock::now();
  for (auto& h : st->hosts) {
    while (h.idle.size() > st->opt.max_connections &&
           h.idle.front().since + state::idle_trim <= now) {
      h.idle.front().conn->close();
      h.idle.pop_front();
    }
    if (h.idle.size() > st->opt.max_connections) {
      const auto due = h.idle.front().since + state::idle_trim;
      if (next == steady_clock::time_point{} || due < next) next = due;
    }
  }
  if (next == steady_clock::time_point{}) return;
  st->trim_armed = true;
  st->trim_timer.expires_at(next);
  st->trim_timer.async_wait([weak = std::weak_ptr<state>(st)](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto s = weak.lock()) {
      s->trim_armed = false;
      trim_idle(s);
    }
  });
}

inline std::string ms_text(std::chrono::milliseconds t) {
  return std::to_string(t.count()) + " ms";
}

// One request, from async_send to its handler. Lives on the state's executor; owned by the
// completion handlers of its pending operations.
class request_op : public std::enable_shared_from_this<request_op> {
public:
  request_op(std::shared_ptr<state> st, http_request req, std::chrono::milliseconds timeout,
             send_handler h)
      : st_(std::move(st)), handler_(std::move(h)), timer_(st_->ex), timeout_(timeout) {
    if (timeout_.count() > 0) deadline_ = steady_clock::now() + timeout_;
    request_.method_string(req.method);
    request_.target(req.target);
    request_.version(11);
    request_.set(http::field::accept, "application/json");
    if (!req.content_type.empty()) request_.set(http::field::content_type, req.content_type);
    request_.body() = std::move(req.body);
    request_.keep_alive(true);
    request_.prepare_payload();
  }

  /// Set by async_send before start() is posted, and left alone after (a cancel may run
  /// before the assignment ends): dropped with the op. Its callback holds a weak pointer.
  cancel_token::registration registration;

  void start() {
    if (done_) return;  // cancelled before it started
    begin_host(0);
  }

  const std::shared_ptr<state>& shared_state() const { return st_; }

  void cancel() {
    if (done_) return;
    stop_io();
    fail(transport_errc::failed, "the request was cancelled");
  }

private:
  enum class step { connect, handshake, exchange };

  host_pool& host() { return st_->hosts[host_]; }
  std::shared_ptr<request_op> self() { return shared_from_this(); }

  void begin_host(std::size_t i) {
    host_ = i;
    if (!host().setup_failure.empty()) {
      fail_with_text(transport_errc::tls_failed, host().setup_failure);
      return;
    }
    request_.set(http::field::host, host().host_header);
    auto& idle = host().idle;
    while (!idle.empty()) {
      auto c = std::move(idle.back().conn);
      idle.pop_back();
      if (!still_open(*c)) {  // the server closed it while it was idle
        c->close();
        continue;
      }
      conn_ = std::move(c);
      reused_ = true;
      ++attempt_;
      send();
      return;
    }
    connect();
  }

  // An idle connection is still open when nothing is readable on it: the server's FIN (or
  // anything it sent unasked) makes it readable, and such a connection is not reused.
  static bool still_open(connection& c) {
    pollfd p{};
    p.fd = c.socket().native_handle();
    p.events = POLLIN;
    return p.fd >= 0 && ::poll(&p, 1, 0) == 0;
  }

  // A new connection (and resolver): the handlers of an attempt given up (a timeout, the
  // fallback) still hold the old ones, and find attempt_ moved on.
  void connect() {
    reused_ = false;
    ++attempt_;
    conn_ = std::make_shared<connection>(st_->ex, host().ssl.get());
    step_ = step::connect;
    arm(st_->opt.connect_timeout);
    if (host().address) {
      resolver_.reset();
      conn_->socket().async_connect(*host().address, [s = self(), c = conn_, a = attempt_](
                                                         const boost::system::error_code& e) {
        if (s->live(a)) s->on_connect(e);
      });
      return;
    }
    resolver_ = std::make_shared<tcp::resolver>(st_->ex);
    const auto& w = host().where;
    resolver_->async_resolve(
        w.host, std::to_string(w.port),
        [s = self(), r = resolver_, a = attempt_](const boost::system::error_code& ec,
                                                  const tcp::resolver::results_type& e) {
          if (s->live(a)) s->on_resolve(ec, e);
        });
  }

  bool live(std::uint64_t attempt) const { return !done_ && attempt == attempt_; }

  void on_resolve(const boost::system::error_code& ec, const tcp::resolver::results_type& r) {
    if (ec) {
      connect_failed("DNS lookup failed: " + ec.message());
      return;
    }
    asio::async_connect(conn_->socket(), r,
                        [s = self(), c = conn_, a = attempt_](const boost::system::error_code& e,
                                                              const tcp::endpoint&) {
                          if (s->live(a)) s->on_connect(e);
                        });
  }

  void on_connect(const boost::system::error_code& ec) {
    if (ec) {
      connect_failed(ec.category() == boost::system::system_category()
                         ? connect_error_text(ec.value(), st_->opt.connect_timeout)
                         : "could not connect: " + ec.message());
      return;
    }
    boost::system::error_code ignored;
    conn_->socket().set_option(tcp::no_delay(true), ignored);
    if (!host().tls) {
      send();
      return;
    }
    step_ = step::handshake;
    SSL* ssl = conn_->tls->native_handle();
    in6_addr ip{};
    const std::string& h = host().where.host;
    const bool is_ip =
        inet_pton(AF_INET, h.c_str(), &ip) == 1 || inet_pton(AF_INET6, h.c_str(), &ip) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(ssl, h.c_str());  // SNI names a host, never an address
    conn_->tls->async_handshake(stream_type::client, [s = self(), c = conn_, a = attempt_](
                                                         const boost::system::error_code& e) {
      if (s->live(a)) s->on_handshake(e);
    });
  }

  void on_handshake(const boost::system::error_code& ec) {
    if (ec) {
      tls_failure t;
      t.verify_result = SSL_get_verify_result(conn_->tls->native_handle());
      if (ec.category() == asio::error::get_ssl_category())
        t.ssl_error = static_cast<unsigned long>(ec.value());
      ERR_clear_error();
      conn_->close();
      const tls_step stepped =
          t.verify_result != X509_V_OK ? tls_step::verify : tls_step::handshake;
      fail(transport_errc::tls_failed,
           tls_failure_text(stepped, t, host().where.host, st_->opt.ca_file));
      return;
    }
    send();
  }

  void send() {
    step_ = step::exchange;
    arm(st_->opt.read_timeout);
    buffer_.clear();
    parser_.emplace();
    parser_->body_limit(st_->opt.max_response_bytes);
    parser_->header_limit(64 * 1024);
    exchange_start_ = steady_clock::now();
    with_stream([this](auto& s) {
      http::async_write(
          s, request_,
          [me = self(), c = conn_, a = attempt_](const boost::system::error_code& ec, std::size_t) {
            if (me->live(a)) me->on_write(ec);
          });
    });
  }

  void on_write(const boost::system::error_code& ec) {
    if (ec) {
      if (retry_stale()) return;
      conn_->close();
      fail(transport_errc::failed, "the connection closed while the request was sent");
      return;
    }
    // The head first, then the body: Beast 1.74's eager parse (what http::async_read does)
    // drops the body_limit error of a Content-Length found in the head.
    with_stream([this](auto& s) {
      http::async_read_header(
          s, buffer_, *parser_,
          [me = self(), c = conn_, a = attempt_](const boost::system::error_code& e, std::size_t) {
            if (me->live(a)) me->on_read(e, true);
          });
    });
  }

  void on_read(const boost::system::error_code& ec, bool head_only) {
    if (ec) {
      // Never sent again once written: the server may have acted on it (a code spent).
      conn_->close();
      if (ec == http::error::body_limit || ec == http::error::buffer_overflow) {
        fail(transport_errc::response_too_large,
             "the response is larger than max_response_bytes, " +
                 std::to_string(st_->opt.max_response_bytes) + " bytes");
      } else if (ec == http::error::end_of_stream || ec == asio::error::eof ||
                 ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                 ec == http::error::partial_message || ec == asio::ssl::error::stream_truncated) {
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            steady_clock::now() - exchange_start_);
        fail(transport_errc::connection_closed,
             "the connection closed after " + ms_text(took) + ", before a complete response");
      } else {
        fail(transport_errc::failed, "bad HTTP response: " + ec.message());
      }
      return;
    }
    if (head_only && !parser_->is_done()) {
      with_stream([this](auto& s) {
        http::async_read(s, buffer_, *parser_,
                         [me = self(), c = conn_, a = attempt_](const boost::system::error_code& e,
                                                                std::size_t) {
                           if (me->live(a)) me->on_read(e, false);
                         });
      });
      return;
    }
    auto& res = parser_->get();
    http_response out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    const bool keep = parser_->keep_alive() && buffer_.size() == 0;
    release(keep);
    std::error_code e;
    if (out.status < 200 || out.status > 299) {
      e = transport_errc::http_status;
      out.failure = host().name + ": answered HTTP " + std::to_string(out.status);
    }
    finish(std::move(out), e);
  }

  // A reused connection whose write failed: the server closed it while it was idle, and
  // did not read the request. Sent again, once, on a fresh connection.
  bool retry_stale() {
    if (!reused_ || retried_stale_ || (parser_ && parser_->got_some()) || buffer_.size() != 0)
      return false;
    retried_stale_ = true;
    conn_->close();
    connect();
    return true;
  }

  template <class F> void with_stream(F&& f) {
    if (conn_->tls)
      f(*conn_->tls);
    else
      f(*conn_->plain);
  }

  // Back to the pool: at most max_connections idle for long (trim_idle closes the rest).
  void release(bool keep) {
    auto c = std::move(conn_);
    if (!keep || st_->closed) {
      c->close();
      return;
    }
    host().idle.push_back(idle_connection{std::move(c), steady_clock::now()});
    if (host().idle.size() > st_->opt.max_connections) trim_idle(st_);
  }

  // The timer for this step: `budget` (connect_timeout or read_timeout), cut to what is
  // left of send_options::timeout when that was given (so a long call deadline keeps the
  // transport's own timeouts, and a connect timeout still means connect_failed).
  void arm(std::chrono::milliseconds budget) {
    const auto step_end = steady_clock::now() + budget;
    timer_.expires_at(deadline_ && *deadline_ < step_end ? *deadline_ : step_end);
    const std::uint64_t gen = ++gen_;
    timer_.async_wait([s = self(), gen](const boost::system::error_code& ec) {
      if (!ec && gen == s->gen_ && !s->done_) s->on_timeout();
    });
  }

  void on_timeout() {
    stop_io();
    if (deadline_ && steady_clock::now() >= *deadline_) {
      fail(transport_errc::timeout, "no answer within the request's timeout, " + ms_text(timeout_));
    } else if (step_ == step::connect) {
      connect_failed("no connection within the connect_timeout, " +
                     ms_text(st_->opt.connect_timeout));
    } else if (step_ == step::handshake) {
      fail(transport_errc::timeout,
           "no TLS handshake within the connect_timeout, " + ms_text(st_->opt.connect_timeout));
    } else {
      fail(transport_errc::timeout,
           "no answer within the read_timeout, " + ms_text(st_->opt.read_timeout));
    }
  }

  // The fallback host, if any, is tried once; never after the request was written (on a
  // pooled connection that turned out stale).
  void connect_failed(const std::string& why) {
    if (conn_) conn_->close();
    if (host_ == 0 && st_->hosts.size() > 1 && !retried_stale_) {
      first_failure_ = host().name + ": " + why;
      begin_host(1);
      return;
    }
    fail(transport_errc::connect_failed, why);
  }

  void stop_io() {
    if (resolver_) resolver_->cancel();
    if (conn_) conn_->close();
  }

  void fail(transport_errc e, const std::string& why) {
    fail_with_text(e, host().name + ": " + why);
  }
  void fail_with_text(transport_errc e, std::string text) {
    http_response out;
    out.failure = first_failure_.empty() ? std::move(text) : first_failure_ + "; then " + text;
    finish(std::move(out), e);
  }

  void finish(http_response r, std::error_code ec) {
    if (done_) return;
    done_ = true;
    ++gen_;
    timer_.cancel();
    auto h = std::move(handler_);
    h(std::move(r), ec);
  }

  std::shared_ptr<state> st_;
  send_handler handler_;
  std::shared_ptr<tcp::resolver> resolver_;
  asio::steady_timer timer_;
  std::chrono::milliseconds timeout_;
  std::optional<steady_clock::time_point> deadline_;  ///< send_options::timeout's, when given
  std::uint64_t gen_ = 0;                             ///< the timer's current wait
  std::uint64_t attempt_ = 0;                         ///< the connection's current operations
  http::request<http::string_body> request_;
  std::size_t host_ = 0;
  std::shared_ptr<connection> conn_;
  bool reused_ = false, retried_stale_ = false, done_ = false;
  step step_ = step::connect;
  boost::beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  steady_clock::time_point exchange_start_{};
  std::string first_failure_;  ///< the base URL's connect failure, before the fallback
};

// A timer of post_after_cancellable: cancelled (on the state's executor), it completes at
// once with operation_aborted, dropping its function uncalled, and holds the loop no more.
struct timer_op {
  timer_op(std::shared_ptr<state> s, std::chrono::milliseconds delay)
      : st(std::move(s)), timer(st->ex, delay) {}
  std::shared_ptr<state> st;
  asio::steady_timer timer;
  /// Set once the wait has started; its callback holds a weak pointer.
  cancel_token::registration registration;
  const std::shared_ptr<state>& shared_state() const { return st; }
  void cancel() { timer.cancel(); }
};

}  // namespace detail::beast_impl

/// The asynchronous transport on Boost.Beast. Thread safe; share one per process. See the
/// top of this file for its rules.
class beast_transport final : public async_transport {
public:
  /// Runs its own io_context on a thread of its own, stopped and joined by the destructor
  /// (requests still in flight are dropped, their handlers destroyed uncalled; destroyed
  /// by one of its own handlers, it detaches the thread, which ends the io_context when the
  /// handler has returned). Validates the options. Errors: transport_errc::invalid_url,
  /// insecure_url.
  static std::shared_ptr<beast_transport> create(beast_transport_options o, std::error_code& ec) {
    ec = detail::check_base_urls(o.base_url, o.fallback_base_url, o.allow_insecure_http);
    if (ec) return nullptr;
    auto ioc = std::make_shared<boost::asio::io_context>(1);
    return std::shared_ptr<beast_transport>(
        new beast_transport(std::move(ioc), nullptr, std::move(o)));
  }
  /// Throwing form of create().
  static std::shared_ptr<beast_transport> create(beast_transport_options o = {}) {
    std::error_code ec;
    auto t = create(std::move(o), ec);
    throw_if_error(ec, "beast_transport");
    return t;
  }
  /// Runs on the caller's io_context, which the caller runs (on any number of threads) and
  /// which must outlive the requests in flight. Destroying the transport closes its idle
  /// connections; requests in flight still complete. After a burst left more than
  /// max_connections idle, the pool's trim timer is pending work for up to a second (an
  /// io_context::run() with nothing else to do returns when it has fired). Errors:
  /// invalid_url, insecure_url.
  static std::shared_ptr<beast_transport> create(boost::asio::io_context& ioc,
                                                 beast_transport_options o, std::error_code& ec) {
    ec = detail::check_base_urls(o.base_url, o.fallback_base_url, o.allow_insecure_http);
    if (ec) return nullptr;
    return std::shared_ptr<beast_transport>(new beast_transport(nullptr, &ioc, std::move(o)));
  }
  /// Throwing form of create(ioc, ...).
  static std::shared_ptr<beast_transport> create(boost::asio::io_context& ioc,
                                                 beast_transport_options o = {}) {
    std::error_code ec;
    auto t = create(ioc, std::move(o), ec);
    throw_if_error(ec, "beast_transport");
    return t;
  }

  beast_transport(const beast_transport&) = delete;
  beast_transport& operator=(const beast_transport&) = delete;

  ~beast_transport() override {
    if (!own_) {
      auto st = st_;
      st->post([st] {
        st->closed = true;
        st->trim_timer.cancel();
        for (auto& h : st->hosts) {
          for (auto& c : h.idle)
            c.conn->close();
          h.idle.clear();
        }
      });
      return;
    }
    const bool in_own_call = call_scope::current() == calls_.get();
    calls_.reset();  // after run() returns, the loop thread waits for calls still returning
    work_.reset();
    own_->stop();
    // Destroyed by its own handler (on the loop thread), or inside one of its own calls (a
    // closure destroyed while the call unwinds an exception held the last reference):
    // joining would wait for this very frame. Detached, the thread ends the io_context
    // once the frame has returned.
    if (in_own_call || thread_.get_id() == std::this_thread::get_id())
      thread_.detach();
    else
      thread_.join();
  }

  /// The io_context the transport runs on (its own, or the one given to create()). Work may
  /// be posted to an own io_context, but nothing else may run, poll, stop or restart it,
  /// its own handlers included: the transport's state lives on its executor with no strand
  /// (one thread, no lock), so a second runner would touch it at once, and a stop ends the
  /// transport's loop for good. The reference dies with the transport.
  boost::asio::io_context& context() noexcept { return *ioc_; }
  const beast_transport_options& options() const noexcept { return st_->opt; }

  // A handler may destroy this transport while another thread is still inside one of the
  // three calls below (the loop ran the work it handed over before the call returned).
  // Each call therefore takes its own references first, the call guard and the state, and
  // touches no member after handing work over (to the loop, or to the cancel token in
  // async_send). While a call (or a cancel) holds the guard, the loop thread keeps
  // the io_context (it waits for the guard's end after run() returns): the state and the
  // timers a call releases go before their services, and the io_context never ends inside
  // a call on another thread (ending it destroys dropped requests, whose handlers answer
  // their callers: that belongs on the loop thread, or in the destructor that joins it).
  void async_send(http_request req, send_options opt, send_handler h) override {
    const call_scope scope(calls_);
    const auto st = st_;
    auto op = std::make_shared<detail::beast_impl::request_op>(st, std::move(req), opt.timeout,
                                                               std::move(h));
    if (opt.cancel.can_be_cancelled()) op->registration = cancel_on_loop(opt.cancel, scope, op);
    st->post([op = std::move(op)] { op->start(); });
  }

  void post(unique_function<void()> f) override {
    const call_scope scope(calls_);
    const auto st = st_;
    st->post([f = std::move(f)]() mutable { f(); });
  }

  void post_after(std::chrono::milliseconds delay, unique_function<void()> f) override {
    const call_scope scope(calls_);
    const auto st = st_;
    auto timer = std::make_shared<boost::asio::steady_timer>(st->ex, delay);
    auto& t = *timer;
    t.async_wait(
        [timer = std::move(timer), f = std::move(f)](const boost::system::error_code& ec) mutable {
          if (!ec) f();
        });
  }

  /// Cancelled, the timer is cancelled on the loop: it completes at once, its function
  /// destroyed uncalled, and no longer keeps run() from returning.
  bool post_after_cancellable(std::chrono::milliseconds delay, unique_function<void()> f,
                              const cancel_token& cancel) override {
    if (!cancel.can_be_cancelled()) {
      post_after(delay, std::move(f));
      return false;
    }
    const call_scope scope(calls_);
    auto op = std::make_shared<detail::beast_impl::timer_op>(st_, delay);
    op->timer.async_wait([op, f = std::move(f)](const boost::system::error_code& ec) mutable {
      if (!ec) f();
    });
    // After the wait: a cancel that already happened posts a cancel that finds it. Once
    // the wait is queued nothing is thrown (a throw says `f` was not scheduled): a cancel
    // that cannot be registered (bad_alloc) leaves a timer that runs in its time.
    try {
      op->registration = cancel_on_loop(cancel, scope, op);
    } catch (...) {
      return false;
    }
    return true;
  }

  bool running_in_loop() const noexcept override {
    return ioc_->get_executor().running_in_this_thread();
  }

private:
  beast_transport(std::shared_ptr<boost::asio::io_context> own, boost::asio::io_context* theirs,
                  beast_transport_options o)
      : own_(std::move(own)), ioc_(own_ ? own_.get() : theirs),
        st_(std::make_shared<detail::beast_impl::state>(*ioc_, own_ != nullptr, std::move(o))) {
    if (!own_) return;
    work_.emplace(own_->get_executor());
    calls_ = std::make_shared<call_guard>();
    // The thread holds the io_context too: a transport destroyed by one of its own handlers
    // (on this thread) detaches it, and the io_context ends on this thread once run() has
    // returned and no call on another thread holds the guard any more.
    thread_ = std::thread([ioc = own_, calls_ended = calls_->ended.get_future()] {
      for (;;) {
        try {
          ioc->run();
          break;
        } catch (...) {  // a handler threw: the loop goes on for the others
        }
      }
      calls_ended.wait();
    });
  }

  // Held by the transport and by each call and cancel in progress (own thread only); its
  // end, when the transport is gone and the last of them has returned, lets the loop
  // thread go on.
  struct call_guard {
    std::promise<void> ended;
    call_guard() = default;
    call_guard(const call_guard&) = delete;
    call_guard& operator=(const call_guard&) = delete;
    ~call_guard() { ended.set_value(); }
  };

  // A call or cancel in progress: holds the guard, and marks this thread as inside a call
  // of this transport for the destructor (which must not join then).
  class call_scope {
  public:
    explicit call_scope(std::shared_ptr<call_guard> g) : guard_(std::move(g)), outer_(current()) {
      current() = guard_.get();
    }
    ~call_scope() { current() = outer_; }
    call_scope(const call_scope&) = delete;
    call_scope& operator=(const call_scope&) = delete;
    const std::shared_ptr<call_guard>& guard() const noexcept { return guard_; }
    /// The guard of the innermost call this thread is in (null: none, or not own-thread).
    static const call_guard*& current() noexcept {
      thread_local const call_guard* in = nullptr;
      return in;
    }

  private:
    std::shared_ptr<call_guard> guard_;
    const call_guard* outer_;
  };

  // Runs op->cancel() on the loop when `c` fires. Weak references: an op done (or dropped
  // with the loop) is not kept for it, and a cancel after the transport's own loop ended
  // finds nothing to do.
  template <class Op>
  static cancel_token::registration cancel_on_loop(const cancel_token& c, const call_scope& scope,
                                                   const std::shared_ptr<Op>& op) {
    std::weak_ptr<Op> weak = op;
    std::weak_ptr<call_guard> weak_calls = scope.guard();
    const bool owned = scope.guard() != nullptr;
    return c.on_cancel([weak, weak_calls, owned] {
      const call_scope held(weak_calls.lock());  // ends after the op's reference below
      if (owned && !held.guard()) return;
      if (auto o = weak.lock()) {
        const auto state = o->shared_state();  // released before the guard
        state->post([o = std::move(o)] { o->cancel(); });
      }
    });
  }

  std::shared_ptr<boost::asio::io_context> own_;  ///< null on the caller's io_context
  boost::asio::io_context* ioc_;
  std::shared_ptr<detail::beast_impl::state> st_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::shared_ptr<call_guard> calls_;  ///< null on the caller's io_context
  std::thread thread_;
};

/// An Asio completion token for async_client's calls: `co_await wx->code2session(code,
/// wechat::asio_token(boost::asio::use_awaitable))` in an asio::awaitable, or
/// asio_token(use_future), or asio_token(bind_executor(ex, handler)). The completion
/// signature is void(wechat::result<T>); the handler runs on its associated executor
/// (dispatched from the transport's loop: inline when that is the same io_context).
template <class Inner> struct asio_token_t {
  Inner inner;
  using wechat_completion_adapter =
      void;  // async_client hands it a result (detail::is_completion_adapter)

  template <class T>
  static auto initiate(asio_token_t tok, unique_function<void(result_handler<T>)> start) {
    return boost::asio::async_initiate<Inner, void(result<T>)>(
        [](auto handler, unique_function<void(result_handler<T>)> st) {
          auto ex = boost::asio::get_associated_executor(handler);
          st(result_handler<T>([handler = std::move(handler), ex](result<T> r) mutable {
            boost::asio::dispatch(ex, [handler = std::move(handler), r = std::move(r)]() mutable {
              std::move(handler)(std::move(r));
            });
          }));
        },
        tok.inner, std::move(start));
  }
};

/// Wraps an Asio completion token (use_awaitable, use_future, a bound handler) for
/// async_client.
template <class Inner> asio_token_t<std::decay_t<Inner>> asio_token(Inner&& t) {
  return asio_token_t<std::decay_t<Inner>>{std::forward<Inner>(t)};
}

}  // namespace wechat
