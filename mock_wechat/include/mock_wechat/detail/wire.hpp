// mock_wechat/detail/wire.hpp - the mock's own reader and writer for the plain HTTP/1.1 requests
// WeChat clients send (GET or POST, a query, maybe a JSON body), so that the hot path under
// load does not pay for cpp-httplib's general request model (a line reader that copies
// byte by byte, a case-insensitive multimap of headers, a regex router, a second parse of
// the query). benchmarks/RESULTS.md has the measurements that led here.
//
// The reader is deliberately narrow: it accepts only requests whose meaning is beyond
// doubt and declines everything else (other methods, HEAD, chunked or encoded bodies,
// Expect, multipart, percent-encoded or unusual paths, folded or malformed header lines,
// a POST without Content-Length, duplicated framing headers...), which then goes through
// cpp-httplib exactly as before. For what it accepts it reads what cpp-httplib 0.11.4
// reads (tests/wire_test.cpp and fuzz/fuzz_mock.cpp check the two side by side), and the
// writer writes what cpp-httplib writes, byte for byte.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mock_wechat {
namespace detail {

/// One request, as read by parse_plain_request: views into the received bytes.
struct plain_request {
  std::string_view method;    ///< "GET" or "POST"
  std::string_view target;    ///< as sent: path and query
  std::string_view path;      ///< the target up to '?' (only unreserved characters)
  std::string_view body;      ///< Content-Length bytes (POST only)
  bool close = false;         ///< the connection closes after the answer
  bool close_header = false;  ///< answer with "Connection: close" (the client asked for it)
};

// The request line "GET /target HTTP/1.1" (or POST, or HTTP/1.0): sets r.method, r.target
// and http10. False: declined.
inline bool read_request_line(std::string_view line, plain_request& r, bool& http10) noexcept {
  constexpr std::size_t max_target = 8192;  // httplib answers 414 above this
  if (line.compare(0, 4, "GET ") == 0)
    r.method = line.substr(0, 3);
  else if (line.compare(0, 5, "POST ") == 0)
    r.method = line.substr(0, 4);
  else
    return false;
  const std::size_t t0 = r.method.size() + 1;
  const std::size_t sp = line.find(' ', t0);
  if (sp == std::string_view::npos) return false;
  r.target = line.substr(t0, sp - t0);
  const std::string_view version = line.substr(sp + 1);
  if (version == "HTTP/1.0")
    http10 = true;
  else if (version != "HTTP/1.1")
    return false;
  return !r.target.empty() && r.target[0] == '/' && r.target.size() < max_target;
}

// Sets r.path, the target up to '?', when it is all unreserved characters and the query
// after it is one httplib reads alike. False: declined.
inline bool read_target(plain_request& r) noexcept {
  std::size_t q = 0;
  for (; q < r.target.size() && r.target[q] != '?'; ++q) {
    const char c = r.target[q];
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '/' || c == '_' || c == '-' ||
                            c == '.' || c == '~';
    if (!unreserved) return false;
  }
  r.path = r.target.substr(0, q);
  for (std::size_t i = q + 1; i < r.target.size(); ++i) {    // httplib drops a fragment and
    const auto c = static_cast<unsigned char>(r.target[i]);  // refuses a second '?'
    if (c <= 0x20 || c >= 0x7f || c == '#' || c == '?') return false;
  }
  return true;
}

// ASCII case-insensitive equality with `lower`, written in lower case.
inline bool equals_lower(std::string_view s, std::string_view lower) noexcept {
  if (s.size() != lower.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((s[i] | 0x20) != lower[i]) return false;
  return true;
}

// A header name is a token: no spaces, controls or separators.
inline bool is_header_name(std::string_view name) noexcept {
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '(' || c == ')' || c == '<' || c == '>' || c == '@' ||
        c == ',' || c == ';' || c == '\\' || c == '"' || c == '/' || c == '[' || c == ']' ||
        c == '?' || c == '=' || c == '{' || c == '}' || c == ':')
      return false;
  }
  return true;
}

