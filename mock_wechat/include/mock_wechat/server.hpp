// mock_wechat/server.hpp - the mock as an HTTP(S) server, embeddable in a test process:
//
//   mock_wechat::server mock;                       // 127.0.0.1, any free port, started
//   mock.world().add_app({"wx...", "secret", mock_wechat::app_type::miniprogram, "acct"});
//   std::string code = mock.world().login("wx...", "alice");
//   client.base_url(mock.base_url());               // "http://127.0.0.1:PORT"
//   mock.world().clock().advance(301);              // the code has now expired
//   mock.faults().add(...);                         // next call fails as asked
//
// The same controls are served over HTTP under /__mock (admin.hpp). The destructor stops
// the server promptly and joins its threads.
//
// Built on Debian's cpp-httplib 0.11.4, minding its traps: TCP_NODELAY on (every
// keep-alive response otherwise stalls ~40 ms); a worker pool sized for the connections;
// our own per-connection loop (0.11's keep-alive wait polls every 10 ms, caps a connection
// at 5 requests, and cannot drop a connection on purpose); a listen backlog of 1024, not 5.
#pragma once

#include <httplib.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mock_wechat/admin.hpp"
#include "mock_wechat/api.hpp"
#include "mock_wechat/faults.hpp"
#include "mock_wechat/observe.hpp"
#include "mock_wechat/world.hpp"

