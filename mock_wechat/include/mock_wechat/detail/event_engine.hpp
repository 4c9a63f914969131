// mock_wechat/detail/event_engine.hpp - the mock's own HTTP/1.1 server: a few event loops
// that own every byte of every connection, so that no client, however slow, hostile or
// numerous, holds a thread, and a delayed answer costs a timer, not a thread.
//
//  - a listening socket of its own, in every loop's epoll set (EPOLLEXCLUSIVE); the loop
//    that accepts deals the connection out round robin (a mutex-guarded inbox and an
//    eventfd per loop), and each connection then belongs to one loop for its whole life:
//    nothing about a connection is shared between threads;
//  - a loop reads what has arrived, reads whole requests with detail/http1.hpp (the
//    limits apply as bytes arrive), has core::handle answer them, and writes the answers
//    with detail/wire.hpp into the connection's out buffer, sent as far as the socket takes
//    it; the rest goes when epoll says there is room (a slow reader holds bytes, not a
//    thread);
//  - an answer with a delay is written at once into the connection's `delayed` bytes and a
//    timer; the connection reads nothing more until it has gone (pipelined requests keep
//    their order);
//  - timers (delayed answers, and the keep-alive, request and write deadlines) sit in a
//    binary heap per loop; epoll_pwait2 sleeps until the earliest, to the microsecond
//    (epoll_wait's whole milliseconds on a kernel older than 5.11);
//  - HTTPS is the same loop with OpenSSL on the non-blocking socket (SSL_accept, SSL_read,
//    SSL_write; their WANT_READ/WANT_WRITE become epoll interest): the decrypted bytes go
//    through the same reader, limits and timeouts as plain HTTP, and a handshake must be
//    done within the request timeout;
//  - stop() wakes every loop through its eventfd; each closes its connections and returns;
//  - a server whose answers take time of their own (examples/login_server calls WeChat)
//    gives a deferred_handler instead: it gets each whole request and a `responder`, hands
//    the work to its own threads and calls the responder once, from any thread; the loop
//    treats the connection as it treats a delayed answer (reads nothing more) until the
//    answer comes through the loop's eventfd, or answer_timeout_ms passes (503). The
//    loops never block on it.
//
// Why one file: the connection, the loop and the timers share one piece of state (what a
// connection waits for, and when it may be closed) whose rules are easiest to check when
// read together; each function is short.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <climits>
#include <csignal>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mock_wechat/core.hpp"
#include "mock_wechat/detail/http1.hpp"
#include "mock_wechat/detail/precise_wait.hpp"
#include "mock_wechat/detail/wire.hpp"

