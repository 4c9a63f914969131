// What counts as loopback (wechat/detail/net.hpp: the client's plain-http guard and the
// mock's admin-token guard share it), the transport's checks of its URLs, and what it
// says when it cannot reach its host (error_detail::cause: a refused port, a name that does
// not resolve, a read timeout), over real sockets on loopback.
#include <catch2/catch.hpp>
#include <wechat/client.hpp>
#include <wechat/detail/net.hpp>
#include <wechat/transport/httplib.hpp>

#include "loopback_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>

using wechat::detail::is_loopback_host;

TEST_CASE("is_loopback_host takes 127.0.0.0/8 and ::1 as address literals only",
          "[net][loopback]") {
  SECTION("real loopback literals") {
    for (const char* h : {"127.0.0.1", "127.0.0.2", "127.255.255.255", "127.8.9.10", "::1", "[::1]",
                          "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "[::ffff:127.1.2.3]"}) {
      CAPTURE(h);
      CHECK(is_loopback_host(h));
    }
  }
  SECTION("names and addresses that only start like loopback") {
    for (const char* h : {"127.evil.example", "127.0.0.1.nip.io", "127.0.0.1.", "127.0.0.1:80",
                          " 127.0.0.1", "127.0.0.1 ", "127.0.0.256", "1270.0.0.1", "127.", "127"}) {
      CAPTURE(h);
      CHECK_FALSE(is_loopback_host(h));
    }
  }
  SECTION("other addresses") {
    for (const char* h : {"10.0.0.1", "0.0.0.0", "128.0.0.1", "126.255.255.255", "::", "::2",
                          "::ffff:10.0.0.1", "::127.0.0.1", "[::1", "::1]", "[]", "", "fe80::1"}) {
      CAPTURE(h);
      CHECK_FALSE(is_loopback_host(h));
    }
  }
  SECTION("shorthand, octal and hex IPv4 forms are refused (one strict reading decides)") {
    // getaddrinfo reads these as 127.0.0.1 too; refusing them is the safe side: write
    // 127.0.0.1.
    for (const char* h : {"127.1", "127.0.1", "0x7f.0.0.1", "0x7f000001", "2130706433",
                          "0177.0.0.1", "127.000.000.001"}) {
      CAPTURE(h);
      CHECK_FALSE(is_loopback_host(h));
    }
  }
  SECTION("IPv6 zone ids are refused") {
    CHECK_FALSE(is_loopback_host("::1%lo"));
    CHECK_FALSE(is_loopback_host("[::1%25lo]"));
  }
}

TEST_CASE("is_loopback_host takes the name localhost, in any case, and nothing like it",
          "[net][loopback]") {
  for (const char* h : {"localhost", "LOCALHOST", "LocalHost"}) {
    CAPTURE(h);
    CHECK(is_loopback_host(h));
  }
  // "localhost." is absolute: some resolvers send it to DNS rather than /etc/hosts.
  for (const char* h : {"localhost.", "localhost.evil.example", "evil.localhost", "localhost:80",
                        "localhos", "xlocalhost", "local host", "[localhost]", "[127.0.0.1]"}) {
    CAPTURE(h);
    CHECK_FALSE(is_loopback_host(h));
  }
  CHECK_FALSE(is_loopback_host(std::string("localhost\0.evil.example", 23)));
}

TEST_CASE("httplib_transport refuses plain http to a host that only looks like loopback",
          "[net][transport]") {
  for (const char* url : {"http://127.evil.example", "http://127.0.0.1.nip.io:8080",
                          "http://127.1:8080", "http://0x7f.0.0.1", "http://localhost.:8080",
                          "http://10.0.0.1", "http://[::ffff:10.0.0.1]:80"}) {
    CAPTURE(url);
    wechat::httplib_transport_options o;
    o.base_url = url;
    std::error_code ec;
    CHECK(wechat::httplib_transport::create(o, ec) == nullptr);
    CHECK(ec == wechat::transport_errc::insecure_url);
    bool threw = false;
    try {
      wechat::httplib_transport::create(o);
    } catch (const std::system_error& e) {
      threw = true;
      CHECK(e.code() == wechat::transport_errc::insecure_url);
    }
    CHECK(threw);
    o.allow_insecure_http = true;  // the named escape hatch still works
    CHECK(wechat::httplib_transport::create(o, ec) != nullptr);
    CHECK_FALSE(ec);
  }
  for (const char* url :
       {"http://127.0.0.1:8080", "http://localhost:8080", "http://LOCALHOST", "http://[::1]:8080",
        "http://127.9.9.9", "http://[::ffff:127.0.0.1]:80"}) {
    CAPTURE(url);
    wechat::httplib_transport_options o;
    o.base_url = url;
    std::error_code ec;
    CHECK(wechat::httplib_transport::create(o, ec) != nullptr);
    CHECK_FALSE(ec);
  }
}

TEST_CASE("the api2 fallback is kept for WeChat's own host only, compared exactly",
          "[net][transport]") {
  const auto fallback_for = [](const std::string& base) {
    wechat::httplib_transport_options o;
    o.base_url = base;
    return wechat::httplib_transport::create(o)->options().fallback_base_url;
  };
  CHECK(fallback_for("https://api.weixin.qq.com") == "https://api2.weixin.qq.com");
  CHECK(fallback_for("https://api.weixin.qq.com/") == "https://api2.weixin.qq.com");
  CHECK(fallback_for("https://api.weixin.qq.com:443") == "https://api2.weixin.qq.com");
  CHECK(fallback_for("https://API.Weixin.QQ.com") == "https://api2.weixin.qq.com");
  for (const char* other : {"https://api.weixin.qq.com.evil.example", "https://api.weixin.qq.comx",
                            "https://api.weixin.qq.com:8443", "https://api.weixin.qq.co",
                            "https://xapi.weixin.qq.com", "https://127.0.0.1:8443"}) {
    CAPTURE(other);
    CHECK(fallback_for(other).empty());
  }
}

TEST_CASE("the fallback URL passes the same checks as the base URL", "[net][transport]") {
  wechat::httplib_transport_options o;  // WeChat's default base: the fallback is used
  std::error_code ec;
  o.fallback_base_url = "http://api2.weixin.qq.com";
  CHECK(wechat::httplib_transport::create(o, ec) == nullptr);
  CHECK(ec == wechat::transport_errc::insecure_url);
  o.fallback_base_url = "api2.weixin.qq.com";
  CHECK(wechat::httplib_transport::create(o, ec) == nullptr);
  CHECK(ec == wechat::transport_errc::invalid_url);
  o.fallback_base_url.clear();  // no fallback at all
  CHECK(wechat::httplib_transport::create(o, ec) != nullptr);
  CHECK_FALSE(ec);
}

namespace {

// A distinctive appsecret: no piece of it may appear in what the library says.
const std::string secret = "Sx7qKp2vR9zW4tLm8nB3Yh6cJd1fGe5u";

using testnet::loopback_socket;

// A client of app wx1000000000000001 (with `secret`) through the httplib transport to
// `base_url`, with short timeouts and no retries.
wechat::client client_for(const std::string& base_url) {
  wechat::httplib_transport_options t;
  t.base_url = base_url;
  t.connect_timeout = std::chrono::milliseconds(1000);
  t.read_timeout = std::chrono::milliseconds(300);
  wechat::client_options o;
  o.appid = "wx1000000000000001";
  o.secret = secret;
  o.max_attempts = 1;
  return wechat::client(o, wechat::httplib_transport::create(t));
}

// The throwing form's what(), or "" when it did not throw wechat::error.
template <class F> std::string what_of(F&& f) {
  try {
    f();
  } catch (const wechat::error& e) {
    return e.what();
  }
  return "";
}

// Does `text` hold any 8-character piece of `secret`?
bool leaks(const std::string& text) {
  for (std::size_t i = 0; i + 8 <= secret.size(); ++i)
    if (text.find(secret.substr(i, 8)) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("a refused port: connect_failed, and the cause names host, port and refusal",
          "[net][transport][cause]") {
  loopback_socket s(false);
  const std::string host = "127.0.0.1:" + std::to_string(s.port);
  s.close();  // nothing listens there now: the kernel refuses
  wechat::client wx = client_for("http://" + host);
  std::error_code ec;
  wechat::error_detail d;
  SECTION("code2session") {
    wx.code2session("0a1b2c3d4e5f", ec, &d);
    CHECK(ec == wechat::transport_errc::connect_failed);
    CHECK(d.cause == host + ": connection refused");
    const std::string what = what_of([&] { wx.code2session("0a1b2c3d4e5f"); });
    CHECK(what == "code2session: could not connect to the WeChat API host (" + host +
                      ": connection refused)");
    CHECK(what.find("jscode2session") == std::string::npos);  // never the request target
    CHECK_FALSE(leaks(d.cause + what));
  }
  SECTION("an access token fetch (the appsecret in the POST body)") {
    wx.tokens().get(ec, &d);
    CHECK(ec == wechat::transport_errc::connect_failed);
    CHECK(d.cause == host + ": connection refused");
    const std::string what = what_of([&] { wx.tokens().get(); });
    CHECK(what.find("(" + host + ": connection refused)") != std::string::npos);
    CHECK_FALSE(leaks(d.cause + what));
  }
}

TEST_CASE("a host name that does not resolve: connect_failed, the cause says DNS, no hang",
          "[net][transport][cause]") {
  // .invalid never resolves (RFC 6761): the lookup fails on any network, fast.
  for (const std::string base :
       {"https://wechat-test.invalid", "http://wechat-test.invalid:8080"}) {
    CAPTURE(base);
    const bool https = base.rfind("https", 0) == 0;
    wechat::httplib_transport_options t;
    t.base_url = base;
    t.allow_insecure_http = true;
    t.connect_timeout = std::chrono::milliseconds(1000);
    wechat::client_options o;
    o.appid = "wx1000000000000001";
    o.secret = secret;
    wechat::client wx(o, wechat::httplib_transport::create(t));
    std::error_code ec;
    wechat::error_detail d;
    const auto t0 = std::chrono::steady_clock::now();
    wx.code2session("0a1b2c3d4e5f", ec, &d);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
    CHECK(ec == wechat::transport_errc::connect_failed);
    INFO("cause: " << d.cause);
    CHECK(d.cause.rfind(std::string("wechat-test.invalid:") + (https ? "443" : "8080") +
                            ": DNS lookup failed: ",
                        0) == 0);
    const std::string what = what_of([&] { wx.code2session("0a1b2c3d4e5f"); });
    CHECK(what.find("DNS lookup failed") != std::string::npos);
    CHECK_FALSE(leaks(d.cause + what));
  }
}

TEST_CASE("a server that never answers: timeout, and the cause says which timeout ran out",
          "[net][transport][cause]") {
  loopback_socket s(true);  // the kernel accepts the connection; no one reads or answers
  const std::string host = "127.0.0.1:" + std::to_string(s.port);
  wechat::client wx = client_for("http://" + host);
  std::error_code ec;
  wechat::error_detail d;
  wx.code2session("0a1b2c3d4e5f", ec, &d);
  CHECK(ec == wechat::transport_errc::timeout);
  CHECK(d.cause == host + ": no answer within the read_timeout, 300 ms");
  const std::string what = what_of([&] { wx.code2session("0a1b2c3d4e5f"); });
  CHECK(what == "code2session: the request timed out (" + d.cause + ")");
  CHECK_FALSE(leaks(d.cause + what));
}
