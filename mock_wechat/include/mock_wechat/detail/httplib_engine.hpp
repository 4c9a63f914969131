// mock_wechat/detail/httplib_engine.hpp - the mock served by cpp-httplib's Server or
// SSLServer, through their public API only, so that it builds against any cpp-httplib from
// Debian's 0.11.4 to the latest (.ci/run builds the mock's tests against both). It serves
// HTTPS, and plain HTTP when options::engine asks for it. Every request goes to
// core::handle, as in the event engine; the answers differ only in what httplib itself
// decides (docs/mock.md, "Engines"):
//  - one thread per connection from a pool of options::threads (64 by default); a delay
//    holds that thread (it waits on a condition variable that stop() cuts short);
//  - a drop fault sends the head of the answer and closes, as a truncated one does
//    (httplib's public API cannot close a connection without answering);
//  - framing errors are httplib's (0.11.4 reads request heads without a size limit and
//    answers a malformed request 400; 431 is the event engine's).
#pragma once

#include <httplib.h>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mock_wechat/core.hpp"

namespace mock_wechat::detail {

struct httplib_engine_options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string tls_cert, tls_key;  ///< both: HTTPS
  std::size_t threads = 64;
  std::size_t max_body = 1 << 20;
  int keep_alive_timeout_ms = 5000;
  int backlog = 1024;
};

class httplib_engine {
public:
  httplib_engine(core& c, const httplib_engine_options& o) : core_(c), max_body_(o.max_body) {
    if (!o.tls_cert.empty() || !o.tls_key.empty()) {
      if (o.tls_cert.empty() || o.tls_key.empty())
        throw std::runtime_error("TLS needs both a certificate and a key");
      auto s = std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
      if (!s->is_valid())
        throw std::runtime_error("cannot load TLS certificate/key " + o.tls_cert + ", " +
                                 o.tls_key);
      http_ = std::move(s);
    } else {
      http_ = std::make_unique<httplib::Server>();
    }
    configure(o);
    port_ = o.port == 0 ? http_->bind_to_any_port(o.host)
                        : (http_->bind_to_port(o.host, o.port) ? o.port : -1);
    if (port_ <= 0)
      throw std::runtime_error("cannot bind " + o.host + ":" + std::to_string(o.port));
    // cpp-httplib 0.11.4 listens with a backlog of 5: a burst of connections would be
    // refused or retried by the kernel. Listening again on the bound socket raises it.
    if (listen_socket_ >= 0) ::listen(listen_socket_, o.backlog);
    thread_ = std::thread([this] {
      http_->listen_after_bind();
      done_.store(true);
    });
    while (!http_->is_running() && !done_)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!http_->is_running()) {  // listen_after_bind gave up
      thread_.join();
      throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(port_));
    }
  }
  ~httplib_engine() { stop(); }
  httplib_engine(const httplib_engine&) = delete;
  httplib_engine& operator=(const httplib_engine&) = delete;

  int port() const noexcept { return port_; }

  void stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(stop_mutex_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    http_->stop();
    thread_.join();
  }

private:
  void configure(const httplib_engine_options& o) {
    auto& s = *http_;
    s.set_tcp_nodelay(true);  // else every keep-alive answer waits ~40 ms on a delayed ACK
    s.set_payload_max_length(o.max_body);
    const int keep_alive_s = std::max(1, o.keep_alive_timeout_ms / 1000);
    s.set_keep_alive_max_count(100000);  // not 5 (0.11.4's default; 0 would hang)
    s.set_keep_alive_timeout(keep_alive_s);
    s.set_read_timeout(5, 0);
    s.set_write_timeout(5, 0);
    const std::size_t threads = std::max<std::size_t>(1, o.threads);
    s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    s.set_socket_options([this](int sock) {
      int one = 1;  // not SO_REUSEPORT (newer httplib's default): two mocks on one port
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      listen_socket_ = sock;
    });
    auto plain = [this](const httplib::Request& req, httplib::Response& res) {
      serve(req, req.body, res);
    };
    // Bodies are read through a content reader, capped here: 0.11.4 does not cap chunked
    // bodies by the payload limit.
    auto reading = [this](const httplib::Request& req, httplib::Response& res,
                          const httplib::ContentReader& read) {
      std::string body;
      bool too_large = false;
      read([&](const char* data, std::size_t n) {
        if (body.size() + n > max_body_) {
          too_large = true;
          return false;
        }
        body.append(data, n);
        return true;
      });
      if (too_large) {
        const http_response e = framing_error(413);
        res.status = e.status;
        res.set_header("Connection", "close");
        res.set_content(e.body, e.content_type.c_str());
        return;
      }
      serve(req, body, res);
    };
    s.Get(".*", plain);
    s.Options(".*", plain);
    s.Post(".*", reading);
    s.Put(".*", reading);
    s.Delete(".*", reading);
    s.Patch(".*", reading);
    s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      const http_response e = framing_error(res.status);
      res.set_content(e.body, e.content_type.c_str());
    });
    s.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
          res.status = 500;
          res.set_content(system_error_body(), json_type);
        });
  }

  void serve(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    std::vector<http_header> headers;
    headers.reserve(req.headers.size());
    for (const auto& [name, value] : req.headers)
      headers.push_back({name, value});
    http_request r;
    r.method = req.method;
    r.target = req.target;
    r.headers = headers.data();
    r.header_count = headers.size();
    r.body = body;
    r.peer = req.remote_addr;
    http_response a = core_.handle(r);
    if (a.delay_us > 0) {
      std::unique_lock<std::mutex> lock(stop_mutex_);
      stop_cv_.wait_for(lock, std::chrono::microseconds(a.delay_us), [&] { return stopping_; });
    }
    res.status = a.status;
    if (a.fault == connection_fault::none) {
      res.set_content(a.body, a.content_type.c_str());
      return;
    }
    // Truncated, or dropped: promise a body, send part of it (none for a drop), close.
    std::string part = a.fault == connection_fault::truncate ? std::move(a.body) : std::string();
    res.set_content_provider(
        a.length, a.content_type.c_str(),
        [part = std::move(part)](std::size_t offset, std::size_t, httplib::DataSink& sink) {
          if (offset == 0 && !part.empty()) sink.write(part.data(), part.size());
          return false;
        });
  }

  core& core_;
  std::size_t max_body_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = -1;
  int listen_socket_ = -1;
  std::atomic<bool> done_{false};  // listen_after_bind returned
  std::thread thread_;
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
};

}  // namespace mock_wechat::detail
