// The mock's own HTTP/1.1 reader and writer (detail/wire.hpp) against cpp-httplib 0.11.4, which
// answers everything the fast path declines:
//  - every request the reader accepts, handwritten or mutated at random, httplib reads the
//    same way (method, path, target, body, whether the connection closes);
//  - the writer's reason phrases are httplib's for every status from 100 to 599;
//  - over real sockets, a mock with the fast path and one without answer the same requests
//    (every endpoint, errors, every fault kind, Connection: close, HTTP/1.0, pipelining)
//    with the same bytes, and leave the connection open or closed alike.
#include "httplib_reference.hpp"
#include "mock_support.hpp"

#include <mock_wechat/detail/wire.hpp>

#include <random>

using namespace mocktest;
using httplib_reference::reference_server;
using mock_wechat::detail::frame_request;
using mock_wechat::detail::parse_plain_request;
using mock_wechat::detail::request_frame;

namespace {

const std::string api_get =
    "GET /sns/jscode2session?appid=wx1&secret=s&js_code=c&grant_type=authorization_code "
    "HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n";
const std::string api_post =
    "POST /cgi-bin/stable_token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
    "application/json\r\nContent-Length: 23\r\n\r\n{\"grant_type\":\"x\",\"a\":1}";

// A request as a JSON string literal, for messages (invalid UTF-8 replaced).
std::string printable(const std::string& bytes) {
  return nlohmann::json(bytes).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Checks one request both ways. Returns whether the fast path accepted it.
bool compare_reading(reference_server& ref, const std::string& bytes) {
  const auto frame = frame_request(bytes, 64 * 1024, 1 << 20);
  if (frame.kind != request_frame::ready) return false;
  const std::string whole = bytes.substr(0, frame.size);
  const auto fast = parse_plain_request(whole);
  if (!fast) return false;
  const auto slow = ref.read(whole);
  INFO("request: " << printable(whole));
  REQUIRE(slow.handled);
  CHECK(slow.method == fast->method);
  CHECK(slow.path == fast->path);
  CHECK(slow.target == fast->target);
  CHECK(slow.body == fast->body);
  CHECK(slow.closed == fast->close);
  CHECK(slow.consumed == whole.size());
  // And the writer: the same response bytes.
  std::string written;
  mock_wechat::detail::write_plain_response(written, 200, "text/plain", "{}", 2,
                                            fast->close_header, "timeout=5, max=100000");
  CHECK(written == slow.out);
  return true;
}

}  // namespace

TEST_CASE("the fast reader reads what httplib reads, or declines", "[wire]") {
  reference_server ref;
  const std::vector<std::pair<std::string, bool>> cases = {
      {api_get, true},
      {api_post, true},
      {"GET / HTTP/1.0\r\n\r\n", true},
      {"GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},  // httplib: closes
      {"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n", true},
      {"GET /a HTTP/1.1\r\nConnection: Close\r\n\r\n", true},  // httplib: stays open
      {"GET /a HTTP/1.1\r\nconnection:close\r\n\r\n", true},
      {"GET /a?b=%20c&d=+&e=/ HTTP/1.1\r\nX:\t y \t\r\n\r\n", true},
      {"GET /a?b#frag HTTP/1.1\r\n\r\n", false},
      {"GET /a?b?c HTTP/1.1\r\n\r\n", false},
      {"POST /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n", true},
      {"POST /a HTTP/1.1\r\ncontent-length:   3  \r\n\r\nabc", true},
      // declined: httplib's business
      {"HEAD /a HTTP/1.1\r\n\r\n", false},
      {"PUT /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", false},
      {"GET /a%2Fb HTTP/1.1\r\n\r\n", false},
      {"GET /a+b HTTP/1.1\r\n\r\n", false},
      {"GET a HTTP/1.1\r\n\r\n", false},
      {"GET /a HTTP/2.0\r\n\r\n", false},
      {"GET /a  HTTP/1.1\r\n\r\n", false},
      {"GET /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", false},
      {"POST /a HTTP/1.1\r\n\r\n", false},
      {"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", false},
      {"POST /a HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", false},
      {"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", false},
      {"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", false},
      {"POST /a HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx", false},
      {"POST /a HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: "
       "1\r\n\r\nx",
       false},
      {"GET /a HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n", false},
      {"GET /a HTTP/1.1\r\nNo colon\r\n\r\n", false},
      {"GET /a HTTP/1.1\r\n folded: x\r\n\r\n", false},
      {"GET /a HTTP/1.1\r\nBad name: x\r\n\r\n", false},
      {"GET /a HTTP/1.1\r\nX: a\nb\r\n\r\n", false},
      {"GET /a HTTP/1.1\r\nConnection: close\r\nConnection: close\r\n\r\n", false},
      {"GET /a\x01 HTTP/1.1\r\n\r\n", false},
      {"GET /a?\xff HTTP/1.1\r\n\r\n", false},
  };
  for (const auto& [bytes, accepted] : cases) {
    INFO("request: " << printable(bytes));
    CHECK(compare_reading(ref, bytes) == accepted);
  }
}

TEST_CASE("mutated requests: whatever the fast reader accepts, httplib reads alike",
          "[wire]") {
  reference_server ref;
  const std::vector<std::string> seeds = {
      api_get, api_post, "GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
      "POST /wxa/getpaidunionid?access_token=T&openid=O HTTP/1.1\r\nConnection: "
      "close\r\nContent-Length: 2\r\n\r\n{}"};
  const std::string alphabet = std::string(" :\r\n\t%?#/aZ0-=&+.~\"()") + '\x7f' + '\x80' +
                               std::string(1, '\0');
  std::mt19937 rng(20261124);
  int accepted = 0, total = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 5) {
      case 0: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      case 1: s.erase(at, 1); break;
      case 2: s[at] = alphabet[rng() % alphabet.size()]; break;
      case 3: s[at] = static_cast<char>(s[at] ^ 0x20); break;  // case flip
      default: {  // repeat a line
        const auto from = s.rfind("\r\n", at);
        const auto to = s.find("\r\n", at);
        if (from != std::string::npos && to != std::string::npos && from < to)
          s.insert(to, s.substr(from, to - from));
      }
      }
    }
    ++total;
    if (compare_reading(ref, s)) ++accepted;
  }
  INFO(accepted << " of " << total << " mutated requests accepted");
  CHECK(accepted > total / 10);  // the comparison exercised the reader, not only its refusals
}

