// The mock under hostile or clumsy clients, through raw sockets: half-sent requests, huge
// headers and bodies, pipelining, chunked bodies, thousands of abandoned connections,
// invalid UTF-8 and path traversal. It keeps serving everyone else, answers with a clear
// status, and lets go of what it held.
#include "mock_support.hpp"

#include <sys/resource.h>

#include <chrono>
#include <future>
#include <thread>

using namespace mocktest;
using namespace std::chrono_literals;

namespace {

std::string c2s_target() {
  return "/sns/jscode2session?appid=" + mp + "&secret=" + mp_secret +
         "&js_code=nope&grant_type=authorization_code";
}

// One well-behaved call on its own connection: true when answered within `within`.
bool answered_promptly(int port, std::chrono::milliseconds within) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5, 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.Get(c2s_target().c_str());
  return r && r->status == 200 && std::chrono::steady_clock::now() - t0 < within;
}

}  // namespace

TEST_CASE("a delay fault holds no worker: with one worker, other connections are served meanwhile",
          "[mock][hostile]") {
  mock_wechat::options o;
  o.threads = 1;
  fixture f(o);
  f.add_standard_apps();
  f.admin("faults", {{"path", "/cgi-bin/token"}, {"delay_ms", 2000}, {"times", 3}});
  std::vector<std::future<int>> slow;
  for (int i = 0; i < 3; ++i)
    slow.push_back(std::async(std::launch::async, [&] {
      httplib::Client c("127.0.0.1", f.mock.port());
      auto r =
          c.Get(("/cgi-bin/token?grant_type=client_credential&appid=" + mp + "&secret=" + mp_secret)
                    .c_str());
      return r ? r->status : 0;
    }));
  std::this_thread::sleep_for(200ms);
  for (int i = 0; i < 5; ++i)
    CHECK(answered_promptly(f.mock.port(), 1000ms));
  for (auto& s : slow)
    CHECK(s.get() == 200);
}

