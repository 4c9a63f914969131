// examples/async_adapters/brpc_transport.hpp - wechat::async_transport on brpc's
// brpc::Channel (HTTP) and bthreads. Documentation, not a library header: written against
// Apache brpc 1.17.0 and NOT compiled here (see README.md).
#pragma once

#include <brpc/callback.h>
#include <brpc/channel.h>
#include <brpc/controller.h>
#include <brpc/errno.pb.h>
#include <bthread/bthread.h>
#include <bthread/unstable.h>
#include <butil/errno.h>
#include <butil/time.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "base_url.hpp"
#include "wechat/async/transport.hpp"
#include "wechat/error.hpp"

namespace wechat::examples {

// brpc 1.17.0 checks the certificate chain but not the host name ("TODO: Verify the CNAME"
// in its ssl_helper.cpp); later brpc (commit 436571e7) has VerifyOptions::expected_peer_name,
// which Channel::Init fills from the URL when verify_depth > 0.
template <class V, class = void> struct checks_host_name : std::false_type {};
template <class V>
struct checks_host_name<V, std::void_t<decltype(&V::expected_peer_name)>> : std::true_type {};

class brpc_transport final : public wechat::async_transport {
public:
  /// `base_url`: "https://host[:port]". Throws wechat::error: invalid_url; insecure_url for
  /// http:// to a host that is not loopback; tls_failed on a brpc that cannot check the
  /// certificate's host name, unless `allow_unchecked_host_name_insecure`; failed when
  /// Channel::Init fails.
  explicit brpc_transport(const std::string& base_url,
                          std::chrono::milliseconds default_timeout = std::chrono::seconds(8),
                          std::size_t max_response_bytes = 1 << 20,
                          bool allow_unchecked_host_name_insecure = false)
      : cap_(max_response_bytes) {
    const checked_url u = check_base_url(base_url, "brpc_transport");
    name_ = u.name;
    brpc::ChannelOptions o;
    o.protocol = brpc::PROTOCOL_HTTP;  // default: baidu_std
    // Default 3 retries: a request whose answer was lost would be sent again, and a login
    // code must never be sent twice (the client retries what is safe to retry).
    o.max_retry = 0;
    o.backup_request_ms = -1;     // the default, kept: no second copy of a slow request either
    o.connect_timeout_ms = 3000;  // default 200 ms
    o.timeout_ms = static_cast<int32_t>(default_timeout.count());  // default 500 ms
    if (u.scheme == "https") {
      if (!checks_host_name<brpc::VerifyOptions>::value && !allow_unchecked_host_name_insecure)
        throw_if_error(transport_errc::tls_failed, "brpc_transport: this brpc checks no host name");
      brpc::ChannelSSLOptions* ssl = o.mutable_ssl_options();
      ssl->protocols = "TLSv1.2, TLSv1.3";  // default: TLSv1 and TLSv1.1 too
      ssl->verify.verify_depth = 10;        // default 0: no verification at all; CAs: the system's
    }
    // "rr" over the naming service that the URL's scheme names (http/https: DNS, looked up
    // again every -ns_access_interval seconds) instead of one address resolved here for ever.
    if (channel_.Init(base_url.c_str(), "rr", &o) != 0)
      throw_if_error(transport_errc::failed, "brpc_transport: Channel::Init failed");
  }

  void async_send(http_request req, send_options opt, send_handler h) override {
    auto* c = new call{std::move(h), name_, cap_};  // deleted by on_done
    brpc::Controller& k = c->cntl;
    k.http_request().uri() = req.target;  // path and query, already encoded
    k.http_request().set_method(req.method == "POST" ? brpc::HTTP_METHOD_POST
                                                     : brpc::HTTP_METHOD_GET);
    if (!req.content_type.empty()) k.http_request().set_content_type(req.content_type);
    k.http_request().SetHeader("Accept", "application/json");
    k.request_attachment().append(req.body);
    k.manage_http_body_on_error(true);  // keep a non-2xx answer's body (not brpc's ErrorText)
    if (opt.timeout.count() > 0) k.set_timeout_ms(opt.timeout.count());
    const brpc::CallId id = k.call_id();  // taken before CallMethod, as StartCancel requires
    if (opt.cancel.can_be_cancelled())    // brpc aborts the call; on_done still runs once
      c->registration = opt.cancel.on_cancel([id] { brpc::StartCancel(id); });
    channel_.CallMethod(nullptr, &k, nullptr, nullptr, brpc::NewCallback(&on_done, c));
  }