TEST_CASE("reason phrases are httplib's for every status", "[wire]") {
  reference_server ref;
  for (int status = 100; status < 600; ++status) {
    ref.status = status;
    const auto seen = ref.read("GET / HTTP/1.1\r\n\r\n");
    std::string written;
    mock_wechat::detail::write_plain_response(written, status, "text/plain", "{}", 2, false,
                                              "timeout=5, max=100000");
    INFO("status " << status);
    CHECK(written == seen.out);
  }
}

namespace {

// The same cast on a server: apps, and users whose state the requests touch.
void stage(mock_wechat::server& s) {
  using T = mock_wechat::app_type;
  s.world().add_app({mp, mp_secret, T::miniprogram, "acct-1"});
  s.world().add_app({lone, "lone-secret", T::miniprogram, ""});
  s.world().clock().set(1767225600);
}

// Random parts of an answer (rid, session keys, tokens, codes) replaced by their length.
std::string normalized(std::string s) {
  static const std::regex random_part(
      R"re((rid: )[0-9a-f-]+|("(?:session_key|access_token|code|openid|unionid)":")[^"]*)re");
  return std::regex_replace(s, random_part, "$1$2<random>");
}

struct exchange {
  std::string answer;
  bool open_after = false;  // a second request on the connection was answered
};

exchange ask(int port, const std::string& request) {
  raw c(port);
  REQUIRE(c.ok());
  REQUIRE(c.send(request));
  exchange e;
  e.answer = normalized(c.read_response());
  if (c.send("GET /sns/auth HTTP/1.1\r\n\r\n")) e.open_after = !c.read_response().empty();
  return e;
}

}  // namespace

