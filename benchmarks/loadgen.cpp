// loadgen: a closed-loop HTTP/1.1 keep-alive load generator that accounts for every
// connection, for benchmarks/mock_load.
//
//   loadgen --port P --connections N --seconds S [--threads 2] [--warmup 1]
//           --mode static --path /x            GET /x over and over (nginx, the ceiling)
//           --mode codes --codes FILE --appid A --secret S
//                                              jscode2session, each code exchanged once
//           --mode mix --appid A --secret S    the login path, with correct and wrong input:
//               POST /__mock/login, jscode2session (ok), the same code again (40163),
//               a wrong secret (40125), stable_token, checksession (ok), checksession with
//               a wrong signature (87009), POST /__mock/pay, getpaidunionid (ok),
//               getpaidunionid for an unknown payment (89300)
//
// Prints one JSON object: requests/s, latency p50/p99/max, responses that were not what the
// step asked for ("errors"), WeChat errors the run asked for ("expected_errors"), and
// per-connection fairness: the least- and most-served connection's share of the mean and the
// number of connections that got no response at all ("starved"). wrk cannot report the last
// two: it does not count per connection.
#include <wechat/crypto.hpp>
#include <wechat/error.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct config {
  int port = 0;
  std::size_t connections = 16, threads = 2;
  double seconds = 5, warmup = 1;
  std::string mode = "static", path = "/", appid, secret, codes_file;
};

std::vector<std::string> codes;
std::atomic<std::size_t> next_code{0};
std::atomic<bool> measuring{false}, stopping{false};

// The value of "name":"..." in a flat JSON body ("" when absent).
std::string field(const std::string& body, const char* name) {
  const std::string key = std::string("\"") + name + "\":\"";
  const auto at = body.find(key);
  if (at == std::string::npos) return {};
  const auto from = at + key.size();
  const auto to = body.find('"', from);
  return to == std::string::npos ? std::string() : body.substr(from, to - from);
}

int errcode_of(const std::string& body) {
  const auto at = body.find("\"errcode\":");
  return at == std::string::npos ? 0 : std::atoi(body.c_str() + at + 10);
}

struct conn {
  int fd = -1;
  std::size_t id = 0;
  std::string out, in;
  std::size_t sent = 0;
  clock_type::time_point started;
  int step = 0;
  std::size_t cycle = 0;
  std::string code, session_key, openid, token, transaction;
  int expect_status = 200, expect_errcode = 0;
  std::uint64_t done = 0;  // responses counted in the measured window
};

constexpr int mix_steps = 10;

struct thread_result {
  std::vector<std::uint32_t> latencies_us;
  std::array<std::vector<std::uint32_t>, mix_steps> step_latencies_us;  // mix: by step
  std::uint64_t errors = 0, expected_errors = 0, connect_errors = 0;
  std::map<std::string, std::uint64_t> error_samples;
};

class worker {
public:
  worker(const config& cfg, std::size_t first_id, std::size_t n) : cfg_(cfg) {
    conns_.resize(n);
    for (std::size_t i = 0; i < n; ++i)
      conns_[i].id = first_id + i;
  }
  std::vector<conn>& conns() { return conns_; }
  thread_result result;

  void run() {
    const int ep = ::epoll_create1(0);
    for (auto& c : conns_) {
      if (!open(c, ep)) continue;
      next_request(c);
      send_some(c);
    }
    std::vector<epoll_event> events(256);
    while (!stopping.load(std::memory_order_relaxed)) {
      const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 50);
      for (int i = 0; i < n; ++i) {
        conn& c = *static_cast<conn*>(events[i].data.ptr);
        if (events[i].events & EPOLLOUT) send_some(c);
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) receive(c, ep);
      }
    }
    for (auto& c : conns_)
      if (c.fd >= 0) ::close(c.fd);
    ::close(ep);
  }

