// Injected faults and the request journal, through real HTTP on loopback.
#include "mock_support.hpp"
#include <mock_wechat/detail/precise_wait.hpp>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <chrono>
#include <future>

using namespace mocktest;

namespace {
std::string c2s_query(fixture& f) {
  return "/sns/jscode2session?appid=" + mp + "&secret=" + mp_secret +
         "&js_code=" + f.login(mp, "alice");
}

// Whether this kernel (and sandbox) serves epoll_pwait2: the precise waits are checked to
// the fraction of a millisecond only where it does.
bool epoll_pwait2_works() {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return false;
  epoll_event ev{};
  const timespec zero{};
  const bool works = mock_wechat::detail::epoll_pwait2_or_enosys(ep, &ev, 1, &zero) >= 0;
  ::close(ep);
  return works;
}
}  // namespace

TEST_CASE("an errcode fault answers the next N calls with that errcode", "[mock][faults]") {
  fixture f;
  f.add_standard_apps();
  f.admin("faults", {{"path", "/sns/jscode2session"}, {"errcode", -1}, {"times", 2}});
  const std::string q = c2s_query(f);
  check_error_shape(f.get(q), -1, "/sns/jscode2session", f.world().now());
  CHECK(f.get(q).errcode() == -1);
  CHECK(f.get(q).errcode() == 0);  // the fault is used up; the code was never consumed
  CHECK(f.get("/__mock/faults").json().empty());
}

TEST_CASE("http_status, malformed, oversized and content_type faults", "[mock][faults]") {
  fixture f;
  f.add_standard_apps();
  SECTION("HTTP 502 with an HTML body") {
    f.admin("faults", {{"path", "/cgi-bin/token"}, {"http_status", 502}, {"times", 1}});
    const reply r =
        f.get("/cgi-bin/token?grant_type=client_credential&appid=" + mp + "&secret=" + mp_secret);
    CHECK(r.status == 502);
    CHECK(r.content_type == "text/html");
    CHECK(nlohmann::json::parse(r.body, nullptr, false).is_discarded());
  }
  SECTION("malformed JSON") {
    f.admin("faults", {{"path", "/sns/jscode2session"}, {"malformed", true}, {"times", 1}});
    const reply r = f.get(c2s_query(f));
    CHECK(r.status == 200);
    CHECK(nlohmann::json::parse(r.body, nullptr, false).is_discarded());
  }
  SECTION("oversized body") {
    f.admin("faults", {{"path", "/sns/jscode2session"}, {"oversized", 300000}, {"times", 1}});
    const reply r = f.get(c2s_query(f));
    CHECK(r.body.size() == 300000);
    CHECK(r.errcode() == -1);
  }
  SECTION("wrong Content-Type on a normal answer") {
    f.admin("faults",
            {{"path", "/sns/jscode2session"}, {"content_type", "text/html"}, {"times", 1}});
    const reply r = f.get(c2s_query(f));
    CHECK(r.content_type == "text/html");
    CHECK(r.json().contains("openid"));
  }
}

TEST_CASE("drop and truncated faults close the connection", "[mock][faults]") {
  fixture f;
  f.add_standard_apps();
  const std::string q = c2s_query(f);
  SECTION("drop: no answer at all") {
    f.admin("faults", {{"path", "/sns/jscode2session"}, {"drop", true}, {"times", 1}});
    auto r = f.http.Get(q.c_str());
    CHECK_FALSE(r);
    CHECK(f.get(q).errcode() == 0);  // the next call is served (a new connection)
  }
  SECTION("truncated: fewer bytes than Content-Length promised") {
    f.admin("faults", {{"path", "/sns/jscode2session"}, {"truncated", true}, {"times", 1}});
    auto r = f.http.Get(q.c_str());
    CHECK_FALSE(r);
    CHECK(f.get(q).errcode() == 0);
  }
}

