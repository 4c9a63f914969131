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
// Built on Debian's cpp-httplib 0.11.4, minding its traps: TCP_NODELAY on (every
// keep-alive response otherwise stalls ~40 ms); plain HTTP connections run by an epoll
// reactor with two workers per core (detail/reactor.hpp) instead of a thread per connection
// held for as long as it is open, with no 5-request keep-alive cap; a listen backlog of 1024,
// not 5. HTTPS keeps httplib's thread-per-connection model (a pool of `threads`, 64 by
// default): it is for checking TLS, not for load.
#pragma once

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include <wechat/detail/api_response.hpp>

#include "mock_wechat/admin.hpp"
#include "mock_wechat/api.hpp"
#include "mock_wechat/detail/reactor.hpp"
#include "mock_wechat/faults.hpp"
#include "mock_wechat/observe.hpp"
#include "mock_wechat/world.hpp"

namespace mock_wechat {

/// How to run the mock.
struct options {
  std::string host = "127.0.0.1";  ///< interface to bind
  int port = 0;                    ///< 0: any free port
  /// The UnionID rules: bound (WeChat since 2021-02-23) or conditional (before it).
  unionid_rules rules = unionid_rules::bound;
  std::size_t threads = 0;           ///< workers; 0: two per core (HTTP), 64 (HTTPS)
  std::size_t journal = 1000;        ///< journal capacity; 0 turns it off
  std::string tls_cert, tls_key;     ///< PEM files: serve HTTPS
  std::size_t max_body = 1 << 20;    ///< larger request bodies get HTTP 413
  std::string admin_token;           ///< when set, /__mock needs "Authorization: Bearer <token>"
  int keep_alive_timeout_ms = 5000;  ///< idle keep-alive connections close after this
  int request_timeout_ms = 10000;    ///< a request must arrive whole within this (HTTP)
  std::size_t max_header = std::size_t{64} * 1024;  ///< request line + headers; more gets HTTP 431
  int backlog = 1024;                               ///< listen backlog
  /// Plain HTTP: answer ordinary WeChat API requests with the mock's own HTTP/1.1 reader
  /// and writer (detail/wire.hpp: same bytes, a fraction of the work); false sends every
  /// request through cpp-httplib. The admin API, HTTPS and unusual requests always use httplib.
  bool fast_path = true;
  /// How much the world holds at most (apps, users, codes, tokens...; docs/bounds.md).
  world_limits limits;
  /// Open plain-HTTP connections at most; more are closed as they are accepted.
  std::size_t max_connections = 10000;
  /// Bytes of unfinished requests held across all plain-HTTP connections; a connection
  /// whose partial request would pass it gets 503 and is closed.
  std::size_t max_pending_bytes = std::size_t{256} << 20;
  /// What user-info APIs reveal: anonymous (WeChat since 2021-04-28) or real (before it).
  /// (Last, so that code initialising the fields above in order keeps compiling.)
  profile_era profiles = profile_era::anonymous;
};

namespace detail {

// httplib::Server whose connections are run by a reactor (detail/reactor.hpp) instead of
// one thread each.
class http_server final : public httplib::Server {
public:
  reactor_limits limits;

  /// Answers plain API requests before httplib sees them (detail/wire.hpp); empty: httplib
  /// answers everything.
  reactor::fast_fn fast;

  reactor* make_reactor() {
    auto* r = new reactor(
        limits,
        [this](buffered_stream& strm) {
          bool closed = false;
          const bool ok = process_request(strm, false, closed, nullptr);
          return ok && !closed;
        },
        fast, [this] {  // as the reactor goes: no one may use it any more
          std::lock_guard<std::mutex> lock(engine_mutex_);
          engine_ = nullptr;
        });
    std::lock_guard<std::mutex> lock(engine_mutex_);
    engine_ = r;
    return r;
  }

  /// Runs f(engine), the engine kept alive meanwhile; engine is null before it is made
  /// and once it is gone (the server stopped). The engine is made by listen_after_bind()
  /// (through new_task_queue) and destroyed when it returns, both on the listen thread.
  template <class F> auto with_engine(F&& f) const {
    std::lock_guard<std::mutex> lock(engine_mutex_);
    return f(static_cast<const reactor*>(engine_));
  }

private:
  bool process_and_close_socket(socket_t sock) override {
    engine_->add(sock);  // the listen thread, which alone makes and destroys the engine
    return true;
  }

