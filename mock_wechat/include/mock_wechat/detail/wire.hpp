// mock_wechat/detail/wire.hpp - how the event engine writes a response: the status line with
// cpp-httplib 0.11.4's reason phrases, then Connection, Content-Length, Content-Type and
// Keep-Alive in the order cpp-httplib writes them, so that the two engines' answers read
// alike on the wire (tests/engine_diff_test.cpp compares them).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mock_wechat {
namespace detail {

/// The reason phrase cpp-httplib 0.11.4 writes for a status (its own table, "Switching
/// Protocol" and all; "Internal Server Error" for any status it does not know).
/// tests/engine_diff_test.cpp compares whole answers byte for byte with cpp-httplib 0.11.4.
inline const char* reason_phrase(int status) noexcept {
  switch (status) {
  case 100: return "Continue";
  case 101: return "Switching Protocol";
  case 102: return "Processing";
  case 103: return "Early Hints";
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 203: return "Non-Authoritative Information";
  case 204: return "No Content";
  case 205: return "Reset Content";
  case 206: return "Partial Content";
  case 207: return "Multi-Status";
  case 208: return "Already Reported";
  case 226: return "IM Used";
  case 300: return "Multiple Choice";
  case 301: return "Moved Permanently";
  case 302: return "Found";
  case 303: return "See Other";
  case 304: return "Not Modified";
  case 305: return "Use Proxy";
  case 306: return "unused";
  case 307: return "Temporary Redirect";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 402: return "Payment Required";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 407: return "Proxy Authentication Required";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 411: return "Length Required";
  case 412: return "Precondition Failed";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 415: return "Unsupported Media Type";
  case 416: return "Range Not Satisfiable";
  case 417: return "Expectation Failed";
  case 418: return "I'm a teapot";
  case 421: return "Misdirected Request";
  case 422: return "Unprocessable Entity";
  case 423: return "Locked";
  case 424: return "Failed Dependency";
  case 425: return "Too Early";
  case 426: return "Upgrade Required";
  case 428: return "Precondition Required";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 451: return "Unavailable For Legal Reasons";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  case 506: return "Variant Also Negotiates";
  case 507: return "Insufficient Storage";
  case 508: return "Loop Detected";
  case 510: return "Not Extended";
  case 511: return "Network Authentication Required";
  default: return "Internal Server Error";
  }
}

/// Appends a response. `length` is the Content-Length to announce (a truncation fault
/// promises more than it sends); `close` writes "Connection: close" instead of the
/// keep-alive header; `head_only` leaves the body out (an answer to HEAD).
inline void write_response(std::string& out, int status, std::string_view content_type,
                           std::string_view body, std::size_t length, bool close,
                           std::string_view keep_alive, bool head_only = false) {
  char number[24];
  auto append_number = [&](std::size_t n) {
    char* end = number + sizeof number;
    char* p = end;
    do {
      *--p = static_cast<char>('0' + n % 10);
      n /= 10;
    } while (n != 0);
    out.append(p, static_cast<std::size_t>(end - p));
  };
  out += "HTTP/1.1 ";
  append_number(static_cast<std::size_t>(status));
  out += ' ';
  out += reason_phrase(status);
  out += "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "Content-Length: ";
  append_number(length);
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\n";
  if (!close) {
    out += "Keep-Alive: ";
    out += keep_alive;
    out += "\r\n";
  }
  out += "\r\n";
  if (!head_only) out += body;
}

}  // namespace detail
}  // namespace mock_wechat
