// mock_wechat/server.hpp - the mock as an HTTP(S) server, embeddable in a test process:
//
//   mock_wechat::server mock;                       // 127.0.0.1, any free port, started
//   mock.world().add_app({"wx...", "secret", mock_wechat::app_type::miniprogram, "acct"});
//   wechat::httplib_transport_options t;
//   t.base_url = mock.base_url();                   // "http://127.0.0.1:PORT"
//   wechat::client client({"wx...", "secret"}, wechat::httplib_transport::create(t));
//   std::string code = mock.world().login("wx...", "alice");
//   mock.world().clock().advance(301);              // the code has now expired
//   mock_wechat::fault f;                           // the next code2session answers -1
//   f.path = "/sns/jscode2session"; f.errcode = -1; f.times = 1;
//   mock.faults().add(f);
//
// The same controls are served over HTTP under /__mock (admin.hpp). The destructor stops
// the server promptly and joins its threads.
//
// A pusher thread (one per server) wakes every second of real time and makes the ticket
// pushes that are due (every 10 virtual minutes per third-party platform, push.hpp); the
// admin clock call makes them too, before it answers.
//
// What answers is core.hpp, whatever the engine; the engine frames it (docs/mock.md,
// "Engines"):
//  - engine_kind::event (the default, HTTP and HTTPS): the mock's own HTTP/1.1 server
//    (detail/event_engine.hpp): a few event loops, no thread per connection or per delayed
//    answer, every limit (431, 413, request timeout) applied as the bytes arrive, over TLS
//    too;
//  - engine_kind::httplib (when asked): cpp-httplib's Server or SSLServer through its
//    public API (detail/httplib_engine.hpp), a thread per connection.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "mock_wechat/core.hpp"
#include "mock_wechat/detail/event_engine.hpp"
#include "mock_wechat/detail/httplib_engine.hpp"
#include "mock_wechat/faults.hpp"
#include "mock_wechat/latency.hpp"
#include "mock_wechat/observe.hpp"
#include "mock_wechat/push.hpp"
#include "mock_wechat/world.hpp"