  mutable std::mutex engine_mutex_;
  reactor* engine_ = nullptr;
};

}  // namespace detail

/// The mock, serving on a socket from construction to destruction.
class server {
public:
  /// Binds and starts serving. Throws std::runtime_error when the address cannot be bound
  /// or the TLS files cannot be loaded.
  explicit server(options opt = {})
      : opt_(std::move(opt)), world_(opt_.rules, opt_.limits, opt_.profiles), journal_(opt_.journal),
        stats_(wechat_api::paths()), api_(world_), admin_(world_, faults_, journal_, stats_) {
    api_.set_journal(&journal_);  // openapi/rid/get answers from it
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
      auto& l = s->limits;
      const unsigned cores = std::max(2u, std::thread::hardware_concurrency());
      // Two per core: a worker preempted by a busy neighbour (a load generator on the same
      // cores) holds fewer connections back; measured in benchmarks/RESULTS.md.
      l.workers = opt_.threads > 0 ? opt_.threads : 2 * std::size_t{cores};
      l.max_header = opt_.max_header;
      l.max_body = opt_.max_body;
      l.keep_alive_timeout_ms = opt_.keep_alive_timeout_ms;
      l.request_timeout_ms = opt_.request_timeout_ms;
      l.max_connections = opt_.max_connections;
      l.max_pending_bytes = opt_.max_pending_bytes;
      if (opt_.fast_path)
        s->fast = [this](const detail::plain_request& r, std::string& out) {
          return answer_plain(r, out);
        };
      http_ = std::move(s);
    }
    configure();
    start();
  }

  ~server() { stop(); }
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// "http://127.0.0.1:PORT" (https with TLS): the base_url to give the client's transport.
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
  /// Plain-HTTP connections open now (0 under TLS, which does not count them).
  std::size_t open_connections() const {
    return with_engine(
        [](const detail::reactor* r) { return r != nullptr ? r->connections() : 0; });
  }
  /// Plain-HTTP connections closed as they were accepted, at options::max_connections.
  std::size_t refused_connections() const {
    return with_engine(
        [](const detail::reactor* r) { return r != nullptr ? r->refused_connections() : 0; });
  }
  /// Bytes held for unfinished plain-HTTP requests now.
  std::size_t pending_bytes() const {
    return with_engine([](const detail::reactor* r) {
      return r != nullptr ? r->pending_bytes() : std::size_t{0};
    });
  }

  /// Stops serving and joins the threads. Idempotent; prompt (well under a second).
  void stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(stop_mutex_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    http_->stop();
    thread_.join();  // the reactor is gone with httplib's listen loop
  }

private:
  // f(the plain-HTTP engine), kept alive meanwhile; f(nullptr) under TLS or when stopped.
  template <class F> std::size_t with_engine(F&& f) const {
    const auto* plain = dynamic_cast<const detail::http_server*>(http_.get());
    return plain != nullptr ? plain->with_engine(f) : f(nullptr);
  }

  std::string url_host() const {
    if (opt_.host.find(':') != std::string::npos) return "[" + opt_.host + "]";
    if (opt_.host == "0.0.0.0") return "127.0.0.1";
    return opt_.host;
  }

