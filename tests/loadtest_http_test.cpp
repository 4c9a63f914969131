// loadtest/http_reader.hpp: the load generator's response reader, fed whole and byte by
// byte: Content-Length in any letter case, chunked coding, framing by the connection's end,
// bodiless answers, and the bounds and malformed answers it must refuse without throwing.
#include <loadtest/http_reader.hpp>

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

using loadtest::http_reader;
using result = http_reader::result;

namespace {

struct outcome {
  result r = result::need_more;
  std::size_t used = 0;
};

// Feeds `in` whole, or one byte per call; reports the final result and the bytes used.
outcome feed(http_reader& h, const std::string& in, bool bytewise) {
  outcome o;
  if (!bytewise) {
    o.r = h.feed(in, o.used);
    return o;
  }
  for (std::size_t i = 0; i < in.size(); ++i) {
    std::size_t used = 0;
    o.r = h.feed(std::string_view(in).substr(i, 1), used);
    o.used += used;
    if (o.r != result::need_more) return o;
  }
  return o;
}

}  // namespace

TEST_CASE("a Content-Length answer, whole or a byte at a time, any letter case", "[loadtest][http]") {
  const bool bytewise = GENERATE(false, true);
  const std::string name = GENERATE(std::string("Content-Length"), std::string("content-length"),
                                    std::string("CONTENT-LENGTH"));
  INFO("bytewise " << bytewise << ", header " << name);
  http_reader h;
  h.reset();
  const std::string answer = "HTTP/1.1 201 Created\r\n" + name + ":  5 \r\nX: y\r\n\r\nhello";
  const auto o = feed(h, answer + "HTTP/1.1 200", bytewise);  // the next answer's bytes stay unused
  REQUIRE(o.r == result::complete);
  CHECK(o.used == answer.size());
  CHECK(h.response().status == 201);
  CHECK(h.response().body == "hello");
  CHECK_FALSE(h.response().close);
}

TEST_CASE("chunked answers, with extensions and trailers, split anywhere", "[loadtest][http]") {
  const bool bytewise = GENERATE(false, true);
  http_reader h;
  h.reset();
  const std::string answer =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
      "4;ext=1\r\n{\"a\"\r\nA\r\n:\"012345\"}\r\n0\r\nTrailer: x\r\n\r\n";
  const auto o = feed(h, answer, bytewise);
  REQUIRE(o.r == result::complete);
  CHECK(o.used == answer.size());
  CHECK(h.response().body == "{\"a\":\"012345\"}");
}

TEST_CASE("an answer framed by the connection's end, and HTTP/1.0", "[loadtest][http]") {
  http_reader h;
  h.reset();
  std::size_t used = 0;
  CHECK(h.feed("HTTP/1.0 200 OK\r\n\r\npart one, ", used) == result::need_more);
  CHECK(h.feed("part two", used) == result::need_more);
  REQUIRE(h.end_of_stream() == result::complete);
  CHECK(h.response().body == "part one, part two");
  CHECK(h.response().close);

  h.reset();
  CHECK(h.feed("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", used) ==
        result::complete);
  CHECK_FALSE(h.response().close);
  h.reset();
  CHECK(h.feed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", used) ==
        result::complete);
  CHECK(h.response().close);
}

TEST_CASE("answers without a body: HEAD, 204, 304", "[loadtest][http]") {
  http_reader h;
  std::size_t used = 0;
  h.reset(/*head_request=*/true);
  CHECK(h.feed("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", used) == result::complete);
  CHECK(h.response().body.empty());
  for (const char* status : {"204 No Content", "304 Not Modified"}) {
    h.reset();
    CHECK(h.feed(std::string("HTTP/1.1 ") + status + "\r\n\r\n", used) == result::complete);
    CHECK(h.response().body.empty());
  }
}

TEST_CASE("malformed and oversized answers are errors that say what, never throws",
          "[loadtest][http]") {
  struct bad_case {
    std::string in;
    std::string error;
  };
  const std::vector<bad_case> cases = {
      {"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP response"},
      {"HTTP/1.1 2x0 OK\r\n\r\n", "bad status line"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", "bad or oversized Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
       "bad or oversized Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
       "two different Content-Length headers"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size line"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
       "chunk data not followed by CRLF"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n",
       "chunk size over the limit"},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    http_reader h;
    h.reset();
    std::size_t used = 0;
    CHECK(h.feed(c.in, used) == result::error);
    CHECK(h.error() == c.error);
  }
  // The head and the body are bounded.
  http_reader small(64, 10);
  small.reset();
  std::size_t used = 0;
  CHECK(small.feed("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a'), used) == result::error);
  CHECK(small.error() == "response head over 64 bytes");
  small.reset();
  CHECK(small.feed("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", used) == result::error);
  CHECK(small.error() == "response body over the limit");
  small.reset();
  CHECK(small.feed("HTTP/1.1 200 OK\r\n\r\n0123456789", used) == result::need_more);
  CHECK(small.feed("x", used) == result::error);
  // A connection that ends early.
  http_reader h;
  h.reset();
  CHECK(h.idle());
  CHECK(h.end_of_stream() == result::error);
  CHECK(h.error() == "connection closed before an answer");
  h.reset();
  CHECK(h.feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", used) == result::need_more);
  CHECK_FALSE(h.idle());
  CHECK(h.end_of_stream() == result::error);
  CHECK(h.error() == "connection closed in the middle of an answer");
}

TEST_CASE("one reader, many answers in a row (keep-alive)", "[loadtest][http]") {
  http_reader h;
  for (int i = 0; i < 100; ++i) {
    h.reset();
    const std::string body = std::string(static_cast<std::size_t>(i), 'x');
    char size[16];
    std::snprintf(size, sizeof size, "%x", i);
    const std::string answer =
        i % 2 ? "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body
              : "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                    (body.empty() ? std::string() : std::string(size) + "\r\n" + body + "\r\n") +
                    "0\r\n\r\n";
    std::size_t used = 0;
    REQUIRE(h.feed(answer, used) == result::complete);
    CHECK(used == answer.size());
    CHECK(h.response().body == body);
  }
}

TEST_CASE("interim 1xx answers are skipped: the final answer is the one read", "[loadtest][http]") {
  const bool bytewise = GENERATE(false, true);
  http_reader h;
  h.reset();
  const std::string answer =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const auto o = feed(h, answer, bytewise);
  REQUIRE(o.r == result::complete);
  CHECK(o.used == answer.size());
  CHECK(h.response().status == 200);
  CHECK(h.response().body == "ok");
}
