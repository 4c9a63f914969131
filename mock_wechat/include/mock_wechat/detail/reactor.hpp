// mock_wechat/detail/reactor.hpp - the plain-HTTP connection engine under mock_wechat::server.
//
// cpp-httplib 0.11.4 runs one connection per worker thread for as long as it stays open:
// 256 keep-alive connections need 256 threads, and on two cores those threads starve the
// load generator they serve. Here an idle or half-received connection costs no thread:
//
//  - httplib's accept loop hands each accepted socket to reactor::add() (the reactor is the
//    server's TaskQueue, so the accept thread runs the hand-off inline);
//  - a few workers (two per core by default), each with its own epoll set; accepted
//    connections are dealt out round robin and stay with their worker;
//  - a worker reads what has arrived and, only when a whole request is there (headers and
//    Content-Length body), has it answered: a plain API request by the mock's own reader
//    and writer (wire.hpp), anything else by httplib, from memory; a partial request goes
//    back to the set with a deadline. Slow or abandoned clients hold no worker;
//  - a worker about to wait on purpose (a delay fault) takes its connection out of the set
//    and hands its loop to a new thread, so delays take no capacity from other connections;
//  - responses go out in one send() each (pipelined answers of the fast path together);
//  - a sweeper shuts down connections idle past the keep-alive timeout and requests not
//    complete within the request timeout (the owning worker then closes them).
//
// Why one file of ~650 lines: the connection, the worker loop and the sweeper share one
// piece of state (which worker owns a connection, and when it may be closed) whose rules
// are easiest to check when read together; each function is short.
#pragma once

#include <httplib.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mock_wechat/detail/wire.hpp"

namespace mock_wechat {
namespace detail {

// The current connection's socket, for the drop fault.
inline thread_local int current_socket = -1;

inline std::int64_t steady_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// How much of a buffer is one whole HTTP/1.1 request.
struct request_frame {
  enum kind_t { need_more, ready, header_too_large, body_too_large } kind = need_more;
  std::size_t size = 0;  ///< ready: bytes of the request (headers + body)
};

// The end of a chunked body starting at `from`, or need_more / body_too_large.
inline request_frame frame_chunked(std::string_view buf, std::size_t from,
                                   std::size_t max_body) noexcept {
  std::size_t p = from, total = 0;
  for (;;) {
    const std::size_t eol = buf.find("\r\n", p);
    if (eol == std::string_view::npos)
      return {buf.size() - p > 1024 ? request_frame::body_too_large : request_frame::need_more, 0};
    std::size_t size = 0;
    std::size_t i = p;
    for (; i < eol; ++i) {
      const char ch = buf[i];
      const int d = ch >= '0' && ch <= '9'                     ? ch - '0'
                    : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'f' ? (ch | 0x20) - 'a' + 10
                                                               : -1;
      if (d < 0) break;
      size = size * 16 + static_cast<std::size_t>(d);
      if (size > max_body) return {request_frame::body_too_large, 0};
    }
    if (i == p) return {request_frame::ready, buf.size()};  // malformed: httplib answers 400
    total += size;
    if (total > max_body) return {request_frame::body_too_large, 0};
    if (size == 0) {  // trailers, then an empty line
      const std::size_t end = buf.find("\r\n\r\n", eol);
      if (eol + 2 <= buf.size() && buf.substr(eol + 2, 2) == "\r\n")
        return {request_frame::ready, eol + 4};
      if (end == std::string_view::npos) return {request_frame::need_more, 0};
      return {request_frame::ready, end + 4};
    }
    p = eol + 2 + size + 2;
    if (p > buf.size()) return {request_frame::need_more, 0};
  }
}

/// Finds the first request in `buf`: the header block ends at CRLFCRLF and is followed by
/// Content-Length bytes of body, or a chunked body. No request is handed to httplib before
/// it is whole, so a slow client never holds a worker. A malformed Content-Length is
/// "ready": httplib answers 400.
inline request_frame frame_request(std::string_view buf, std::size_t max_header,
                                   std::size_t max_body) noexcept {
  const std::size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos)
    return {buf.size() > max_header ? request_frame::header_too_large : request_frame::need_more,
            0};
  const std::size_t header = end + 4;
  if (header > max_header) return {request_frame::header_too_large, 0};
  std::uint64_t length = 0;
  bool malformed = false, chunked = false;
  auto starts = [](std::string_view line, std::string_view name) {
    if (line.size() <= name.size() || line[name.size()] != ':') return false;
    for (std::size_t i = 0; i < name.size(); ++i)
      if ((line[i] | 0x20) != name[i]) return false;
    return true;
  };
  std::size_t pos = buf.find("\r\n") + 2;  // skip the request line
  while (pos < end) {
    std::size_t eol = buf.find("\r\n", pos);
    std::string_view line = buf.substr(pos, eol - pos);
    pos = eol + 2;
    if (starts(line, "content-length")) {
      std::size_t i = sizeof "content-length";
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
        ++i;
      std::uint64_t n = 0;
      bool digits = false;
      for (; i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i) {
        digits = true;
        n = n * 10 + static_cast<unsigned>(line[i] - '0');
        if (n > (std::uint64_t{1} << 40)) break;
      }
      if (!digits) malformed = true;  // httplib rejects it
      length = n;
    } else if (starts(line, "transfer-encoding")) {
      chunked = true;
    }
  }
  if (malformed) return {request_frame::ready, buf.size()};
  if (chunked) return frame_chunked(buf, header, max_body);
  if (length > max_body) return {request_frame::body_too_large, header};
  if (buf.size() - header < length) return {request_frame::need_more, 0};
  return {request_frame::ready, header + static_cast<std::size_t>(length)};
}

// Waits up to timeout_ms for `events` on fd. True when they (or a hang-up) came.
inline bool wait_for(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  do
    r = ::poll(&p, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r > 0 && (p.revents & (events | POLLHUP | POLLERR));
}

// Sends all of `data` on a non-blocking socket, waiting up to timeout_ms at a time for
// room. False when the peer is gone or too slow.
inline bool send_whole(int fd, std::string_view data, int timeout_ms) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0)
      sent += static_cast<std::size_t>(n);
    else if (n == 0 || (errno != EINTR && (errno != EAGAIN || !wait_for(fd, POLLOUT, timeout_ms))))
      return false;  // else: interrupted, or room again: send the rest
  }
  return true;
}

