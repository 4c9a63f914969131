// The TLS client's own settings (wechat/transport/httplib.hpp, detail::harden_tls): TLS 1.2
// at least and a host named in subjectAltName, whatever cpp-httplib and the system's
// OpenSSL configuration would allow. This program runs with a permissive OpenSSL
// configuration (openssl-permissive.cnf: TLS 1.0 on, security level 0, as on an old or
// unconfigured system), so a refusal here is the client's doing, not Debian's
// openssl.cnf; each test first shows that a plain OpenSSL client would have connected.
// And what a refusal says (error_detail::cause): the certificate's verification error, or
// the handshake's.
#include <catch2/catch.hpp>
#include <wechat/client.hpp>
#include <wechat/transport/httplib.hpp>

#include "loopback_socket.hpp"
#ifdef WECHAT_TEST_BEAST
#include <wechat/transport/beast.hpp>

#include <future>
#endif

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

// OpenSSL reads its configuration once, and Debian's compiled cpp-httplib has it read as
// the shared library loads, before any code of this program runs: setenv here would come
// too late. So the program starts itself again (once) with OPENSSL_CONF set.
const bool permissive_config = [] {
  ::signal(SIGPIPE, SIG_IGN);
  const char* now = std::getenv("OPENSSL_CONF");
  if (now != nullptr && std::string(now) == PERMISSIVE_OPENSSL_CONF) return true;
  if (::setenv("OPENSSL_CONF", PERMISSIVE_OPENSSL_CONF, 1) != 0) return false;
  std::string cmdline;
  const int fd = ::open("/proc/self/cmdline", O_RDONLY);
  char buf[4096];
  for (ssize_t n; fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0;)
    cmdline.append(buf, static_cast<std::size_t>(n));
  if (fd >= 0) ::close(fd);
  std::vector<char*> argv;
  for (std::size_t at = 0; at < cmdline.size(); at = cmdline.find('\0', at) + 1)
    argv.push_back(&cmdline[at]);
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());
  return false;  // could not start again: the tests REQUIRE this
}();

// A folder of this process's own (ctest runs tests at once), removed at the end.
struct scratch {
  std::string dir;
  scratch() {
    char t[] = "tls_client_test_XXXXXX";
    REQUIRE(::mkdtemp(t) != nullptr);
    dir = t;
  }
  ~scratch() { std::system(("rm -rf '" + dir + "'").c_str()); }
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;
};

// A test CA, and two server certificates it signed for localhost: cn.pem names it only in
// the subject CN (no subjectAltName), san.pem in subjectAltName (and the same CN).
void make_certs(const std::string& dir) {
  std::ofstream(dir + "/make.sh") << R"(set -e
unset OPENSSL_CONF
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
key ca.key
openssl req -x509 -new -key ca.key -days 2 -subj "/CN=tls_client_test CA" -out ca.pem
for kind in cn san; do
  key $kind.key
  openssl req -new -key $kind.key -subj /CN=localhost -out $kind.csr
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' > $kind.ext
done
echo 'subjectAltName=DNS:localhost,IP:127.0.0.1' >> san.ext
for kind in cn san; do
  openssl x509 -req -in $kind.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile $kind.ext -out $kind.pem
done
)";
  REQUIRE(std::system(("cd '" + dir + "' && bash make.sh > make.log 2>&1").c_str()) == 0);
}

// A TLS server on 127.0.0.1 that answers every request with 200 {} and closes, speaking at
// most `max_version`, at security level 0 (it accepts anything the client offers).
class tls_server {
public:
  tls_server(const std::string& cert, const std::string& key, int max_version) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    REQUIRE(ctx_ != nullptr);
    SSL_CTX_set_security_level(ctx_, 0);
    SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    SSL_CTX_set_cipher_list(ctx_, "DEFAULT@SECLEVEL=0");
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) == 1);
    fd_ = listener_.fd;
    port_ = listener_.port;
    thread_ = std::thread([this] { serve(); });
  }
  ~tls_server() {
    stop_ = true;
    thread_.join();
    SSL_CTX_free(ctx_);
  }
  tls_server(const tls_server&) = delete;
  tls_server& operator=(const tls_server&) = delete;

  int port() const { return port_; }
  /// Requests answered (a client that gave up after the handshake is not counted).
  int answered() const { return answered_; }

private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      timeval tv{2, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) {
        std::string req;
        char buf[1024];
        while (req.find("\r\n\r\n") == std::string::npos) {
          const int got = SSL_read(ssl, buf, sizeof buf);
          if (got <= 0) break;
          req.append(buf, static_cast<std::size_t>(got));
        }
        if (req.find("\r\n\r\n") != std::string::npos) {
          static constexpr char answer[] =
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
              "Connection: close\r\n\r\n{}";
          if (SSL_write(ssl, answer, sizeof answer - 1) > 0) ++answered_;
        }
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
      ::close(c);
    }
  }

  SSL_CTX* ctx_ = nullptr;
  testnet::loopback_socket listener_{true};
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;
};