private:
  bool open(conn& c, int ep) {
    c.fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(cfg_.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ++result.connect_errors;
      ::close(c.fd);
      c.fd = -1;
      return false;
    }
    ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = &c;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  }

  void get(conn& c, const std::string& target) {
    c.out = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  }
  void post(conn& c, const std::string& target, const std::string& body) {
    c.out = "POST " + target +
            " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  // The next request of the connection's script.
  void next_request(conn& c) {
    c.expect_status = 200;
    c.expect_errcode = 0;
    if (cfg_.mode == "static") {
      get(c, cfg_.path);
    } else if (cfg_.mode == "codes") {
      const std::size_t i = next_code.fetch_add(1);
      get(c, "/sns/jscode2session?appid=" + cfg_.appid + "&secret=" + cfg_.secret +
                 "&js_code=" + (i < codes.size() ? codes[i] : std::string("exhausted")) +
                 "&grant_type=authorization_code");
    } else {
      mix_request(c);
    }
    c.sent = 0;
    c.in.clear();
    c.started = clock_type::now();
  }

  void mix_request(conn& c) {
    // 200 users per connection: a user logs in at most ~100 times a minute even at full
    // speed, under the per-user jscode2session quota.
    const std::string user = "c" + std::to_string(c.id) + "u" + std::to_string(c.cycle % 200);
    const std::string js =
        "/sns/jscode2session?appid=" + cfg_.appid + "&grant_type=authorization_code";
    switch (c.step) {
    case 0:
      post(c, "/__mock/login", "{\"appid\":\"" + cfg_.appid + "\",\"user\":\"" + user + "\"}");
      break;
    case 1: get(c, js + "&secret=" + cfg_.secret + "&js_code=" + c.code); break;
    case 2:
      get(c, js + "&secret=" + cfg_.secret + "&js_code=" + c.code);
      c.expect_errcode = static_cast<int>(wechat::api_errc::code_been_used);
      break;
    case 3:
      get(c, js + "&secret=wrong-" + cfg_.secret + "&js_code=x");
      c.expect_errcode = static_cast<int>(wechat::api_errc::invalid_appsecret);
      break;
    case 4:
      post(c, "/cgi-bin/stable_token",
           "{\"grant_type\":\"client_credential\",\"appid\":\"" + cfg_.appid + "\",\"secret\":\"" +
               cfg_.secret + "\"}");
      break;
    case 5:
      get(c, "/wxa/checksession?access_token=" + c.token + "&openid=" + c.openid + "&signature=" +
                 wechat::hmac_sha256_hex(c.session_key, "") + "&sig_method=hmac_sha256");
      break;
    case 6:
      get(c, "/wxa/checksession?access_token=" + c.token + "&openid=" + c.openid +
                 "&signature=" + std::string(64, '0') + "&sig_method=hmac_sha256");
      c.expect_errcode = static_cast<int>(wechat::api_errc::invalid_signature);
      break;
    case 7:
      post(c, "/__mock/pay", "{\"appid\":\"" + cfg_.appid + "\",\"user\":\"" + user + "\"}");
      break;
    case 8:
      get(c, "/wxa/getpaidunionid?access_token=" + c.token + "&openid=" + c.openid +
                 "&transaction_id=" + c.transaction);
      break;
    default:
      get(c, "/wxa/getpaidunionid?access_token=" + c.token + "&openid=" + c.openid +
                 "&transaction_id=4200000000000000000000000000");
      c.expect_errcode = static_cast<int>(wechat::api_errc::invalid_trade);
      break;
    }
  }

  void send_some(conn& c) {
    while (c.sent < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return;  // EAGAIN: the kernel buffer is full; a 1 KB request never gets here
    }
  }

  void receive(conn& c, int ep) {
    char buf[16384];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      // Closed by the server: count it and reconnect.
      fail(c, "connection closed");
      ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
      c.step = 0;
      if (stopping.load() || !open(c, ep)) {
        c.fd = -1;
        return;
      }
      next_request(c);
      send_some(c);
      return;
    }
    for (;;) {  // complete responses
      const auto head_end = c.in.find("\r\n\r\n");
      if (head_end == std::string::npos) return;
      std::size_t length = 0;
      const auto cl = c.in.find("Content-Length: ");
      if (cl != std::string::npos && cl < head_end)
        length = std::strtoul(c.in.c_str() + cl + 16, nullptr, 10);
      if (c.in.size() < head_end + 4 + length) return;
      const int status = std::atoi(c.in.c_str() + 9);
      const std::string body = c.in.substr(head_end + 4, length);
      c.in.erase(0, head_end + 4 + length);
      complete(c, status, body);
      next_request(c);
      send_some(c);
    }
  }

  void fail(conn& c, const std::string& what) {
    if (!measuring.load(std::memory_order_relaxed)) return;
    ++result.errors;
    if (result.error_samples.size() < 8 || result.error_samples.count(what))
      ++result.error_samples[what];
    (void)c;
  }

  void complete(conn& c, int status, const std::string& body) {
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - c.started)
            .count();
    const bool counted = measuring.load(std::memory_order_relaxed);
    if (counted) {
      result.latencies_us.push_back(static_cast<std::uint32_t>(us));
      if (cfg_.mode == "mix")
        result.step_latencies_us[c.step].push_back(static_cast<std::uint32_t>(us));
      ++c.done;
    }
    const int errcode = status == 200 ? errcode_of(body) : 0;
    const bool ok = status == c.expect_status && errcode == c.expect_errcode;
    if (!ok) {
      fail(c, "step " + std::to_string(c.step) + ": HTTP " + std::to_string(status) + " errcode " +
                  std::to_string(errcode) + " (wanted " + std::to_string(c.expect_errcode) + ")");
    } else if (counted && c.expect_errcode != 0) {
      ++result.expected_errors;
    }
    if (cfg_.mode != "mix") return;
    if (!ok) {  // start the script over with a new login
      c.step = 0;
      ++c.cycle;
      return;
    }
    switch (c.step) {
    case 0: c.code = field(body, "code"); break;
    case 1:
      c.session_key = field(body, "session_key");
      c.openid = field(body, "openid");
      break;
    case 4: c.token = field(body, "access_token"); break;
    case 7: c.transaction = field(body, "transaction_id"); break;
    default: break;
    }
    if (++c.step == mix_steps) {
      c.step = 0;
      ++c.cycle;
    }
  }

  const config& cfg_;
  std::vector<conn> conns_;
};

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--port")
      cfg.port = std::stoi(v);
    else if (k == "--connections")
      cfg.connections = std::stoul(v);
    else if (k == "--threads")
      cfg.threads = std::stoul(v);
    else if (k == "--seconds")
      cfg.seconds = std::stod(v);
    else if (k == "--warmup")
      cfg.warmup = std::stod(v);
    else if (k == "--mode")
      cfg.mode = v;
    else if (k == "--path")
      cfg.path = v;
    else if (k == "--appid")
      cfg.appid = v;
    else if (k == "--secret")
      cfg.secret = v;
    else if (k == "--codes")
      cfg.codes_file = v;
    else {
      std::cerr << "loadgen: unknown option " << k << "\n";
      return 2;
    }
  }
  if (cfg.port <= 0 || (cfg.mode != "static" && cfg.mode != "codes" && cfg.mode != "mix")) {
    std::cerr
        << "usage: loadgen --port P --connections N --seconds S --mode static|codes|mix ...\n";
    return 2;
  }
  if (cfg.mode == "codes") {
    std::ifstream in(cfg.codes_file);
    for (std::string line; std::getline(in, line);)
      codes.push_back(line);
  }
  cfg.threads = std::max<std::size_t>(1, std::min(cfg.threads, cfg.connections));
  std::vector<std::unique_ptr<worker>> workers;
  for (std::size_t t = 0, first = 0; t < cfg.threads; ++t) {
    const std::size_t n =
        cfg.connections / cfg.threads + (t < cfg.connections % cfg.threads ? 1 : 0);
    workers.push_back(std::make_unique<worker>(cfg, first, n));
    first += n;
  }
  std::vector<std::thread> threads;
  for (auto& w : workers)
    threads.emplace_back([&w] { w->run(); });
  std::this_thread::sleep_for(std::chrono::duration<double>(cfg.warmup));
  const std::size_t codes_before = next_code.load();
  measuring = true;
  const auto t0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(cfg.seconds));
  measuring = false;
  const double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  stopping = true;
  for (auto& t : threads)
    t.join();

  std::vector<std::uint32_t> lat;
  std::array<std::vector<std::uint32_t>, mix_steps> by_step;
  std::uint64_t errors = 0, expected = 0, connect_errors = 0;
  std::map<std::string, std::uint64_t> samples;
  std::vector<std::uint64_t> per_conn;
  for (auto& w : workers) {
    auto& r = w->result;
    lat.insert(lat.end(), r.latencies_us.begin(), r.latencies_us.end());
    for (int i = 0; i < mix_steps; ++i)
      by_step[i].insert(by_step[i].end(), r.step_latencies_us[i].begin(),
                        r.step_latencies_us[i].end());
    errors += r.errors;
    expected += r.expected_errors;
    connect_errors += r.connect_errors;
    for (auto& [k, v] : r.error_samples)
      samples[k] += v;
    for (auto& c : w->conns())
      per_conn.push_back(c.done);
  }
  std::sort(lat.begin(), lat.end());
  auto percentile = [](const std::vector<std::uint32_t>& sorted, double p) {
    return sorted.empty()
               ? 0u
               : sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(p * sorted.size()))];
  };
  auto pct = [&](double p) { return percentile(lat, p); };
  const double mean = lat.empty() ? 0 : static_cast<double>(lat.size()) / per_conn.size();
  const auto [lo, hi] = std::minmax_element(per_conn.begin(), per_conn.end());
  const auto starved = std::count(per_conn.begin(), per_conn.end(), 0u);
  std::printf(
      "{\"mode\":\"%s\",\"connections\":%zu,\"seconds\":%.2f,\"requests\":%zu,\"rps\":%.0f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"errors\":%llu,\"expected_errors\":%llu,"
      "\"connect_errors\":%llu,\"min_share\":%.3f,\"max_share\":%.3f,\"starved\":%ld",
      cfg.mode.c_str(), cfg.connections, elapsed, lat.size(), lat.size() / elapsed,
      pct(0.5) / 1000.0, pct(0.99) / 1000.0, (lat.empty() ? 0 : lat.back()) / 1000.0,
      static_cast<unsigned long long>(errors), static_cast<unsigned long long>(expected),
      static_cast<unsigned long long>(connect_errors), mean > 0 ? *lo / mean : 0.0,
      mean > 0 ? *hi / mean : 0.0, static_cast<long>(starved));
  if (cfg.mode == "mix") {  // which call of the login path is slow
    std::printf(",\"step_p99_ms\":[");
    for (int i = 0; i < mix_steps; ++i) {
      std::sort(by_step[i].begin(), by_step[i].end());
      std::printf("%s%.3f", i ? "," : "", percentile(by_step[i], 0.99) / 1000.0);
    }
    std::printf("]");
  }
  if (cfg.mode == "codes") {
    std::printf(",\"codes_used\":%zu,\"codes_exhausted\":%s", next_code.load() - codes_before,
                next_code.load() > codes.size() ? "true" : "false");
  }
  std::printf(",\"error_samples\":{");
  bool first = true;
  for (auto& [k, v] : samples) {
    std::printf("%s\"%s\":%llu", first ? "" : ",", k.c_str(), static_cast<unsigned long long>(v));
    first = false;
  }
  std::printf("}}\n");
  return 0;
}
