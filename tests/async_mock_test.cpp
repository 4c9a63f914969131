// The async client on the Boost.Beast transport against the embedded mock, over loopback:
// the sync client's fault outcomes, single flight seen in the mock's own request counts, a
// loop-lag probe proving no call blocks the loop, deadlines and cancellation over real
// sockets, a rotated token retried once.
#include "mock_support.hpp"

#include <wechat/async.hpp>
#include <wechat/client.hpp>
#include <wechat/transport/beast.hpp>
#include <wechat/transport/httplib.hpp>
#ifdef WECHAT_TEST_REDIS
#include <wechat/store/redis.hpp>

#include "loopback_socket.hpp"
#endif

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

using namespace mocktest;
using namespace std::chrono_literals;

namespace {

struct async_fixture : fixture {
  explicit async_fixture(mock_wechat::options o = {}) : fixture(std::move(o)) {
    add_standard_apps();
  }
  std::shared_ptr<wechat::beast_transport> beast(std::chrono::milliseconds read_timeout = 2000ms) {
    wechat::beast_transport_options t;
    t.base_url = mock.base_url();
    t.read_timeout = read_timeout;
    return wechat::beast_transport::create(t);
  }
  static wechat::client_options options(int attempts = 3) {
    wechat::client_options o;
    o.appid = mp;
    o.secret = mp_secret;
    o.max_attempts = attempts;
    o.backoff = 5ms;
    return o;
  }
  std::size_t calls(const std::string& path) { return mock.journal().count(path); }
};

// A loop-lag probe: a timer asking for a tick every 5 ms on the transport's loop, recording
// how late each tick ran. Anything that blocks the loop shows as a late tick. Its ticks
// share its state, so a tick still queued when the probe is gone (a failed test) is safe.
class lag_probe {
public:
  explicit lag_probe(std::shared_ptr<wechat::async_transport> t) : s_(std::make_shared<state>()) {
    s_->t = std::move(t);
    arm(s_);
  }
  lag_probe(const lag_probe&) = delete;
  lag_probe& operator=(const lag_probe&) = delete;
  ~lag_probe() { finish(); }
  /// Stops ticking (true: the last tick ran within 5 s).
  bool finish() {
    if (finished_) return true;
    finished_ = true;
    s_->stopping = true;
    return done_.wait_for(5s) == std::future_status::ready;
  }
  std::size_t ticks() {
    std::lock_guard<std::mutex> lock(s_->mutex);
    return s_->lags.size();
  }
  std::chrono::steady_clock::duration worst() {
    std::lock_guard<std::mutex> lock(s_->mutex);
    return s_->lags.empty() ? std::chrono::steady_clock::duration::zero()
                            : *std::max_element(s_->lags.begin(), s_->lags.end());
  }

private:
  struct state {
    std::shared_ptr<wechat::async_transport> t;
    std::atomic<bool> stopping{false};
    std::mutex mutex;
    std::vector<std::chrono::steady_clock::duration> lags;
    std::promise<void> done;
  };
  static void arm(const std::shared_ptr<state>& s) {
    const auto asked = std::chrono::steady_clock::now() + 5ms;
    s->t->post_after(5ms, [s, asked] { tick(s, asked); });
  }
  static void tick(const std::shared_ptr<state>& s, std::chrono::steady_clock::time_point asked) {
    {
      std::lock_guard<std::mutex> lock(s->mutex);
      s->lags.push_back(std::chrono::steady_clock::now() - asked);
    }
    if (s->stopping.load()) {
      s->done.set_value();
      return;
    }
    arm(s);
  }
  std::shared_ptr<state> s_;
  std::future<void> done_ = s_->done.get_future();
  bool finished_ = false;
};

}  // namespace

TEST_CASE("async over Beast: a login against the mock, and its unionid", "[async][mock]") {
  async_fixture f;
  auto wx = wechat::async_client::create(async_fixture::options(), f.beast());
  const auto s = wx->code2session(f.login(mp, "alice"), wechat::use_future).get();
  REQUIRE(s.ok());
  CHECK(s.value().openid == mock_wechat::openid(mp, "alice"));
  const auto key = s.value().session_key;
  CHECK(wx->check_session_key(s.value().openid, key, wechat::use_future).get().ok());
  const auto t = wx->access_token(wechat::use_future).get();
  REQUIRE(t.ok());
  CHECK_FALSE(t.value().empty());
}

