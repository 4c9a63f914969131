// A TCP socket on 127.0.0.1 for the tests' raw servers: bound to a port of the system's
// choosing, listening when asked (with `backlog`), closed on destruction.
#pragma once

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace testnet {

struct loopback_socket {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int port = 0;
  explicit loopback_socket(bool listening, int backlog = 16) {
    REQUIRE(fd >= 0);
    sockaddr_in a = address();
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    if (listening) REQUIRE(::listen(fd, backlog) == 0);
    socklen_t n = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0);
    port = ntohs(a.sin_port);
  }
  ~loopback_socket() { close(); }
  loopback_socket(const loopback_socket&) = delete;
  loopback_socket& operator=(const loopback_socket&) = delete;
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  /// 127.0.0.1 at this socket's port (0 before it is bound).
  sockaddr_in address() const {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    return a;
  }
};

}  // namespace testnet