TEST_CASE("over sockets, the fast path answers byte for byte as httplib does", "[wire]") {
  mock_wechat::options slow_opt;
  slow_opt.fast_path = false;
  mock_wechat::server fast, slow(slow_opt);
  stage(fast);
  stage(slow);

  auto both = [&](const std::string& what, const std::function<std::string(mock_wechat::server&)>& request,
                  const std::function<void(mock_wechat::server&)>& prepare = {}) {
    if (prepare) {
      prepare(fast);
      prepare(slow);
    }
    const exchange a = ask(fast.port(), request(fast));
    const exchange b = ask(slow.port(), request(slow));
    INFO(what << "\nfast: " << a.answer << "\nhttplib: " << b.answer);
    if (what.find("drop") == std::string::npos) CHECK(!a.answer.empty());
    CHECK(a.answer == b.answer);
    CHECK(a.open_after == b.open_after);
    return a;
  };
  auto fixed = [](std::string r) { return [r](mock_wechat::server&) { return r; }; };
  const std::string c2s = "/sns/jscode2session?appid=" + mp + "&secret=" + mp_secret +
                          "&grant_type=authorization_code&js_code=";
  auto login = [&](mock_wechat::server& s) {
    return "GET " + c2s + s.world().login(mp, "alice") + " HTTP/1.1\r\nHost: x\r\n\r\n";
  };

  CHECK(both("a login", login).answer.find("\"openid\":") != std::string::npos);
  both("a login, then Connection: close", [&](mock_wechat::server& s) {
    return "GET " + c2s + s.world().login(mp, "bob") +
           " HTTP/1.1\r\nConnection: close\r\n\r\n";
  });
  both("HTTP/1.0", [&](mock_wechat::server& s) {
    return "GET " + c2s + s.world().login(mp, "carol") + " HTTP/1.0\r\n\r\n";
  });
  both("a wrong secret", fixed("GET /sns/jscode2session?appid=" + mp +
                               "&secret=no&js_code=x&grant_type=authorization_code HTTP/1.1\r\n\r\n"));
  both("an unknown code", fixed("GET " + c2s + "nope HTTP/1.1\r\n\r\n"));
  both("no parameters", fixed("GET /sns/jscode2session HTTP/1.1\r\n\r\n"));
  both("an unknown api", fixed("GET /cgi-bin/nothing?x=1 HTTP/1.1\r\n\r\n"));
  both("stable_token", fixed("POST /cgi-bin/stable_token HTTP/1.1\r\nContent-Length: " +
                             std::to_string(62 + mp.size() + mp_secret.size()) +
                             "\r\n\r\n{\"grant_type\":\"client_credential\",\"appid\":\"" + mp +
                             "\",\"secret\":\"" + mp_secret + "\",\"force_refresh\":false}"));
  both("a token on the wrong app", fixed("GET /cgi-bin/token?grant_type=client_credential&appid=" +
                                         lone + "&secret=x HTTP/1.1\r\n\r\n"));
  both("a bad JSON body", fixed("POST /cgi-bin/stable_token HTTP/1.1\r\nContent-Length: "
                                "5\r\n\r\n{\"a\":"));
  both("checksession with a bad token",
       fixed("GET /wxa/checksession?access_token=x&openid=o&signature=s&sig_method=hmac_sha256 "
             "HTTP/1.1\r\n\r\n"));
  both("the admin API (httplib on both)", fixed("GET /__mock/apps HTTP/1.1\r\n\r\n"));
  both("HEAD (httplib on both)", fixed("HEAD " + c2s + "x HTTP/1.1\r\n\r\n"));

  const std::string target = "GET " + c2s + "x HTTP/1.1\r\n\r\n";
  for (const char* f : {R"({"errcode":45011})", R"({"http_status":502})",
                        R"({"http_status":418})", R"({"malformed":true})",
                        R"({"oversized":70000})", R"({"truncated":true})", R"({"drop":true})",
                        R"({"content_type":"text/html"})", R"({"delay_ms":20})"}) {
    both(std::string("fault ") + f, fixed(target), [&](mock_wechat::server& s) {
      auto j = nlohmann::json::parse(f);
      j["path"] = "/sns/jscode2session";
      j["times"] = 1;
      s.faults().add(mock_wechat::fault::from_json(j));
    });
  }

  // Pipelined: the fast path's answers and httplib's keep their order on one connection.
  auto pipelined = [&](mock_wechat::server& s) {
    raw c(s.port());
    REQUIRE(c.send("GET " + c2s + "a HTTP/1.1\r\n\r\nGET /__mock/apps HTTP/1.1\r\n\r\nGET " +
                   c2s + "b HTTP/1.1\r\n\r\n"));
    std::string all;
    for (int i = 0; i < 3; ++i)
      all += normalized(c.read_response());
    return all;
  };
  const std::string a = pipelined(fast), b = pipelined(slow);
  CHECK(a == b);
  CHECK(a.find("/__mock") == std::string::npos);
  CHECK(std::count(a.begin(), a.end(), '{') >= 3);

  // Both servers' journals and stats saw the same requests.
  CHECK(fast.stats().to_json()["/sns/jscode2session"]["count"] ==
        slow.stats().to_json()["/sns/jscode2session"]["count"]);
  CHECK(fast.journal().to_json().size() == slow.journal().to_json().size());
}
