// examples/async_adapters/drogon_transport.hpp - wechat::async_transport on Drogon's
// drogon::HttpClient and trantor::EventLoop. Documentation, not a library header: written
// against Drogon v1.9.13 (trantor v1.5.28) and NOT compiled here (see README.md).
#pragma once

#include <drogon/HttpClient.h>
#include <trantor/net/EventLoop.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "base_url.hpp"
#include "wechat/async/transport.hpp"
#include "wechat/error.hpp"

namespace wechat::examples {

class drogon_transport final : public wechat::async_transport {
public:
  /// `base_url`: "https://host[:port]". Throws wechat::error: invalid_url, or insecure_url
  /// for http:// to a host that is not loopback (the appsecret travels in the query).
  /// One drogon::HttpClient holds ONE connection and sends its requests one after another,
  /// so `connections` clients to the same host are used in turn.
  drogon_transport(trantor::EventLoop* loop, const std::string& base_url,
                   std::size_t connections = 8,
                   std::chrono::milliseconds default_timeout = std::chrono::seconds(8),
                   std::size_t max_response_bytes = 1 << 20)
      : loop_(loop), timeout_(default_timeout), cap_(max_response_bytes),
        name_(check_base_url(base_url, "drogon_transport").name) {
    // useOldTLS = false: TLS 1.2 at least; validateCert = true: chain and host name checked.
    for (std::size_t i = 0; i < (connections == 0 ? 1 : connections); ++i)
      clients_.push_back(drogon::HttpClient::newHttpClient(base_url, loop_, false, true));
  }

  void async_send(http_request req, send_options opt, send_handler h) override {
    // Drogon's HttpReqCallback and trantor's queueInLoop take a copyable std::function; the
    // handler is move-only: it lives in `st`, and every callback copies the shared_ptr.
    auto st = std::make_shared<call>();
    st->handler = std::move(h);
    if (opt.cancel.can_be_cancelled()) {
      // Drogon cannot abort one request: a cancel completes the handler now, and the late
      // answer is dropped by the `done` flag. Weak: `st` owns the registration.
      st->registration =
          opt.cancel.on_cancel([w = std::weak_ptr<call>(st), loop = loop_, n = name_] {
            if (auto s = w.lock())
              finish(s, loop, failed(n, transport_errc::failed, "the request was cancelled"));
          });
      if (st->done) return;  // cancelled already: never sent
    }
    auto r = drogon::HttpRequest::newHttpRequest();
    r->setMethod(req.method == "POST" ? drogon::Post : drogon::Get);
    r->setPathEncode(false);  // the target is encoded already: Drogon would encode it again
    r->setPath(std::move(req.target));
    if (!req.content_type.empty()) r->setContentTypeString(req.content_type);
    if (!req.body.empty()) r->setBody(std::move(req.body));
    r->addHeader("Accept", "application/json");
    // Drogon's default timeout is 0, meaning none: a silent peer would hold the call for ever.
    // It counts from sendRequest: time queued behind the client's one connection included.
    const long long ms = (opt.timeout.count() > 0 ? opt.timeout : timeout_).count();
    const auto& client = clients_[next_.fetch_add(1, std::memory_order_relaxed) % clients_.size()];
    // On the loop thread sendRequest runs inline (runInLoop) and calls back inline on some
    // errors (BadServerAddress): finish() always hops through queueInLoop.
    client->sendRequest(
        r,
        [st, loop = loop_, n = name_, cap = cap_, ms](drogon::ReqResult res,
                                                      const drogon::HttpResponsePtr& resp) {
          if (res != drogon::ReqResult::Ok || !resp) return finish(st, loop, mapped(n, res, ms));
          // Drogon has no client-side body limit: the body is in memory already; this caps what
          // reaches the client only.
          if (resp->body().size() > cap)
            return finish(st, loop,
                          failed(n, transport_errc::response_too_large,
                                 "the response is larger than " + std::to_string(cap) + " bytes"));
          outcome o;
          o.r.status = static_cast<int>(resp->statusCode());
          o.r.body = std::string(resp->body());
          o.r.content_type = resp->getHeader("content-type");
          if (o.r.status < 200 || o.r.status > 299) {
            o.ec = transport_errc::http_status;
            o.r.failure = n + ": answered HTTP " + std::to_string(o.r.status);
          }
          finish(st, loop, std::move(o));
        },
        static_cast<double>(ms) / 1000);
  }

  void post(unique_function<void()> f) override {
    auto p = std::make_shared<unique_function<void()>>(std::move(f));  // copyable holder
    loop_->queueInLoop([p] { (*p)(); });  // always queued, even on the loop thread
  }
  void post_after(std::chrono::milliseconds delay, unique_function<void()> f) override {
    auto p = std::make_shared<unique_function<void()>>(std::move(f));
    // trantor's timers run on the steady clock: never sooner than `delay`.
    loop_->runAfter(std::chrono::duration<double>(delay), [p] { (*p)(); });
  }
  bool running_in_loop() const noexcept override { return loop_->isInLoopThread(); }

private:
  struct outcome {
    http_response r;
    std::error_code ec;
  };
  struct call {
    // Exactly once: the answer (or Drogon's timeout) and a cancel race; the first one wins.
    std::atomic<bool> done{false};
    send_handler handler;
    cancel_token::registration registration;
  };
  static void finish(const std::shared_ptr<call>& st, trantor::EventLoop* loop, outcome o) {
    if (st->done.exchange(true)) return;  // a late answer after a cancel
    loop->queueInLoop(
        [st, o]() mutable { std::exchange(st->handler, nullptr)(std::move(o.r), o.ec); });
  }
  // `failure` names the host and the cause; never the target (its query has the appsecret).
  static outcome failed(const std::string& name, transport_errc e, const std::string& why) {
    outcome o;
    o.ec = e;
    o.r.failure = name + ": " + why;
    return o;
  }
  static outcome mapped(const std::string& n, drogon::ReqResult res, long long ms) {
    using R = drogon::ReqResult;
    using E = transport_errc;
    switch (res) {
    case R::BadServerAddress: return failed(n, E::connect_failed, "could not resolve or connect");
    case R::Timeout: return failed(n, E::timeout, "no answer within " + std::to_string(ms) + " ms");
    case R::HandshakeError: return failed(n, E::tls_failed, "TLS handshake failed");
    case R::InvalidCertificate: return failed(n, E::tls_failed, "TLS: certificate verify failed");
    case R::EncryptionFailure: return failed(n, E::tls_failed, "TLS: protocol error");
    case R::NetworkFailure:
      return failed(n, E::connection_closed, "closed before a complete response");
    case R::BadResponse: return failed(n, E::failed, "bad HTTP response");
    default: return failed(n, E::failed, "Drogon: " + drogon::to_string(res));
    }
  }

  trantor::EventLoop* loop_;  // must outlive the transport and every request
  std::chrono::milliseconds timeout_;
  std::size_t cap_;
  std::string name_;  // "host:port", as failures name it
  std::vector<drogon::HttpClientPtr> clients_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace wechat::examples