// A plain OpenSSL client with the configuration's defaults, no verification: the version
// it negotiated with the server on `port` (0: no handshake).
int plain_openssl_handshake(int port) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  REQUIRE(ctx != nullptr);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  int version = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
      version = SSL_version(ssl);
      static constexpr char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
      SSL_write(ssl, req, sizeof req - 1);
      char buf[256];
      while (SSL_read(ssl, buf, sizeof buf) > 0) {
      }
    }
    SSL_free(ssl);
  }
  ::close(fd);
  SSL_CTX_free(ctx);
  return version;
}

wechat::http_response get(const std::string& base_url, const std::string& ca_file,
                          std::error_code& ec, bool verify = true) {
  wechat::httplib_transport_options o;
  o.base_url = base_url;
  o.ca_file = ca_file;
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.read_timeout = std::chrono::milliseconds(3000);
  o.disable_tls_verification_insecure = !verify;
  auto t = wechat::httplib_transport::create(o);
  wechat::http_request r;
  r.target = "/";
  return t->send(r, ec);
}

std::string url(int port) {
  return "https://localhost:" + std::to_string(port);
}

}  // namespace

TEST_CASE("TLS client refuses a certificate that names its host only in the subject CN", "[tls]") {
  REQUIRE(permissive_config);
  scratch s;
  make_certs(s.dir);
  std::error_code ec;
  SECTION("CN=localhost, no subjectAltName: refused") {
    tls_server server(s.dir + "/cn.pem", s.dir + "/cn.key", TLS1_3_VERSION);
    REQUIRE(plain_openssl_handshake(server.port()) != 0);
    const int before = server.answered();
    const auto r = get(url(server.port()), s.dir + "/ca.pem", ec);
    CHECK(ec == wechat::transport_errc::tls_failed);
    CHECK(server.answered() == before);  // the request never left the client
    CHECK(r.failure == "localhost:" + std::to_string(server.port()) +
                           ": TLS: certificate verify failed: localhost is not named in the "
                           "certificate's subjectAltName");
  }
  SECTION("the same name in subjectAltName: accepted, by name and by address") {
    tls_server server(s.dir + "/san.pem", s.dir + "/san.key", TLS1_3_VERSION);
    for (const std::string& base :
         {url(server.port()), "https://127.0.0.1:" + std::to_string(server.port())}) {
      CAPTURE(base);
      const auto r = get(base, s.dir + "/ca.pem", ec);
      CHECK_FALSE(ec);
      CHECK(r.status == 200);
      CHECK(r.body == "{}");
    }
  }
}

TEST_CASE("TLS client refuses a server that speaks at most TLS 1.1, even where OpenSSL allows it",
          "[tls]") {
  REQUIRE(permissive_config);
  scratch s;
  make_certs(s.dir);
  std::error_code ec;
  {
    tls_server server(s.dir + "/san.pem", s.dir + "/san.key", TLS1_1_VERSION);
    // This process's OpenSSL would speak TLS 1.1 with it: the refusal below is the client's.
    REQUIRE(plain_openssl_handshake(server.port()) == TLS1_1_VERSION);
    const auto r = get(url(server.port()), s.dir + "/ca.pem", ec);
    CHECK(ec == wechat::transport_errc::tls_failed);
    INFO("failure: " << r.failure);  // OpenSSL's reason follows, as this OpenSSL words it
    CHECK(r.failure.rfind("localhost:" + std::to_string(server.port()) + ": TLS handshake failed",
                          0) == 0);
    // Turning verification off does not turn the version floor off.
    get(url(server.port()), "", ec, false);
    CHECK(ec == wechat::transport_errc::tls_failed);
    CHECK(server.answered() == 1);  // the plain client's request only
  }
  {
    tls_server server(s.dir + "/san.pem", s.dir + "/san.key", TLS1_2_VERSION);
    const auto r = get(url(server.port()), s.dir + "/ca.pem", ec);
    CHECK_FALSE(ec);
    CHECK(r.status == 200);
  }
}

TEST_CASE("a certificate from a CA the client does not trust: tls_failed, and the cause says so",
          "[tls][cause]") {
  REQUIRE(permissive_config);
  scratch s;
  make_certs(s.dir);
  tls_server server(s.dir + "/san.pem", s.dir + "/san.key", TLS1_3_VERSION);
  const std::string secret = "Sx7qKp2vR9zW4tLm8nB3Yh6cJd1fGe5u";
  const std::string expected = "127.0.0.1:" + std::to_string(server.port()) +
                               ": TLS: certificate verify failed: unable to get local issuer "
                               "certificate";
  wechat::httplib_transport_options o;  // the system's CAs: they do not know the test CA
  o.base_url = "https://127.0.0.1:" + std::to_string(server.port());
  o.connect_timeout = std::chrono::milliseconds(2000);
  wechat::client wx({"wx1000000000000001", secret}, wechat::httplib_transport::create(o));
  std::error_code ec;
  wechat::error_detail d;
  wx.code2session("0a1b2c3d4e5f", ec, &d);
  CHECK(ec == wechat::transport_errc::tls_failed);
  CHECK(d.cause == expected);
  std::string what;
  try {
    wx.code2session("0a1b2c3d4e5f");
  } catch (const wechat::error& e) {
    what = e.what();
  }
  CHECK(what ==
        "code2session: TLS handshake or certificate verification failed (" + expected + ")");
  CHECK(what.find(secret) == std::string::npos);
  CHECK(what.find("jscode2session") == std::string::npos);
  CHECK(server.answered() == 0);  // no request was sent
}