  void configure() {
    auto& s = *http_;
    s.set_tcp_nodelay(true);
    s.set_payload_max_length(opt_.max_body);
    const int keep_alive_s = std::max(1, opt_.keep_alive_timeout_ms / 1000);
    s.set_keep_alive_max_count(keep_alive_max);
    s.set_keep_alive_timeout(keep_alive_s);
    keep_alive_header_ =
        "timeout=" + std::to_string(keep_alive_s) + ", max=" + std::to_string(keep_alive_max);
    s.set_read_timeout(5, 0);
    s.set_write_timeout(5, 0);
    if (auto* plain = dynamic_cast<detail::http_server*>(http_.get())) {
      s.new_task_queue = [plain]() -> httplib::TaskQueue* { return plain->make_reactor(); };
    } else {
      const std::size_t threads = opt_.threads > 0 ? opt_.threads : 64;
      s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    }
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
        [](const httplib::Request&, httplib::Response& res, const std::exception_ptr&) {
          res.status = 500;
          res.set_content(system_error_body(), "application/json; charset=UTF-8");
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

  static bool is_admin_path(std::string_view path) {
    return path.compare(0, 7, "/__mock") == 0 && (path.size() == 7 || path[7] == '/');
  }

  // httplib's handler: the admin API, and every request the fast path does not answer.
  void serve(const httplib::Request& req, httplib::Response& res) {
    if (is_admin_path(req.path)) {
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
    const ending end = answer_api({req.method, req.path, req.target, req.body, req.remote_addr}, out);
    if (end == ending::drop && !tls_ && detail::current_socket >= 0) {
      ::shutdown(detail::current_socket, SHUT_RDWR);  // the client sees the connection close
      res.status = 200;
      return;
    }
    res.status = out.status;
    if (end == ending::normal) {
      res.set_content(out.body, out.content_type.c_str());
      return;
    }
    // Truncated (and drop under TLS): promise a body, send part of it, close.
    const std::size_t promised = out.body.size() + truncated_missing;
    res.set_content_provider(
        promised, out.content_type.c_str(),
        [part = std::move(out.body)](size_t offset, size_t, httplib::DataSink& sink) {
          if (offset == 0) sink.write(part.data(), part.size());
          return false;
        });
  }

  // The fast path (plain HTTP): the same answers as serve(), written by detail/wire.hpp.
  detail::fast_result answer_plain(const detail::plain_request& r, std::string& wire) {
    if (is_admin_path(r.path)) return detail::fast_result::declined;
    api_response out;
    ending end = ending::normal;
    try {
      end = answer_api({r.method, r.path, r.target, r.body, {}}, out);
    } catch (const std::exception&) {  // as httplib's exception handler answers
      out.status = 500;
      out.content_type = "application/json; charset=UTF-8";
      out.body = system_error_body();
    }
    if (end == ending::drop) return detail::fast_result::close;  // nothing more is sent
    const std::size_t length = out.body.size() + (end == ending::truncated ? truncated_missing : 0);
    detail::write_plain_response(wire, out.status, out.content_type, out.body, length,
                                 r.close_header, keep_alive_header_);
    return r.close || end == ending::truncated ? detail::fast_result::close
                                               : detail::fast_result::keep;
  }

  /// How an answer ends: as normal, cut short (a truncated body), or with no answer at all.
  enum class ending { normal, truncated, drop };
  static constexpr std::size_t truncated_missing = 64;  // bytes promised but never sent

  struct api_call {
    std::string_view method, path, target, body;
    std::string_view remote;  ///< the client's address when httplib knows it (else looked up)
  };

  // A request to a WeChat endpoint, faults, stats and journal included. `out` is the
  // answer; for truncated and drop endings its body is the part that is sent.
  ending answer_api(const api_call& call, api_response& out) {
    const auto start = std::chrono::steady_clock::now();
    std::string_view fault_kind;
    ending end = ending::normal;
    if (auto f = faults_.take(call.path)) {
      if (f->delay_ms > 0) pause(static_cast<int>(f->delay_ms));
      fault_kind = apply_fault(*f, call.path, out, end);
    }
    if (fault_kind.empty() || fault_kind == "delay" || fault_kind == "content_type") {
      // The query alone: httplib also folds a form body into req.params; WeChat does not.
      const params query = parse_query(call.target);
      const api_request q{call.method, call.path, &query, call.body};
      const std::string forced_type = out.content_type;
      out = api_.handle(q);
      if (fault_kind == "content_type") out.content_type = forced_type;
    }
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    const int status = end == ending::drop ? 200 : out.status;
    stats_.of(call.path).add(out.errcode, status, us);
    if (journal_.enabled()) record(call, status, out, us, fault_kind);
    return end;
  }

  // A delay fault's wait: under the reactor a stand-in worker serves other connections
  // meanwhile; either way stop() cuts it short.
  void pause(int ms) {
    if (auto* r = detail::reactor::current) return r->pause(ms);
    std::unique_lock<std::mutex> lock(stop_mutex_);
    stop_cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_; });
  }

  // Applies a fault (other than a pure delay) to the answer. Returns its kind.
  std::string_view apply_fault(const fault& f, std::string_view path, api_response& out,
                               ending& end) {
    if (f.errcode) {
      out = api_.error(path, *f.errcode);
      return "errcode";
    }
    out.status = 200;
    out.content_type = wechat_api::content_type(path);
    if (f.http_status) {
      out.status = *f.http_status;
      out.content_type = "text/html";
      out.body = "<html><head><title>" + std::to_string(*f.http_status) +
                 "</title></head><body><center><h1>" + std::to_string(*f.http_status) +
                 "</h1></center><hr><center>nginx</center></body></html>";
      return "http_status";
    }
    if (f.malformed) {
      out.body = system_error_body().substr(0, system_error_body().size() - 4);  // cut short
      return "malformed";
    }
    if (f.oversized) {
      out.body = system_error_body();
      out.body.replace(out.body.size() - 1, 1, ",\"padding\":\"");  // {...,"padding":"x..."}
      out.body.append(f.oversized > out.body.size() + 2 ? f.oversized - out.body.size() - 2 : 0,
                      'x');
      out.body += "\"}";
      out.errcode = static_cast<int>(wechat::api_errc::system_busy);
      return "oversized";
    }
    if (f.drop || f.truncated) {
      out.body = "{\"session_key\":\"";  // the part a truncated answer sends
      end = f.drop ? ending::drop : ending::truncated;
      return f.drop ? "drop" : "truncated";
    }
    if (!f.content_type.empty()) {
      out.content_type = f.content_type;
      return "content_type";
    }
    return "delay";
  }

  void record(const api_call& call, int status, const api_response& out, std::int64_t us,
              std::string_view fault_kind) {
    const std::int64_t now = world_.now();
    // An answer with a rid (an error) keeps what openapi/rid/get tells its app about it.
    const std::string rid = out.errcode != 0 && out.status == 200
                                ? wechat::detail::extract_rid(out.body)
                                : std::string();
    std::string appid, ip;
    if (!rid.empty()) {
      appid = caller_appid(call);
      ip = call.remote.empty() ? peer_ip(detail::current_socket) : std::string(call.remote);
    }
    journal_.record([&](journal_entry& e) {
      e.time = now;
      e.keep_request(call.method, call.path, call.target, call.body);
      e.status = status;
      e.errcode = out.errcode;
      e.latency_us = us;
      e.fault.assign(fault_kind);
      e.keep_answer(rid, appid, ip, out.body);
    });
  }

  // Whose call it was: the app of its access_token (valid or not), else the appid it
  // names in the query or the JSON body; empty when it names none.
  std::string caller_appid(const api_call& call) {
    const params query = parse_query(call.target);
    if (const auto it = query.find("access_token"); it != query.end() && !it->second.empty())
      return world_.token_appid(it->second);
    if (const auto it = query.find("appid"); it != query.end()) return it->second;
    const auto j = nlohmann::json::parse(call.body, nullptr, false);
    if (j.is_object())
      if (const auto it = j.find("appid"); it != j.end() && it->is_string())
        return it->get<std::string>();
    return {};
  }

  // The address of the peer of socket `fd` ("" when unknown).
  static std::string peer_ip(int fd) {
    if (fd < 0) return {};
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
    char text[64] = {0};
    if (ss.ss_family == AF_INET)
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, text, sizeof text);
    else if (ss.ss_family == AF_INET6)
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, text, sizeof text);
    return text;
  }

  options opt_;
  mock_wechat::world world_;
  fault_table faults_;
  mock_wechat::journal journal_;
  stats_table stats_;
  wechat_api api_;
  admin_api admin_;
  std::unique_ptr<httplib::Server> http_;
  static constexpr std::size_t keep_alive_max = 100000;  // requests per connection
  std::string keep_alive_header_;  // what httplib writes: "timeout=5, max=100000"
  bool tls_ = false;
  int port_ = -1;
  int listen_socket_ = -1;
  std::thread thread_;
  std::mutex stop_mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
};

}  // namespace mock_wechat
