// wechat/detail/net.hpp - is this host string the local machine? One answer for the
// client's plain-http guard and the mock's admin-token guard.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

namespace wechat::detail {

/// True when `host` (a URL's host, or an address to bind) can only mean this machine:
/// - an IPv4 literal in 127.0.0.0/8, in the one strict form inet_pton reads (four decimal
///   parts, no leading zeros): 127.0.0.1, 127.8.9.10;
/// - the IPv6 loopback ::1 in any spelling inet_pton reads (0:0:0:0:0:0:0:1), with or
///   without brackets ([::1]; brackets around anything else are refused), and an
///   IPv4-mapped loopback (::ffff:127.0.0.1);
/// - the name `localhost`, case-insensitively (RFC 6761 reserves it for loopback).
///
/// Everything else is false, including names that only start like an address
/// (127.evil.example, 127.0.0.1.nip.io: a DNS name can point anywhere), the shorthand and
/// octal or hex IPv4 forms that inet_aton and getaddrinfo also accept (127.1, 0x7f.0.0.1,
/// 0177.0.0.1: loopback in truth, but refused so one strict reading decides; write
/// 127.0.0.1), `localhost.` with a trailing dot (an absolute name that some resolvers
/// send to DNS instead of answering from /etc/hosts), subdomains of localhost, zone ids
/// (::1%lo), 0.0.0.0 and ::. Refusing is the safe side: a caller that means a real loopback
/// address can always spell it in the accepted form.
inline bool is_loopback_host(std::string_view host) {
  bool bracketed = false;  // [::1]: brackets go around an IPv6 literal only
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    bracketed = true;
  }
  if (host.empty() || host.size() > 64) return false;
  const std::string h(host);
  if (h.find('\0') != std::string::npos) return false;
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    unsigned char b[16];
    std::memcpy(b, &v6, 16);
    static constexpr unsigned char loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (std::memcmp(b, loopback, 16) == 0) return true;
    static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(b, mapped, 12) == 0 && b[12] == 127;  // ::ffff:127.x.y.z
  }
  if (bracketed) return false;
  static constexpr char name[] = "localhost";
  if (h.size() == sizeof name - 1) {
    bool same = true;
    for (std::size_t i = 0; i < h.size() && same; ++i) {
      const char c = h[i] >= 'A' && h[i] <= 'Z' ? static_cast<char>(h[i] - 'A' + 'a') : h[i];
      same = c == name[i];
    }
    if (same) return true;
  }
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    unsigned char b[4];
    std::memcpy(b, &v4, 4);
    return b[0] == 127;
  }
  return false;
}

}  // namespace wechat::detail