namespace mock_wechat {

/// Which HTTP engine serves the mock (docs/mock.md, "Engines").
enum class engine_kind {
  event,    ///< the mock's own event loops, HTTP and HTTPS (the default)
  httplib,  ///< cpp-httplib's Server / SSLServer, a thread per connection
};

/// How to run the mock.
struct options {
  std::string host = "127.0.0.1";  ///< interface to bind
  int port = 0;                    ///< 0: any free port
  /// The UnionID rules: bound (WeChat since 2021-02-23) or conditional (before it).
  unionid_rules rules = unionid_rules::bound;
  std::size_t threads = 0;  ///< event loops (0: two per core); httplib engine: pool (0: 64)
  std::size_t journal = 1000;        ///< journal capacity; 0 turns it off
  std::string tls_cert, tls_key;     ///< PEM files: serve HTTPS
  std::size_t max_body = 1 << 20;    ///< larger request bodies get HTTP 413
  std::string admin_token;           ///< when set, /__mock needs "Authorization: Bearer <token>"
  int keep_alive_timeout_ms = 5000;  ///< idle keep-alive connections close after this
  int request_timeout_ms = 10000;    ///< a request must arrive whole within this (event engine)
  std::size_t max_header = std::size_t{64} * 1024;  ///< request line + headers; more gets HTTP 431
  int backlog = 1024;                               ///< listen backlog
  /// Deprecated (0.2.0; removed in 0.3.0), ignored: the event engine reads every request itself. To
  /// serve through cpp-httplib, set `engine = engine_kind::httplib`.
  bool fast_path = true;
  /// How much the world holds at most (apps, users, codes, tokens...; docs/bounds.md).
  world_limits limits;
  /// Open connections at most (event engine); more are closed as they are accepted.
  std::size_t max_connections = 10000;
  /// Bytes of unfinished requests held across all connections (event engine); a connection
  /// whose partial request would pass it gets 503 and is closed.
  std::size_t max_pending_bytes = std::size_t{256} << 20;
  /// What user-info APIs reveal: anonymous (WeChat since 2021-04-28) or real (before it).
  /// (Last, so that code initialising the fields above in order keeps compiling.)
  profile_era profiles = profile_era::anonymous;
  /// The HTTP engine (docs/mock.md, "Engines").
  engine_kind engine = engine_kind::event;
  /// Every WeChat endpoint answers this much later (never the admin API): fixed, uniform or
  /// lognormal (latency.hpp; `--latency`). A fault's delay adds to it.
  latency_spec latency;
  /// Seeds the latency draws and the faults' (probability and latency): a run with the same
  /// seed and the same calls in the same order draws the same. Unset: a random seed.
  std::optional<std::uint64_t> seed;
  /// Runs on the world before the socket is bound: what it sets up (a scenario file's apps
  /// and users) is there for the first request. An exception from it leaves the
  /// constructor. Null: nothing.
  std::function<void(world&)> prepare;
};

/// The mock, serving on a socket from construction to destruction.
class server {
public:
  /// Binds and starts serving. Throws std::runtime_error when the address cannot be bound
  /// or the TLS files cannot be loaded.
  explicit server(options opt = {})
      : opt_(std::move(opt)), world_(opt_.rules, opt_.limits, opt_.profiles), journal_(opt_.journal),
        stats_(wechat_api::paths()),
        core_(world_, faults_, journal_, stats_, opt_.admin_token, opt_.latency,
              opt_.seed ? *opt_.seed : random_seed()) {
    if (opt_.seed) faults_.seed(*opt_.seed);
    if (opt_.prepare) opt_.prepare(world_);
    const int keep_alive_s = std::max(1, opt_.keep_alive_timeout_ms / 1000);
    tls_ = !opt_.tls_cert.empty() || !opt_.tls_key.empty();
    if (tls_ && (opt_.tls_cert.empty() || opt_.tls_key.empty()))
      throw std::runtime_error("TLS needs both a certificate and a key");
    if (opt_.engine == engine_kind::httplib) {
      detail::httplib_engine_options h;
      h.host = opt_.host;
      h.port = opt_.port;
      h.tls_cert = opt_.tls_cert;
      h.tls_key = opt_.tls_key;
      h.threads = opt_.threads > 0 ? opt_.threads : 64;
      h.max_body = opt_.max_body;
      h.keep_alive_timeout_ms = opt_.keep_alive_timeout_ms;
      h.backlog = opt_.backlog;
      httplib_ = std::make_unique<detail::httplib_engine>(core_, h);
      port_ = httplib_->port();
      start_pusher();
      return;
    }
    detail::engine_limits l;
    const unsigned cores = std::max(2u, std::thread::hardware_concurrency());
    // Two per core: a loop preempted by a busy neighbour (a load generator on the same
    // cores) holds fewer connections back; measured in benchmarks/RESULTS.md.
    l.workers = opt_.threads > 0 ? opt_.threads : 2 * std::size_t{cores};
    l.max_header = opt_.max_header;
    l.max_body = opt_.max_body;
    l.keep_alive_timeout_ms = opt_.keep_alive_timeout_ms;
    l.request_timeout_ms = opt_.request_timeout_ms;
    l.max_connections = opt_.max_connections;
    l.max_pending_bytes = opt_.max_pending_bytes;
    l.backlog = opt_.backlog;
    l.keep_alive_header = "timeout=" + std::to_string(keep_alive_s) + ", max=100000";
    if (tls_) l.tls = detail::tls_server_context(opt_.tls_cert, opt_.tls_key);
    event_ = std::make_unique<detail::event_engine>(
        [this](const http_request& r) { return core_.handle(r); }, opt_.host, opt_.port,
        std::move(l));
    port_ = event_->port();
    start_pusher();
  }