/// One client connection. Owned by the reactor's table; touched by one worker at a time.
struct connection {
  explicit connection(int s) : fd(s) {}
  int fd;
  std::string pending;                    ///< received bytes of a request not yet complete
  std::size_t pending_counted = 0;        ///< pending's size as counted in pending_bytes_
  std::int64_t partial_since = 0;         ///< when the pending request's first byte came
  std::atomic<std::int64_t> deadline{0};  ///< steady ms; 0 while a worker holds it
  std::string remote_ip, local_ip;        ///< looked up once, on first use
  int remote_port = -1, local_port = -1;
  int loop = -1;  ///< the epoll set of the worker it belongs to
};

/// The stream httplib parses a request from and answers to. Reads come from the worker's
/// buffer (a whole request is there before httplib is called, and it reads exactly one),
/// then, should it ask for more, from the socket with poll()-based timeouts. Writes are
/// gathered and sent at once by flush(): httplib writes the headers and the body apart,
/// which would be two packets and two system calls per response.
class buffered_stream final : public httplib::Stream {
public:
  buffered_stream(connection& c, const std::string& buf, std::size_t begin, std::size_t end,
                  int timeout_ms)
      : c_(c), buf_(buf), begin_(begin), end_(end), timeout_ms_(timeout_ms) {}
  ~buffered_stream() override { flush(); }
  std::size_t consumed() const noexcept { return begin_; }
  bool is_readable() const override { return begin_ < end_ || wait(POLLIN); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    if (begin_ < end_) {
      const std::size_t n = std::min(size, end_ - begin_);
      std::memcpy(ptr, buf_.data() + begin_, n);
      begin_ += n;
      return static_cast<ssize_t>(n);
    }
    for (;;) {
      const ssize_t n = ::recv(c_.fd, ptr, size, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN || !wait(POLLIN)) return -1;
    }
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (failed_) return -1;
    out_.append(ptr, size);
    if (out_.size() >= std::size_t{64} * 1024 && !flush()) return -1;
    return static_cast<ssize_t>(size);
  }
  /// Sends what was written. False when the peer is gone or too slow.
  bool flush() {
    if (!failed_ && !send_whole(c_.fd, out_, timeout_ms_)) failed_ = true;
    out_.clear();
    return !failed_;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    if (c_.remote_port < 0) address(c_.fd, true, c_.remote_ip, c_.remote_port);
    ip = c_.remote_ip;
    port = c_.remote_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    if (c_.local_port < 0) address(c_.fd, false, c_.local_ip, c_.local_port);
    ip = c_.local_ip;
    port = c_.local_port;
  }
  socket_t socket() const override { return c_.fd; }