TEST_CASE("async over Beast: the sync client's fault outcomes, fault by fault",
          "[async][mock][faults]") {
  async_fixture f;
  wechat::httplib_transport_options ho;
  ho.base_url = f.mock.base_url();
  ho.read_timeout = 300ms;
  wechat::client sync(async_fixture::options(1), wechat::httplib_transport::create(ho));
  auto wx = wechat::async_client::create(async_fixture::options(1), f.beast(300ms));
  const std::vector<nlohmann::json> faults = {
      {{"delay_ms", 1500}},
      {{"drop", true}},
      {{"truncated", true}},
      {{"http_status", 502}},
      {{"malformed", true}},
      {{"oversized", 2 << 20}},
      {{"content_type", "text/html"}},
      {{"errcode", -1}},
      {{"errcode", 40029}},
      {{"errcode", 45011}},
  };
  for (const auto& fault : faults) {
    INFO("fault " << fault.dump());
    auto spec = fault;
    spec["path"] = "/sns/jscode2session";
    spec["times"] = 1;
    f.admin("faults", spec);
    std::error_code sync_ec;
    wechat::error_detail sync_d;
    sync.code2session(f.login(mp, "alice"), sync_ec, &sync_d);
    f.admin("faults", spec);
    const auto r = wx->code2session(f.login(mp, "alice"), wechat::use_future).get();
    CHECK(r.error() == sync_ec);
    CHECK(r.detail().http_status == sync_d.http_status);
    CHECK(r.detail().errcode == sync_d.errcode);
    CHECK(r.detail().attempts == sync_d.attempts);
    // the cause names the same host (the texts may differ in measured times)
    CHECK(r.detail().cause.empty() == sync_d.cause.empty());
  }
  f.del("/__mock/faults");
  CHECK(wx->code2session(f.login(mp, "alice"), wechat::use_future).get().ok());
}

TEST_CASE("async over Beast: one request per code and one token fetch, counted by the mock",
          "[async][mock][single-flight]") {
  mock_wechat::options mo;
  mo.latency = mock_wechat::parse_latency("fixed:50");  // everyone arrives during the flight
  async_fixture f(mo);
  auto wx = wechat::async_client::create(async_fixture::options(), f.beast());
  const std::string code = f.login(mp, "alice");
  std::vector<wechat::async_future<wechat::session_info>> same;
  for (int i = 0; i < 50; ++i)
    same.push_back(wx->code2session(code, wechat::use_future));
  for (auto& s : same)
    CHECK(s.get().value().openid == mock_wechat::openid(mp, "alice"));
  CHECK(f.calls("/sns/jscode2session") == 1);

  std::vector<wechat::async_future<std::string>> tokens;
  for (int i = 0; i < 100; ++i)
    tokens.push_back(wx->access_token(wechat::use_future));
  std::string first;
  for (auto& t : tokens) {
    const auto r = t.get();
    REQUIRE(r.ok());
    if (first.empty()) first = r.value();
    CHECK(r.value() == first);
  }
  CHECK(f.calls("/cgi-bin/stable_token") == 1);
  CHECK(wx->tokens().fetches() == 1);
}

TEST_CASE("async over Beast: a loop-lag probe sees no call block the loop",
          "[async][mock][loop-lag]") {
  // Every WeChat answer takes 300 ms: a call that blocked the loop for a round trip would
  // stall the probe for 300 ms. The probe's timer asks for 5 ms ticks on the same loop.
  mock_wechat::options mo;
  mo.latency = mock_wechat::parse_latency("fixed:300");
  async_fixture f(mo);
  auto transport = f.beast();
  auto wx = wechat::async_client::create(async_fixture::options(), transport);
  std::vector<std::string> codes;
  for (int i = 0; i < 200; ++i)
    codes.push_back(f.login(mp, "user-" + std::to_string(i)));

  lag_probe probe(transport);

  const auto started = std::chrono::steady_clock::now();
  std::atomic<int> ok{0};
  std::promise<void> all_done;
  std::atomic<int> left{static_cast<int>(codes.size())};
  for (auto& c : codes)  // 200 logins in flight at once, then each fetches the token
    wx->code2session(c, [&, wx](wechat::result<wechat::session_info> r) {
      if (!r) {
        if (--left == 0) all_done.set_value();
        return;
      }
      wx->check_session_key(r->openid, r->session_key, [&](wechat::result<void> k) {
        if (k) ++ok;
        if (--left == 0) all_done.set_value();
      });
    });
  REQUIRE(all_done.get_future().wait_for(60s) == std::future_status::ready);
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(probe.finish());
  CHECK(ok.load() == 200);
  REQUIRE(probe.ticks() > 50);  // the probe ran through the ~600 ms of logins
  const auto worst = probe.worst();
  INFO("logins took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms; probe ticks " << probe.ticks() << ", worst lag "
                      << std::chrono::duration_cast<std::chrono::microseconds>(worst).count()
                      << " us");
  // A call that waited for WeChat on the loop would hold it 300 ms: the 400 round trips
  // would take 120 s in a row, and the probe would see a 300 ms stall. (The bounds leave
  // room for a shared, slow machine; the benchmark measures the lag itself.)
  CHECK(took < 15s);
  CHECK(worst < 300ms);
  CHECK(f.calls("/sns/jscode2session") == 200);
  CHECK(f.calls("/cgi-bin/stable_token") == 1);
}

