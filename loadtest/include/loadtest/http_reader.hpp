// loadtest/http_reader.hpp: an incremental HTTP/1.1 response reader for the load
// generator's keep-alive connections. Bytes go in as they arrive; a response comes out
// whole (status, the headers the generator needs, the body). It frames by Content-Length
// (any letter case), chunked transfer coding or, with neither, the connection's end; it
// never throws and bounds what it keeps (head 64 KiB, body 16 MiB by default): a target
// that sends more is an error, not an out-of-memory. Its lexical pieces (names, OWS, comma
// lists, lengths) are the mock's request reader's (mock_wechat/detail/http_text.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <mock_wechat/detail/http_text.hpp>

namespace loadtest {

namespace detail {
namespace http1 = mock_wechat::detail::http1;
}  // namespace detail

struct http_response {
  int status = 0;
  bool close = false;  ///< the target said Connection: close (or spoke HTTP/1.0 without keep-alive)
  std::string body;
};

class http_reader {
public:
  enum class result { need_more, complete, error };

  explicit http_reader(std::size_t max_head = std::size_t{64} * 1024,
                       std::size_t max_body = std::size_t{16} * 1024 * 1024)
      : max_head_(max_head), max_body_(max_body) {}

  /// Starts a new response; `head_request`: the request was HEAD (no body follows).
  void reset(bool head_request = false) {
    state_ = state::head;
    buf_.clear();
    res_ = http_response{};
    head_request_ = head_request;
    remaining_ = 0;
    error_.clear();
  }

  /// Takes bytes; `used` is how many it consumed (the rest belong to the next response,
  /// which a pipelining client would feed again after reset()).
  result feed(std::string_view in, std::size_t& used) {
    used = 0;
    while (used < in.size() || state_ == state::done) {
      switch (state_) {
      case state::head: {
        const std::size_t before = buf_.size();
        const std::size_t take = std::min(in.size() - used, max_head_ + 4 - std::min(before, max_head_ + 4));
        buf_.append(in.data() + used, take);
        const auto end = buf_.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
        if (end == std::string::npos) {
          used += take;
          if (buf_.size() > max_head_) return fail("response head over " + std::to_string(max_head_) + " bytes");
          return result::need_more;
        }
        used += end + 4 - before;
        if (!parse_head(std::string_view(buf_).substr(0, end))) return result::error;
        buf_.clear();
        break;
      }
      case state::body:
        if (take_body(in, used)) state_ = state::done;
        break;
      case state::until_close: {
        const std::size_t take = in.size() - used;
        if (res_.body.size() + take > max_body_) return fail("response body over the limit");
        res_.body.append(in.data() + used, take);
        used += take;
        return result::need_more;
      }
      case state::chunk_size:
      case state::chunk_end:
      case state::trailer: {
        // One line at a time.
        const auto nl = in.find('\n', used);
        const std::size_t take = (nl == std::string_view::npos ? in.size() : nl + 1) - used;
        if (buf_.size() + take > 4096) return fail("chunk line over 4096 bytes");
        buf_.append(in.data() + used, take);
        used += take;
        if (nl == std::string_view::npos) return result::need_more;
        std::string line = buf_;
        buf_.clear();
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        if (state_ == state::chunk_end) {
          if (!line.empty()) return fail("chunk data not followed by CRLF");
          state_ = state::chunk_size;
        } else if (state_ == state::trailer) {
          if (line.empty()) state_ = state::done;
        } else {
          std::uint64_t size = 0;
          std::size_t i = 0;
          for (; i < line.size(); ++i) {
            const int d = hex(line[i]);
            if (d < 0) break;
            if (size > (max_body_ >> 4)) return fail("chunk size over the limit");
            size = size * 16 + static_cast<std::uint64_t>(d);
          }
          if (i == 0 || (i < line.size() && line[i] != ';' && line[i] != ' ' && line[i] != '\t'))
            return fail("bad chunk size line");
          if (size == 0) {
            state_ = state::trailer;
          } else {
            if (res_.body.size() + size > max_body_) return fail("response body over the limit");
            remaining_ = size;
            state_ = state::chunk_data;
          }
        }
        break;
      }
      case state::chunk_data:
        if (take_body(in, used)) state_ = state::chunk_end;
        break;
      case state::done: state_ = state::finished; return result::complete;
      case state::finished: return result::complete;
      }
    }
    return result::need_more;
  }