namespace mock_wechat::detail {

/// Limits and timeouts of the event engine.
struct engine_limits {
  std::size_t workers = 2;                          ///< event loops, one thread each
  std::size_t max_header = std::size_t{64} * 1024;  ///< request line + headers; more gets 431
  std::size_t max_body = 1 << 20;                   ///< request body; more gets 413
  int keep_alive_timeout_ms = 5000;                 ///< idle connections close after this
  int request_timeout_ms = 10000;                   ///< a request must arrive whole within this
  int io_timeout_ms = 5000;                         ///< an answer must leave within this
  std::size_t max_connections = 10000;              ///< more are closed as they are accepted
  /// Bytes of unfinished requests kept across all connections; a connection whose partial
  /// request would pass it gets 503 and is closed.
  std::size_t max_pending_bytes = std::size_t{256} << 20;
  int backlog = 1024;                                      ///< listen backlog
  std::string keep_alive_header = "timeout=5, max=100000";  ///< the Keep-Alive header's value
  std::shared_ptr<SSL_CTX> tls;  ///< serve HTTPS with it (tls_server_context); null: plain HTTP
  /// deferred_handler only: an answer not given within this is 503 and the connection
  /// closes (a later call of its responder does nothing).
  int answer_timeout_ms = 30000;
  /// After a refusal (413, 431, 503...) sent while the client may still be sending: the
  /// connection half-closes and reads and drops what still comes, for up to this long or
  /// linger_max_bytes, then closes. Closing at once with unread bytes resets the
  /// connection, and the client may lose the answer (a chunked upload past max_body
  /// lost its 413 three times in four). What web servers call a lingering close.
  int linger_ms = 2000;
  std::size_t linger_max_bytes = std::size_t{16} << 20;
};

class event_engine;

/// Answers one request of a deferred_handler, later and from any thread. Copyable; the
/// first call answers, any later call (or one after the connection or the engine is gone)
/// does nothing. Never blocks: the answer is queued for the connection's loop.
class responder {
public:
  responder() = default;
  void operator()(http_response answer) const;

private:
  friend class event_engine;
  struct completion {
    std::uint32_t slot, gen, seq;
    http_response answer;
  };
  // A loop's queue of answers from other threads; shared with the responders, so that one
  // called after the engine stopped finds it closed instead of a freed loop.
  struct box {
    std::mutex mutex;
    bool closed = false;  // the loop has stopped (its eventfd is about to close)
    int wakefd = -1;
    std::vector<completion> items;
  };
  responder(std::shared_ptr<box> b, std::uint32_t slot, std::uint32_t gen, std::uint32_t seq)
      : box_(std::move(b)), slot_(slot), gen_(gen), seq_(seq) {}
  std::shared_ptr<box> box_;
  std::uint32_t slot_ = 0, gen_ = 0, seq_ = 0;
};

inline void responder::operator()(http_response answer) const {
  if (!box_) return;
  std::lock_guard<std::mutex> lock(box_->mutex);
  if (box_->closed) return;
  box_->items.push_back(completion{slot_, gen_, seq_, std::move(answer)});
  if (box_->items.size() == 1) {  // else a wake is already on its way
    std::uint64_t one = 1;
    (void)!::write(box_->wakefd, &one, sizeof one);
  }
}

/// A server TLS context from PEM files: TLS 1.2 or later, no renegotiation or compression,
/// buffers given back while a connection is idle. Throws std::runtime_error naming the
/// files (never their contents).
inline std::shared_ptr<SSL_CTX> tls_server_context(const std::string& cert,
                                                   const std::string& key) {
  std::shared_ptr<SSL_CTX> ctx(::SSL_CTX_new(::TLS_server_method()), ::SSL_CTX_free);
  if (!ctx) throw std::runtime_error("cannot create a TLS context");
  ::SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  ::SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  ::SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (::SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
      ::SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      ::SSL_CTX_check_private_key(ctx.get()) != 1) {
    ::ERR_clear_error();
    throw std::runtime_error("cannot load TLS certificate/key " + cert + ", " + key);
  }
  return ctx;
}

inline std::int64_t steady_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// A listening TCP socket on host:port (0: any free port), non-blocking. Throws
/// std::runtime_error naming the address and the reason.
inline int listen_on(const std::string& host, int port, int backlog, int& bound_port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0)
    throw std::runtime_error("cannot bind " + host + ":" + service + ": " + ::gai_strerror(rc));
  int error = 0;
  int fd = -1;
  for (addrinfo* a = list; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
      error = errno;
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(list);
  if (fd < 0)
    throw std::runtime_error("cannot bind " + host + ":" + service + ": " + std::strerror(error));
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  bound_port = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

/// The event engine. Binds in the constructor (throwing std::runtime_error when it cannot)
/// and serves until stop() or destruction. `handler` answers each request (core::handle; a
/// benchmark's fixed answer); it is called on the loops' threads, several at once.
class event_engine {
public:
  using handler = std::function<http_response(const http_request&)>;
  /// Gets each whole request (valid only during the call: copy what the work needs) and
  /// its responder. Must not block: it hands the work on and returns.
  using deferred_handler = std::function<void(const http_request&, responder)>;

  event_engine(handler h, const std::string& host, int port, engine_limits limits)
      : handler_(std::move(h)), limits_(std::move(limits)) {
    start(host, port);
  }
  event_engine(deferred_handler h, const std::string& host, int port, engine_limits limits)
      : deferred_(std::move(h)), limits_(std::move(limits)) {
    start(host, port);
  }
  ~event_engine() { stop(); }
  event_engine(const event_engine&) = delete;
  event_engine& operator=(const event_engine&) = delete;

  int port() const noexcept { return port_; }

  /// Stops every loop and closes every connection. Idempotent; prompt.
  void stop() {
    std::lock_guard<std::mutex> lock(stop_mutex_);  // a second caller waits for the first
    if (stopping_.exchange(true)) return;
    for (auto& l : loops_)
      l->wake();
    for (auto& l : loops_)
      if (l->thread.joinable()) l->thread.join();
    ::close(listen_fd_);
    pending_bytes_.store(0);
  }

  std::size_t connections() const noexcept { return connections_.load(); }
  std::size_t refused_connections() const noexcept { return refused_.load(); }
  std::size_t pending_bytes() const noexcept { return pending_bytes_.load(); }

private:
  void start(const std::string& host, int port) {
    listen_fd_ = listen_on(host, port, limits_.backlog, port_);
    const std::size_t n = std::max<std::size_t>(1, limits_.workers);
    for (std::size_t i = 0; i < n; ++i)
      loops_.push_back(std::make_unique<loop>(*this, i));
    for (auto& l : loops_)
      l->thread = std::thread([p = l.get()] { p->run(); });
  }

  struct connection {
    int fd = -1;
    std::uint32_t gen = 0;        ///< bumped when the slot is let go: stale events and timers
    std::string in;               ///< received bytes not yet answered
    std::size_t in_counted = 0;   ///< in's size as counted in pending_bytes_
    std::size_t scanned = 0;      ///< the parser's resume point in `in`
    std::string out;              ///< answers not yet sent
    std::size_t out_sent = 0;     ///< of `out`
    std::string delayed;          ///< an answer waiting for its timer
    connection_fault delayed_fault = connection_fault::none;
    bool delayed_close = false;   ///< close once the delayed answer is sent
    bool waiting = false;         ///< an answer is delayed: read nothing meanwhile
    bool closing = false;         ///< close once `out` is sent
    bool linger = false;          ///< ...lingering (a refusal; the client may still send)
    bool lingering = false;       ///< half-closed: reading and dropping until EOF or deadline
    std::size_t lingered = 0;     ///< bytes dropped while lingering
    bool continue_sent = false;   ///< "100 Continue" went out for the request being read
    bool eof = false;             ///< the client sent all it will send
    bool deferred = false;        ///< waiting for a responder (deferred_handler)
    bool deferred_head = false;   ///< ...to a HEAD request
    bool deferred_close = false;  ///< ...that asked to close after its answer
    std::uint32_t answer_seq = 0;  ///< which answer the connection waits for
    std::int64_t deferred_due = 0;  ///< steady µs: the responder's deadline
    std::int64_t deadline = 0;    ///< steady µs; 0: none
    std::int64_t partial_since = 0;  ///< when the unfinished request's first byte came
    std::int64_t idle_since = 0;     ///< when the connection last had nothing to do
    std::int64_t timer_due = 0;   ///< the earliest deadline timer in the heap; 0: none
    std::uint32_t events = 0;     ///< the epoll interest now
    SSL* ssl = nullptr;           ///< HTTPS: the connection's TLS state
    bool tls_ready = false;       ///< the handshake is done
    bool tls_wants_write = false;  ///< a TLS read waits for room to write (handshake)
    bool tls_write_wants_read = false;  ///< a TLS write waits for bytes to read
    bool tls_failed = false;       ///< a fatal TLS error: no close_notify
    char peer[INET6_ADDRSTRLEN] = {0};
  };

  enum class timer_kind : std::uint8_t { deadline, answer };
  struct timer {
    std::int64_t due;
    std::uint32_t slot, gen;
    timer_kind kind;
    std::uint32_t seq;  ///< answer timers: the answer_seq they deliver
    bool operator>(const timer& o) const noexcept { return due > o.due; }
  };

  static constexpr std::uint64_t listen_tag = ~std::uint64_t{0};
  static constexpr std::uint64_t wake_tag = ~std::uint64_t{0} - 1;

  // One event loop: its epoll set, its connections, its timers.
  struct loop {
    loop(event_engine& e, std::size_t i)
        : engine(e), index(i), ep(::epoll_create1(EPOLL_CLOEXEC)),
          wakefd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
          answers(std::make_shared<responder::box>()) {
      if (ep < 0 || wakefd < 0) throw std::runtime_error("cannot create an event loop");
      answers->wakefd = wakefd;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = wake_tag;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, wakefd, &ev);
      ev.events = EPOLLIN | EPOLLEXCLUSIVE;
      ev.data.u64 = listen_tag;
      if (::epoll_ctl(ep, EPOLL_CTL_ADD, e.listen_fd_, &ev) != 0) {  // a kernel without it
        ev.events = EPOLLIN;
        if (::epoll_ctl(ep, EPOLL_CTL_ADD, e.listen_fd_, &ev) != 0)
          throw std::runtime_error("cannot watch the listening socket");
      }
    }
    ~loop() {
      ::close(ep);
      ::close(wakefd);
    }

    event_engine& engine;
    std::size_t index;
    int ep, wakefd;
    std::thread thread;
    std::mutex inbox_mutex;
    std::vector<int> inbox;  // accepted by another loop, for this one
    bool closed = false;     // under inbox_mutex: the loop has stopped
    std::shared_ptr<responder::box> answers;  // deferred answers from other threads
    std::vector<std::unique_ptr<connection>> slots;
    std::vector<std::uint32_t> free_slots;
    std::vector<timer> timers;  // a min-heap on due

    void wake() {
      std::uint64_t one = 1;
      (void)!::write(wakefd, &one, sizeof one);
    }

    void give(int fd) {
      {
        std::lock_guard<std::mutex> lock(inbox_mutex);
        if (!closed) {
          inbox.push_back(fd);
          fd = -1;
        }
      }
      if (fd < 0) return wake();
      ::close(fd);  // this loop has stopped
      engine.connections_.fetch_sub(1);
    }

    void run() {
      // OpenSSL writes with write(), not send(MSG_NOSIGNAL): a peer gone mid-answer must give
      // EPIPE, not a SIGPIPE that ends the process embedding the mock.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      epoll_event events[256];
      while (!engine.stopping_.load(std::memory_order_relaxed)) {
        const int n = wait_events(events, 256);
        for (int i = 0; i < n; ++i) {
          const std::uint64_t tag = events[i].data.u64;
          if (tag == listen_tag)
            accept_some();
          else if (tag == wake_tag)
            take_inbox();
          else
            on_event(tag, events[i].events);
        }
        fire_timers();
      }
      for (std::uint32_t s = 0; s < slots.size(); ++s)
        if (slots[s] && slots[s]->fd >= 0) close_connection(s);
      {
        std::lock_guard<std::mutex> lock(answers->mutex);
        answers->closed = true;  // responders called from now on do nothing
        answers->items.clear();
      }
      std::lock_guard<std::mutex> lock(inbox_mutex);
      closed = true;
      for (const int fd : inbox) {
        ::close(fd);
        engine.connections_.fetch_sub(1);
      }
      inbox.clear();
    }

    // Sleeps until an event or the earliest timer, to the microsecond where the kernel can
    // (detail/precise_wait.hpp).
    int wait_events(epoll_event* events, int max) {
      if (timers.empty()) return ::epoll_wait(ep, events, max, -1);
      const std::int64_t left =
          std::clamp<std::int64_t>(timers.front().due - steady_us(), 0, 60'000'000);
      const timespec t{static_cast<time_t>(left / 1'000'000),
                       static_cast<long>(left % 1'000'000) * 1000};
      return wait_precisely(ep, events, max, t, precise_wait);
    }
    bool precise_wait = true;  ///< epoll_pwait2 works (until it fails otherwise than EINTR)

    // --- connections come and go ---

    void accept_some() {
      for (int i = 0; i < 64; ++i) {  // then let the other loops take their turn
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        const int fd = ::accept4(engine.listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          // Out of descriptors: the connection waits in the backlog; without a pause the
          // level-triggered listener would wake this loop again at once, for ever.
          if (errno == EMFILE || errno == ENFILE)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          return;  // EAGAIN, or an error the next connection may not have
        }
        if (engine.connections_.fetch_add(1) >= engine.limits_.max_connections) {
          engine.connections_.fetch_sub(1);
          engine.refused_.fetch_add(1);
          ::close(fd);
          continue;
        }
        loop& to = *engine.loops_[engine.next_loop_.fetch_add(1) % engine.loops_.size()];
        if (&to == this)
          adopt(fd);
        else
          to.give(fd);
      }
    }

    void take_inbox() {
      std::uint64_t n = 0;
      (void)!::read(wakefd, &n, sizeof n);
      std::vector<int> fds;
      {
        std::lock_guard<std::mutex> lock(inbox_mutex);
        fds.swap(inbox);
      }
      for (const int fd : fds)
        adopt(fd);
      take_answers();
    }

    // Deferred answers that came from other threads: each to its connection, if it still
    // waits for that very answer.
    void take_answers() {
      std::vector<responder::completion> done;
      {
        std::lock_guard<std::mutex> lock(answers->mutex);
        done.swap(answers->items);
      }
      for (auto& d : done) {
        if (d.slot >= slots.size()) continue;
        connection& c = *slots[d.slot];
        if (c.fd < 0 || c.gen != d.gen || !c.deferred || d.seq != c.answer_seq) continue;
        std::string bytes;
        const http_response& a = d.answer;
        if (a.fault != connection_fault::drop)
          write_response(bytes, a.status, a.content_type, a.body, a.length,
                         c.deferred_close && a.fault == connection_fault::none,
                         engine.limits_.keep_alive_header, c.deferred_head);
        c.delayed.insert(0, bytes);  // before a 503 the pending budget may have queued
        c.delayed_fault = a.fault;
        c.deferred = false;
        deliver(d.slot, c);
      }
    }

    void adopt(int fd) {
      if (engine.stopping_.load()) {
        ::close(fd);
        engine.connections_.fetch_sub(1);
        return;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::uint32_t s;
      if (!free_slots.empty()) {
        s = free_slots.back();
        free_slots.pop_back();
      } else {
        s = static_cast<std::uint32_t>(slots.size());
        slots.push_back(std::make_unique<connection>());
      }
      connection& c = *slots[s];
      const std::uint32_t gen = c.gen;
      c = connection{};
      c.gen = gen;
      c.fd = fd;
      peer_of(fd, c.peer);
      c.partial_since = c.idle_since = steady_us();  // HTTPS: the handshake's deadline too
      if (engine.limits_.tls) {
        c.ssl = ::SSL_new(engine.limits_.tls.get());
        if (c.ssl == nullptr || ::SSL_set_fd(c.ssl, fd) != 1) {
          ::ERR_clear_error();
          return close_connection(s);
        }
        ::SSL_set_accept_state(c.ssl);
      }
      c.events = EPOLLIN | EPOLLRDHUP;
      epoll_event ev{};
      ev.events = c.events;
      ev.data.u64 = tag_of(s, c.gen);
      if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close_connection(s);
        return;
      }
      // A TLS handshake counts as a request's first bytes: the request timeout.
      set_deadline(s, c,
                   c.partial_since + ms(c.ssl != nullptr ? engine.limits_.request_timeout_ms
                                                         : engine.limits_.keep_alive_timeout_ms));
    }

    // Sends close_notify (if it fits) and lets the connection's TLS state go.
    static void end_tls(connection& c) {
      if (c.ssl == nullptr) return;
      if (c.tls_ready && !c.tls_failed) ::SSL_shutdown(c.ssl);
      ::SSL_free(c.ssl);
      ::ERR_clear_error();
      c.ssl = nullptr;
    }

    // Lets the connection's buffers go (a slot may stay free, or linger, for long) and
    // takes its unfinished request out of the pending budget.
    void release_buffers(connection& c) {
      engine.pending_bytes_.fetch_sub(c.in_counted);
      c.in_counted = 0;
      std::string().swap(c.in);
      std::string().swap(c.out);
      c.out_sent = 0;
      std::string().swap(c.delayed);
    }

    void close_connection(std::uint32_t s) {
      connection& c = *slots[s];
      if (c.fd < 0) return;
      end_tls(c);
      ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      ::shutdown(c.fd, SHUT_RDWR);
      ::close(c.fd);
      c.fd = -1;
      ++c.gen;  // every event and timer still naming the old connection is now stale
      engine.connections_.fetch_sub(1);
      release_buffers(c);
      free_slots.push_back(s);
    }

    // --- events ---

    void on_event(std::uint64_t tag, std::uint32_t ev) {
      const auto s = static_cast<std::uint32_t>(tag & 0xffffffffu);
      if (s >= slots.size()) return;
      connection& c = *slots[s];
      if (c.fd < 0 || c.gen != static_cast<std::uint32_t>(tag >> 32)) return;
      if ((ev & EPOLLERR) != 0) return close_connection(s);
      if (c.lingering) return drop_input(s, c);
      const bool tls_write_retry = c.tls_write_wants_read && (ev & EPOLLIN) != 0;
      if ((ev & EPOLLOUT) != 0 || tls_write_retry) {
        if (!flush(s, c)) return;
        // Drained: requests read before the answers backed up are answered now.
        if (c.out_sent == c.out.size() && !c.in.empty() && !c.waiting && !c.closing)
          return serve(s, c);
      }
      const bool reading = !c.waiting && !c.closing && !c.eof;
      const bool tls_read_retry = c.tls_wants_write && (ev & EPOLLOUT) != 0;
      if (reading && ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) != 0 || tls_read_retry)) {
        if (receive(c)) c.eof = true;
        return serve(s, c);
      }
      if ((ev & EPOLLHUP) != 0) return close_connection(s);  // gone while we were not reading
      after_io(s, c);
    }