  static void address(int fd, bool remote, std::string& ip, int& port) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int r = remote ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                         : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    if (r != 0) return;
    char text[64] = {0};
    if (ss.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    }
    ip = text;
  }

private:
  bool wait(short events) const { return wait_for(c_.fd, events, timeout_ms_); }
  connection& c_;
  const std::string& buf_;
  std::size_t begin_, end_;
  int timeout_ms_;
  std::string out_;
  bool failed_ = false;
};

/// What the fast path did with a request.
enum class fast_result {
  declined,  ///< not for it: httplib answers
  keep,      ///< answered; the connection stays open
  close,     ///< answered (or dropped on purpose); the connection closes once it is sent
};

/// Limits and timeouts of the reactor.
struct reactor_limits {
  std::size_t workers = 2;                          ///< event loops, one thread each
  std::size_t max_extra_workers = 1024;             ///< stand-ins for workers waiting on purpose
  std::size_t max_header = std::size_t{64} * 1024;  ///< request line + headers; more gets 431
  std::size_t max_body = 1 << 20;                   ///< request body; more gets 413
  int keep_alive_timeout_ms = 5000;                 ///< idle connections close after this
  int request_timeout_ms = 10000;                   ///< a request must arrive whole within this
  int io_timeout_ms = 5000;                         ///< one blocking read or write (slow peer)
  std::size_t max_connections = 10000;              ///< more are closed as they are accepted
  /// Bytes of unfinished requests kept across all connections; a connection whose partial
  /// request would pass it gets 503 and is closed.
  std::size_t max_pending_bytes = std::size_t{256} << 20;
};

/// The engine: one level-triggered epoll set per worker (connections are dealt out round
/// robin as they are accepted, and stay with their worker), so a worker takes many ready
/// connections per wakeup and never re-arms one. `fast(request, out)` may answer a request
/// read by parse_plain_request() by appending the response to `out`; `serve(stream)` parses
/// and answers one request with httplib; both say whether the connection stays open.
class reactor final : public httplib::TaskQueue {
public:
  using serve_fn = std::function<bool(buffered_stream&)>;
  using fast_fn = std::function<fast_result(const plain_request&, std::string&)>;

