// Test support for the mock: an embedded mock_wechat::server plus a real HTTP client on
// loopback, and helpers for the admin API and the assertions every endpoint test makes.
#pragma once

#include <catch2/catch.hpp>
#include <httplib.h>
#include <mock_wechat/mock_wechat.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <set>
#include <string>

namespace mocktest {

struct reply {
  int status = 0;
  std::string content_type;
  std::string body;
  nlohmann::json json() const {
    auto j = nlohmann::json::parse(body, nullptr, false);
    INFO("body: " << body);
    REQUIRE_FALSE(j.is_discarded());
    return j;
  }
  int errcode() const {
    const auto j = json();
    return j.contains("errcode") ? j["errcode"].get<int>() : 0;
  }
};

inline const std::string mp = "wx1000000000000001";  // mini program, bound to acct-1
inline const std::string mp_secret = "mp-secret-0001";
inline const std::string oa = "wx2000000000000002";  // official account, acct-1
inline const std::string oa_secret = "oa-secret-0002";
inline const std::string app_id = "wx3000000000000003";  // mobile app, acct-1
inline const std::string web = "wx4000000000000004";     // website, acct-1
inline const std::string lone = "wx5000000000000005";    // mini program, unbound
inline const std::string game = "wx6000000000000006";    // mini game, acct-1
inline const std::string oa2 = "wx7000000000000007";     // official account, acct-2
inline const std::string mp2 = "wx8000000000000008";     // mini program, acct-1

class fixture {
public:
  explicit fixture(mock_wechat::options o = {})
      : mock(std::move(o)), http("127.0.0.1", mock.port()) {
    http.set_keep_alive(true);
    http.set_tcp_nodelay(true);  // else every POST waits ~40 ms on a delayed ACK
    http.set_read_timeout(10, 0);
  }

  mock_wechat::server mock;
  httplib::Client http;

  mock_wechat::world& world() { return mock.world(); }

  /// The standard cast: the apps above, all with their secrets.
  void add_standard_apps() {
    using T = mock_wechat::app_type;
    auto& w = world();
    w.add_app({mp, mp_secret, T::miniprogram, "acct-1"});
    w.add_app({oa, oa_secret, T::official_account, "acct-1"});
    w.add_app({app_id, "app-secret", T::mobile_app, "acct-1"});
    w.add_app({web, "web-secret", T::website, "acct-1"});
    w.add_app({lone, "lone-secret", T::miniprogram, ""});
    w.add_app({game, "game-secret", T::minigame, "acct-1"});
    w.add_app({oa2, "oa2-secret", T::official_account, "acct-2"});
    w.add_app({mp2, "mp2-secret", T::miniprogram, "acct-1"});
  }

  reply get(const std::string& path_and_query) {
    auto r = http.Get(path_and_query.c_str());
    REQUIRE(r);
    return {r->status, r->get_header_value("Content-Type"), r->body};
  }
  reply post(const std::string& path, const std::string& body,
             const char* type = "application/json") {
    auto r = http.Post(path.c_str(), body, type);
    REQUIRE(r);
    return {r->status, r->get_header_value("Content-Type"), r->body};
  }
  reply del(const std::string& path) {
    auto r = http.Delete(path.c_str());
    REQUIRE(r);
    return {r->status, r->get_header_value("Content-Type"), r->body};
  }
  /// An admin call that must succeed (HTTP 200); its JSON answer.
  nlohmann::json admin(const std::string& call,
                       const nlohmann::json& body = nlohmann::json::object()) {
    const reply r = post("/__mock/" + call, body.dump());
    INFO("admin " << call << " -> " << r.status << " " << r.body);
    REQUIRE(r.status == 200);
    return r.json();
  }