// A header value: no controls but tabs.
inline bool is_header_value(std::string_view value) noexcept {
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

// What the headers say about the body and the connection.
struct plain_headers {
  std::optional<std::size_t> length;  ///< Content-Length
  std::string_view connection;        ///< Connection, blanks trimmed
  int connection_headers = 0;         ///< Connection headers seen
};

// One "Name: value" line into h. False: declined (malformed, a framing header twice, or a
// header that asks for more than the fast path does).
inline bool read_header(std::string_view line, plain_headers& h) noexcept {
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view name = line.substr(0, colon);
  std::string_view value = line.substr(colon + 1);
  if (!is_header_name(name) || !is_header_value(value)) return false;
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  if (equals_lower(name, "content-length")) {
    if (h.length || value.empty() || value.size() > 12) return false;
    std::size_t n = 0;
    for (const char c : value) {
      if (c < '0' || c > '9') return false;
      n = n * 10 + static_cast<std::size_t>(c - '0');
    }
    h.length = n;
  } else if (equals_lower(name, "connection")) {
    if (++h.connection_headers > 1) return false;
    h.connection = value;
  } else if (equals_lower(name, "transfer-encoding") || equals_lower(name, "expect") ||
             equals_lower(name, "content-encoding") || equals_lower(name, "range")) {
    return false;
  } else if (equals_lower(name, "content-type")) {
    if (value.size() >= 10 && equals_lower(value.substr(0, 10), "multipart/")) return false;
  }
  return true;
}

// The header lines of `whole` from `pos` (just after the request line) to the empty line
// at `header_end`. False: declined.
inline bool read_headers(std::string_view whole, std::size_t pos, std::size_t header_end,
                         plain_headers& h) noexcept {
  constexpr int max_headers = 100;
  int count = 0;
  while (pos < header_end + 2) {
    const std::size_t eol = whole.find("\r\n", pos);
    const std::string_view line = whole.substr(pos, eol - pos);
    pos = eol + 2;
    if (++count > max_headers || !read_header(line, h)) return false;
  }
  return true;
}

/// Reads `whole`, exactly one request as framed by frame_request(). Returns nothing when the
/// request is outside the narrow subset described above: the caller hands it to httplib.
inline std::optional<plain_request> parse_plain_request(std::string_view whole) noexcept {
  plain_request r;
  bool http10 = false;
  const std::size_t line_end = whole.find("\r\n");
  if (line_end == std::string_view::npos ||
      !read_request_line(whole.substr(0, line_end), r, http10) || !read_target(r))
    return std::nullopt;
  const std::size_t header_end = whole.find("\r\n\r\n");
  plain_headers h;
  if (header_end == std::string_view::npos || !read_headers(whole, line_end + 2, header_end, h))
    return std::nullopt;
  const std::size_t body_at = header_end + 4;
  if (r.method == "GET") {
    if (h.length || body_at != whole.size()) return std::nullopt;
  } else {
    if (!h.length || body_at + *h.length != whole.size()) return std::nullopt;
    r.body = whole.substr(body_at);
  }
  // cpp-httplib's rules, case and all: "close" closes; HTTP/1.0 closes unless "Keep-Alive".
  r.close_header = h.connection == "close";
  r.close = r.close_header || (http10 && h.connection != "Keep-Alive");
  return r;
}

/// The reason phrase cpp-httplib 0.11.4 writes for a status (its own table, "Switching
/// Protocol" and all; "Internal Server Error" for any status it does not know).
/// tests/wire_test.cpp compares every status from 100 to 599 with httplib's.
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

/// Appends a response with cpp-httplib's headers in cpp-httplib's order. `length` is the
/// Content-Length to announce (a truncation fault promises more than it sends).
inline void write_plain_response(std::string& out, int status, std::string_view content_type,
                                 std::string_view body, std::size_t length, bool close_header,
                                 std::string_view keep_alive) {
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
  if (close_header) out += "Connection: close\r\n";
  out += "Content-Length: ";
  append_number(length);
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\n";
  if (!close_header) {
    out += "Keep-Alive: ";
    out += keep_alive;
    out += "\r\n";
  }
  out += "\r\n";
  out += body;
}

}  // namespace detail
}  // namespace mock_wechat