  /// The connection ended: completes a response framed by the connection's end.
  result end_of_stream() {
    if (state_ == state::until_close) {
      state_ = state::finished;
      res_.close = true;
      return result::complete;
    }
    return fail(state_ == state::head && buf_.empty() ? "connection closed before an answer"
                                                      : "connection closed in the middle of an answer");
  }

  http_response& response() noexcept { return res_; }
  const std::string& error() const noexcept { return error_; }
  /// Nothing of a response has arrived yet.
  bool idle() const noexcept { return state_ == state::head && buf_.empty(); }

private:
  enum class state { head, body, until_close, chunk_size, chunk_data, chunk_end, trailer, done, finished };

  static int hex(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // Takes up to remaining_ body bytes of `in` from `used`; true when none remain.
  bool take_body(std::string_view in, std::size_t& used) {
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - used));
    res_.body.append(in.data() + used, take);
    used += take;
    remaining_ -= take;
    return remaining_ == 0;
  }

  result fail(std::string what) {
    error_ = std::move(what);
    state_ = state::finished;
    return result::error;
  }

  bool parse_head(std::string_view head) {
    const auto eol = head.find("\r\n");
    const std::string_view status_line = head.substr(0, eol);
    // "HTTP/1.1 200 OK"
    if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" || status_line[8] != ' ') {
      fail("not an HTTP response");
      return false;
    }
    const bool http10 = status_line.substr(5, 3) == "1.0";
    int status = 0;
    for (std::size_t i = 9; i < 12; ++i) {
      if (status_line[i] < '0' || status_line[i] > '9') {
        fail("bad status line");
        return false;
      }
      status = status * 10 + (status_line[i] - '0');
    }
    res_.status = status;
    bool have_length = false, chunked = false, keep_alive = false;
    std::uint64_t length = 0;
    std::size_t at = eol == std::string_view::npos ? head.size() : eol + 2;
    while (at < head.size()) {
      auto next = head.find("\r\n", at);
      if (next == std::string_view::npos) next = head.size();
      const std::string_view line = head.substr(at, next - at);
      at = next + 2;
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const auto name = line.substr(0, colon);
      const auto value = detail::http1::trim(line.substr(colon + 1));
      if (detail::http1::equals_lower(name, "content-length")) {
        const std::int64_t n = detail::http1::parse_length(value);
        if (n < 0) {  // not digits, or over 2^40
          fail("bad or oversized Content-Length");
          return false;
        }
        if (have_length && static_cast<std::uint64_t>(n) != length) {
          fail("two different Content-Length headers");
          return false;
        }
        have_length = true;
        length = static_cast<std::uint64_t>(n);
      } else if (detail::http1::equals_lower(name, "transfer-encoding")) {
        chunked = detail::http1::has_token(value, "chunked");
      } else if (detail::http1::equals_lower(name, "connection")) {
        if (detail::http1::has_token(value, "close")) res_.close = true;
        if (detail::http1::has_token(value, "keep-alive")) keep_alive = true;
      }
    }
    if (http10 && !keep_alive) res_.close = true;
    if (length > max_body_) {
      fail("response body over the limit");
      return false;
    }
    if (status >= 100 && status < 200 && status != 101) {
      // An interim answer (100 Continue, 103 Early Hints): the final one follows.
      res_ = http_response{};
      state_ = state::head;
      return true;
    }
    if (head_request_ || status == 204 || status == 304 || status == 101) {
      state_ = state::done;
    } else if (chunked) {
      state_ = state::chunk_size;
    } else if (have_length) {
      remaining_ = length;
      res_.body.reserve(static_cast<std::size_t>(length));
      state_ = length == 0 ? state::done : state::body;
    } else {
      state_ = state::until_close;
    }
    return true;
  }

  std::size_t max_head_, max_body_;
  state state_ = state::head;
  std::string buf_;
  http_response res_;
  bool head_request_ = false;
  std::uint64_t remaining_ = 0;
  std::string error_;
};

}  // namespace loadtest