TEST_CASE("async over Beast: a deadline ends the wait, the code's answer is still remembered",
          "[async][mock][deadline]") {
  async_fixture f;
  auto wx = wechat::async_client::create(async_fixture::options(), f.beast(5000ms));
  f.admin("faults", {{"path", "/sns/jscode2session"}, {"delay_ms", 800}, {"times", 1}});
  const std::string code = f.login(mp, "alice");
  wechat::call_options o;
  o.timeout = 150ms;
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = wx->code2session(code, wechat::use_future, o).get();
  CHECK(r.error() == wechat::transport_errc::timeout);
  CHECK(std::chrono::steady_clock::now() - t0 < 700ms);
  // the exchange went on; the user's retry, after WeChat answered, gets the session
  std::this_thread::sleep_for(900ms);
  const auto again = wx->code2session(code, wechat::use_future).get();
  REQUIRE(again.ok());
  CHECK(again.value().openid == mock_wechat::openid(mp, "alice"));
  CHECK(f.calls("/sns/jscode2session") == 1);  // no second exchange, no 40163
}

TEST_CASE("async over Beast: cancel detaches the caller at once", "[async][mock][cancel]") {
  async_fixture f;
  auto wx = wechat::async_client::create(async_fixture::options(), f.beast(5000ms));
  REQUIRE(wx->access_token(wechat::use_future).get().ok());
  f.admin("faults", {{"path", "/wxa/checksession"}, {"delay_ms", 2000}, {"times", 1}});
  wechat::cancel_source cancel;
  wechat::call_options o;
  o.cancel = cancel.token();
  const auto t0 = std::chrono::steady_clock::now();
  auto fut = wx->check_session_key(mock_wechat::openid(mp, "alice"),
                                   "a2V5a2V5a2V5a2V5a2V5aw==", wechat::use_future, o);
  std::this_thread::sleep_for(50ms);
  cancel.cancel();
  const auto r = fut.get();
  CHECK(r.error() == std::errc::operation_canceled);
  CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
}

TEST_CASE("async over Beast: a token rotated by another server is retried once, fresh",
          "[async][mock][token]") {
  async_fixture f;
  f.world().clock().set(1800000000);
  wechat::client_options o = async_fixture::options();
  o.tokens = wechat::token_mode::classic;
  auto a = wechat::async_client::create(o, f.beast());
  wechat::httplib_transport_options ho;
  ho.base_url = f.mock.base_url();
  wechat::client b(o, wechat::httplib_transport::create(ho));  // another server, its own store
  const auto s = a->code2session(f.login(mp, "alice"), wechat::use_future).get().value();
  const std::string first = a->access_token(wechat::use_future).get().value();
  b.tokens().get();                // supersedes a's token
  f.world().clock().advance(301);  // the overlap is over: a's token now answers 40001
  CHECK(a->check_session_key(s.openid, s.session_key, wechat::use_future).get().ok());
  CHECK(a->access_token(wechat::use_future).get().value() != first);
  CHECK(a->tokens().fetches() == 2);
  const auto j = f.mock.journal().to_json("/wxa/checksession");
  REQUIRE(j.size() == 2);
  CHECK(j[0]["errcode"] == 40001);
  CHECK(j[1]["errcode"] == 0);
}

#ifdef WECHAT_TEST_REDIS
TEST_CASE("async over Beast: a Redis that never answers holds the store's worker, not the loop",
          "[async][mock][loop-lag][redis]") {
  // A listening socket that never accepts: the kernel completes each connect, and every
  // command then waits for its 300 ms timeout (twice: the connection retries once). Each
  // store call of the refresh (the read, the lock) costs 600 ms; on the loop, the probe
  // would see a 600 ms stall.
  const testnet::loopback_socket silent(true);
  wechat::redis_options ro;
  ro.port = silent.port;
  ro.timeout = 300ms;
  auto store =
      std::make_shared<wechat::redis_token_store>(std::make_shared<wechat::redis_connection>(ro));

  async_fixture f;
  auto transport = f.beast();
  auto wx = wechat::async_client::create(async_fixture::options(), transport, store);
  lag_probe probe(transport);
  const auto started = std::chrono::steady_clock::now();
  // Asked from the loop, as a request handler of the backend asks.
  std::promise<wechat::result<std::string>> got;
  auto token = got.get_future();
  transport->post([&] {
    wx->access_token([&](wechat::result<std::string> r) { got.set_value(std::move(r)); });
  });
  REQUIRE(token.wait_for(30s) == std::future_status::ready);
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(probe.finish());
  const auto r = token.get();
  // The store could not be read or locked: fetched without it, as the sync provider does.
  REQUIRE(r.ok());
  CHECK_FALSE(r.value().empty());
  CHECK(f.calls("/cgi-bin/stable_token") == 1);
  const auto worst = probe.worst();
  INFO("the token took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                         << " ms; probe ticks " << probe.ticks() << ", worst lag "
                         << std::chrono::duration_cast<std::chrono::microseconds>(worst).count()
                         << " us");
  CHECK(took >= 1000ms);  // the store was slow indeed: two calls of 600 ms
  CHECK(probe.ticks() > 20);
  CHECK(worst < 300ms);  // (room for a shared, slow machine: a store call is 600 ms)
}
#endif