  // "The loop" is brpc's bthread pool: no single loop thread. bthread_start_background, not
  // an ExecutionQueue: the client locks its own state, and one queue would serialise all of
  // its work onto one bthread at a time.
  void post(unique_function<void()> f) override { start(std::move(f)); }
  void post_after(std::chrono::milliseconds delay, unique_function<void()> f) override {
    arm(new timed{std::chrono::steady_clock::now() + delay, std::move(f)});
  }
  /// True inside any bthread: a future's wait there blocks a worker pthread, and with every
  /// worker so blocked no completion runs (the debug assert of result.hpp catches it).
  bool running_in_loop() const noexcept override { return bthread_self() != 0; }

private:
  struct call {
    send_handler handler;
    std::string name;
    std::size_t cap;
    brpc::Controller cntl{};
    cancel_token::registration registration{};
  };
  struct timed {
    std::chrono::steady_clock::time_point due;
    unique_function<void()> f;
  };

  // brpc runs `done` exactly once, on the thread that ends the call: a bthread, the thread of
  // StartCancel, or the caller inside CallMethod when the call fails before it is sent (no
  // server, cancelled already). So the handler always goes through start().
  static void on_done(call* c) {
    std::unique_ptr<call> own(c);
    const brpc::Controller& k = c->cntl;
    http_response r;
    std::error_code ec;
    const auto fail = [&](transport_errc e, const std::string& why) {
      ec = e;
      r.failure = c->name + ": " + why;  // never ErrorText(): it may quote the request
    };
    const int code = k.Failed() ? k.ErrorCode() : 0;
    // brpc reads a whole body before `done` (up to its global -max_body_size, 64 MiB): this
    // caps what reaches the client only.
    if (k.response_attachment().size() > c->cap) {
      fail(transport_errc::response_too_large,
           "the response is larger than " + std::to_string(c->cap) + " bytes");
    } else if (code == 0 || code == brpc::EHTTP) {  // EHTTP: brpc's error for a non-2xx status
      r.status = k.http_response().status_code();
      r.body = k.response_attachment().to_string();
      r.content_type = k.http_response().content_type();
      if (r.status < 200 || r.status > 299)
        fail(transport_errc::http_status, "answered HTTP " + std::to_string(r.status));
    } else if (code == brpc::ERPCTIMEDOUT) {
      fail(transport_errc::timeout, "no answer within " + std::to_string(k.timeout_ms()) + " ms");
    } else if (code == ETIMEDOUT) {  // brpc's connect timeout
      fail(transport_errc::timeout, "no connection within the connect timeout");
    } else if (code == EHOSTDOWN) {  // from the load balancer: no address, or all failing
      fail(transport_errc::connect_failed, "no address to connect to (DNS, or all refused)");
    } else if (code == ECONNREFUSED || code == EHOSTUNREACH || code == ENETUNREACH) {
      fail(transport_errc::connect_failed, std::string("could not connect: ") + berror(code));
    } else if (code == brpc::ESSL) {
      fail(transport_errc::tls_failed, "TLS handshake or certificate verification failed");
    } else if (code == brpc::EEOF || code == brpc::EFAILEDSOCKET || code == ECONNRESET ||
               code == EPIPE) {
      fail(transport_errc::connection_closed, "the connection closed before a complete response");
    } else if (code == ECANCELED) {
      fail(transport_errc::failed, "the request was cancelled");
    } else {
      fail(transport_errc::failed, std::string("brpc: ") + berror(code));
    }
    start([h = std::move(c->handler), r = std::move(r), ec]() mutable { h(std::move(r), ec); });
  }

  static void* run(void* p) {
    std::unique_ptr<unique_function<void()>> f(static_cast<unique_function<void()>*>(p));
    (*f)();
    return nullptr;
  }
  static void start(unique_function<void()> f) {
    auto* p = new unique_function<void()>(std::move(f));
    bthread_t tid;
    if (bthread_start_background(&tid, nullptr, &run, p) != 0) std::thread(&run, p).detach();
  }
  // bthread_timer_add's time is CLOCK_REALTIME and its callback runs in brpc's one timer
  // thread (user code there would delay every timer): the callback only starts a bthread,
  // which runs `f` once the steady clock has reached `due`, or arms again for the rest.
  static void arm(timed* t) {
    const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
                          t->due - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return start([t = std::unique_ptr<timed>(t)]() mutable { t->f(); });
    bthread_timer_t id;
    if (bthread_timer_add(&id, butil::microseconds_from_now(left), &on_timer, t) != 0)
      start([t = std::unique_ptr<timed>(t), left]() mutable {  // no timer: sleep in a bthread
        bthread_usleep(left);
        arm(t.release());
      });
  }
  static void on_timer(void* p) {
    start([t = std::unique_ptr<timed>(static_cast<timed*>(p))]() mutable { arm(t.release()); });
  }

  std::size_t cap_;
  std::string name_;  // "host:port", as failures name it
  brpc::Channel channel_;
};

}  // namespace wechat::examples