TEST_CASE("a half-sent request holds no worker and is closed at the request timeout",
          "[mock][hostile]") {
  mock_wechat::options o;
  o.threads = 1;
  o.request_timeout_ms = 600;
  fixture f(o);
  f.add_standard_apps();
  std::vector<raw> loris;
  for (int i = 0; i < 50; ++i) {
    loris.emplace_back(f.mock.port());
    REQUIRE(loris.back().ok());
    REQUIRE(loris.back().send("GET " + c2s_target() + " HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  }
  std::this_thread::sleep_for(100ms);
  CHECK(answered_promptly(f.mock.port(), 500ms));
  for (auto& l : loris)
    l.send("a");  // a byte at a time does not extend the deadline
  for (auto& l : loris)
    CHECK(l.closed_by_peer(3000ms));
  CHECK(answered_promptly(f.mock.port(), 500ms));
}

TEST_CASE("idle keep-alive connections are closed at the keep-alive timeout", "[mock][hostile]") {
  mock_wechat::options o;
  o.keep_alive_timeout_ms = 300;
  fixture f(o);
  raw idle(f.mock.port());
  REQUIRE(idle.ok());
  REQUIRE(idle.send("GET /__mock/health HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(idle.receive("}").find("HTTP/1.1 200") == 0);
  CHECK(idle.closed_by_peer(2000ms));
}

TEST_CASE("huge headers get 431 and huge bodies 413, at once, then the connection closes",
          "[mock][hostile]") {
  fixture f;
  f.add_standard_apps();
  {
    raw c(f.mock.port());
    REQUIRE(c.send("GET " + c2s_target() +
                   " HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(70 * 1024, 'a') + "\r\n\r\n"));
    const std::string r = c.receive("}");
    CHECK(r.rfind("HTTP/1.1 431", 0) == 0);
    CHECK(r.find("request headers too large") != std::string::npos);
    CHECK(c.closed_by_peer(2000ms));
  }
  {
    raw c(f.mock.port());  // a header block that never ends is cut off at the same limit
    REQUIRE(c.send("GET / HTTP/1.1\r\n" + std::string(80 * 1024, 'h')));
    CHECK(c.receive("}").rfind("HTTP/1.1 431", 0) == 0);
  }
  {
    raw c(f.mock.port());  // the body is refused before it is sent
    REQUIRE(c.send("POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                   std::to_string(64 << 20) + "\r\n\r\n"));
    const std::string r = c.receive("}");
    CHECK(r.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(c.closed_by_peer(2000ms));
  }
  CHECK(answered_promptly(f.mock.port(), 1000ms));
}

// What curl does with a body past the cap: one thread sends while the socket takes bytes,
// reads when an answer comes (then stops sending), and gives up on a failed send ("send
// failure", no status). So the server must not close with the rest unread: the kernel
// answers unread bytes with a reset, and the client's next send fails before it has read
// the 413. It half-closes and drops what still comes. Before this lingering close,
// login_server's chunked 1 MiB upload lost its 413 three times in four.
TEST_CASE("a body refused while the client still sends keeps its 413: half-close, no reset",
          "[mock][hostile]") {
  mock_wechat::options o;
  o.max_body = std::size_t{64} * 1024;  // login_server's cap
  fixture f(o);
  for (const bool chunked : {true, false}) {
    int lost = 0;
    for (int round = 0; round < 20; ++round) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      REQUIRE(fd >= 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<std::uint16_t>(f.mock.port()));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
      const std::size_t body = std::size_t{1} << 20;  // 1 MiB against a 64 KiB cap
      std::string out = "POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\n";
      out += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                     : "Content-Length: " + std::to_string(body) + "\r\n\r\n";
      const std::string piece = chunked ? "4000\r\n" + std::string(0x4000, 'a') + "\r\n"
                                        : std::string(0x4000, 'a');
      std::size_t queued = 0, out_sent = 0;
      std::string got;
      bool send_failed = false, answered = false;
      for (;;) {
        while (out.size() - out_sent < 0x10000 && queued < body) {
          out += piece;
          queued += 0x4000;
        }
        const bool sending = !answered && out_sent < out.size();
        pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
        if (::poll(&p, 1, 5000) <= 0) break;
        // Sending first while there is room, as curl does; reading when an answer waits.
        if (!sending || (p.revents & POLLOUT) == 0) {
          char buf[4096];
          const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
          if (n <= 0) break;
          got.append(buf, static_cast<std::size_t>(n));
          answered = true;  // curl stops sending a body once a final answer comes
          continue;
        }
        const ssize_t n = ::send(fd, out.data() + out_sent, out.size() - out_sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) {
          send_failed = true;  // curl: "send failure", the answer never read
          break;
        }
        out_sent += static_cast<std::size_t>(n);
        if (out_sent > (std::size_t{1} << 20)) {  // keep the buffer small
          out.erase(0, out_sent);
          out_sent = 0;
        }
      }
      ::close(fd);
      const bool ok = !send_failed && got.rfind("HTTP/1.1 413", 0) == 0 &&
                      got.find("request body too large") != std::string::npos;
      if (!ok) {
        ++lost;
        UNSCOPED_INFO("chunked " << chunked << ", round " << round << ": send failed "
                                 << send_failed << ", got: " << got.substr(0, 60));
      }
    }
    CHECK(lost == 0);
  }
  CHECK(answered_promptly(f.mock.port(), 1000ms));
}

TEST_CASE("pipelined requests are answered in order, and a chunked body is read whole",
          "[mock][hostile]") {
  fixture f;
  f.add_standard_apps();
  {
    raw c(f.mock.port());
    REQUIRE(c.send("GET /__mock/health HTTP/1.1\r\nHost: x\r\n\r\nGET " + c2s_target() +
                   " HTTP/1.1\r\nHost: x\r\n\r\n"));
    const std::string r = c.receive("rid: ");
    const auto first = r.find("HTTP/1.1 200");
    const auto second = r.find("HTTP/1.1 200", first + 1);
    REQUIRE(second != std::string::npos);
    CHECK(r.find("\"ok\"") < second);                     // health first
    CHECK(r.find("40029", second) != std::string::npos);  // then the bad code
  }
  {
    raw c(f.mock.port());
    const std::string body = "{\"grant_type\":\"client_credential\",\"appid\":\"" + mp +
                             "\",\"secret\":\"" + mp_secret + "\"}";
    const std::string half = body.substr(0, 20), rest = body.substr(20);
    auto hex = [](std::size_t n) {
      char b[16];
      std::snprintf(b, sizeof b, "%zx", n);
      return std::string(b);
    };
    REQUIRE(c.send("POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   "application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   hex(half.size()) + "\r\n" + half + "\r\n"));
    std::this_thread::sleep_for(100ms);
    REQUIRE(c.send(hex(rest.size()) + "\r\n" + rest + "\r\n0\r\n\r\n"));
    const std::string r = c.receive("}");
    CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(r.find("\"access_token\":\"") != std::string::npos);
  }
}

TEST_CASE("invalid UTF-8 and path traversal get well-formed errors", "[mock][hostile]") {
  fixture f;
  f.add_standard_apps();
  const reply bad = f.get("/sns/jscode2session?appid=%ff%fe%80&secret=..%2f..%2fetc%2fpasswd"
                          "&js_code=%c3%28&grant_type=authorization_code");
  CHECK(bad.status == 200);
  CHECK(bad.errcode() != 0);
  const reply trav = f.get("/../../etc/passwd");
  CHECK(trav.status == 404);
  CHECK(trav.body.find("root:") == std::string::npos);
  CHECK(f.get("/__mock/../__mock/health").body.find("root:") == std::string::npos);
  const reply admin = f.post("/__mock/login", "{\"appid\":\"" + mp + "\",\"user\":\"\xff\xfe\"}");
  CHECK((admin.status == 200 || admin.status == 400));
  (void)admin.json();  // whatever the answer, it is valid JSON
}

TEST_CASE("thousands of connections opened and abandoned: still serving, then all let go",
          "[mock][hostile]") {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  getrlimit(RLIMIT_NOFILE, &files);
  // Both ends of every connection live in this process.
  const std::size_t n = std::min<std::size_t>(10000, (files.rlim_cur - 256) / 2);
  INFO("connections: " << n);
  mock_wechat::options o;
  o.keep_alive_timeout_ms = 500;
  fixture f(o);
  f.add_standard_apps();
  {
    std::vector<raw> crowd;
    crowd.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      crowd.emplace_back(f.mock.port());
      if (i % 3 == 1)
        crowd.back().send("GET /sns/jscode2session?appid=");  // and some half requests
    }
    std::size_t connected = 0;
    for (auto& c : crowd)
      connected += c.ok();
    CHECK(connected == n);
    CHECK(answered_promptly(f.mock.port(), 2000ms));
  }  // all closed by the clients without a word
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (f.mock.open_connections() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK(f.mock.open_connections() == 0);
  CHECK(answered_promptly(f.mock.port(), 1000ms));
}

TEST_CASE("a POST without a body is answered at once, and body-less admin calls work",
          "[mock][hostile]") {
  // RFC 9112: neither Content-Length nor Transfer-Encoding means an empty body. Eight such
  // requests with one loop: none waits for a body that is not coming (issue 19, finding 2).
  // Over HTTP and HTTPS.
  const bool tls = GENERATE(false, true);
  INFO((tls ? "HTTPS" : "HTTP"));
  mock_wechat::options o;
  o.threads = 1;
  if (tls) o = tls_options(o, "mock_tls_ca_bodyless");
  fixture f(o);
  f.add_standard_apps();
  std::vector<raw> posts;
  for (int i = 0; i < 8; ++i) {
    posts.emplace_back(f.mock.port(), tls);
    REQUIRE(posts.back().send("POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  for (auto& p : posts) {
    const std::string r = p.read_response(2000ms);
    CHECK(r.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(r.find("\"errcode\":") != std::string::npos);  // WeChat's answer to an empty body
  }
  // `curl -XPOST $URL/__mock/reset` (no -d): resets.
  REQUIRE(f.world().apps().size() == 8);
  raw reset(f.mock.port(), tls);
  REQUIRE(reset.send("POST /__mock/reset HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(reset.read_response(2000ms).rfind("HTTP/1.1 200", 0) == 0);
  CHECK(f.world().apps().empty());
  raw clock(f.mock.port(), tls);
  REQUIRE(clock.send("POST /__mock/clock HTTP/1.1\r\nHost: x\r\n\r\n"));
  // No fields: an answer at once that says what to send (it waited 5 s and said "bad request").
  const std::string said = clock.read_response(2000ms);
  CHECK(said.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(said.find("give 'advance' (seconds) or 'set' (Unix seconds)") != std::string::npos);
}

TEST_CASE("ambiguous framing gets 400 and closes, and nothing after it is answered",
          "[mock][hostile]") {
  // Issue 19, finding 6 (request smuggling through framing desync), over HTTP and HTTPS.
  const bool tls = GENERATE(false, true);
  INFO((tls ? "HTTPS" : "HTTP"));
  fixture f(tls ? tls_options({}, "mock_tls_ca_framing") : mock_wechat::options{});
  f.add_standard_apps();
  const std::string smuggled = "GET /sns/auth?access_token=x&openid=y HTTP/1.1\r\n\r\n";
  for (const std::string& bad : {
           "POST /cgi-bin/stable_token HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: " +
               std::to_string(2 + smuggled.size()) + "\r\n\r\n{}" + smuggled,
           "POST /cgi-bin/stable_token HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: "
           "chunked\r\n\r\n0\r\n\r\n" + smuggled,
           "GET /a b HTTP/1.1\r\n\r\n" + smuggled,
           "GARBAGE " + smuggled,
           "GET / HTTP/1.1\r\n folded: x\r\n\r\n" + smuggled,
       }) {
    INFO(bad);
    const std::size_t seen = f.mock.journal().to_json().size();
    raw c(f.mock.port(), tls);
    REQUIRE(c.send(bad));
    const std::string r = c.read_response(2000ms);
    CHECK(r.rfind("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n", 0) == 0);
    CHECK(c.closed_by_peer(2000ms));
    CHECK(f.mock.journal().to_json().size() == seen);  // the smuggled request never ran
  }
}

TEST_CASE("delays are timers: a thousand delayed answers in flight take no thread",
          "[mock][hostile]") {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  getrlimit(RLIMIT_NOFILE, &files);
  const std::size_t n = std::min<std::size_t>(1000, (files.rlim_cur - 256) / 2);
  mock_wechat::options o;
  o.threads = 1;
  fixture f(o);
  f.add_standard_apps();
  f.admin("faults", {{"path", "/sns/auth"}, {"delay_ms", 1500}});
  const std::size_t before = threads_now();
  std::vector<raw> waiting;
  waiting.reserve(n);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    waiting.emplace_back(f.mock.port());
    REQUIRE(waiting.back().send("GET /sns/auth?access_token=x&openid=y HTTP/1.1\r\n\r\n"));
  }
  std::this_thread::sleep_for(300ms);
  CHECK(threads_now() == before);  // not one thread per delayed answer
  CHECK(answered_promptly(f.mock.port(), 1000ms));  // the one loop still serves others
  std::size_t answered = 0;
  for (auto& w : waiting)
    answered += w.read_response(10000ms).find("\"errcode\":40014") != std::string::npos;
  CHECK(answered == n);
  CHECK(std::chrono::steady_clock::now() - t0 >= 1500ms);  // none came back early
  CHECK(f.mock.stats().to_json()["/sns/auth"]["count"] == n + 0);
}

TEST_CASE("stop() is prompt with delayed answers pending and connections open",
          "[mock][hostile]") {
  auto mock = std::make_unique<mock_wechat::server>();
  mock->faults().add(mock_wechat::fault::from_json({{"path", "*"}, {"delay_ms", 60000}}));
  std::vector<raw> waiting;
  for (int i = 0; i < 100; ++i) {
    waiting.emplace_back(mock->port());
    REQUIRE(waiting.back().send("GET /sns/auth HTTP/1.1\r\n\r\n"));
  }
  std::vector<raw> idle;
  for (int i = 0; i < 100; ++i)
    idle.emplace_back(mock->port());
  std::this_thread::sleep_for(200ms);
  const auto t0 = std::chrono::steady_clock::now();
  mock.reset();
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // not the 60 s of the delays
  for (auto& w : waiting)
    CHECK(w.closed_by_peer(1000ms));
}

TEST_CASE("over HTTPS the same limits hold: 431, 413, request and handshake timeouts",
          "[mock][hostile][tls]") {
  mock_wechat::options o = tls_options();
  o.threads = 1;
  o.request_timeout_ms = 600;
  mock_wechat::server mock(o);
  REQUIRE(mock.tls());
  const int port = mock.port();
  auto served = [port] {  // a whole request over TLS, answered
    raw c(port, true);
    return c.ok() && c.send("GET /__mock/health HTTP/1.1\r\n\r\n") &&
           c.read_response(1000ms).find("{\"status\":\"ok\"}") != std::string::npos;
  };
  REQUIRE(served());
  {  // a header line with no end is cut at max_header: 431, closed, nothing kept
    raw c(port, true);
    REQUIRE(c.ok());
    REQUIRE(c.send("GET / HTTP/1.1\r\nX-Long: " + std::string(80 * 1024, 'a')));
    const std::string r = c.receive("}");
    CHECK(r.rfind("HTTP/1.1 431", 0) == 0);
    CHECK(c.closed_by_peer(2000ms));
  }
  {  // a body announced past max_body: 413 before it is sent
    raw c(port, true);
    REQUIRE(c.send("POST /cgi-bin/stable_token HTTP/1.1\r\nContent-Length: " +
                   std::to_string(64 << 20) + "\r\n\r\n"));
    CHECK(c.receive("}").rfind("HTTP/1.1 413", 0) == 0);
    CHECK(c.closed_by_peer(2000ms));
  }
  {  // half a request, trickled: closed at the request timeout; others served meanwhile
    std::vector<raw> loris;
    for (int i = 0; i < 20; ++i) {
      loris.emplace_back(port, true);
      REQUIRE(loris.back().send("GET /sns/auth HTTP/1.1\r\nX-Slow: "));
    }
    std::vector<raw> silent;  // connected, never a ClientHello
    for (int i = 0; i < 20; ++i)
      silent.emplace_back(port, false);
    CHECK(served());
    for (auto& l : loris)
      l.send("a");
    for (auto& l : loris)
      CHECK(l.closed_by_peer(3000ms));
    for (auto& s : silent)
      CHECK(s.closed_by_peer(3000ms));
    CHECK(served());
  }
  {  // a body-less POST is answered at once over TLS too
    raw c(port, true);
    REQUIRE(c.send("POST /__mock/reset HTTP/1.1\r\n\r\n"));
    CHECK(c.read_response(1000ms).rfind("HTTP/1.1 200", 0) == 0);
  }
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while ((mock.pending_bytes() > 0 || mock.open_connections() > 0) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  CHECK(mock.pending_bytes() == 0);
  CHECK(mock.open_connections() == 0);
}

TEST_CASE("after a review: answers a client does not read stay bounded, and a body that never "
          "ends within the read cap is refused",
          "[mock][hostile]") {
  mock_wechat::options o;
  o.threads = 1;
  o.max_body = 4096;
  o.max_header = 4096;
  fixture f(o);
  {  // 4 MB of pipelined requests (15 MB of answers) sent before an answer is read: the
     // mock stops answering at its cap while the client does not read, reads no more than
     // the budget holds, and answers them all, in order, once the client reads
    raw c(f.mock.port());
    std::string many;
    while (many.size() < std::size_t{4} << 20)
      many += "GET /__mock/health HTTP/1.1\r\n\r\n";
    const long n = static_cast<long>(many.size() / 31);
    auto sent = std::async(std::launch::async, [&] { return c.send(many); });
    std::this_thread::sleep_for(500ms);
    CHECK(f.mock.pending_bytes() <= o.max_header + o.max_body + 16 * 1024);
    std::string got;
    long answers = 0;
    for (;;) {
      const std::string more = c.receive("\x01never", 2000ms);
      if (more.empty()) break;
      answers += std::count(more.begin(), more.end(), '}');
      if (answers >= n) break;
    }
    CHECK(sent.get());
    CHECK(answers == n);
  }
  {  // a chunked body of 1-byte chunks with long extensions: refused, not read for ever
    raw c(f.mock.port());
    std::string body = "POST /cgi-bin/stable_token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    while (body.size() < 40 * 1024)
      body += "1;" + std::string(1000, 'e') + "\r\nx\r\n";
    c.send(body);
    const std::string r = c.receive("}", 3000ms);
    CHECK(r.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(c.closed_by_peer(2000ms));
  }
  CHECK(answered_promptly(f.mock.port(), 1000ms));
}

// Issue 19, finding 7: with a parameter given twice the handler read the first value and
// the journal showed the last. Now one tokenizer serves both: the handler reads the first
// (docs/mock.md), the journal shows every value.
TEST_CASE("a query parameter given twice: the handler reads the first, the journal keeps every "
          "value, over HTTP and HTTPS",
          "[mock][hostile][journal][tls]") {
  for (const bool tls : {false, true}) {
    INFO((tls ? "https" : "http"));
    mock_wechat::server mock(tls ? tls_options({}, "mock_tls_ca_twice") : mock_wechat::options{});
    REQUIRE(mock.tls() == tls);
    const int port = mock.port();
    mock.world().add_app({mp, mp_secret, mock_wechat::app_type::miniprogram, "acct-1"});
    const std::string code = mock.world().login(mp, "alice");
    const reply first_ok = raw_request(port, tls, "GET",
                                       "/sns/jscode2session?appid=" + mp + "&appid=wxother&secret=" +
                                           mp_secret + "&secret=wrong&js_code=" + code +
                                           "&grant_type=authorization_code");
    REQUIRE(first_ok.status == 200);
    CHECK(first_ok.json().contains("openid"));  // the first appid and secret were read
    const reply first_bad = raw_request(
        port, tls, "GET", "/sns/jscode2session?appid=wxother&appid=" + mp + "&secret=" + mp_secret +
                              "&js_code=" + mock.world().login(mp, "bob"));
    CHECK(first_bad.errcode() == 40013);  // the first appid, unknown, was read
    const auto j =
        raw_request(port, tls, "GET", "/__mock/requests?path=/sns/jscode2session").json();
    REQUIRE(j.size() == 2);
    CHECK(j[0]["query"]["appid"] == nlohmann::json::array({mp, "wxother"}));
    CHECK(j[0]["query"]["secret"] == nlohmann::json::array({"***", "***"}));
    CHECK(j[0]["query"]["js_code"] == code);  // given once: a plain string, as before
    CHECK(j[1]["query"]["appid"] == nlohmann::json::array({"wxother", mp}));
    // an access_token given twice: the first authenticates; rid/get shows every part
    const std::string token =
        raw_request(port, tls, "GET",
                    "/cgi-bin/token?grant_type=client_credential&appid=" + mp + "&secret=" + mp_secret)
            .json()["access_token"];
    const reply failed = raw_request(port, tls, "GET",
                                     "/wxa/checksession?access_token=" + token +
                                         "&access_token=garbage&openid=onobody&openid=o2&signature="
                                         "abc&sig_method=hmac_sha256");
    REQUIRE(failed.errcode() == 40003);  // past the token check: the first token was read
    const reply info = raw_request(port, tls, "POST", "/cgi-bin/openapi/rid/get?access_token=" + token,
                                   nlohmann::json{{"rid", wechat::detail::extract_rid(failed.body)}}.dump());
    INFO(info.body);
    CHECK(info.json()["request"]["request_url"] ==
          "access_token=***&access_token=***&openid=onobody&openid=o2&signature=***&sig_method="
          "hmac_sha256");
    const auto c = raw_request(port, tls, "GET", "/__mock/requests?path=/wxa/checksession").json();
    REQUIRE(c.size() == 1);
    CHECK(c[0]["query"]["openid"] == nlohmann::json::array({"onobody", "o2"}));
    CHECK(c[0]["query"]["access_token"] == nlohmann::json::array({"***", "***"}));
  }
}

// Issue 19, hardening: the journal masked only exact lowercase names ("SECRET=" was kept
// in clear).
TEST_CASE("the journal and rid/get mask secret fields in any case and any name with secret, "
          "token or key, over HTTP and HTTPS",
          "[mock][hostile][journal][tls]") {
  for (const bool tls : {false, true}) {
    INFO((tls ? "https" : "http"));
    mock_wechat::server mock(tls ? tls_options({}, "mock_tls_ca_redact") : mock_wechat::options{});
    const int port = mock.port();
    mock.world().add_app({mp, mp_secret, mock_wechat::app_type::miniprogram, "acct-1"});
    const std::string token =
        raw_request(port, tls, "GET",
                    "/cgi-bin/token?grant_type=client_credential&appid=" + mp + "&secret=" + mp_secret)
            .json()["access_token"];
    const char* const secrets[] = {"upper-s3cret", "mixed-s3cret", "aes-k3y", "sess-k3y",
                                   "t1cket-value", "pw-value",     "body-s3cret", "rt-value",
                                   "client-k3y",  "ACC-T0KEN"};
    const reply failed = raw_request(
        port, tls, "GET",
        "/wxa/checksession?access_token=" + token +
            "&SECRET=upper-s3cret&App_Secret=mixed-s3cret&encoding_aes_key=aes-k3y&Session_KEY="
            "sess-k3y&jsapi_ticket=t1cket-value&Password=pw-value&ACCESS%5FTOKEN=ACC-T0KEN"
            "&openid=o-visible&js_code=jc-visible&code=c-visible&unionid=u-visible&signature=abc"
            "&sig_method=hmac_sha256");
    REQUIRE(failed.errcode() == 40003);
    const reply body_failed = raw_request(
        port, tls, "POST", "/cgi-bin/stable_token",
        nlohmann::json{{"grant_type", "client_credential"},
                       {"appid", mp},
                       {"SECRET", "body-s3cret"},
                       {"nested", {{"Refresh_Token", "rt-value"}, {"client_key", "client-k3y"}}},
                       {"code", "c-body"}}
            .dump());
    REQUIRE(body_failed.errcode() == 41004);  // "SECRET" is not "secret" to WeChat
    const reply all = raw_request(port, tls, "GET", "/__mock/requests");
    std::string rid_answers;
    for (const reply* r : {&failed, &body_failed})
      rid_answers += raw_request(port, tls, "POST", "/cgi-bin/openapi/rid/get?access_token=" + token,
                                 nlohmann::json{{"rid", wechat::detail::extract_rid(r->body)}}.dump())
                         .body;
    for (const char* s : secrets) {
      INFO(s);
      CHECK(all.body.find(s) == std::string::npos);
      CHECK(rid_answers.find(s) == std::string::npos);
    }
    CHECK(all.body.find(token) == std::string::npos);
    CHECK(rid_answers.find("SECRET=***") != std::string::npos);
    CHECK(rid_answers.find("\\\"SECRET\\\":\\\"***\\\"") != std::string::npos);
    const auto j = all.json();
    REQUIRE(j.size() == 3);
    const auto& q = j[1]["query"];
    CHECK(q["SECRET"] == "***");
    CHECK(q["Session_KEY"] == "***");
    // what tests read is not a secret: codes, openid, unionid
    CHECK(q["openid"] == "o-visible");
    CHECK(q["js_code"] == "jc-visible");
    CHECK(q["code"] == "c-visible");
    CHECK(q["unionid"] == "u-visible");
    CHECK(q["sig_method"] == "hmac_sha256");
    CHECK(j[2]["body"]["code"] == "c-body");
    CHECK(j[2]["body"]["appid"] == mp);
    CHECK(j[2]["body"]["nested"]["Refresh_Token"] == "***");
  }
}

// Issue 19, finding 11: a fault's content_type was written raw, so CR LF in it added headers
// to WeChat's answers (a Set-Cookie, a second response). Through the admin API, over HTTP
// and HTTPS: refused with 400 naming the field, and no fault is installed.
TEST_CASE("a fault whose content_type carries CR LF is refused, and no header is injected",
          "[mock][hostile]") {
  const bool tls = GENERATE(false, true);
  INFO((tls ? "HTTPS" : "HTTP"));
  fixture f(tls ? tls_options({}, "mock_tls_ca_ctype") : mock_wechat::options{});
  f.add_standard_apps();
  const std::string fault = R"({"path":"/sns/jscode2session","content_type":)"
                            R"("text/html\r\nSet-Cookie: stolen=1","times":1})";
  const reply refused = raw_request(f.mock.port(), tls, "POST", "/__mock/faults", fault);
  CHECK(refused.status == 400);
  CHECK(refused.body.find("content_type") != std::string::npos);
  raw c(f.mock.port(), tls);
  REQUIRE(c.send("GET /sns/jscode2session?appid=" + mp + "&secret=" + mp_secret +
                 "&js_code=nope&grant_type=authorization_code HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string answer = c.read_response();
  CHECK(answer.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(answer.find("40029") != std::string::npos);  // WeChat's own answer: no fault ran
  CHECK(answer.find("Set-Cookie") == std::string::npos);
  const auto type = answer.find("Content-Type: ");
  REQUIRE(type != std::string::npos);
  CHECK(answer.find("Content-Type: ", type + 1) == std::string::npos);  // one, WeChat's own
  CHECK(answer.find("text/html") == std::string::npos);
}