  /// `retired` runs first thing in the destructor (e.g. to withdraw the reactor from
  /// other threads' reach).
  reactor(reactor_limits limits, serve_fn serve, fast_fn fast = {},
          std::function<void()> retired = {})
      : limits_(limits), serve_(std::move(serve)), fast_(std::move(fast)),
        retired_(std::move(retired)), wakefd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    loops_.resize(std::max<std::size_t>(1, limits_.workers));
    for (auto& ep : loops_) {
      ep = ::epoll_create1(EPOLL_CLOEXEC);
      epoll_event ev{};
      ev.events = EPOLLIN;  // level-triggered: wakes every loop on shutdown
      ev.data.ptr = nullptr;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, wakefd_, &ev);
    }
    for (int ep : loops_)
      start_worker(ep);
    sweeper_ = std::thread([this] { sweep(); });
  }
  ~reactor() override {
    if (retired_) retired_();
    shutdown();
    for (int ep : loops_)
      ::close(ep);
    ::close(wakefd_);
  }

  /// Called by httplib's accept loop with the connection's job: runs it at once (the job
  /// is process_and_close_socket, which calls add()).
  void enqueue(std::function<void()> fn) override { fn(); }

  /// Takes an accepted socket into a worker's set.
  void add(int fd) {
    if (stopping_.load()) {
      ::close(fd);
      return;
    }
    const int flags = ::fcntl(fd, F_GETFL, 0);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<connection>(fd);
    c->deadline.store(steady_ms() + limits_.keep_alive_timeout_ms);
    c->loop = loops_[next_loop_++ % loops_.size()];
    connection* raw = c.get();
    {
      std::lock_guard<std::mutex> lock(table_mutex_);
      if (table_.size() >= limits_.max_connections) {
        ++refused_;
        ::close(fd);
        return;
      }
      table_.emplace(raw, std::move(c));
    }
    if (!watch(*raw)) close_connection(raw);
  }

  /// Stops the workers and closes every connection. Idempotent.
  void shutdown() override {
    if (stopping_.exchange(true)) return;
    std::uint64_t one = 1;
    (void)!::write(wakefd_, &one, sizeof one);
    { std::lock_guard<std::mutex> lock(threads_mutex_); }
    sleep_cv_.notify_all();
    sweeper_cv_.notify_all();
    if (sweeper_.joinable()) sweeper_.join();
    {
      std::unique_lock<std::mutex> lock(threads_mutex_);
      threads_cv_.wait(lock, [&] { return live_ == 0; });
    }
    std::lock_guard<std::mutex> lock(table_mutex_);
    for (auto& [raw, c] : table_)
      ::close(c->fd);
    table_.clear();
    pending_bytes_.store(0);
  }

  /// Waits `ms` on purpose (a delay fault) without taking a worker from other
  /// connections: a stand-in thread runs this worker's loop meanwhile, and this thread
  /// retires once it has answered. Returns early on shutdown.
  void pause(int ms) {
    connection* c = current_connection;
    if (c != nullptr && current_loop >= 0) {
      ::epoll_ctl(c->loop, EPOLL_CTL_DEL, c->fd, nullptr);  // the stand-in must not take it
      rewatch = true;
      std::lock_guard<std::mutex> lock(threads_mutex_);
      if (!stopping_.load() && live_ < limits_.workers + limits_.max_extra_workers) {
        start_worker_locked(current_loop);
        retire = true;
      }
    }
    std::unique_lock<std::mutex> lock(threads_mutex_);
    sleep_cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_.load(); });
  }

  /// Connections open now.
  std::size_t connections() const {
    std::lock_guard<std::mutex> lock(table_mutex_);
    return table_.size();
  }
  /// Connections closed as they were accepted, at max_connections.
  std::size_t refused_connections() const {
    std::lock_guard<std::mutex> lock(table_mutex_);
    return refused_;
  }
  /// Bytes held for unfinished requests, all connections together.
  std::size_t pending_bytes() const noexcept { return pending_bytes_.load(); }
  /// Threads running connections now (workers, stand-ins, and paused ones).
  std::size_t threads() const {
    std::lock_guard<std::mutex> lock(threads_mutex_);
    return live_;
  }

