// What counts as loopback (wechat/detail/net.hpp: the client's plain-http guard and the
// mock's admin-token guard share it), and the transport's checks of its URLs.
#include <catch2/catch.hpp>
#include <wechat/detail/net.hpp>
#include <wechat/transport/httplib.hpp>

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
