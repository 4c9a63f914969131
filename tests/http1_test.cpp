// The event engine's HTTP/1.1 reader (mock_wechat/detail/http1.hpp), rule by rule: what it
// reads, what it refuses and with which status, and that how the bytes arrive changes
// nothing (every split of a request reads the same).
#include <catch2/catch.hpp>
#include <mock_wechat/detail/http1.hpp>

#include <string>
#include <vector>

using mock_wechat::http_header;
using mock_wechat::detail::http1_limits;
using mock_wechat::detail::http1_request;
using mock_wechat::detail::parse_http1;

namespace {

struct reader {
  http_header headers[mock_wechat::detail::http1_max_fields];
  std::string chunked;
  http1_limits lim{4096, 1000};
  http1_request read(std::string_view bytes) { return parse_http1(bytes, lim, headers, chunked); }
};

int refusal(const std::string& bytes) {
  reader r;
  const auto q = r.read(bytes);
  INFO(bytes);
  REQUIRE(q.kind == http1_request::refused);
  CHECK(q.close);
  return q.status;
}

}  // namespace

TEST_CASE("a plain GET and a POST are read whole, with their parts", "[http1]") {
  reader r;
  const std::string get =
      "GET /sns/jscode2session?appid=wx1&js_code=c HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
  auto q = r.read(get);
  REQUIRE(q.kind == http1_request::complete);
  CHECK(q.method == "GET");
  CHECK(q.target == "/sns/jscode2session?appid=wx1&js_code=c");
  CHECK(q.size == get.size());
  CHECK(q.header_count == 2);
  CHECK(r.headers[1].name == "Accept");
  CHECK(r.headers[1].value == "*/*");
  CHECK(q.body.empty());
  CHECK_FALSE(q.close);

  const std::string post = "POST /cgi-bin/stable_token HTTP/1.1\r\ncontent-length:  3 \r\n\r\nabcGET";
  q = r.read(post);
  REQUIRE(q.kind == http1_request::complete);
  CHECK(q.body == "abc");
  CHECK(q.size == post.size() - 3);  // the next request's bytes are left alone
}

TEST_CASE("a request with neither Content-Length nor Transfer-Encoding has an empty body", "[http1]") {
  reader r;
  for (const char* m : {"POST", "PUT", "DELETE", "GET"}) {
    const std::string req = std::string(m) + " /__mock/reset HTTP/1.1\r\nHost: x\r\n\r\n";
    const auto q = r.read(req);
    INFO(m);
    REQUIRE(q.kind == http1_request::complete);
    CHECK(q.body.empty());
    CHECK(q.size == req.size());
  }
}

TEST_CASE("the connection closes when asked, and after HTTP/1.0 unless kept alive", "[http1]") {
  reader r;
  CHECK(r.read("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").close);
  CHECK(r.read("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").close);
  CHECK(r.read("GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n").close);
  CHECK_FALSE(r.read("GET / HTTP/1.1\r\n\r\n").close);
  CHECK(r.read("GET / HTTP/1.0\r\n\r\n").close);
  CHECK_FALSE(r.read("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").close);
  CHECK_FALSE(r.read("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").close);
  const auto q = r.read("GET / HTTP/1.0\r\n\r\n");
  CHECK(q.http10);
  CHECK_FALSE(q.close_asked);
}