private:
  bool watch(connection& c) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = &c;
    return ::epoll_ctl(c.loop, EPOLL_CTL_ADD, c.fd, &ev) == 0;
  }

  void start_worker(int ep) {
    std::lock_guard<std::mutex> lock(threads_mutex_);
    start_worker_locked(ep);
  }
  void start_worker_locked(int ep) {
    ++live_;
    std::thread([this, ep] {
      work(ep);
      std::lock_guard<std::mutex> lock(threads_mutex_);
      if (--live_ == 0) threads_cv_.notify_all();
    }).detach();
  }

  void work(int ep) {
    current = this;
    current_loop = ep;
    retire = false;
    epoll_event events[64];
    while (!retire && !stopping_.load(std::memory_order_relaxed)) {
      const int n = ::epoll_wait(ep, events, 64, 500);
      for (int i = 0; i < n && !retire; ++i)
        if (events[i].data.ptr != nullptr) handle(*static_cast<connection*>(events[i].data.ptr));
    }
    current = nullptr;
    current_loop = -1;
  }

  // Reads what has arrived, answers every whole request, keeps or closes the connection.
  void handle(connection& c) {
    c.deadline.store(0, std::memory_order_relaxed);
    thread_local std::string buf;
    buf.assign(c.pending);
    const bool eof = receive(c, buf);
    current_socket = c.fd;
    current_connection = &c;
    rewatch = false;
    std::size_t pos = 0;
    const bool keep = answer_requests(c, buf, pos);
    current_socket = -1;
    current_connection = nullptr;
    if (!keep || eof) {
      close_connection(&c);
      return;
    }
    const bool kept = hold_rest(c, buf, pos);
    if (buf.capacity() > keep_buffer) std::string().swap(buf);  // after a large request
    if (kept && rewatch && !watch(c)) close_connection(&c);
  }

  // Appends what has arrived on c to buf, up to what one request may take. True at end of
  // file or on an error: the connection closes once what came is answered.
  bool receive(connection& c, std::string& buf) const {
    constexpr std::size_t chunk = std::size_t{16} * 1024;
    const std::size_t cap = limits_.max_header + limits_.max_body + chunk;
    thread_local char received[chunk];  // not buf.resize(): that would zero 16 KiB a read
    while (buf.size() < cap) {
      const ssize_t n = ::recv(c.fd, received, chunk, 0);
      if (n > 0) {
        buf.append(received, static_cast<std::size_t>(n));
        if (static_cast<std::size_t>(n) < chunk) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return n == 0 || errno != EAGAIN;
    }
    return false;
  }

  // Answers every whole request in buf from pos on, and moves pos past them: the fast
  // path's answers gathered and sent together, anything else answered by httplib. False
  // when the connection must close.
  bool answer_requests(connection& c, const std::string& buf, std::size_t& pos) {
    bool keep = !stopping_.load(std::memory_order_relaxed);
    thread_local std::string out;  // the fast path's answers, sent together
    out.clear();
    while (keep && pos < buf.size()) {
      const auto frame =
          frame_request(std::string_view(buf).substr(pos), limits_.max_header, limits_.max_body);
      if (frame.kind == request_frame::need_more) break;
      if (frame.kind != request_frame::ready) {
        (void)send_all(c, out);
        reject(c, frame.kind == request_frame::header_too_large ? 431 : 413);
        keep = false;
        break;
      }
      if (fast_ && answer_fast(c, std::string_view(buf).substr(pos, frame.size), out, keep)) {
        pos += frame.size;
        continue;
      }
      if (!send_all(c, out)) {  // what the fast path answered goes first
        keep = false;
        break;
      }
      buffered_stream strm(c, buf, pos, buf.size(), limits_.io_timeout_ms);
      keep = serve_(strm);
      keep = strm.flush() && keep;
      pos = strm.consumed();
    }
    if (!out.empty()) keep = send_all(c, out) && keep;
    if (out.capacity() > std::size_t{256} * 1024) std::string().swap(out);
    return keep;
  }

  // The fast path: true when it answered `request` (appended to out, sent once 64 KiB are
  // gathered), keep then saying whether the connection stays open; false when it declined
  // and httplib is to answer.
  bool answer_fast(connection& c, std::string_view request, std::string& out, bool& keep) {
    const auto req = parse_plain_request(request);
    if (!req) return false;
    const fast_result r = fast_(*req, out);
    if (r == fast_result::declined) return false;
    keep = r == fast_result::keep;
    if (out.size() >= std::size_t{64} * 1024) keep = send_all(c, out) && keep;
    return true;
  }

  // After the answers: keeps what is left from pos, the start of an unfinished request, for
  // the next read (deadline: the request timeout), or else sets the keep-alive deadline.
  // False when that would hold too many bytes: the connection got 503 and is closed.
  bool hold_rest(connection& c, const std::string& buf, std::size_t pos) {
    const std::int64_t now = steady_ms();
    const std::size_t held = c.pending_counted;
    if (pos < buf.size()) {
      const std::size_t rest = buf.size() - pos;
      if (!count_pending(held, rest)) {
        reject(c, 503);  // too many bytes of unfinished requests held already
        close_connection(&c);
        return false;
      }
      if (c.pending.empty() || pos > 0) c.partial_since = now;
      std::string(buf, pos, std::string::npos).swap(c.pending);  // capacity: exactly `rest`
      c.pending_counted = rest;
      c.deadline.store(c.partial_since + limits_.request_timeout_ms);
    } else {
      if (!c.pending.empty()) {
        std::string().swap(c.pending);
        pending_bytes_.fetch_sub(held);
        c.pending_counted = 0;
      }
      c.deadline.store(now + limits_.keep_alive_timeout_ms);
    }
    return true;
  }

  // A connection's unfinished request goes from `held` to `rest` bytes: counted in
  // pending_bytes_ in one step, unless growing it would pass max_pending_bytes.
  bool count_pending(std::size_t held, std::size_t rest) {
    std::size_t total = pending_bytes_.load();
    do {
      if (rest > held && total - held + rest > limits_.max_pending_bytes) return false;
    } while (!pending_bytes_.compare_exchange_weak(total, total - held + rest));
    return true;
  }

  // Sends `data` whole (waiting for room at most io_timeout_ms at a time) and clears it.
  // False when the peer is gone or too slow.
  bool send_all(connection& c, std::string& data) const {
    const bool ok = send_whole(c.fd, data, limits_.io_timeout_ms);
    data.clear();
    return ok;
  }

  static void reject(connection& c, int status) {
    const std::string body = status == 431 ? "{\"error\":\"request headers too large\"}"
                             : status == 413
                                 ? "{\"error\":\"request body too large\"}"
                                 : "{\"error\":\"server busy: too many unfinished requests\"}";
    const std::string res = "HTTP/1.1 " + std::to_string(status) +
                            (status == 431   ? " Request Header Fields Too Large"
                             : status == 413 ? " Payload Too Large"
                                             : " Service Unavailable") +
                            "\r\nContent-Type: application/json; charset=UTF-8\r\n"
                            "Content-Length: " +
                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    (void)!::send(c.fd, res.data(), res.size(), MSG_NOSIGNAL);
  }

  // Only the thread that holds the connection (or shutdown) closes it.
  void close_connection(connection* c) {
    std::unique_ptr<connection> owned;
    {
      std::lock_guard<std::mutex> lock(table_mutex_);
      auto it = table_.find(c);
      if (it == table_.end()) return;
      owned = std::move(it->second);
      table_.erase(it);
    }
    pending_bytes_.fetch_sub(owned->pending_counted);
    ::epoll_ctl(owned->loop, EPOLL_CTL_DEL, owned->fd, nullptr);
    ::shutdown(owned->fd, SHUT_RDWR);
    ::close(owned->fd);
  }

  // Wakes connections past their deadline by shutting their socket down; their worker
  // sees end of file and closes them.
  void sweep() {
    std::unique_lock<std::mutex> wait_lock(sweeper_mutex_);
    while (!stopping_.load()) {
      sweeper_cv_.wait_for(wait_lock, std::chrono::milliseconds(100));
      const std::int64_t now = steady_ms();
      std::lock_guard<std::mutex> lock(table_mutex_);
      for (auto& [raw, c] : table_) {
        const std::int64_t d = c->deadline.load(std::memory_order_relaxed);
        if (d != 0 && d < now) {
          c->deadline.store(0, std::memory_order_relaxed);
          ::shutdown(c->fd, SHUT_RDWR);
        }
      }
    }
  }

public:
  /// The reactor the calling worker belongs to, if any.
  static inline thread_local reactor* current = nullptr;

private:
  static inline thread_local int current_loop = -1;
  static inline thread_local connection* current_connection = nullptr;
  static inline thread_local bool retire = false;   // a stand-in took this loop over
  static inline thread_local bool rewatch = false;  // the connection left the set to pause

  reactor_limits limits_;
  serve_fn serve_;
  fast_fn fast_;
  std::function<void()> retired_;
  int wakefd_;
  std::vector<int> loops_;
  std::atomic<std::size_t> next_loop_{0};
  std::atomic<bool> stopping_{false};
  mutable std::mutex table_mutex_;
  std::size_t refused_ = 0;                    // under table_mutex_
  std::atomic<std::size_t> pending_bytes_{0};  // every connection's pending_counted, summed
  // A worker's read buffer larger than this after a request is given back.
  static constexpr std::size_t keep_buffer = std::size_t{256} * 1024;
  std::unordered_map<connection*, std::unique_ptr<connection>> table_;
  mutable std::mutex threads_mutex_;
  std::condition_variable threads_cv_, sleep_cv_;
  std::size_t live_ = 0;
  std::thread sweeper_;
  std::mutex sweeper_mutex_;
  std::condition_variable sweeper_cv_;
};

}  // namespace detail
}  // namespace mock_wechat