namespace mock_wechat {

/// How to run the mock.
struct options {
  std::string host = "127.0.0.1";  ///< interface to bind
  int port = 0;                    ///< 0: any free port
  unionid_rules rules = unionid_rules::conditional;
  std::size_t threads = 64;          ///< workers; each open connection holds one while busy
  std::size_t journal = 1000;        ///< journal capacity; 0 turns it off
  std::string tls_cert, tls_key;     ///< PEM files: serve HTTPS
  std::size_t max_body = 1 << 20;    ///< larger request bodies get HTTP 413
  std::string admin_token;           ///< when set, /__mock needs "Authorization: Bearer <token>"
  int keep_alive_timeout_ms = 5000;  ///< idle keep-alive connections close after this
  int backlog = 1024;                ///< listen backlog
};

namespace detail {

// The current connection's socket, for the drop fault (plain HTTP only).
inline thread_local int current_socket = -1;

// A worker pool that knows how many connections wait for a worker, so that idle
// keep-alive connections give their worker up when others are queued.
class worker_pool final : public httplib::TaskQueue {
public:
  explicit worker_pool(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      threads_.emplace_back([this] { run(); });
  }
  ~worker_pool() override { shutdown(); }
  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(fn));
      waiting_.store(jobs_.size(), std::memory_order_relaxed);
    }
    cv_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::size_t waiting() const noexcept { return waiting_.load(std::memory_order_relaxed); }
  /// Connections are queued and no worker is free to take them.
  bool starved() const noexcept {
    return waiting_.load(std::memory_order_relaxed) > idle_.load(std::memory_order_relaxed);
  }

private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        idle_.fetch_add(1, std::memory_order_relaxed);
        cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        idle_.fetch_sub(1, std::memory_order_relaxed);
        if (jobs_.empty()) return;  // stopping and drained
        job = std::move(jobs_.front());
        jobs_.pop_front();
        waiting_.store(jobs_.size(), std::memory_order_relaxed);
      }
      job();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::atomic<std::size_t> waiting_{0};
  std::atomic<std::size_t> idle_{0};
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// A blocking socket stream with poll()-based timeouts and a read buffer: httplib parses
// the request line and headers one byte at a time, which would otherwise be one poll()
// and one recv() per byte.
class socket_stream final : public httplib::Stream {
public:
  socket_stream(int sock, int read_timeout_ms, int write_timeout_ms)
      : sock_(sock), read_ms_(read_timeout_ms), write_ms_(write_timeout_ms) {}
  bool is_readable() const override { return begin_ < end_ || wait(POLLIN, read_ms_); }
  bool is_writable() const override { return wait(POLLOUT, write_ms_); }
  /// Buffered bytes not yet consumed (a pipelined next request, for instance).
  bool has_buffered() const noexcept { return begin_ < end_; }
  ssize_t read(char* ptr, size_t size) override {
    if (begin_ == end_) {
      if (size >= sizeof buf_) return raw_read(ptr, size);  // large reads bypass the buffer
      const ssize_t n = raw_read(buf_, sizeof buf_);
      if (n <= 0) return n;
      begin_ = 0;
      end_ = static_cast<std::size_t>(n);
    }
    const std::size_t n = std::min(size, end_ - begin_);
    std::memcpy(ptr, buf_ + begin_, n);
    begin_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do
      n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { addr(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { addr(false, ip, port); }
  socket_t socket() const override { return sock_; }

private:
  ssize_t raw_read(char* ptr, size_t size) {
    if (!wait(POLLIN, read_ms_)) return -1;
    ssize_t n;
    do
      n = ::recv(sock_, ptr, size, 0);
    while (n < 0 && errno == EINTR);
    return n;
  }
  bool wait(short events, int ms) const {
    pollfd p{sock_, events, 0};
    int r;
    do
      r = ::poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r > 0 && (p.revents & (events | POLLHUP | POLLERR));
  }
  void addr(bool remote, std::string& ip, int& port) const {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int r = remote ? ::getpeername(sock_, reinterpret_cast<sockaddr*>(&ss), &len)
                         : ::getsockname(sock_, reinterpret_cast<sockaddr*>(&ss), &len);
    if (r != 0) return;
    char buf[64] = {0};
    if (ss.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
      port = ntohs(a->sin6_port);
    }
    ip = buf;
  }
  int sock_;
  int read_ms_, write_ms_;
  char buf_[4096];
  std::size_t begin_ = 0, end_ = 0;
};

// httplib::Server with our own connection loop.
class http_server final : public httplib::Server {
public:
  std::function<bool()> starved;  // connections queued and no worker free
  int keep_alive_timeout_ms = 5000;

private:
  bool process_and_close_socket(socket_t sock) override {
    int one = 1;
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    socket_stream strm(sock, 5000, 5000);
    current_socket = sock;
    bool ret = false;
    for (;;) {
      if (!strm.has_buffered() && !wait_for_request(sock)) break;
      bool closed = false;
      ret = process_request(strm, false, closed, nullptr);
      if (!ret || closed) break;
    }
    current_socket = -1;
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ret;
  }

  // Waits for the next request on a keep-alive connection. Gives up at the keep-alive
  // timeout, when the server stops, or when other connections wait for a worker that none
  // is free to serve and this one has been idle a while (so no connection starves).
  bool wait_for_request(int sock) const {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + std::chrono::milliseconds(keep_alive_timeout_ms);
    for (;;) {
      if (svr_sock_ == INVALID_SOCKET) return false;
      pollfd p{sock, POLLIN, 0};
      const int r = ::poll(&p, 1, 10);
      if (r > 0) return (p.revents & POLLIN) != 0;
      if (r < 0 && errno != EINTR) return false;
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      if (starved && now - start >= std::chrono::milliseconds(20) && starved()) return false;
    }
  }
};

}  // namespace detail

/// The mock, serving on a socket from construction to destruction.
class server {
public:
  /// Binds and starts serving. Throws std::runtime_error when the address cannot be bound
  /// or the TLS files cannot be loaded.
  explicit server(options opt = {})
      : opt_(std::move(opt)), world_(opt_.rules), journal_(opt_.journal),
        stats_(wechat_api::paths()), api_(world_), admin_(world_, faults_, journal_, stats_) {
    if (!opt_.tls_cert.empty() || !opt_.tls_key.empty()) {
      if (opt_.tls_cert.empty() || opt_.tls_key.empty())
        throw std::runtime_error("TLS needs both a certificate and a key");
      auto s = std::make_unique<httplib::SSLServer>(opt_.tls_cert.c_str(), opt_.tls_key.c_str());
      if (!s->is_valid())
        throw std::runtime_error("cannot load TLS certificate/key " + opt_.tls_cert + ", " +
                                 opt_.tls_key);
      http_ = std::move(s);
      tls_ = true;
    } else {
      auto s = std::make_unique<detail::http_server>();
      s->keep_alive_timeout_ms = opt_.keep_alive_timeout_ms;
      http_ = std::move(s);
    }
    configure();
    start();
  }

  ~server() { stop(); }
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// "http://127.0.0.1:PORT" (https with TLS): give it to the client as its base URL.
  std::string base_url() const {
    return std::string(tls_ ? "https://" : "http://") + url_host() + ":" + std::to_string(port_);
  }
  int port() const noexcept { return port_; }
  const std::string& host() const noexcept { return opt_.host; }
  bool tls() const noexcept { return tls_; }

  /// The simulated WeChat: add apps, log users in, move the clock...
  mock_wechat::world& world() noexcept { return world_; }
  /// Injected faults.
  fault_table& faults() noexcept { return faults_; }
  /// What the mock was asked.
  mock_wechat::journal& journal() noexcept { return journal_; }
  stats_table& stats() noexcept { return stats_; }

  /// Stops serving and joins the threads. Idempotent; prompt (well under a second).
  void stop() {
    if (!thread_.joinable()) return;
    http_->stop();
    thread_.join();
  }

private:
  std::string url_host() const {
    if (opt_.host.find(':') != std::string::npos) return "[" + opt_.host + "]";
    if (opt_.host == "0.0.0.0") return "127.0.0.1";
    return opt_.host;
  }

  void configure() {
    auto& s = *http_;
    s.set_tcp_nodelay(true);
    s.set_payload_max_length(opt_.max_body);
    s.set_keep_alive_max_count(100000);
    s.set_keep_alive_timeout(std::max(1, opt_.keep_alive_timeout_ms / 1000));
    s.set_read_timeout(5, 0);
    s.set_write_timeout(5, 0);
    auto pool = std::make_shared<detail::worker_pool*>(nullptr);
    const std::size_t threads = opt_.threads > 0 ? opt_.threads : 64;
    s.new_task_queue = [pool, threads] {
      auto* q = new detail::worker_pool(threads);
      *pool = q;
      return q;
    };
    if (auto* plain = dynamic_cast<detail::http_server*>(http_.get()))
      plain->starved = [pool] { return *pool != nullptr && (*pool)->starved(); };
    s.set_socket_options([this](socket_t sock) {
      int one = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      listen_socket_ = sock;
    });
    auto handler = [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); };
    s.Get(".*", handler);
    s.Post(".*", handler);
    s.Put(".*", handler);
    s.Delete(".*", handler);
    s.Patch(".*", handler);
    s.Options(".*", handler);
    s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      const char* what = res.status == 413   ? "request body too large"
                         : res.status == 414 ? "request URI too long"
                         : res.status == 404 ? "not found"
                                             : "bad request";
      res.set_content(nlohmann::json{{"error", what}}.dump(), "application/json; charset=UTF-8");
    });
    s.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          res.status = 500;
          res.set_content("{\"errcode\":-1,\"errmsg\":\"system error\"}",
                          "application/json; charset=UTF-8");
        });
  }

  void start() {
    port_ = opt_.port == 0 ? http_->bind_to_any_port(opt_.host)
                           : (http_->bind_to_port(opt_.host, opt_.port) ? opt_.port : -1);
    if (port_ <= 0)
      throw std::runtime_error("cannot bind " + opt_.host + ":" + std::to_string(opt_.port));
    // 0.11.4 listens with a backlog of 5: a burst of connections would be refused or
    // retried by the kernel. Listening again on the bound socket raises it.
    if (listen_socket_ >= 0) ::listen(listen_socket_, opt_.backlog);
    thread_ = std::thread([this] { http_->listen_after_bind(); });
    while (!http_->is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  static bool admin_authorized(const httplib::Request& req, const std::string& token) {
    if (token.empty()) return true;
    const std::string auth = req.get_header_value("Authorization");
    return wechat::constant_time_equal(auth, "Bearer " + token);
  }

  void serve(const httplib::Request& req, httplib::Response& res) {
    const auto start = std::chrono::steady_clock::now();
    if (req.path.rfind("/__mock", 0) == 0 && (req.path.size() == 7 || req.path[7] == '/')) {
      if (!admin_authorized(req, opt_.admin_token)) {
        res.status = 401;
        res.set_content("{\"error\":\"the admin API needs Authorization: Bearer <admin token>\"}",
                        "application/json; charset=UTF-8");
        return;
      }
      const auto r = admin_.handle(req.method, req.path, req.body, &req.params);
      res.status = r.status;
      res.set_content(r.body, "application/json; charset=UTF-8");
      return;
    }

    api_response out;
    std::string fault_kind;
    if (auto f = faults_.take(req.path)) {
      if (f->delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(f->delay_ms));
      fault_kind = apply_fault(*f, req, res, out);
    }
    if (fault_kind.empty() || fault_kind == "delay" || fault_kind == "content_type") {
      // The query alone: httplib also folds a form body into req.params; WeChat does not.
      const params query = parse_query(req.target);
      api_request q{req.method, req.path, &query, req.body};
      const std::string forced_type = out.content_type;
      out = api_.handle(q);
      if (fault_kind == "content_type") out.content_type = forced_type;
      res.status = out.status;
      res.set_content(std::move(out.body), out.content_type.c_str());
    }
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    stats_.of(req.path).add(out.errcode, res.status, us);
    if (journal_.enabled()) record(req, res.status, out.errcode, us, fault_kind);
  }

  // Applies a fault (other than a pure delay) to the response. Returns its kind.
  std::string apply_fault(const fault& f, const httplib::Request& req, httplib::Response& res,
                          api_response& out) {
    if (f.errcode) {
      out = api_.error(req.path, *f.errcode);
      res.status = 200;
      res.set_content(out.body, out.content_type.c_str());
      return "errcode";
    }
    if (f.http_status) {
      res.status = *f.http_status;
      res.set_content("<html><head><title>" + std::to_string(*f.http_status) +
                          "</title></head><body><center><h1>" + std::to_string(*f.http_status) +
                          "</h1></center><hr><center>nginx</center></body></html>",
                      "text/html");
      return "http_status";
    }
    if (f.malformed) {
      res.status = 200;
      res.set_content("{\"errcode\":-1,\"errmsg\":\"system err",
                      wechat_api::content_type(req.path));
      return "malformed";
    }
    if (f.oversized) {
      std::string body = "{\"errcode\":-1,\"errmsg\":\"system error\",\"padding\":\"";
      body.append(f.oversized > body.size() + 2 ? f.oversized - body.size() - 2 : 0, 'x');
      body += "\"}";
      res.status = 200;
      res.set_content(body, wechat_api::content_type(req.path));
      out.errcode = -1;
      return "oversized";
    }
    if (f.drop || f.truncated) {
      if (f.drop && !tls_ && detail::current_socket >= 0) {
        ::shutdown(detail::current_socket, SHUT_RDWR);  // the client sees the connection close
        res.status = 200;
        return "drop";
      }
      // Truncated (and drop under TLS): promise a body, send part of it, close.
      const std::string part = "{\"session_key\":\"";
      res.status = 200;
      res.set_content_provider(part.size() + 64, wechat_api::content_type(req.path),
                               [part](size_t offset, size_t, httplib::DataSink& sink) {
                                 if (offset == 0) sink.write(part.data(), part.size());
                                 return false;
                               });
      return f.drop ? "drop" : "truncated";
    }
    if (!f.content_type.empty()) {
      out.content_type = f.content_type;
      return "content_type";
    }
    return "delay";
  }

  void record(const httplib::Request& req, int status, int errcode, std::int64_t us,
              const std::string& fault_kind) {
    journal_entry e;
    e.time = world_.now();
    e.method = req.method;
    e.path = req.path;
    for (const auto& [k, v] : parse_query(req.target))
      e.query.emplace_back(k, is_secret_field(k) ? "***" : v);
    if (!req.body.empty()) {
      auto j = nlohmann::json::parse(req.body, nullptr, false);
      if (!j.is_discarded()) {
        redact(j);
        e.body = std::move(j);
      } else {
        e.body = "(" + std::to_string(req.body.size()) + " bytes, not JSON)";
      }
    }
    e.status = status;
    e.errcode = errcode;
    e.latency_us = us;
    e.fault = fault_kind;
    journal_.record(std::move(e));
  }

  options opt_;
  mock_wechat::world world_;
  fault_table faults_;
  mock_wechat::journal journal_;
  stats_table stats_;
  wechat_api api_;
  admin_api admin_;
  std::unique_ptr<httplib::Server> http_;
  bool tls_ = false;
  int port_ = -1;
  int listen_socket_ = -1;
  std::thread thread_;
};

}  // namespace mock_wechat