TEST_CASE("a delay on one path does not stall other paths", "[mock][faults]") {
  fixture f;
  f.add_standard_apps();
  f.admin("faults", {{"path", "/cgi-bin/token"}, {"delay_ms", 1500}, {"times", 1}});
  const auto start = std::chrono::steady_clock::now();
  auto slow = std::async(std::launch::async, [&] {
    httplib::Client c("127.0.0.1", f.mock.port());
    auto r =
        c.Get(("/cgi-bin/token?grant_type=client_credential&appid=" + mp + "&secret=" + mp_secret)
                  .c_str());
    return std::make_pair(r ? r->status : 0, std::chrono::steady_clock::now() - start);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  httplib::Client other("127.0.0.1", f.mock.port());
  const auto t0 = std::chrono::steady_clock::now();
  auto r = other.Get(c2s_query(f).c_str());
  const auto other_took = std::chrono::steady_clock::now() - t0;
  REQUIRE(r);
  CHECK(r->status == 200);
  const auto [status, slow_took] = slow.get();
  CHECK(status == 200);
  CHECK(slow_took >= std::chrono::milliseconds(1500));  // the delay happened...
  CHECK(other_took < slow_took);                        // ...and the other call did not wait for it
}

// A latency is kept to the fraction of a millisecond it names, and never cut short. The
// event engine slept in whole milliseconds, rounded up (epoll_wait): no answer of fixed:0.3
// came in under 1 ms. Now none of 20 or more is early, and one comes in under 1 ms within
// 200 tries (on a busy machine, or under a sanitizer, many may come late; all of them
// cannot). Where the kernel or a sandbox refuses epoll_pwait2 the engine sleeps in whole
// milliseconds again, and only "never early" is checked.
TEST_CASE("a latency of a fraction of a millisecond is kept to the fraction, never shorter",
          "[mock][faults]") {
  mock_wechat::options o;
  o.latency = mock_wechat::parse_latency("fixed:0.3");  // every WeChat endpoint
  fixture f(o);
  f.add_standard_apps();
  const std::string target = "/sns/auth?access_token=x&openid=y";
  CHECK(f.get(target).errcode() == 40014);  // connected
  using us = std::chrono::microseconds;
  us fastest = us::max(), slowest = us::zero();
  int tries = 0;
  while (tries < 20 || (tries < 200 && fastest >= us(1000))) {
    ++tries;
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = f.http.Get(target.c_str());
    const auto took = std::chrono::duration_cast<us>(std::chrono::steady_clock::now() - t0);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    fastest = std::min(fastest, took);
    slowest = std::max(slowest, took);
  }
  const bool precise = epoll_pwait2_works();
  INFO("fastest " << fastest.count() << " us, slowest " << slowest.count() << " us, in " << tries
                  << " tries; epoll_pwait2 " << (precise ? "works" : "refused"));
  CHECK(fastest >= us(300));
  if (precise) CHECK(fastest < us(1000));
}

// The wait the engine and wechat-loadtest share (mock_wechat/detail/precise_wait.hpp):
// never shorter than asked, whichever call serves it; and any failure of epoll_pwait2 but
// EINTR (here EBADF, standing for a sandbox's EPERM) turns the caller's flag off, so that a
// refused call is not tried again on every wait (a loop spinning on errors).
TEST_CASE(
    "the precise wait never waits less than asked, and gives up epoll_pwait2 on its first failure",
    "[mock][faults]") {
  using mock_wechat::detail::wait_precisely;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  REQUIRE(ep >= 0);
  epoll_event ev{};
  const bool works = epoll_pwait2_works();
  const timespec wanted{0, 300'000};  // 0.3 ms
  for (const bool start_precise : {true, false}) {
    bool precise = start_precise;
    const auto t0 = std::chrono::steady_clock::now();
    const int n = wait_precisely(ep, &ev, 1, wanted, precise);
    const auto took = std::chrono::steady_clock::now() - t0;
    INFO("start_precise " << start_precise << ", epoll_pwait2 " << (works ? "works" : "refused"));
    CHECK(n == 0);  // nothing to report: the timeout ended it
    CHECK(took >= std::chrono::microseconds(300));
    if (!start_precise) CHECK(took >= std::chrono::milliseconds(1));  // epoll_wait: rounded up
    CHECK(precise == (start_precise && works));
  }
  ::close(ep);
  bool precise = true;
  errno = 0;
  CHECK(wait_precisely(-1, &ev, 1, wanted, precise) == -1);
  CHECK(errno == EBADF);  // epoll_wait's answer, after epoll_pwait2's
  CHECK_FALSE(precise);   // not tried again
}

TEST_CASE("a latency fault and options::latency delay answers, and the answer is of arrival time",
          "[mock][faults]") {
  mock_wechat::options o;
  o.latency = mock_wechat::parse_latency("uniform:200:250");  // every WeChat endpoint
  o.seed = 42;
  fixture f(o);
  f.add_standard_apps();
  f.admin("faults", {{"path", "/sns/auth"}, {"latency", "fixed:300"}, {"times", 1}});
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(f.get("/sns/auth?access_token=x&openid=y").errcode() == 40014);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(500));  // 300 + >=200
  const auto t1 = std::chrono::steady_clock::now();
  CHECK(f.get(c2s_query(f)).errcode() == 0);
  CHECK(std::chrono::steady_clock::now() - t1 >= std::chrono::milliseconds(200));
  const auto stats = f.get("/__mock/stats").json();
  CHECK(stats["endpoints"]["/sns/auth"]["latency_us"]["max"].get<std::int64_t>() >= 500000);
  CHECK(stats["endpoints"]["/sns/jscode2session"]["latency_us"]["max"].get<std::int64_t>() >= 200000);
  // A code redeemed in a delayed answer is redeemed on arrival: a second exchange of the
  // same code while the first answer waits is already 40163.
  f.admin("faults", {{"path", "/sns/jscode2session"}, {"delay_ms", 800}, {"times", 1}});
  const std::string code = f.login(mp, "dora");
  auto first = std::async(std::launch::async, [&] {
    httplib::Client c("127.0.0.1", f.mock.port());
    auto r = c.Get(("/sns/jscode2session?appid=" + mp + "&secret=" + mp_secret + "&js_code=" +
                    code + "&grant_type=authorization_code")
                       .c_str());
    return r ? r->body : std::string();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(f.code2session(mp, mp_secret, code).errcode() == 40163);
  CHECK(first.get().find("\"openid\":") != std::string::npos);
}

TEST_CASE(
    "probability 0 never fires and the star path matches every WeChat path but never the admin API",
    "[mock][faults]") {
  fixture f;
  f.add_standard_apps();
  f.admin("faults", {{"path", "/sns/jscode2session"}, {"errcode", -1}, {"probability", 0.0}});
  for (int i = 0; i < 20; ++i)
    CHECK(f.get(c2s_query(f)).errcode() == 0);
  f.del("/__mock/faults");
  f.admin("faults", {{"path", "*"}, {"errcode", 45011}});
  CHECK(f.get(c2s_query(f)).errcode() == 45011);
  CHECK(f.get("/cgi-bin/token?grant_type=client_credential&appid=" + mp + "&secret=" + mp_secret)
            .errcode() == 45011);
  CHECK(f.get("/__mock/health").status == 200);
  CHECK(f.del("/__mock/faults?path=*").status == 200);
  CHECK(f.get(c2s_query(f)).errcode() == 0);
}

TEST_CASE("faults are validated: one kind, known fields, never the admin API", "[mock][faults]") {
  fixture f;
  auto bad = [&](const nlohmann::json& j) {
    const reply r = f.post("/__mock/faults", j.dump());
    INFO(r.body);
    CHECK(r.status == 400);
    CHECK(r.json().contains("error"));
    return r.json()["error"].get<std::string>();
  };
  CHECK(bad({{"errcode", -1}}).find("'path'") != std::string::npos);
  CHECK(bad({{"path", "/x"}}).find("needs one of") != std::string::npos);
  CHECK(bad({{"path", "/x"}, {"errcode", -1}, {"drop", true}}).find("one of") != std::string::npos);
  CHECK(bad({{"path", "/x"}, {"http_status", 700}}).find("'http_status'") != std::string::npos);
  CHECK(bad({{"path", "/x"}, {"errcode", "x"}}).find("'errcode'") != std::string::npos);
  CHECK(bad({{"path", "/__mock/health"}, {"errcode", 1}}).find("admin") != std::string::npos);
  CHECK(
      bad({{"path", "/x"}, {"errcode", 1}, {"times", 1}, {"probability", 0.5}}).find("not both") !=
      std::string::npos);
  CHECK(bad({{"path", "/x"}, {"errcode", 1}, {"probability", 2}}).find("'probability'") !=
        std::string::npos);
}

TEST_CASE("the journal records calls with secrets redacted, filters by path, and clears",
          "[mock][journal]") {
  fixture f;
  f.add_standard_apps();
  const std::string token = f.token(mp, mp_secret);
  f.get(c2s_query(f));
  f.get(c2s_query(f) + "x");
  f.post("/cgi-bin/stable_token",
         nlohmann::json{{"grant_type", "client_credential"}, {"appid", mp}, {"secret", mp_secret}}
             .dump());
  f.get("/wxa/checksession?access_token=" + token +
        "&openid=o&signature=abc&sig_method=hmac_sha256");
  const reply all = f.get("/__mock/requests");
  CHECK(all.body.find(mp_secret) == std::string::npos);
  CHECK(all.body.find(token) == std::string::npos);
  CHECK(all.body.find("\"abc\"") == std::string::npos);
  const auto j = all.json();
  REQUIRE(j.size() == 5);
  CHECK(j[1]["path"] == "/sns/jscode2session");
  CHECK(j[1]["query"]["secret"] == "***");
  CHECK(j[1]["query"]["appid"] == mp);
  CHECK(j[1]["errcode"] == 0);
  CHECK(j[2]["errcode"] == 40029);
  CHECK(j[3]["body"]["secret"] == "***");
  CHECK(j[3]["body"]["appid"] == mp);
  CHECK(j[4]["query"]["access_token"] == "***");
  CHECK(f.get("/__mock/requests?path=/sns/jscode2session").json().size() == 2);
  CHECK(f.mock.journal().count("/sns/jscode2session") == 2);  // embedded: same data
  f.del("/__mock/requests?path=/sns/jscode2session");
  CHECK(f.get("/__mock/requests").json().size() == 3);
  f.del("/__mock/requests");
  CHECK(f.get("/__mock/requests").json().empty());
}

TEST_CASE("the journal is bounded, and off at capacity 0", "[mock][journal]") {
  mock_wechat::options o;
  o.journal = 3;
  fixture f(o);
  for (int i = 0; i < 10; ++i)
    f.get("/sns/jscode2session?appid=x");
  const auto j = f.get("/__mock/requests").json();
  REQUIRE(j.size() == 3);
  CHECK(j[2]["seq"] == 10);
  mock_wechat::options off;
  off.journal = 0;
  fixture g(off);
  g.get("/sns/jscode2session?appid=x");
  CHECK(g.get("/__mock/requests").json().empty());
  CHECK(g.get("/__mock/stats").json()["endpoints"]["/sns/jscode2session"]["count"] ==
        1);  // stats still count
}

TEST_CASE("stats count calls, errcodes and latencies per endpoint", "[mock][stats]") {
  fixture f;
  f.add_standard_apps();
  f.get(c2s_query(f));
  f.get("/sns/jscode2session?appid=x");
  f.get("/nowhere");
  const auto s = f.get("/__mock/stats").json();
  const auto& e = s["endpoints"]["/sns/jscode2session"];
  CHECK(e["count"] == 2);
  CHECK(e["errors"] == 1);
  CHECK(e["errcodes"]["41004"] == 1);
  CHECK(e["latency_us"]["max"].get<std::int64_t>() >=
        e["latency_us"]["p50"].get<std::int64_t>() / 2);
  CHECK(s["endpoints"]["(unknown)"]["count"] == 1);
  CHECK(s["world"]["js_codes"] == 1);
}
