// mock_wechat/detail/http1.hpp - the event engine's HTTP/1.1 request reader (RFC 9112),
// over the bytes a connection has received so far: a request is either not whole yet,
// whole (its parts as views into the bytes), or refused with the status to answer before
// the connection closes.
//
// Strict where leniency lets one request be read two ways (request smuggling, issue 19
// finding 6): two different Content-Lengths, a Content-Length beside Transfer-Encoding, a
// malformed length, an obs-folded header line, a bare LF or any control byte in the head,
// an absolute-form or malformed request line are all 400 and close. Lenient where RFC 9112
// asks: empty lines before a request are skipped; a request with neither Content-Length nor
// Transfer-Encoding has an empty body, whatever its method (so `curl -XPOST url` without
// -d is answered at once, not after a timeout).
//
// Limits are checked as the bytes arrive: a head past max_header (or with more than 100
// fields) is 431 before its end is seen, a body announced or de-chunked past max_body 413
// before it is read. tests/http1_test.cpp has a case per rule; fuzz/fuzz_mock.cpp checks
// that any split of the bytes reads the same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mock_wechat/core.hpp"
#include "mock_wechat/detail/http_text.hpp"

namespace mock_wechat::detail {

struct http1_limits {
  std::size_t max_header = std::size_t{64} * 1024;  ///< request line + fields (+ trailers)
  std::size_t max_body = std::size_t{1} << 20;      ///< the body, de-chunked
};

inline constexpr std::size_t http1_max_fields = 100;  ///< header fields per request
inline constexpr std::size_t http1_max_target = 8192;  ///< longer: 414

/// What the bytes so far hold.
struct http1_request {
  enum kind_t {
    need_more,  ///< not whole yet
    complete,   ///< a whole request: the fields below
    refused,    ///< cannot be read: answer `status`, then close
  } kind = need_more;
  int status = 0;               ///< refused: 400, 413, 414, 417, 431, 501 or 505
  std::size_t size = 0;         ///< complete: bytes taken from the buffer
  std::size_t scanned = 0;      ///< need_more: where the next search for the head's end may start
  bool head_done = false;       ///< need_more: the head is whole, the body is to come
  bool expect_continue = false;  ///< head_done: the client waits for "100 Continue"