  ~server() { stop(); }
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// "http://127.0.0.1:PORT" (https with TLS): the base_url to give the client's transport.
  /// Bound to every interface (host "0.0.0.0", "::" or empty), it names loopback
  /// ("127.0.0.1", "[::1]"): a URL a client on this machine can connect to and that the test CA's
  /// certificate names. listens_on_all_interfaces() says that it is more than that.
  std::string base_url() const {
    return std::string(tls_ ? "https://" : "http://") + url_host() + ":" + std::to_string(port_);
  }
  int port() const noexcept { return port_; }
  /// The interface bound, as given in options::host.
  const std::string& host() const noexcept { return opt_.host; }
  /// Whether the server listens on every interface: host "0.0.0.0", "::" (IPv6, and IPv4
  /// where the system maps it) or empty. Then base_url() shows only its loopback address.
  bool listens_on_all_interfaces() const noexcept {
    return opt_.host.empty() || opt_.host == "0.0.0.0" || opt_.host == "::";
  }
  bool tls() const noexcept { return tls_; }

  /// The simulated WeChat: add apps, log users in, move the clock...
  mock_wechat::world& world() noexcept { return world_; }
  /// Injected faults.
  fault_table& faults() noexcept { return faults_; }
  /// What the mock was asked.
  mock_wechat::journal& journal() noexcept { return journal_; }
  stats_table& stats() noexcept { return stats_; }
  /// Connections open now (event engine; 0 under the httplib engine, which does not count
  /// them).
  std::size_t open_connections() const { return event_ ? event_->connections() : 0; }
  /// Connections closed as they were accepted, at options::max_connections (event engine).
  std::size_t refused_connections() const {
    return event_ ? event_->refused_connections() : 0;
  }
  /// Bytes held for unfinished requests now (event engine).
  std::size_t pending_bytes() const { return event_ ? event_->pending_bytes() : 0; }
  /// The engine serving now.
  engine_kind engine() const noexcept { return event_ ? engine_kind::event : engine_kind::httplib; }

  /// Stops serving and joins the threads. Idempotent; prompt (well under a second, unless
  /// a ticket push is waiting for a receiver that does not answer: up to its timeouts,
  /// for that one push; the pushes due after it are not made).
  void stop() {
    {
      std::lock_guard<std::mutex> lock(pusher_mutex_);
      stopping_ = true;
      pushes_stop_ = true;  // the pusher makes no more deliveries, even among those due
    }
    pusher_wake_.notify_all();
    if (pusher_.joinable()) pusher_.join();
    if (event_) event_->stop();
    if (httplib_) httplib_->stop();
  }

private:
  // The ticket pusher: every second of real time, the pushes due (push.hpp).
  void start_pusher() {
    pusher_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(pusher_mutex_);
      while (!pusher_wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) {
        lock.unlock();
        try {
          run_due_pushes(world_, &pushes_stop_);
        } catch (...) {  // out of memory: the next second tries again
        }
        lock.lock();
      }
    });
  }

  std::string url_host() const {
    if (opt_.host.empty() || opt_.host == "0.0.0.0") return "127.0.0.1";
    if (opt_.host == "::") return "[::1]";
    if (opt_.host.find(':') != std::string::npos) return "[" + opt_.host + "]";
    return opt_.host;
  }

  options opt_;
  mock_wechat::world world_;
  fault_table faults_;
  mock_wechat::journal journal_;
  stats_table stats_;
  core core_;
  std::unique_ptr<detail::event_engine> event_;
  std::unique_ptr<detail::httplib_engine> httplib_;
  bool tls_ = false;
  int port_ = -1;
  std::mutex pusher_mutex_;
  std::condition_variable pusher_wake_;
  bool stopping_ = false;
  std::atomic<bool> pushes_stop_{false};
  std::thread pusher_;
};

}  // namespace mock_wechat