TEST_CASE("ambiguous framing is refused with 400 and closes (no request smuggling)", "[http1]") {
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n") ==
        400);
  CHECK(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n") ==
        400);
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 400);
  CHECK(refusal("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n") == 501);
  CHECK(refusal("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == 400);
  // Two equal lengths say one thing: read.
  reader r;
  const auto q = r.read("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx");
  REQUIRE(q.kind == http1_request::complete);
  CHECK(q.body == "x");
}

TEST_CASE("malformed request lines and header lines are refused with 400", "[http1]") {
  for (const char* bad : {
           "GET  / HTTP/1.1\r\n\r\n",               // two spaces
           "GET /a  HTTP/1.1\r\n\r\n",              // two spaces after the target
           "GET a HTTP/1.1\r\n\r\n",                // not origin-form
           "GET http://x/a HTTP/1.1\r\n\r\n",       // absolute-form
           "GET * HTTP/1.1\r\n\r\n",                // asterisk-form
           "GET /a\x01 HTTP/1.1\r\n\r\n",           // a control byte in the target
           "G(T /a HTTP/1.1\r\n\r\n",               // not a token
           "GET /a HTTP/1.1 \r\n\r\n",              // a space after the version
           "GET /a HTTQ/1.1\r\n\r\n",               // not a version
           "GET /a HTTP/1.1\r\n folded: x\r\n\r\n",  // obs-fold
           "GET /a HTTP/1.1\r\nX: 1\r\n\tfolded\r\n\r\n",
           "GET /a HTTP/1.1\r\nNo colon\r\n\r\n",
           "GET /a HTTP/1.1\r\n: empty name\r\n\r\n",
           "GET /a HTTP/1.1\r\nBad name: x\r\n\r\n",
           "GET /a HTTP/1.1\r\nName : x\r\n\r\n",   // space before the colon
           "GET /a HTTP/1.1\r\nX: a\nb\r\n\r\n",   // a bare LF
           "GET /a HTTP/1.1\r\nX: a\rb\r\n\r\n",   // a bare CR
           "GET /a HTTP/1.1\nHost: x\r\n\r\n",
       }) {
    INFO(bad);
    CHECK(refusal(bad) == 400);
  }
  CHECK(refusal("GET /a HTTP/2.0\r\n\r\n") == 505);
  CHECK(refusal("GET /a HTTP/1.1\r\nExpect: something\r\n\r\n") == 417);
}

TEST_CASE("a bad request line is refused as soon as it is whole, before the head ends",
          "[http1]") {
  reader r;
  const auto q = r.read("GET http://x/ HTTP/1.1\r\nHost: x\r\n");
  REQUIRE(q.kind == http1_request::refused);
  CHECK(q.status == 400);
}

TEST_CASE("limits: 431 for a head past max_header or 100 fields, 414, 413 before the body",
          "[http1]") {
  reader r;
  // A head with no end is cut at the cap, not read for ever.
  auto q = r.read("GET / HTTP/1.1\r\nX: " + std::string(5000, 'a'));
  REQUIRE(q.kind == http1_request::refused);
  CHECK(q.status == 431);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i)
    many += "X" + std::to_string(i) + ": 1\r\n";
  CHECK(refusal(many + "\r\n") == 431);
  r.lim.max_header = 64 * 1024;
  CHECK(r.read("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n").status == 414);
  CHECK(r.read("GET /" + std::string(9000, 'a')).status == 414);  // before the line ends
  // The announced length is checked before a byte of the body comes.
  q = r.read("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n");
  REQUIRE(q.kind == http1_request::refused);
  CHECK(q.status == 413);
  q = r.read("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
  CHECK(q.kind == http1_request::need_more);
  CHECK(q.head_done);
}

TEST_CASE("chunked bodies are decoded, extensions and trailers dropped, the total capped",
          "[http1]") {
  reader r;
  const std::string req =
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\nNEXT";
  auto q = r.read(req);
  REQUIRE(q.kind == http1_request::complete);
  CHECK(q.body == "abc0123456789");
  CHECK(q.size == req.size() - 4);
  CHECK(refusal("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n") == 400);
  CHECK(refusal("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n") == 400);
  CHECK(refusal("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3E9\r\n") == 413);
  std::string many = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 11; ++i)
    many += "64\r\n" + std::string(100, 'x') + "\r\n";  // 1,100 bytes in all, over 1,000
  CHECK(refusal(many) == 413);
  CHECK(refusal("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(2000, '1')) ==
        400);
}

TEST_CASE("Expect: 100-continue is reported once the head is whole and the body is not",
          "[http1]") {
  reader r;
  auto q = r.read("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  CHECK(q.kind == http1_request::need_more);
  CHECK(q.expect_continue);
  q = r.read("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\na");
  CHECK(q.kind == http1_request::need_more);
  CHECK_FALSE(q.expect_continue);  // the client did not wait
  q = r.read("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  CHECK_FALSE(q.expect_continue);  // HTTP/1.0 knows no 100
}

TEST_CASE("empty lines before a request are skipped", "[http1]") {
  reader r;
  const auto q = r.read("\r\n\r\nGET /a HTTP/1.1\r\n\r\n");
  REQUIRE(q.kind == http1_request::complete);
  CHECK(q.target == "/a");
  CHECK(q.size == 23);
}

TEST_CASE("how the bytes arrive changes nothing: every prefix waits, the whole reads the same",
          "[http1]") {
  const std::vector<std::string> requests = {
      "GET /sns/jscode2session?appid=wx1 HTTP/1.1\r\nHost: x\r\n\r\n",
      "POST /cgi-bin/stable_token HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"a\":",
      "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
      "\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
  };
  for (const auto& req : requests) {
    reader r;
    const auto whole = r.read(req);
    REQUIRE(whole.kind == http1_request::complete);
    const std::string body(whole.body);
    std::size_t scanned = 0;
    for (std::size_t k = 0; k < req.size(); ++k) {
      INFO(req << " cut at " << k);
      // Read afresh, and resumed from the previous read's hint as the engine does.
      CHECK(r.read(std::string_view(req).substr(0, k)).kind == http1_request::need_more);
      const auto part = parse_http1(std::string_view(req).substr(0, k), r.lim, r.headers,
                                    r.chunked, scanned);
      REQUIRE(part.kind == http1_request::need_more);
      scanned = part.scanned;
    }
    const auto last = parse_http1(req, r.lim, r.headers, r.chunked, scanned);
    REQUIRE(last.kind == http1_request::complete);
    CHECK(std::string(last.body) == body);
    CHECK(last.size == req.size());
  }
}

TEST_CASE("after a review: Connection headers are read together, chunk sizes and trailers strictly",
          "[http1]") {
  reader r;
  // "close" in any Connection header closes, whatever another one says.
  CHECK(r.read("GET / HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n").close);
  CHECK_FALSE(r.read("GET / HTTP/1.0\r\nConnection: x\r\nConnection: keep-alive\r\n\r\n").close);
  // Nothing but blanks and an extension after a chunk size.
  CHECK(refusal("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 garbage\r\nabcde\r\n0\r\n\r\n") ==
        400);
  const auto q = r.read("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 ;e=1\r\nabcde\r\n0\r\n\r\n");
  REQUIRE(q.kind == http1_request::complete);
  CHECK(q.body == "abcde");
  // A trailer's value holds no control byte.
  CHECK(refusal("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\x01z\r\n\r\n") == 400);
}