TEST_CASE("harden_tls raises the minimum to TLS 1.2, never lowers it, and turns off CN matching",
          "[tls]") {
  REQUIRE(permissive_config);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  REQUIRE(ctx != nullptr);
  CHECK(SSL_CTX_get_min_proto_version(ctx) < TLS1_2_VERSION);  // the permissive configuration
  CHECK(wechat::detail::harden_tls(ctx, "api.weixin.qq.com", true));
  CHECK(SSL_CTX_get_min_proto_version(ctx) == TLS1_2_VERSION);
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  CHECK((X509_VERIFY_PARAM_get_hostflags(param) & X509_CHECK_FLAG_NEVER_CHECK_SUBJECT) != 0);
  CHECK(std::string(X509_VERIFY_PARAM_get0_host(param, 0)) == "api.weixin.qq.com");

  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);  // a stricter system policy stands
  CHECK(wechat::detail::harden_tls(ctx, "api.weixin.qq.com", true));
  CHECK(SSL_CTX_get_min_proto_version(ctx) == TLS1_3_VERSION);
  SSL_CTX_free(ctx);

  CHECK_FALSE(wechat::detail::harden_tls(nullptr, "api.weixin.qq.com", true));
}

#ifdef WECHAT_TEST_BEAST
// The same servers through the Boost.Beast transport (wechat/transport/beast.hpp), which
// sets up its own SSL_CTX with the same detail::harden_tls.
namespace {

wechat::http_response get_beast(const std::string& base_url, const std::string& ca_file,
                                std::error_code& ec, bool verify = true) {
  wechat::beast_transport_options o;
  o.base_url = base_url;
  o.ca_file = ca_file;
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.read_timeout = std::chrono::milliseconds(3000);
  o.disable_tls_verification_insecure = !verify;
  auto t = wechat::beast_transport::create(o);
  wechat::http_request r;
  r.target = "/";
  std::promise<std::pair<wechat::http_response, std::error_code>> done;
  t->async_send(r, {}, [&done](wechat::http_response res, std::error_code e) {
    done.set_value({std::move(res), e});
  });
  auto f = done.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto got = f.get();
  ec = got.second;
  return got.first;
}

}  // namespace

TEST_CASE("beast transport: refuses a certificate naming its host only in the subject CN",
          "[tls][beast]") {
  REQUIRE(permissive_config);
  scratch s;
  make_certs(s.dir);
  std::error_code ec;
  {
    tls_server server(s.dir + "/cn.pem", s.dir + "/cn.key", TLS1_3_VERSION);
    REQUIRE(plain_openssl_handshake(server.port()) != 0);
    const int before = server.answered();
    const auto r = get_beast(url(server.port()), s.dir + "/ca.pem", ec);
    CHECK(ec == wechat::transport_errc::tls_failed);
    CHECK(server.answered() == before);
    CHECK(r.failure == "localhost:" + std::to_string(server.port()) +
                           ": TLS: certificate verify failed: localhost is not named in the "
                           "certificate's subjectAltName");
  }
  {
    tls_server server(s.dir + "/san.pem", s.dir + "/san.key", TLS1_3_VERSION);
    for (const std::string& base :
         {url(server.port()), "https://127.0.0.1:" + std::to_string(server.port())}) {
      CAPTURE(base);
      const auto r = get_beast(base, s.dir + "/ca.pem", ec);
      CHECK_FALSE(ec);
      CHECK(r.status == 200);
      CHECK(r.body == "{}");
    }
  }
}

TEST_CASE("beast transport: refuses TLS 1.1 even where OpenSSL allows it, verification off too",
          "[tls][beast]") {
  REQUIRE(permissive_config);
  scratch s;
  make_certs(s.dir);
  std::error_code ec;
  {
    tls_server server(s.dir + "/san.pem", s.dir + "/san.key", TLS1_1_VERSION);
    REQUIRE(plain_openssl_handshake(server.port()) == TLS1_1_VERSION);
    const auto r = get_beast(url(server.port()), s.dir + "/ca.pem", ec);
    CHECK(ec == wechat::transport_errc::tls_failed);
    INFO("failure: " << r.failure);
    CHECK(r.failure.rfind("localhost:" + std::to_string(server.port()) + ": TLS handshake failed",
                          0) == 0);
    get_beast(url(server.port()), "", ec, false);
    CHECK(ec == wechat::transport_errc::tls_failed);
    CHECK(server.answered() == 1);  // the plain client's request only
  }
  {
    tls_server server(s.dir + "/san.pem", s.dir + "/san.key", TLS1_2_VERSION);
    const auto r = get_beast(url(server.port()), s.dir + "/ca.pem", ec);
    CHECK_FALSE(ec);
    CHECK(r.status == 200);
  }
}
#endif
