// The event engine with a deferred_handler (what examples/login_server runs on): each request
// goes to the handler with a responder; the answer comes later, from another thread, through
// the loop's eventfd. Over real sockets: answers from worker threads keep their order on a
// keep-alive connection and behind pipelined requests, a responder answers once, an answer
// that never comes is 503 at answer_timeout_ms, a throwing handler is 500, a responder
// called after the engine stopped does nothing, and clients that trickle a request (a
// slowloris crowd) hold no thread: others are answered meanwhile, and they are closed at the
// whole-request deadline.
#include "mock_support.hpp"

#include <mock_wechat/detail/event_engine.hpp>

#include <condition_variable>
#include <deque>

using namespace mocktest;
using mock_wechat::http_request;
using mock_wechat::http_response;
using mock_wechat::detail::engine_limits;
using mock_wechat::detail::event_engine;
using mock_wechat::detail::responder;

namespace {

// A few worker threads answering "path:body" after `delay`; what a backend's pool does.
class workers {
public:
  explicit workers(std::chrono::milliseconds delay, int n = 4) : delay_(delay) {
    for (int i = 0; i < n; ++i)
      threads_.emplace_back([this] { run(); });
  }
  ~workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      t.join();
  }
  void post(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(f));
    }
    cv_.notify_one();
  }
  event_engine::deferred_handler handler() {
    return [this](const http_request& req, responder answer) {
      std::string text = std::string(req.target) + ":" + std::string(req.body);  // copied
      post([this, text, answer] {
        std::this_thread::sleep_for(delay_);
        http_response r;
        r.content_type = "text/plain";
        r.body = text;
        r.length = r.body.size();
        answer(r);
      });
    };
  }

private:
  void run() {
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        f = std::move(jobs_.front());
        jobs_.pop_front();
      }
      f();
    }
  }
  std::chrono::milliseconds delay_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

engine_limits one_loop() {  // a closed connection's slot is the next one's
  engine_limits l;
  l.workers = 1;
  return l;
}

std::string body_of(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : response.substr(end + 4);
}

