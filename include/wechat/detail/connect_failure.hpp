// wechat/detail/connect_failure.hpp - why no connection could be made, in words, as every
// transport's http_response::failure says it ("connection refused", "no route to host"...).
// No HTTP library here.
#pragma once

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "wechat/detail/http_url.hpp"

namespace wechat::detail {

// A failed connect's errno in words; ETIMEDOUT names the time waited (`budget`).
inline std::string connect_error_text(int error, std::chrono::milliseconds budget) {
  switch (error) {
  case 0: return "could not connect (a second try did: the host may be overloaded)";
  case ECONNREFUSED: return "connection refused";
  case EHOSTUNREACH: return "no route to host";
  case ENETUNREACH: return "network unreachable";
  case ETIMEDOUT:
    return "could not connect: no answer within " + std::to_string(budget.count()) + " ms";
  default: return std::string("could not connect: ") + std::strerror(error);
  }
}

// Why no connection could be made to host:port, found again on the failure path, for a
// transport whose HTTP library keeps neither the resolver's answer nor the socket's error
// (cpp-httplib: errno after its failed connect is EINPROGRESS, from the non-blocking
// connect): a DNS lookup of the host, then one non-blocking connect to the first address
// it gives, for at most `budget`. It blocks: not for an event loop.
inline std::string connect_failure(const parsed_url& u, std::chrono::milliseconds budget) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(u.host.c_str(), std::to_string(u.port).c_str(), &hints, &found);
  if (rc != 0) {
    const char* why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    return std::string("DNS lookup failed: ") + why;
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(found, ::freeaddrinfo);
  if (found == nullptr) return "DNS lookup gave no address";
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("could not connect: ") + std::strerror(errno);
  int error = 0;
  if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    error = errno;
    if (error == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(budget.count()));
      socklen_t n = sizeof error;
      if (ready <= 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &n) != 0) error = ETIMEDOUT;
    }
  }
  ::close(fd);
  return connect_error_text(error, budget);
}

}  // namespace wechat::detail