    // Appends what has arrived to c.in, up to what one request may take. True at end of
    // file or on an error.
    // The most bytes one request may take on the wire: head, body and the chunked
    // encoding's overhead.
    std::size_t read_cap() const noexcept {
      return engine.limits_.max_header + engine.limits_.max_body + chunk_size;
    }
    static constexpr std::size_t chunk_size = std::size_t{16} * 1024;  // one read
    static constexpr std::size_t out_cap = std::size_t{256} * 1024;    // answers not yet read

    bool receive(connection& c) const {
      constexpr std::size_t chunk = chunk_size;
      const std::size_t cap = read_cap();
      thread_local char received[chunk];  // not c.in.resize(): that would zero 16 KiB a read
      if (c.ssl != nullptr) return receive_tls(c, received, chunk, cap);
      while (c.in.size() < cap) {
        const ssize_t n = ::recv(c.fd, received, chunk, 0);
        if (n > 0) {
          c.in.append(received, static_cast<std::size_t>(n));
          if (static_cast<std::size_t>(n) < chunk) break;
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return n == 0 || errno != EAGAIN;
      }
      return false;
    }

    // receive() over TLS: the handshake first, then every record there is (OpenSSL may
    // hold decrypted bytes epoll cannot see, so it reads until WANT_READ).
    static bool receive_tls(connection& c, char* buf, std::size_t chunk, std::size_t cap) {
      c.tls_wants_write = false;
      ::ERR_clear_error();
      if (!c.tls_ready) {
        const int r = ::SSL_accept(c.ssl);
        if (r != 1) return tls_blocked(c, r);
        c.tls_ready = true;
        c.idle_since = steady_us();
      }
      while (c.in.size() < cap) {
        ::ERR_clear_error();
        const int n = ::SSL_read(c.ssl, buf, static_cast<int>(chunk));
        if (n <= 0) return tls_blocked(c, n);
        c.in.append(buf, static_cast<std::size_t>(n));
      }
      return false;
    }

    // After a TLS read gave `r` <= 0: false when it only waits for the socket (and for
    // which way), true when the connection is over (close_notify, end of file, an error).
    static bool tls_blocked(connection& c, int r) {
      const int e = ::SSL_get_error(c.ssl, r);
      if (e == SSL_ERROR_WANT_READ) return false;
      if (e == SSL_ERROR_WANT_WRITE) {
        c.tls_wants_write = true;
        return false;
      }
      c.tls_failed = e != SSL_ERROR_ZERO_RETURN;  // anything but the peer's close_notify
      ::ERR_clear_error();
      return true;
    }

    // Answers every whole request in c.in, in order, until one is delayed; then keeps the
    // rest, sends what it can, and sets the connection's next deadline.
    void serve(std::uint32_t s, connection& c) {
      thread_local http_header headers[http1_max_fields];
      thread_local std::string chunked_body;
      const auto& lim = engine.limits_;
      const http1_limits hl{lim.max_header, lim.max_body};
      std::size_t pos = 0;
      // Answers wait in c.out for a client that does not read them: past out_cap, the
      // requests behind stay unread in c.in (counted in the pending budget) until it drains.
      bool backed_up = false;
      while (!c.waiting && !c.closing && pos < c.in.size()) {
        if (c.out.size() - c.out_sent >= out_cap) {
          backed_up = true;
          break;
        }
        const std::string_view rest = std::string_view(c.in).substr(pos);
        http1_request r = parse_http1(rest, hl, headers, chunked_body, c.scanned);
        if (r.kind == http1_request::need_more && rest.size() >= read_cap()) {
          // As many bytes as a request may take on the wire, and still not whole (a body
          // chunked into tiny pieces with long extensions): too large.
          r.kind = http1_request::refused;
          r.status = r.head_done ? 413 : 431;
        }
        if (r.kind == http1_request::need_more) {
          c.scanned = r.scanned;
          if (r.expect_continue && !c.continue_sent) {
            c.out += "HTTP/1.1 100 Continue\r\n\r\n";
            c.continue_sent = true;
          }
          break;
        }
        c.scanned = 0;
        c.continue_sent = false;
        if (r.kind == http1_request::refused) {
          const http_response e = framing_error(r.status);
          write_response(c.out, e.status, e.content_type, e.body, e.length, true,
                         lim.keep_alive_header);
          c.closing = true;
          c.linger = true;
          pos = c.in.size();
          break;
        }
        http_request req;
        req.method = r.method;
        req.target = r.target;
        req.headers = headers;
        req.header_count = r.header_count;
        req.body = r.body;
        req.peer = c.peer;
        const bool head = r.method == "HEAD";
        if (engine.deferred_) {
          pos += r.size;
          c.idle_since = steady_us();
          defer(s, c, req, r.close, head);
          break;
        }
        http_response a = engine.handler_(req);
        pos += r.size;
        c.idle_since = steady_us();
        if (a.delay_us > 0) {
          c.delayed.clear();
          if (a.fault != connection_fault::drop)
            write_response(c.delayed, a.status, a.content_type, a.body, a.length,
                           r.close && a.fault == connection_fault::none, lim.keep_alive_header,
                           head);
          c.delayed_fault = a.fault;
          c.delayed_close = r.close;
          c.waiting = true;
          push_timer(steady_us() + a.delay_us, s, c.gen, timer_kind::answer, ++c.answer_seq);
          break;
        }
        emit(c, a, r.close, head);
      }
      keep_rest(c, pos);
      // What came is answered (or cannot be); nothing more will come.
      if (c.eof && !c.waiting && !backed_up) c.closing = true;
      after_io(s, c);
    }

    // A request for the deferred_handler: the connection waits (reads nothing more) until
    // its responder answers or answer_timeout_ms passes.
    void defer(std::uint32_t s, connection& c, const http_request& req, bool close, bool head) {
      c.delayed.clear();
      c.delayed_fault = connection_fault::none;
      c.delayed_close = close;
      c.deferred_close = close;
      c.deferred_head = head;
      c.deferred = true;
      c.waiting = true;
      c.deferred_due = c.idle_since + ms(engine.limits_.answer_timeout_ms);
      const responder answer(answers, s, c.gen, ++c.answer_seq);
      try {
        engine.deferred_(req, answer);
      } catch (...) {  // a handler that throws still answers, and the loop lives on
        http_response e;
        e.status = 500;
        e.content_type = json_type;
        e.body = "{\"error\":\"internal error\"}";
        e.length = e.body.size();
        answer(std::move(e));
      }
    }

    // A deferred answer that did not come in time: 503, and the connection closes (so
    // nothing queued behind it, such as the pending budget's 503, goes).
    void answer_timed_out(std::uint32_t s, connection& c) {
      ++c.answer_seq;  // its responder, if it ever calls, answers nothing
      c.deferred = false;
      http_response e;
      e.status = 503;
      e.content_type = json_type;
      e.body = "{\"error\":\"server busy: no answer in time\"}";
      e.length = e.body.size();
      std::string bytes;
      write_response(bytes, e.status, e.content_type, e.body, e.length, true,
                     engine.limits_.keep_alive_header, c.deferred_head);
      c.delayed = std::move(bytes);
      c.delayed_fault = connection_fault::none;
      c.delayed_close = true;
      deliver(s, c);
    }

    // An answer into c.out, and what it does to the connection.
    void emit(connection& c, const http_response& a, bool close, bool head) {
      if (a.fault == connection_fault::drop) {
        c.closing = true;  // earlier pipelined answers still go; this one never does
        return;
      }
      write_response(c.out, a.status, a.content_type, a.body, a.length,
                     close && a.fault == connection_fault::none,
                     engine.limits_.keep_alive_header, head);
      if (close || a.fault == connection_fault::truncate) c.closing = true;
    }

    // Drops the answered bytes from c.in and counts what is left against the pending
    // budget; over it, 503 and close.
    void keep_rest(connection& c, std::size_t pos) {
      if (pos > 0) c.in.erase(0, pos);
      if (c.closing) c.in.clear();
      if (c.in.empty() && c.in.capacity() > std::size_t{4} * 1024) std::string().swap(c.in);
      const std::size_t held = c.in_counted, now_held = c.in.size();
      if (now_held > 0 && (held == 0 || pos > 0)) c.partial_since = steady_us();
      if (now_held == held) return;
      if (now_held > held) {
        std::size_t total = engine.pending_bytes_.load();
        do {
          if (total - held + now_held > engine.limits_.max_pending_bytes) {
            engine.pending_bytes_.fetch_sub(held);
            c.in_counted = 0;
            std::string().swap(c.in);
            const http_response e = framing_error(503);
            if (c.waiting) {  // after the answer that waits: answers keep their order
              write_response(c.delayed, e.status, e.content_type, e.body, e.length, true,
                             engine.limits_.keep_alive_header);
              c.delayed_close = true;
            } else {
              write_response(c.out, e.status, e.content_type, e.body, e.length, true,
                             engine.limits_.keep_alive_header);
              c.closing = true;
            }
            c.linger = true;
            return;
          }
        } while (!engine.pending_bytes_.compare_exchange_weak(total, total - held + now_held));
      } else {
        engine.pending_bytes_.fetch_sub(held - now_held);
      }
      c.in_counted = now_held;
    }

    // After reading or writing: sends what it can, then closes the connection or sets its
    // epoll interest and next deadline.
    void after_io(std::uint32_t s, connection& c) {
      if (!flush(s, c)) return;
      const bool unsent = c.out_sent < c.out.size();
      if (c.closing && !unsent && !c.waiting)
        return c.linger && !c.eof ? start_linger(s, c) : close_connection(s);
      const bool reading = !c.waiting && !c.closing && !c.eof && !unsent;
      const std::uint32_t want = (unsent || (reading && c.tls_wants_write) ? EPOLLOUT : 0u) |
                                 (reading ? EPOLLIN | EPOLLRDHUP : 0u) |
                                 (unsent && c.tls_write_wants_read ? EPOLLIN : 0u);
      if (want != c.events) {
        epoll_event ev{};
        ev.events = want;
        ev.data.u64 = tag_of(s, c.gen);
        ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        c.events = want;
      }
      const auto& lim = engine.limits_;
      const std::int64_t now = steady_us();
      const bool handshaking = c.ssl != nullptr && !c.tls_ready;  // a request's first bytes
      if (unsent)
        set_deadline(s, c, now + ms(lim.io_timeout_ms));
      else if (c.waiting && c.deferred)
        set_deadline(s, c, c.deferred_due);  // the responder's time
      else if (c.waiting)
        c.deadline = 0;  // the answer's timer comes first
      else if (handshaking || !c.in.empty())
        set_deadline(s, c, c.partial_since + ms(lim.request_timeout_ms));
      else  // idle: from when it last had something to do (TLS bytes that make no request
            // yet, a record trickled in, do not keep it open)
        set_deadline(s, c, c.idle_since + ms(lim.keep_alive_timeout_ms));
    }

    // The answers are sent and the connection closes, but the client may still be sending
    // (a refused body): half-close, so it reads the answer and an end of file, and drop
    // what still comes until its own end of file or the linger deadline.
    void start_linger(std::uint32_t s, connection& c) {
      end_tls(c);  // what follows close_notify is dropped unread
      if (::shutdown(c.fd, SHUT_WR) != 0) return close_connection(s);
      c.lingering = true;
      release_buffers(c);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = tag_of(s, c.gen);
      ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
      c.events = ev.events;
      set_deadline(s, c, steady_us() + ms(engine.limits_.linger_ms));
      drop_input(s, c);  // what already came
    }

    void drop_input(std::uint32_t s, connection& c) {
      thread_local char dropped[chunk_size];
      for (;;) {
        const ssize_t n = ::recv(c.fd, dropped, sizeof dropped, 0);
        if (n > 0) {
          c.lingered += static_cast<std::size_t>(n);
          if (c.lingered > engine.limits_.linger_max_bytes) return close_connection(s);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        return close_connection(s);  // end of file, or the peer is gone
      }
    }

    // Sends what it can of c.out. False when the connection was closed (peer gone).
    bool flush(std::uint32_t s, connection& c) {
      if (c.ssl != nullptr) return flush_tls(s, c);
      while (c.out_sent < c.out.size()) {
        const ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                                 MSG_NOSIGNAL);
        if (n > 0) {
          c.out_sent += static_cast<std::size_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        close_connection(s);
        return false;
      }
      c.out.clear();
      c.out_sent = 0;
      if (c.out.capacity() > std::size_t{64} * 1024) std::string().swap(c.out);
      return true;
    }

    bool flush_tls(std::uint32_t s, connection& c) {
      c.tls_write_wants_read = false;
      while (c.out_sent < c.out.size()) {
        ::ERR_clear_error();
        const std::size_t left = std::min<std::size_t>(c.out.size() - c.out_sent, INT_MAX);
        const int n = ::SSL_write(c.ssl, c.out.data() + c.out_sent, static_cast<int>(left));
        if (n > 0) {
          c.out_sent += static_cast<std::size_t>(n);
          continue;
        }
        const int e = ::SSL_get_error(c.ssl, n);
        if (e == SSL_ERROR_WANT_WRITE) return true;
        if (e == SSL_ERROR_WANT_READ) {
          c.tls_write_wants_read = true;
          return true;
        }
        c.tls_failed = true;
        ::ERR_clear_error();
        close_connection(s);
        return false;
      }
      c.out.clear();
      c.out_sent = 0;
      if (c.out.capacity() > std::size_t{64} * 1024) std::string().swap(c.out);
      return true;
    }

    // --- timers ---

    static std::int64_t ms(int v) noexcept { return std::int64_t{v} * 1000; }

    void push_timer(std::int64_t due, std::uint32_t s, std::uint32_t gen, timer_kind k,
                    std::uint32_t seq = 0) {
      timers.push_back(timer{due, s, gen, k, seq});
      std::push_heap(timers.begin(), timers.end(), std::greater<>());
    }

    // A deadline moves often (every request); the heap keeps one entry per connection at
    // its earliest deadline, and an entry that fires early re-arms at the current one.
    void set_deadline(std::uint32_t s, connection& c, std::int64_t due) {
      c.deadline = due;
      if (c.timer_due == 0 || due < c.timer_due) {
        c.timer_due = due;
        push_timer(due, s, c.gen, timer_kind::deadline);
      }
    }

    void fire_timers() {
      const std::int64_t now = steady_us();
      while (!timers.empty() && timers.front().due <= now) {
        std::pop_heap(timers.begin(), timers.end(), std::greater<>());
        const timer t = timers.back();
        timers.pop_back();
        connection& c = *slots[t.slot];
        if (c.fd < 0 || c.gen != t.gen) continue;
        if (t.kind == timer_kind::answer) {
          if (c.waiting && !c.deferred && t.seq == c.answer_seq) deliver(t.slot, c);
          continue;
        }
        if (t.due != c.timer_due) continue;  // superseded by an earlier entry
        c.timer_due = 0;
        if (c.deadline == 0) continue;
        if (c.deadline <= now) {
          // The responder's time is up; but a deadline while earlier answers are unsent is
          // the write timeout: a client that does not read is closed.
          if (c.waiting && c.deferred && c.out_sent == c.out.size())
            answer_timed_out(t.slot, c);
          else
            close_connection(t.slot);  // idle, too slow to send a request, or to read answers
          continue;
        }
        c.timer_due = c.deadline;
        push_timer(c.deadline, t.slot, c.gen, timer_kind::deadline);
      }
    }

    // A delayed answer's time has come: it goes out, then the connection reads on.
    void deliver(std::uint32_t s, connection& c) {
      c.waiting = false;
      if (c.delayed_fault == connection_fault::drop) {
        c.closing = true;
      } else {
        c.out += c.delayed;
        if (c.delayed_close || c.delayed_fault == connection_fault::truncate) c.closing = true;
      }
      std::string().swap(c.delayed);
      c.idle_since = steady_us();
      if (!c.closing && !c.in.empty()) {  // pipelined requests waited: their time starts now
        c.partial_since = c.idle_since;
        return serve(s, c);
      }
      if (c.eof) c.closing = true;
      after_io(s, c);
    }

    static std::uint64_t tag_of(std::uint32_t s, std::uint32_t gen) noexcept {
      return (std::uint64_t{gen} << 32) | s;
    }

    static void peer_of(int fd, char* out) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
      if (ss.ss_family == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, out,
                    INET6_ADDRSTRLEN);
      else if (ss.ss_family == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, out,
                    INET6_ADDRSTRLEN);
    }
  };

  handler handler_;           // one of these two
  deferred_handler deferred_;
  engine_limits limits_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::vector<std::unique_ptr<loop>> loops_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mutex_;
  std::atomic<std::size_t> next_loop_{0};
  std::atomic<std::size_t> connections_{0};
  std::atomic<std::size_t> refused_{0};
  std::atomic<std::size_t> pending_bytes_{0};
};

}  // namespace mock_wechat::detail