std::string post(const std::string& path, const std::string& body, bool close = false) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
         std::to_string(body.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("deferred answers come from other threads, in order, on one keep-alive connection",
          "[engine][deferred]") {
  workers pool(std::chrono::milliseconds(20));
  event_engine e(pool.handler(), "127.0.0.1", 0, engine_limits{});
  raw c(e.port());
  REQUIRE(c.ok());
  REQUIRE(c.send(post("/a", "1")));
  const std::string first = c.read_response();
  CHECK(first.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(body_of(first) == "/a:1");
  REQUIRE(c.send(post("/b", "22")));
  CHECK(body_of(c.read_response()) == "/b:22");
  SECTION("pipelined requests: each waits for the answer before it") {
    REQUIRE(c.send(post("/c", "x") + post("/d", "y") + post("/e", "z", true)));
    CHECK(body_of(c.read_response()) == "/c:x");
    CHECK(body_of(c.read_response()) == "/d:y");
    const std::string last = c.read_response();
    CHECK(body_of(last) == "/e:z");
    CHECK(last.find("Connection: close") != std::string::npos);
    CHECK(c.closed_by_peer(std::chrono::seconds(2)));
  }
}

TEST_CASE("a responder answers once, and an old one cannot answer a later request",
          "[engine][deferred]") {
  // "/keep" requests are kept unanswered; the others are answered twice at once.
  std::mutex m;
  std::vector<responder> kept;
  auto text = [](const std::string& body) {
    http_response r;
    r.content_type = "text/plain";
    r.body = body;
    r.length = r.body.size();
    return r;
  };
  auto kept_count = [&] {
    std::lock_guard<std::mutex> lock(m);
    return kept.size();
  };
  auto wait_kept = [&](std::size_t n) {
    for (int i = 0; i < 500 && kept_count() < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(kept_count() == n);
  };
  event_engine e(
      [&](const http_request& req, responder answer) {
        std::lock_guard<std::mutex> lock(m);
        kept.push_back(answer);
        if (req.target == "/keep") return;
        answer(text(std::string(req.target)));
        answer(text("second"));  // a second call: nothing
      },
      "127.0.0.1", 0, one_loop());
  raw c(e.port());
  REQUIRE(c.send(post("/one", "")));
  CHECK(body_of(c.read_response()) == "/one");
  REQUIRE(c.send(post("/keep", "")));  // the connection now waits for kept[1]
  wait_kept(2);
  kept[0](text("stale"));  // /one's responder, called again while /keep waits: nothing
  CHECK(c.receive("stale", std::chrono::milliseconds(300)).empty());
  kept[1](text("kept"));
  CHECK(body_of(c.read_response()) == "kept");
  kept[1](text("again"));
  CHECK(c.receive("again", std::chrono::milliseconds(300)).empty());
  SECTION("a new connection in the slot of a closed one is not answered by the old responder") {
    REQUIRE(c.send(post("/keep", "")));
    wait_kept(3);
    c.close();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the loop frees the slot
    raw d(e.port());
    REQUIRE(d.send(post("/keep", "")));  // the one loop gives it the freed slot
    wait_kept(4);
    kept[2](text("for the closed one"));
    CHECK(d.receive("for the closed one", std::chrono::milliseconds(300)).empty());
    kept[3](text("mine"));
    CHECK(body_of(d.read_response()) == "mine");
  }
}

TEST_CASE("an answer that never comes is 503 at answer_timeout_ms, and the late one is dropped",
          "[engine][deferred]") {
  std::mutex m;
  std::vector<responder> kept;
  engine_limits lim;
  lim.answer_timeout_ms = 300;
  event_engine e(
      [&](const http_request&, responder answer) {
        std::lock_guard<std::mutex> lock(m);
        kept.push_back(std::move(answer));  // never answered in time
      },
      "127.0.0.1", 0, lim);
  raw c(e.port());
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(c.send(post("/slow", "")));
  const std::string got = c.read_response(std::chrono::seconds(5));
  CHECK(got.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(body_of(got).find("no answer in time") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(250));
  CHECK(c.closed_by_peer(std::chrono::seconds(2)));
  std::lock_guard<std::mutex> lock(m);
  REQUIRE(kept.size() == 1);
  kept[0](http_response{});  // too late: nothing, no crash
}

TEST_CASE("a deferred handler that throws is 500, and the engine serves on",
          "[engine][deferred]") {
  event_engine e(
      [](const http_request& req, responder answer) {
        if (req.target == "/throw") throw std::runtime_error("boom");
        http_response r;
        r.body = "fine";
        r.length = 4;
        answer(r);
      },
      "127.0.0.1", 0, engine_limits{});
  raw c(e.port());
  REQUIRE(c.send(post("/throw", "")));
  const std::string got = c.read_response();
  CHECK(got.rfind("HTTP/1.1 500", 0) == 0);
  CHECK(got.find("boom") == std::string::npos);
  REQUIRE(c.send(post("/ok", "")));
  CHECK(body_of(c.read_response()) == "fine");
}

TEST_CASE("a responder called after the engine stopped does nothing", "[engine][deferred]") {
  std::mutex m;
  std::vector<responder> kept;
  {
    event_engine e(
        [&](const http_request&, responder answer) {
          std::lock_guard<std::mutex> lock(m);
          kept.push_back(std::move(answer));
        },
        "127.0.0.1", 0, engine_limits{});
    raw c(e.port());
    REQUIRE(c.send(post("/x", "")));
    for (int i = 0; i < 200; ++i) {
      {
        std::lock_guard<std::mutex> lock(m);
        if (!kept.empty()) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }  // the engine stops and is destroyed with the request unanswered
  std::lock_guard<std::mutex> lock(m);
  REQUIRE(kept.size() == 1);
  http_response r;
  r.body = "late";
  r.length = 4;
  kept[0](r);  // its loop is gone: nothing (ASan/TSan builds check there is no use after free)
}

TEST_CASE("a slowloris crowd holds no thread: others are answered, the crowd is closed at the "
          "whole-request deadline",
          "[engine][deferred][hostile]") {
  workers pool(std::chrono::milliseconds(1), 2);
  engine_limits lim;
  lim.request_timeout_ms = 1500;
  event_engine e(pool.handler(), "127.0.0.1", 0, lim);
  std::vector<raw> crowd;
  for (int i = 0; i < 64; ++i) {
    crowd.emplace_back(e.port());
    REQUIRE(crowd.back().send("POST /login HTTP/1.1\r\nHost: x\r\n"));
  }
  // The crowd trickles a header line each 300 ms (each read is on time; the whole request
  // never is). Meanwhile an honest client is answered at once, again and again.
  const auto start = std::chrono::steady_clock::now();
  int answered = 0;
  for (int round = 0; round < 4; ++round) {
    for (auto& c : crowd)
      c.send("X-Slow-" + std::to_string(round) + ": 1\r\n");
    raw honest(e.port());
    REQUIRE(honest.send(post("/ok", "1", true)));
    if (body_of(honest.read_response(std::chrono::seconds(1))) == "/ok:1") ++answered;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  CHECK(answered == 4);
  // By 1.5 s from its first byte (and a timer's slack) each of the crowd is closed, whatever
  // it still trickles.
  int closed = 0;
  for (auto& c : crowd) {
    c.send("X-More: 1\r\n");
    if (c.closed_by_peer(std::chrono::seconds(3))) ++closed;
  }
  CHECK(closed == 64);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(8));
}