  std::string_view method, target;
  bool http10 = false;
  bool close = false;          ///< the connection closes after the answer
  bool close_asked = false;    ///< the client sent "Connection: close"
  std::size_t header_count = 0;
  std::string_view body;  ///< into the buffer, or into the caller's chunked-body string
};

namespace http1 {

// The request line: sets method, target and http10, or returns the refusal status.
inline int read_request_line(std::string_view line, http1_request& r) noexcept {
  std::size_t i = 0;
  while (i < line.size() && is_tchar(line[i]))
    ++i;
  if (i == 0 || i >= line.size() || line[i] != ' ') return 400;
  r.method = line.substr(0, i);
  const std::size_t t0 = i + 1;
  const std::size_t sp = line.find(' ', t0);
  if (sp == std::string_view::npos) return 400;
  r.target = line.substr(t0, sp - t0);
  if (r.target.empty() || r.target[0] != '/') return 400;  // origin-form only
  for (const char c : r.target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return 400;
  }
  if (r.target.size() >= http1_max_target) return 414;
  const std::string_view version = line.substr(sp + 1);
  if (version == "HTTP/1.1") return 0;
  if (version == "HTTP/1.0") {
    r.http10 = true;
    return 0;
  }
  // Another HTTP version is 505; anything else is not a request line.
  if (version.size() == 8 && version.compare(0, 5, "HTTP/") == 0 && version[5] >= '0' &&
      version[5] <= '9' && version[6] == '.' && version[7] >= '0' && version[7] <= '9')
    return 505;
  return 400;
}

// The end of a chunked body starting at `from`: decodes it into `body`. Returns the end
// offset, 0 when more is needed, or -status when refused.
inline std::int64_t read_chunked(std::string_view buf, std::size_t from,
                                 const http1_limits& lim, std::size_t head_size,
                                 std::string& body) {
  body.clear();
  std::size_t p = from;
  for (;;) {
    const std::size_t eol = buf.find("\r\n", p);
    if (eol == std::string_view::npos) return buf.size() - p > 1024 ? -400 : 0;
    if (eol - p > 1024) return -400;  // a chunk-size line has no business being that long
    std::size_t i = p, size = 0;
    for (; i < eol; ++i) {
      const char ch = buf[i];
      const char lc = static_cast<char>(ch | 0x20);
      const int d = ch >= '0' && ch <= '9' ? ch - '0' : lc >= 'a' && lc <= 'f' ? lc - 'a' + 10 : -1;
      if (d < 0) break;
      if (i - p >= 16) return -400;
      size = size * 16 + static_cast<std::size_t>(d);
    }
    if (i == p) return -400;
    std::size_t after = i;  // chunk-size [BWS ";" chunk-ext]: nothing else after the digits
    while (after < eol && (buf[after] == ' ' || buf[after] == '\t'))
      ++after;
    if (after < eol && buf[after] != ';') return -400;
    for (std::size_t k = i; k < eol; ++k) {  // extensions: ignored, but no control bytes
      const auto u = static_cast<unsigned char>(buf[k]);
      if ((u < 0x20 && buf[k] != '\t') || u == 0x7f) return -400;
    }
    if (size > lim.max_body || body.size() + size > lim.max_body) return -413;
    if (size == 0) {  // trailer fields, then an empty line; counted with the head, dropped
      std::size_t t = eol + 2;
      for (;;) {
        const std::size_t e = buf.find("\r\n", t);
        if (e == std::string_view::npos)
          return head_size + (buf.size() - eol) > lim.max_header ? -431 : 0;
        if (head_size + (e - eol) > lim.max_header) return -431;
        if (e == t) return static_cast<std::int64_t>(e + 2);
        const std::string_view line = buf.substr(t, e - t);
        const std::size_t colon = line.find(':');
        if (colon == 0 || colon == std::string_view::npos) return -400;
        for (const char c : line.substr(0, colon))
          if (!is_tchar(c)) return -400;
        for (const char c : line.substr(colon + 1)) {
          const auto u = static_cast<unsigned char>(c);
          if ((u < 0x20 && c != '\t') || u == 0x7f) return -400;
        }
        t = e + 2;
      }
    }
    const std::size_t data = eol + 2;
    if (buf.size() < data + size + 2) return 0;
    if (buf.compare(data + size, 2, "\r\n") != 0) return -400;
    body.append(buf.data() + data, size);
    p = data + size + 2;
  }
}

}  // namespace http1

/// Reads the first request in `buf`. `headers` has room for http1_max_fields; the body of
/// a chunked request is decoded into `chunked_body` (which r.body then views). `scan_from`
/// is a previous need_more's `scanned`, so that a head trickling in is not searched again
/// from its start at every read.
inline http1_request parse_http1(std::string_view buf, const http1_limits& lim,
                                 http_header* headers, std::string& chunked_body,
                                 std::size_t scan_from = 0) {
  using namespace http1;
  http1_request r;
  const auto refuse = [&r](int status) {
    r.kind = http1_request::refused;
    r.status = status;
    r.close = true;
    return r;
  };
  std::size_t start = 0;  // empty lines before a request are skipped (RFC 9112 2.2)
  while (start + 1 < buf.size() && buf[start] == '\r' && buf[start + 1] == '\n')
    start += 2;
  const std::size_t from = scan_from > start + 3 ? scan_from - 3 : start;
  const std::size_t end = buf.find("\r\n\r\n", from);
  if (end == std::string_view::npos) {
    // Not whole yet; but a request line already known bad, a target past its cap or a
    // head past max_header is refused now, not once its end is seen.
    const std::size_t line_end = buf.find("\r\n", start);
    if (line_end == std::string_view::npos) {
      if (buf.size() - start >= http1_max_target + 32)
        return refuse(buf.find(' ', start) < start + 32 ? 414 : 400);
    } else if (http1_request line; read_request_line(buf.substr(start, line_end - start), line) != 0) {
      return refuse(read_request_line(buf.substr(start, line_end - start), line));
    }
    if (buf.size() > lim.max_header) return refuse(431);
    r.scanned = buf.size();
    return r;
  }
  if (end + 4 > lim.max_header) return refuse(431);
  const std::size_t head_size = end + 4;
  const std::string_view head = buf.substr(start, end + 2 - start);  // lines with their CRLF
  // No bare CR or LF, no NUL, anywhere in the head: each line ends in CRLF.
  const std::size_t line_end = head.find("\r\n");
  if (const int s = read_request_line(head.substr(0, line_end), r); s != 0) return refuse(s);
  bool has_length = false, chunked = false, has_te = false, expect = false;
  bool close_token = false, keep_alive_token = false;  // over every Connection header
  std::int64_t length = 0;
  std::size_t pos = line_end + 2;
  while (pos < head.size()) {
    const std::size_t eol = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (r.header_count == http1_max_fields) return refuse(431);
    if (line.empty() || line[0] == ' ' || line[0] == '\t') return refuse(400);  // obs-fold
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return refuse(400);
    const std::string_view name = line.substr(0, colon);
    for (const char c : name)
      if (!is_tchar(c)) return refuse(400);  // also: no space before the colon
    const std::string_view value = trim(line.substr(colon + 1));
    for (const char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) return refuse(400);
    }
    headers[r.header_count++] = http_header{name, value};
    if (equals_lower(name, "content-length")) {
      const std::int64_t n = parse_length(value);
      if (n < 0 || (has_length && n != length)) return refuse(400);
      has_length = true;
      length = n;
    } else if (equals_lower(name, "transfer-encoding")) {
      if (has_te || !equals_lower(value, "chunked")) {
        // Only one coding, chunked, once: anything else the mock cannot read.
        if (has_te || value.empty()) return refuse(400);
        return refuse(has_token(value, "chunked") ? 400 : 501);
      }
      has_te = chunked = true;
    } else if (equals_lower(name, "connection")) {
      close_token = close_token || has_token(value, "close");
      keep_alive_token = keep_alive_token || has_token(value, "keep-alive");
    } else if (equals_lower(name, "expect")) {
      if (!equals_lower(value, "100-continue")) return refuse(417);
      expect = !r.http10;
    }
  }
  if (has_length && has_te) return refuse(400);
  if (chunked && r.http10) return refuse(400);
  r.close_asked = close_token;
  r.close = close_token || (r.http10 && !keep_alive_token);
  const std::size_t body_at = end + 4;
  if (chunked) {
    const std::int64_t e = read_chunked(buf, body_at, lim, head_size, chunked_body);
    if (e < 0) return refuse(static_cast<int>(-e));
    if (e == 0) {
      r.head_done = true;
      r.expect_continue = expect && buf.size() == body_at;
      r.kind = http1_request::need_more;
      return r;
    }
    r.body = chunked_body;
    r.size = static_cast<std::size_t>(e);
  } else {
    if (static_cast<std::uint64_t>(length) > lim.max_body) return refuse(413);
    const auto n = static_cast<std::size_t>(length);
    if (buf.size() - body_at < n) {
      r.head_done = true;
      r.expect_continue = expect && buf.size() == body_at && n > 0;
      r.kind = http1_request::need_more;
      return r;
    }
    r.body = buf.substr(body_at, n);
    r.size = body_at + n;
  }
  r.kind = http1_request::complete;
  return r;
}

}  // namespace mock_wechat::detail