  std::string login(const std::string& appid, const std::string& user) {
    return admin("login", {{"appid", appid}, {"user", user}})["code"].get<std::string>();
  }
  reply code2session(const std::string& appid, const std::string& secret, const std::string& code) {
    return get("/sns/jscode2session?appid=" + appid + "&secret=" + secret + "&js_code=" + code +
               "&grant_type=authorization_code");
  }
  std::string token(const std::string& appid, const std::string& secret) {
    const reply r =
        get("/cgi-bin/token?grant_type=client_credential&appid=" + appid + "&secret=" + secret);
    INFO(r.body);
    REQUIRE(r.json().contains("access_token"));
    return r.json()["access_token"].get<std::string>();
  }
};

/// WeChat's error shape: compact, errcode first, errmsg ending in a rid whose first
/// group is the virtual time; ", rid: " on /sns/*, " rid: " elsewhere.
inline void check_error_shape(const reply& r, int errcode, const std::string& path,
                              std::int64_t now) {
  INFO(path << " -> " << r.body);
  CHECK(r.status == 200);
  CHECK(r.errcode() == errcode);
  CHECK(r.body.rfind("{\"errcode\":" + std::to_string(errcode) + ",\"errmsg\":\"", 0) == 0);
  CHECK(r.body.back() == '}');
  const bool sns = path.rfind("/sns/", 0) == 0;
  std::smatch m;
  const std::regex rid(sns ? ", rid: ([0-9a-f]{8})-[0-9a-f]{8}-[0-9a-f]{8}\"\\}$"
                           : "[^,] rid: ([0-9a-f]{8})-[0-9a-f]{8}-[0-9a-f]{8}\"\\}$");
  REQUIRE(std::regex_search(r.body, m, rid));
  const auto t = std::stoll(m[1].str(), nullptr, 16);
  CHECK(std::llabs(t - now) <= 2);
}

/// The body is compact JSON (what a re-serialization in the same key order gives) with no
/// trailing newline.
inline void check_compact(const reply& r) {
  INFO(r.body);
  const auto j = nlohmann::ordered_json::parse(r.body, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  CHECK(j.dump() == r.body);
}

// A plain TCP connection to the mock.
class raw {
public:
  /// A connection to 127.0.0.1:port; with `tls`, over TLS (the handshake done here, the
  /// server's certificate not checked: these tests are about what the server does).
  explicit raw(int port, bool tls = false) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (ok_ && tls) {
      static SSL_CTX* ctx = ::SSL_CTX_new(::TLS_client_method());
      ssl_ = ::SSL_new(ctx);
      ::SSL_set_fd(ssl_, fd_);
      ok_ = ::SSL_connect(ssl_) == 1;
    }
  }
  ~raw() { close(); }
  raw(const raw&) = delete;
  raw& operator=(const raw&) = delete;
  raw(raw&& o) noexcept : fd_(o.fd_), ssl_(o.ssl_), ok_(o.ok_) {
    o.fd_ = -1;
    o.ssl_ = nullptr;
  }
  bool ok() const { return ok_; }
  void close() {
    if (ssl_ != nullptr) ::SSL_free(ssl_);
    ssl_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send(const std::string& s) {
    if (ssl_ != nullptr)
      return s.empty() || ::SSL_write(ssl_, s.data(), static_cast<int>(s.size())) ==
                              static_cast<int>(s.size());
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  /// Everything received until `until` appears, the peer closes, or `timeout` passes.
  std::string receive(const std::string& until, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.find(until) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      const bool buffered = ssl_ != nullptr && ::SSL_pending(ssl_) > 0;
      if (!buffered && ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      const ssize_t n = ssl_ != nullptr ? ::SSL_read(ssl_, buf, sizeof buf)
                                        : ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  /// One whole response (headers, then Content-Length bytes of body), or what came before
  /// the peer closed or `timeout` passed.
  std::string read_response(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::string got = receive("\r\n\r\n", timeout);
    const auto end = got.find("\r\n\r\n");
    if (end == std::string::npos) return got;
    std::smatch m;
    const std::string head = got.substr(0, end);
    std::size_t length = 0;
    if (std::regex_search(head, m, std::regex("\r\nContent-Length: (\\d+)")))
      length = std::stoul(m[1]);
    while (!closed_ && got.size() < end + 4 + length) {
      const std::string more = receive("\x01\x02never", std::chrono::milliseconds(200));
      if (more.empty() && !closed_) break;
      got += more;
    }
    return got;
  }
  /// True when the server closes the connection within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    receive("\x01\x02never", timeout);
    return closed_;
  }

private:
  int fd_;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
  bool closed_ = false;
};

/// A throwaway test CA and server certificate (scripts/make-test-ca.sh), made once per
/// test process in `dir`; options serving HTTPS with it. ctest runs every TEST_CASE as its
/// own process, all at once: two test cases must not share a `dir`.
inline mock_wechat::options tls_options(mock_wechat::options o = {},
                                        const std::string& dir = "mock_tls_ca") {
#ifdef MAKE_TEST_CA
  static std::set<std::string> made;
  if (made.insert(dir).second)
    REQUIRE(std::system(("bash " MAKE_TEST_CA " " + dir + " > /dev/null").c_str()) == 0);
  o.tls_cert = dir + "/server.pem";
  o.tls_key = dir + "/server.key";
#else
  (void)dir;
#endif
  return o;
}

/// One request on a connection of its own to 127.0.0.1:port, over TLS when `tls` (the
/// server's certificate not checked), sent as these bytes: `headers` are extra header
/// lines, each ending in CRLF. The status and the body of the answer (status 0: none).
inline reply raw_request(int port, bool tls, const std::string& method, const std::string& target,
                         const std::string& body = "", const std::string& headers = "") {
  raw c(port, tls);
  REQUIRE(c.ok());
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: x\r\n" + headers;
  if (!body.empty() || method == "POST")
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n";
  REQUIRE(c.send(req + "\r\n" + body));
  const std::string got = c.read_response();
  reply r;
  const auto end = got.find("\r\n\r\n");
  if (got.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::stoi(got.substr(9, 3));
  std::smatch m;
  const std::string head = got.substr(0, end);
  if (std::regex_search(head, m, std::regex("\r\nContent-Type: ([^\r]*)"))) r.content_type = m[1];
  r.body = got.substr(end + 4);
  return r;
}

// The threads of this process now (/proc/self/task): the mock's loops, a transport's
// thread, whatever a test started.
inline std::size_t threads_now() {
  std::size_t n = 0;
  if (auto* d = ::opendir("/proc/self/task")) {
    while (auto* e = ::readdir(d))
      n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

}  // namespace mocktest
