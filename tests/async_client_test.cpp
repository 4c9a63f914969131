// The async client's logic, through the manual transport: requests answered in any order,
// virtual time for backoff and deadlines, nothing on a socket. What the sync client does
// (client_test.cpp, client_logic_test.cpp), kept without blocking: single flight of codes
// and tokens as waiter lists, the double-submit window, retry once on a rejected token,
// backoff on timers; and what a loop adds: deadlines, cancellation, handlers only on the
// loop, the client kept alive by its calls.
#include <catch2/catch.hpp>
#include <wechat/async.hpp>
#include <wechat/async/manual_transport.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

const std::string appid = "wx1000000000000001";
const std::string secret = "s3cret";

struct rig {
  std::shared_ptr<wechat::manual_transport> t = std::make_shared<wechat::manual_transport>();
  std::shared_ptr<wechat::manual_clock> clock = std::make_shared<wechat::manual_clock>();
  std::shared_ptr<wechat::memory_token_store> store =
      std::make_shared<wechat::memory_token_store>();
  std::shared_ptr<wechat::async_client> wx;

  explicit rig(wechat::client_options o = options()) {
    wx = wechat::async_client::create(std::move(o), t, store, clock);
  }
  rig(const rig&) = delete;
  rig& operator=(const rig&) = delete;
  // Requests still waiting hold their calls, which hold the client and so the transport:
  // a loop that stops for good destroys them.
  ~rig() { t->stop(); }
  static wechat::client_options options() {
    wechat::client_options o;
    o.appid = appid;
    o.secret = secret;
    o.backoff = 100ms;
    return o;
  }
  /// The pending requests whose target starts with `path`.
  std::vector<wechat::manual_transport::request_record> waiting(const std::string& path) const {
    std::vector<wechat::manual_transport::request_record> out;
    for (auto& r : t->pending())
      if (r.request.target.rfind(path, 0) == 0) out.push_back(r);
    return out;
  }
  /// Answers the one pending token request with `token`.
  void give_token(const std::string& token, int expires_in = 7200) {
    t->run();
    const auto reqs = waiting("/cgi-bin/stable_token");
    REQUIRE(reqs.size() == 1);
    REQUIRE(t->respond(reqs[0].id, 200,
                       R"({"access_token":")" + token + R"(","expires_in":)" +
                           std::to_string(expires_in) + "}"));
    t->run();
  }
};

template <class T> struct slot {
  std::optional<wechat::result<T>> r;
  int calls = 0;
  auto handler() {
    return [this](wechat::result<T> x) {
      ++calls;
      r.emplace(std::move(x));
    };
  }
};

// Two attempts of one call send the same request: method, target, body and Content-Type.
void same_request(const wechat::http_request& a, const wechat::http_request& b) {
  CHECK(a.method == b.method);
  CHECK(a.target == b.target);
  CHECK(a.body == b.body);
  CHECK(a.content_type == b.content_type);
}

const char* session_body =
    R"({"openid":"o-alice","session_key":"a2V5a2V5a2V5a2V5a2V5aw==","unionid":"u-alice"})";

}  // namespace

TEST_CASE("async code2session: the sync client's request, the handler only on the loop",
          "[async][code2session]") {
  rig g;
  slot<wechat::session_info> s;
  g.wx->code2session("c-1", s.handler());
  CHECK(s.calls == 0);  // never inside the call
  g.t->run();
  const auto reqs = g.waiting("/sns/jscode2session");
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].request.method == "GET");
  CHECK(reqs[0].request.target == "/sns/jscode2session?appid=" + appid + "&secret=" + secret +
                                      "&js_code=c-1&grant_type=authorization_code");
  REQUIRE(g.t->respond(reqs[0].id, 200, session_body, "text/plain"));
  CHECK(s.calls == 0);  // answered, but the loop has not run yet
  g.t->run();
  REQUIRE(s.calls == 1);
  REQUIRE(s.r->ok());
  CHECK(s.r->value().openid == "o-alice");
  CHECK((*s.r)->unionid == std::optional<std::string>("u-alice"));
  CHECK(g.wx->pending_deadlines() == 0);  // a call that ended leaves the deadline queue

  SECTION("the future form") {
    auto f = g.wx->code2session("c-1", wechat::use_future);  // remembered: no request
    g.t->run();
    REQUIRE(f.wait_for(0s) == std::future_status::ready);
    CHECK(f.get().value().openid == "o-alice");
    CHECK(g.t->sent() == 1);
  }
}

TEST_CASE("async code2session: one request per code however many callers, in any order",
          "[async][code2session][single-flight]") {
  rig g;
  slot<wechat::session_info> a, b, c, other;
  g.wx->code2session("c-1", a.handler());
  g.wx->code2session("c-1", b.handler());
  g.wx->code2session("c-2", other.handler());
  g.t->run();
  g.wx->code2session("c-1", c.handler());  // joins the flight in progress
  g.t->run();
  const auto reqs = g.waiting("/sns/jscode2session");
  REQUIRE(reqs.size() == 2);  // one per code
  CHECK(g.wx->remembered_codes() == 2);
  // answer the second code first
  REQUIRE(
      g.t->respond(reqs[1].id, 200, R"({"errcode":40029,"errmsg":"invalid code, rid: 1-2-3"})"));
  g.t->run();
  REQUIRE(other.calls == 1);
  CHECK(other.r->error() == wechat::api_errc::invalid_code);
  CHECK(other.r->detail().rid == "1-2-3");
  CHECK(a.calls == 0);
  REQUIRE(g.t->respond(reqs[0].id, 200, session_body));
  g.t->run();
  // Each caller has the whole result, its own: the last one is given the flight's result
  // itself (moved), the others copies, and the memory keeps a copy of its own.
  for (auto* s : {&a, &b, &c}) {
    REQUIRE(s->calls == 1);
    CHECK(s->r->value().openid == "o-alice");
    CHECK(s->r->value().session_key == "a2V5a2V5a2V5a2V5a2V5aw==");
    CHECK(s->r->value().unionid == std::optional<std::string>("u-alice"));
  }
  CHECK(g.wx->remembered_codes() == 1);  // the failure is not remembered

  SECTION("within the double-submit window the same code gets the remembered result") {
    g.clock->advance(9999ms);
    slot<wechat::session_info> again;
    g.wx->code2session("c-1", again.handler());
    g.t->run();
    CHECK(g.t->pending_count() == 0);
    REQUIRE(again.calls == 1);
    CHECK(again.r->value().openid == "o-alice");
    CHECK(again.r->value().session_key == "a2V5a2V5a2V5a2V5a2V5aw==");
    CHECK(again.r->value().unionid == std::optional<std::string>("u-alice"));
  }
  SECTION("after it, WeChat is asked again (and says 40163)") {
    g.clock->advance(10s);
    slot<wechat::session_info> again;
    g.wx->code2session("c-1", again.handler());
    g.t->run();
    REQUIRE(g.t->pending_count() == 1);
    REQUIRE(
        g.t->respond(g.t->pending()[0].id, 200, R"({"errcode":40163,"errmsg":"code been used"})"));
    g.t->run();
    CHECK(again.r->error() == wechat::api_errc::code_been_used);
  }
  SECTION("a failed code is asked again at once") {
    slot<wechat::session_info> again;
    g.wx->code2session("c-2", again.handler());
    g.t->run();
    CHECK(g.t->pending_count() == 1);
  }
}

TEST_CASE(
    "async code2session: a caller that cancels leaves, the exchange goes on and is remembered",
    "[async][code2session][cancel]") {
  rig g;
  wechat::cancel_source cancel;
  wechat::call_options o;
  o.cancel = cancel.token();
  slot<wechat::session_info> leaving, staying;
  g.wx->code2session("c-1", leaving.handler(), o);
  g.wx->code2session("c-1", staying.handler());
  g.t->run();
  REQUIRE(g.t->pending_count() == 1);
  cancel.cancel();
  g.t->run();
  REQUIRE(leaving.calls == 1);
  CHECK(leaving.r->error() == std::errc::operation_canceled);
  CHECK_THROWS_AS(leaving.r->value(), wechat::error);
  CHECK(g.t->cancelled() == 0);  // a code exchange is never aborted
  REQUIRE(g.t->pending_count() == 1);
  REQUIRE(g.t->respond(g.t->pending()[0].id, 200, session_body));
  g.t->run();
  CHECK(leaving.calls == 1);  // exactly once
  REQUIRE(staying.calls == 1);
  CHECK(staying.r->ok());

  SECTION("the user retrying after cancelling gets the remembered result, no 40163") {
    slot<wechat::session_info> retry;
    g.wx->code2session("c-1", retry.handler());
    g.t->run();
    CHECK(g.t->sent() == 1);
    REQUIRE(retry.calls == 1);
    CHECK(retry.r->value().openid == "o-alice");
  }
  SECTION("a token already cancelled sends nothing") {
    slot<wechat::session_info> late;
    g.wx->code2session("c-9", late.handler(), o);
    CHECK(late.calls == 0);
    g.t->run();
    REQUIRE(late.calls == 1);
    CHECK(late.r->error() == std::errc::operation_canceled);
    CHECK(g.t->sent() == 1);
  }
}

TEST_CASE("async deadlines: the library's own timer ends a call the transport never answers",
          "[async][deadline]") {
  rig g;
  wechat::call_options o;
  o.timeout = 250ms;
  slot<wechat::session_info> s;
  g.wx->code2session("c-1", s.handler(), o);
  g.t->run();
  REQUIRE(g.wx->pending_deadlines() == 1);
  g.t->advance(249ms);
  CHECK(s.calls == 0);
  g.t->advance(1ms);
  REQUIRE(s.calls == 1);
  CHECK(s.r->error() == wechat::transport_errc::timeout);
  CHECK(s.r->detail().cause.find("250 ms") != std::string::npos);
  CHECK(g.wx->pending_deadlines() == 0);
  // the code's exchange is still in flight, not aborted; its late answer is remembered
  REQUIRE(g.t->pending_count() == 1);
  REQUIRE(g.t->respond(g.t->pending()[0].id, 200, session_body));
  g.t->run();
  CHECK(s.calls == 1);
  slot<wechat::session_info> again;
  g.wx->code2session("c-1", again.handler());
  g.t->run();
  CHECK(again.r->ok());

  SECTION("a call's own request is aborted when its deadline passes") {
    slot<void> check;
    g.wx->check_session_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", check.handler(), o);
    g.give_token("T1");
    REQUIRE(g.waiting("/wxa/checksession").size() == 1);
    CHECK(g.waiting("/wxa/checksession")[0].timeout > 0ms);  // the time left, for the transport
    CHECK(g.waiting("/wxa/checksession")[0].timeout <= 250ms);
    g.t->advance(250ms);
    REQUIRE(check.calls == 1);
    CHECK(check.r->error() == wechat::transport_errc::timeout);
    CHECK(g.t->cancelled() == 1);
    CHECK(g.t->pending_count() == 0);
  }
  SECTION("many calls arm one timer, not one each") {
    std::vector<slot<wechat::session_info>> many(100);
    for (int i = 0; i < 100; ++i)
      g.wx->code2session("m-" + std::to_string(i), many[static_cast<std::size_t>(i)].handler(), o);
    g.t->run();
    CHECK(g.wx->pending_deadlines() == 100);
    CHECK(g.t->timers() == 1);
    g.t->advance(250ms);
    for (auto& m : many)
      CHECK(m.calls == 1);
    CHECK(g.wx->pending_deadlines() == 0);
  }
}

TEST_CASE("async tokens: one fetch for every caller, followers queued behind it",
          "[async][token][single-flight]") {
  rig g;
  std::vector<slot<std::string>> calls(20);
  for (auto& c : calls)
    g.wx->get_paid_unionid("o-alice", wechat::paid_order::by_transaction("tx-1"), c.handler());
  g.t->run();
  const auto fetches = g.waiting("/cgi-bin/stable_token");
  REQUIRE(fetches.size() == 1);
  CHECK(fetches[0].request.method == "POST");
  CHECK(nlohmann::json::parse(fetches[0].request.body)["force_refresh"] == false);
  CHECK(g.t->pending_count() == 1);
  g.give_token("T1");
  auto reqs = g.waiting("/wxa/getpaidunionid");
  REQUIRE(reqs.size() == 20);
  CHECK(reqs[0].request.target ==
        "/wxa/getpaidunionid?access_token=T1&openid=o-alice&transaction_id=tx-1");
  // answered last to first
  for (std::size_t i = reqs.size(); i-- > 0;)
    REQUIRE(g.t->respond(reqs[i].id, 200, R"({"unionid":"u-)" + std::to_string(i) + R"("})"));
  g.t->run();
  for (std::size_t i = 0; i < calls.size(); ++i) {
    REQUIRE(calls[i].calls == 1);
    CHECK(calls[i].r->value() == "u-" + std::to_string(i));
  }
  CHECK(g.wx->tokens().fetches() == 1);
  slot<std::string> cached;
  g.wx->access_token(cached.handler());
  g.t->run();
  CHECK(cached.r->value() == "T1");
  CHECK(g.wx->tokens().fetches() == 1);
}

TEST_CASE("async tokens: a failed fetch reaches every waiter, and the next call fetches again",
          "[async][token]") {
  rig g;
  slot<std::string> a, b;
  g.wx->access_token(a.handler());
  g.wx->access_token(b.handler());
  g.t->run();
  auto fetches = g.waiting("/cgi-bin/stable_token");
  REQUIRE(fetches.size() == 1);
  REQUIRE(g.t->respond(fetches[0].id, 200, R"({"errcode":40125,"errmsg":"invalid appsecret"})"));
  g.t->run();
  REQUIRE(a.calls == 1);
  REQUIRE(b.calls == 1);
  CHECK(a.r->error() == wechat::api_errc::invalid_appsecret);
  CHECK(b.r->error() == wechat::api_errc::invalid_appsecret);
  CHECK(g.wx->tokens().fetches() == 1);  // 40125 is not retried
  slot<std::string> c;
  g.wx->access_token(c.handler());
  g.give_token("T2");
  CHECK(c.r->value() == "T2");
}

TEST_CASE("async tokens: rejected once (40001), invalidated, refreshed and the call made again",
          "[async][token][retry]") {
  rig g;
  slot<void> s;
  g.wx->check_session_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", s.handler());
  g.give_token("T1");
  auto reqs = g.waiting("/wxa/checksession");
  REQUIRE(reqs.size() == 1);
  REQUIRE(g.t->respond(reqs[0].id, 200, R"({"errcode":40001,"errmsg":"invalid credential"})"));
  g.t->run();
  CHECK(s.calls == 0);
  std::error_code sec;
  CHECK_FALSE(g.store->load("access_token:" + appid + ":stable", sec));  // invalidated there too
  g.give_token("T2");
  reqs = g.waiting("/wxa/checksession");
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].request.target.find("access_token=T2&") != std::string::npos);
  REQUIRE(g.t->respond(reqs[0].id, 200, R"({"errcode":0,"errmsg":"ok"})"));
  g.t->run();
  REQUIRE(s.calls == 1);
  CHECK(s.r->ok());
  CHECK(g.wx->tokens().fetches() == 2);

  SECTION("rejected twice: the second rejection is the caller's") {
    slot<void> again;
    g.wx->check_session_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", again.handler());
    g.t->run();
    reqs = g.waiting("/wxa/checksession");
    REQUIRE(reqs.size() == 1);
    REQUIRE(g.t->respond(reqs[0].id, 200, R"({"errcode":42001,"errmsg":"expired"})"));
    g.give_token("T3");
    reqs = g.waiting("/wxa/checksession");
    REQUIRE(reqs.size() == 1);
    REQUIRE(g.t->respond(reqs[0].id, 200, R"({"errcode":40001,"errmsg":"invalid credential"})"));
    g.t->run();
    REQUIRE(again.calls == 1);
    CHECK(again.r->error() == wechat::api_errc::invalid_credential);
    CHECK(g.t->pending_count() == 0);
  }
}

TEST_CASE("async tokens: refreshed ahead of expiry by one call while the others use the old one",
          "[async][token]") {
  rig g;
  slot<std::string> first;
  g.wx->access_token(first.handler());
  g.give_token("T1", 7200);
  g.clock->advance(std::chrono::seconds(7200 - 299));  // inside the 300 s refresh-ahead window
  std::vector<slot<std::string>> during(5);
  for (auto& d : during)
    g.wx->access_token(d.handler());
  g.t->run();
  for (auto& d : during) {
    REQUIRE(d.calls == 1);
    CHECK(d.r->value() == "T1");  // nobody waits for the refresh
  }
  CHECK(g.waiting("/cgi-bin/stable_token").size() == 1);  // one refresh
  g.give_token("T2");
  slot<std::string> after;
  g.wx->access_token(after.handler());
  g.t->run();
  CHECK(after.r->value() == "T2");
}

TEST_CASE("async retries: -1 and transport failures retried after a backoff timer, safe calls only",
          "[async][retry]") {
  rig g;
  slot<std::string> safe, unsafe;
  g.wx->get_paid_unionid("o-alice", wechat::paid_order::by_transaction("tx"), safe.handler());
  g.wx->reset_session_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", unsafe.handler());
  g.give_token("T1");
  // Every attempt sends the same request (the last one is given the request itself, the
  // earlier ones copies).
  const auto first = g.waiting("/wxa/getpaidunionid").at(0).request;
  REQUIRE(g.t->respond(g.waiting("/wxa/getpaidunionid")[0].id, 200,
                       R"({"errcode":-1,"errmsg":"system error"})"));
  REQUIRE(g.t->respond(g.waiting("/wxa/resetusersessionkey")[0].id, 200,
                       R"({"errcode":-1,"errmsg":"system error"})"));
  g.t->run();
  REQUIRE(unsafe.calls == 1);  // not retried: it changes state
  CHECK(unsafe.r->error() == wechat::api_errc::system_busy);
  CHECK(unsafe.r->detail().attempts == 1);
  CHECK(safe.calls == 0);
  CHECK(g.waiting("/wxa/getpaidunionid").empty());  // waiting for the backoff timer
  g.t->advance(99ms);
  CHECK(g.waiting("/wxa/getpaidunionid").empty());  // 100 ms at least
  g.t->advance(52ms);  // jitter: up to half again, plus 1 ms (detail::backoff_delay)
  REQUIRE(g.waiting("/wxa/getpaidunionid").size() == 1);
  same_request(g.waiting("/wxa/getpaidunionid")[0].request, first);
  REQUIRE(g.t->fail(g.waiting("/wxa/getpaidunionid")[0].id, wechat::transport_errc::connect_failed,
                    "127.0.0.1:1: connection refused"));
  g.t->advance(301ms);  // 200 ms (doubled), plus up to 101 ms of jitter
  REQUIRE(g.waiting("/wxa/getpaidunionid").size() == 1);
  same_request(g.waiting("/wxa/getpaidunionid")[0].request, first);
  REQUIRE(g.t->fail(g.waiting("/wxa/getpaidunionid")[0].id, wechat::transport_errc::timeout,
                    "127.0.0.1:1: read timed out"));
  g.t->run();
  REQUIRE(safe.calls == 1);  // 3 attempts (client_options::max_attempts)
  CHECK(safe.r->error() == wechat::transport_errc::timeout);
  CHECK(safe.r->detail().attempts == 3);
  CHECK(safe.r->detail().cause == "127.0.0.1:1: read timed out");
  try {
    safe.r->value();
    FAIL("value() did not throw");
  } catch (const wechat::error& e) {
    CHECK(std::string(e.what()).find("get_paid_unionid") != std::string::npos);
  }
}

// A retried POST: the token fetch (stable_token, a JSON body) is safe to repeat, and each
// attempt sends the same method, target, body and Content-Type.
TEST_CASE("async retries: a token fetch answered -1 is sent again, the same POST",
          "[async][retry][token]") {
  rig g;
  slot<std::string> s;
  g.wx->access_token(s.handler());
  g.t->run();
  const auto first = g.waiting("/cgi-bin/stable_token").at(0).request;
  CHECK(first.method == "POST");
  CHECK_FALSE(first.body.empty());
  REQUIRE(g.t->respond(g.waiting("/cgi-bin/stable_token")[0].id, 200,
                       R"({"errcode":-1,"errmsg":"system error"})"));
  g.t->run();
  CHECK(g.waiting("/cgi-bin/stable_token").empty());  // waiting for the backoff timer
  g.t->advance(151ms);
  const auto again = g.waiting("/cgi-bin/stable_token");
  REQUIRE(again.size() == 1);
  same_request(again[0].request, first);
  REQUIRE(g.t->respond(again[0].id, 200, R"({"access_token":"T1","expires_in":7200})"));
  g.t->run();
  REQUIRE(s.calls == 1);
  CHECK(s.r->value() == "T1");
}

TEST_CASE(
    "async client: a call keeps the client alive, a transport that drops handlers breaks no future",
    "[async][lifetime]") {
  auto t = std::make_shared<wechat::manual_transport>();
  slot<wechat::session_info> s;
  {
    auto wx = wechat::async_client::create(rig::options(), t);
    wx->code2session("c-1", s.handler());
  }  // the user's last reference is gone
  t->run();
  REQUIRE(t->pending_count() == 1);
  REQUIRE(t->respond(t->pending()[0].id, 200, session_body));
  t->run();
  REQUIRE(s.calls == 1);
  CHECK(s.r->ok());

  std::optional<wechat::async_future<wechat::session_info>> f;
  auto t2 = std::make_shared<wechat::manual_transport>();
  {
    auto wx = wechat::async_client::create(rig::options(), t2);
    f = wx->code2session("c-2", wechat::use_future);
  }
  t2->run();
  REQUIRE(t2->pending_count() == 1);
  t2->stop();  // the loop stops for good with the call in flight: its handler is destroyed
  REQUIRE(f->valid());
  const auto r = f->get();
  CHECK(r.error() == wechat::transport_errc::failed);
}

TEST_CASE("async client: every call sends what the sync client sends", "[async][calls]") {
  rig g;
  int done = 0;
  auto count = [&done](auto) { ++done; };
  g.wx->get_phone_number("pc-1", "o-alice", count);
  g.wx->get_user_encrypt_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", count);
  g.wx->get_plugin_open_pid("pl-1", count);
  g.wx->get_user_risk_rank(wechat::risk_rank_request{"o-alice", 0, "1.2.3.4", "", "", "", false},
                           count);
  g.wx->clear_quota(count);
  g.wx->get_api_quota("/cgi-bin/message/custom/send", count);
  g.wx->get_rid_info("rid-1", count);
  g.wx->follower("o-alice", count);
  g.wx->oauth_exchange("oc-1", count);
  g.wx->oauth_refresh("rt-1", count);
  g.wx->sns_userinfo("uat", "o-alice", count);
  g.wx->sns_auth("uat", "o-alice", count);
  wechat::oauth_token snap;
  snap.is_snapshot_user = true;
  slot<wechat::sns_user_info> refused;
  g.wx->sns_userinfo(snap, refused.handler());
  g.give_token("T1");
  g.t->run();
  REQUIRE(refused.calls == 1);
  CHECK(refused.r->error() == wechat::api_errc::api_unauthorized);
  CHECK(refused.r->detail().attempts == 0);
  std::vector<std::string> targets;
  for (auto& r : g.t->pending())
    targets.push_back(r.request.method + " " + r.request.target + " " + r.request.body);
  std::sort(targets.begin(), targets.end());
  const std::vector<std::string> expected = {
      "GET /cgi-bin/user/info?access_token=T1&openid=o-alice&lang=zh_CN ",
      "GET /sns/auth?access_token=uat&openid=o-alice ",
      "GET /sns/oauth2/access_token?appid=" + appid + "&secret=" + secret +
          "&code=oc-1&grant_type=authorization_code ",
      "GET /sns/oauth2/refresh_token?appid=" + appid +
          "&grant_type=refresh_token&refresh_token=rt-1 ",
      "GET /sns/userinfo?access_token=uat&openid=o-alice&lang=zh_CN ",
      "GET /wxa/business/getuserencryptkey?access_token=T1&openid=o-alice&signature=" +
          wechat::session_key_signature("a2V5a2V5a2V5a2V5a2V5aw==") + "&sig_method=hmac_sha256 ",
      "POST /cgi-bin/clear_quota?access_token=T1 {\"appid\":\"" + appid + "\"}",
      "POST /cgi-bin/openapi/quota/get?access_token=T1 "
      "{\"cgi_path\":\"/cgi-bin/message/custom/send\"}",
      "POST /cgi-bin/openapi/rid/get?access_token=T1 {\"rid\":\"rid-1\"}",
      "POST /wxa/business/getuserphonenumber?access_token=T1 "
      "{\"code\":\"pc-1\",\"openid\":\"o-alice\"}",
      "POST /wxa/getpluginopenpid?access_token=T1 {\"code\":\"pl-1\"}",
      "POST /wxa/getuserriskrank?access_token=T1 {\"appid\":\"" + appid +
          "\",\"client_ip\":\"1.2.3.4\",\"openid\":\"o-alice\",\"scene\":0}",
  };
  CHECK(targets == expected);
  for (auto& r : g.t->pending())
    g.t->respond(r.id, 200, R"({"errcode":0})");
  g.t->run();
  CHECK(done == 12);  // each exactly once (most with a missing field: errcode 0 alone)
}

TEST_CASE("async resolve_unionid: local channels at once, getPaidUnionId through the client",
          "[async][unionid]") {
  rig g;
  wechat::resolver_options ro;
  ro.appid = appid;
  ro.bound = true;
  wechat::unionid_evidence e;
  e.session.openid = "o-alice";
  e.session.session_key = "a2V5a2V5a2V5a2V5a2V5aw==";
  SECTION("from the session: no request") {
    e.session.unionid = "u-alice";
    slot<wechat::unionid_result> s;
    g.wx->resolve_unionid(ro, e, s.handler());
    g.t->run();
    CHECK(g.t->sent() == 0);
    REQUIRE(s.calls == 1);
    CHECK(s.r->value().unionid == std::optional<std::string>("u-alice"));
    CHECK(s.r->value().channel == wechat::unionid_channel::session);
    CHECK_FALSE(s.r->value().diagnosis);
  }
  SECTION("a payment in its window: getPaidUnionId answers") {
    e.payment =
        wechat::payment_evidence{wechat::paid_order::by_transaction("tx-9"), g.clock->now() - 60};
    slot<wechat::unionid_result> s;
    g.wx->resolve_unionid(ro, e, s.handler());
    g.give_token("T1");
    const auto reqs = g.waiting("/wxa/getpaidunionid");
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].request.target ==
          "/wxa/getpaidunionid?access_token=T1&openid=o-alice&transaction_id=tx-9");
    CHECK(s.calls == 0);
    REQUIRE(g.t->respond(reqs[0].id, 200, R"({"unionid":"u-paid"})"));
    g.t->run();
    REQUIRE(s.calls == 1);
    const auto& r = s.r->value();
    CHECK(r.unionid == std::optional<std::string>("u-paid"));
    CHECK(r.channel == wechat::unionid_channel::paid);
    CHECK(r.tried == std::vector<wechat::unionid_channel>{wechat::unionid_channel::session,
                                                          wechat::unionid_channel::paid});
    CHECK_FALSE(r.diagnosis);
  }
  SECTION("getPaidUnionId says 89300: the diagnosis says so") {
    e.payment =
        wechat::payment_evidence{wechat::paid_order::by_transaction("tx-9"), g.clock->now() - 60};
    slot<wechat::unionid_result> s;
    g.wx->resolve_unionid(ro, e, s.handler());
    g.give_token("T1");
    REQUIRE(g.t->respond(g.waiting("/wxa/getpaidunionid")[0].id, 200,
                         R"({"errcode":89300,"errmsg":"invalid trade"})"));
    g.t->run();
    REQUIRE(s.calls == 1);
    const auto& r = s.r->value();
    CHECK_FALSE(r.unionid);
    REQUIRE(r.diagnosis);
    CHECK(r.diagnosis->reason == wechat::unionid_reason::payment_not_found);
    CHECK(r.diagnosis->cause == wechat::api_errc::invalid_trade);
  }
  SECTION("a payment past its 5 minutes: no request, the window is the diagnosis") {
    e.payment =
        wechat::payment_evidence{wechat::paid_order::by_transaction("tx-9"), g.clock->now() - 301};
    ro.bound = std::nullopt;
    slot<wechat::unionid_result> s;
    g.wx->resolve_unionid(ro, e, s.handler());
    g.t->run();
    CHECK(g.t->sent() == 0);
    REQUIRE(s.r->value().diagnosis);
    CHECK(s.r->value().diagnosis->reason == wechat::unionid_reason::likely_not_bound);
  }
  SECTION("no openid: misuse, an error") {
    e.session.openid.clear();
    slot<wechat::unionid_result> s;
    g.wx->resolve_unionid(ro, e, s.handler());
    g.t->run();
    CHECK(s.r->error() == wechat::protocol_errc::missing_field);
  }
}

TEST_CASE("async client: a loop that stops for good completes every waiting caller",
          "[async][lifetime]") {
  rig g;
  auto login = g.wx->code2session("c-1", wechat::use_future);
  auto follower = g.wx->code2session("c-1", wechat::use_future);
  auto check = g.wx->check_session_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", wechat::use_future);
  g.t->run();
  REQUIRE(g.t->pending_count() == 2);  // the code's exchange, the token's fetch
  g.t->stop();                         // requests dropped: their waiters are told
  g.t->run();
  for (auto* f : {&login, &follower}) {
    REQUIRE(f->wait_for(0s) == std::future_status::ready);
    CHECK(f->get().error() == wechat::transport_errc::failed);
  }
  REQUIRE(check.wait_for(0s) == std::future_status::ready);
  const auto r = check.get();
  CHECK(r.error() == wechat::transport_errc::failed);
  CHECK(r.detail().cause.find("loop stopped") != std::string::npos);
  CHECK(g.wx->remembered_codes() == 0);  // nothing left in flight for the code
}

TEST_CASE("async client: a call that spends a code is never aborted, its caller only detaches",
          "[async][cancel][deadline]") {
  rig g;
  wechat::cancel_source cancel;
  wechat::call_options o;
  o.cancel = cancel.token();
  slot<wechat::oauth_token> oauth;
  g.wx->oauth_exchange("oc-1", oauth.handler(), o);
  wechat::call_options short_deadline;
  short_deadline.timeout = 100ms;
  slot<wechat::phone_info> phone;
  g.wx->get_phone_number("pc-1", "", phone.handler(), short_deadline);
  slot<std::string> pid;
  g.wx->get_plugin_open_pid("pl-1", pid.handler(), short_deadline);
  g.give_token("T1");
  REQUIRE(g.t->pending_count() == 3);
  for (auto& r : g.t->pending())
    CHECK(r.timeout == 0ms);  // no caller's deadline passed down either
  cancel.cancel();
  g.t->advance(100ms);
  CHECK(oauth.r->error() == std::errc::operation_canceled);
  CHECK(phone.r->error() == wechat::transport_errc::timeout);
  CHECK(pid.r->error() == wechat::transport_errc::timeout);
  CHECK(g.t->cancelled() == 0);
  CHECK(g.t->pending_count() == 3);

  SECTION("a call that spends no code is aborted") {
    slot<std::string> quota;
    g.wx->get_paid_unionid("o-alice", wechat::paid_order::by_transaction("t"), quota.handler(),
                           short_deadline);
    g.t->run();
    REQUIRE(g.waiting("/wxa/getpaidunionid").size() == 1);
    g.t->advance(100ms);
    CHECK(quota.r->error() == wechat::transport_errc::timeout);
    CHECK(g.t->cancelled() == 1);
  }
}

TEST_CASE("async deadlines: an earlier deadline arriving while a later one is armed",
          "[async][deadline]") {
  rig g;
  wechat::call_options slow, fast;
  slow.timeout = 10s;
  fast.timeout = 100ms;
  slot<wechat::session_info> a, b;
  g.wx->code2session("c-slow", a.handler(), slow);
  g.t->advance(10ms);
  g.wx->code2session("c-fast", b.handler(), fast);
  g.t->advance(99ms);
  CHECK(b.calls == 0);
  g.t->advance(1ms);
  REQUIRE(b.calls == 1);
  CHECK(b.r->error() == wechat::transport_errc::timeout);
  CHECK(a.calls == 0);
  g.t->advance(9889ms);  // 9,999 ms since the slow call began
  CHECK(a.calls == 0);
  g.t->advance(1ms);
  REQUIRE(a.calls == 1);
  CHECK(a.r->error() == wechat::transport_errc::timeout);
}

TEST_CASE("async deadlines: no timer is left on the loop once no call waits, and an earlier "
          "deadline's timer replaces a later one",
          "[async][deadline][idle]") {
  rig g;
  wechat::call_options slow, fast;
  slow.timeout = 10s;
  fast.timeout = 100ms;
  slot<wechat::session_info> a, b;
  g.wx->code2session("c-slow", a.handler(), slow);
  g.t->run();
  CHECK(g.t->timers() == 1);
  g.wx->code2session("c-fast", b.handler(), fast);
  g.t->run();
  CHECK(g.t->timers() == 1);  // the 10 s timer was cancelled
  g.t->advance(100ms);
  REQUIRE(b.calls == 1);
  CHECK(b.r->error() == wechat::transport_errc::timeout);
  CHECK(g.t->timers() == 1);  // armed again, for the slow call
  CHECK(a.calls == 0);
  const auto reqs = g.waiting("/sns/jscode2session");
  REQUIRE(reqs.size() == 2);
  for (const auto& r : reqs)
    REQUIRE(g.t->respond(r.id, 200, session_body));
  g.t->run();
  REQUIRE(a.calls == 1);
  CHECK(a.r->ok());
  CHECK(g.wx->pending_deadlines() == 0);
  CHECK(g.t->timers() == 0);  // nothing holds the loop

  // One call at a time: each arms a timer and takes it away when it ends.
  for (int i = 0; i < 3; ++i) {
    slot<wechat::session_info> one;
    g.wx->code2session("c-" + std::to_string(i), one.handler(), slow);
    g.t->run();
    CHECK(g.t->timers() == 1);
    REQUIRE(g.t->respond(g.waiting("/sns/jscode2session").at(0).id, 200, session_body));
    g.t->run();
    REQUIRE(one.calls == 1);
    CHECK(g.t->timers() == 0);
  }
  // A deadline still fires after its timer was cancelled and armed again.
  slot<wechat::session_info> late;
  g.wx->code2session("c-late", late.handler(), fast);
  g.t->advance(100ms);
  REQUIRE(late.calls == 1);
  CHECK(late.r->error() == wechat::transport_errc::timeout);
  CHECK(g.t->timers() == 0);
}

TEST_CASE("async client: a remembered code and a cached token still complete on the loop only",
          "[async][contract]") {
  rig g;
  slot<wechat::session_info> first;
  g.wx->code2session("c-1", first.handler());
  g.t->run();
  REQUIRE(g.t->respond(g.t->pending()[0].id, 200, session_body));
  g.t->run();
  slot<wechat::session_info> remembered;
  g.wx->code2session("c-1", remembered.handler());
  CHECK(remembered.calls == 0);  // not inside the call, though the answer is at hand
  slot<std::string> t1, t2;
  g.wx->access_token(t1.handler());
  g.give_token("T1");
  g.wx->access_token(t2.handler());
  CHECK(t2.calls == 0);
  g.t->run();
  CHECK(remembered.calls == 1);
  CHECK(t2.calls == 1);
}

TEST_CASE("async resolve_unionid: getPaidUnionId past its deadline is a diagnosis, not an error",
          "[async][unionid][deadline]") {
  rig g;
  wechat::resolver_options ro;
  ro.appid = appid;
  ro.rules = wechat::unionid_rules::legacy;  // code2session's silence says nothing then
  wechat::unionid_evidence e;
  e.session.openid = "o-alice";
  e.payment =
      wechat::payment_evidence{wechat::paid_order::by_transaction("tx-9"), g.clock->now() - 60};
  wechat::call_options o;
  o.timeout = 500ms;
  slot<wechat::unionid_result> s;
  g.wx->resolve_unionid(ro, e, s.handler(), o);
  g.t->advance(500ms);  // the token never comes
  REQUIRE(s.calls == 1);
  REQUIRE(s.r->ok());
  REQUIRE(s.r->value().diagnosis);
  CHECK(s.r->value().diagnosis->reason == wechat::unionid_reason::wechat_unavailable);
  CHECK(s.r->value().diagnosis->cause == wechat::transport_errc::timeout);
}

// A fleet's store where another process holds the refresh lock and never saves a token.
struct peer_locked_store final : wechat::token_store {
  std::optional<wechat::stored_token> load(const std::string&, std::error_code& ec) override {
    ec.clear();
    return std::nullopt;
  }
  void save(const std::string&, const wechat::stored_token&, std::error_code& ec) override {
    ec.clear();
  }
  void erase_if(const std::string&, const std::string&, std::error_code& ec) override {
    ec.clear();
  }
  bool acquire(const std::string&, const std::string&, std::chrono::milliseconds,
               std::error_code& ec) override {
    ec.clear();
    return false;
  }
  // In memory: called on the loop, in step with the manual transport.
  bool answers_at_once() const noexcept override { return true; }
};

TEST_CASE("async tokens: a peer holds the store's lock, the loop stops while we poll: no one left "
          "waiting",
          "[async][token][lifetime]") {
  auto t = std::make_shared<wechat::manual_transport>();
  auto wx = wechat::async_client::create(rig::options(), t, std::make_shared<peer_locked_store>());
  std::weak_ptr<wechat::async_client> weak = wx;
  // (a call whose token waiter holds the client: without the guard on the poll's timer, a
  // cycle that no one breaks)
  auto f = wx->check_session_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", wechat::use_future);
  t->run();
  CHECK(t->sent() == 0);  // polling the store, not fetching
  t->advance(100ms);
  CHECK(t->sent() == 0);
  CHECK(f.wait_for(0s) != std::future_status::ready);
  wx.reset();  // the user's reference goes; the poll's timer holds the refresh
  t->stop();
  REQUIRE(f.wait_for(0s) == std::future_status::ready);
  CHECK(f.get().error() == wechat::transport_errc::failed);
  CHECK(weak.expired());  // no cycle left: client, provider and transport are freed
}

// The manual transport, which can refuse work as a full heap (or a user's transport that
// throws) would: post_after throws bad_alloc while `refuse` is set, and post for the next
// `refuse_posts` calls.
struct refusing_transport final : wechat::async_transport {
  std::shared_ptr<wechat::manual_transport> t = std::make_shared<wechat::manual_transport>();
  bool refuse = false;
  int pass_posts = 0;  // posts taken before the refusals start
  int refuse_posts = 0;
  void async_send(wechat::http_request r, wechat::send_options o, wechat::send_handler h) override {
    t->async_send(std::move(r), std::move(o), std::move(h));
  }
  void post(wechat::unique_function<void()> f) override {
    if (pass_posts > 0) {
      --pass_posts;
    } else if (refuse_posts > 0) {
      --refuse_posts;
      throw std::bad_alloc();
    }
    t->post(std::move(f));
  }
  void post_after(std::chrono::milliseconds d, wechat::unique_function<void()> f) override {
    if (refuse) throw std::bad_alloc();
    t->post_after(d, std::move(f));
  }
  // false: as a transport written before post_after_cancellable (the default, which calls
  // post_after and ignores the cancel).
  bool honour_cancel = false;
  // With honour_cancel: the next `refuse_cancellable` timers are refused.
  int refuse_cancellable = 0;
  bool post_after_cancellable(std::chrono::milliseconds d, wechat::unique_function<void()> f,
                              const wechat::cancel_token& c) override {
    if (!honour_cancel) return async_transport::post_after_cancellable(d, std::move(f), c);
    if (refuse) throw std::bad_alloc();
    if (refuse_cancellable > 0) {
      --refuse_cancellable;
      throw std::bad_alloc();
    }
    return t->post_after_cancellable(d, std::move(f), c);
  }
  std::chrono::steady_clock::time_point now() const override { return t->now(); }
  bool running_in_loop() const noexcept override { return t->running_in_loop(); }
};

TEST_CASE("async retries: a retry whose timer the transport refuses ends the call with the "
          "attempt's own error and throws nothing into the loop",
          "[async][retry][token]") {
  auto rt = std::make_shared<refusing_transport>();
  auto wx = wechat::async_client::create(rig::options(), rt);
  slot<std::string> s;
  wx->access_token(s.handler());
  rt->t->run();
  const auto reqs = rt->t->pending();
  REQUIRE(reqs.size() == 1);
  REQUIRE(rt->t->respond(reqs[0].id, 200, R"({"errcode":-1,"errmsg":"system error"})"));
  rt->refuse = true;  // the backoff's timer
  REQUIRE_NOTHROW(rt->t->run());
  REQUIRE(s.calls == 1);
  CHECK(s.r->error() == wechat::api_errc::system_busy);  // what WeChat said, not "failed"
  CHECK(s.r->detail().errcode == -1);
  CHECK(s.r->detail().attempts == 1);
  CHECK(wx->tokens().fetches() == 1);
  CHECK(rt->t->pending_count() == 0);  // no second attempt
  // The refresh is over: the next call fetches again.
  rt->refuse = false;
  slot<std::string> s2;
  wx->access_token(s2.handler());
  rt->t->run();
  REQUIRE(rt->t->pending_count() == 1);
  REQUIRE(
      rt->t->respond(rt->t->pending()[0].id, 200, R"({"access_token":"T2","expires_in":7200})"));
  rt->t->run();
  REQUIRE(s2.calls == 1);
  CHECK(s2.r->value() == "T2");
  rt->t->stop();
}

TEST_CASE("async tokens: a peer holds the store's lock and the poll's next timer is refused: the "
          "call ends and nothing is thrown into the loop",
          "[async][token][lifetime]") {
  auto rt = std::make_shared<refusing_transport>();
  auto wx = wechat::async_client::create(rig::options(), rt, std::make_shared<peer_locked_store>());
  slot<std::string> s;
  wx->access_token(s.handler());
  rt->t->run();  // the lock is taken: the first read of the store is 20 ms away
  CHECK(rt->t->sent() == 0);
  rt->refuse = true;  // the second read's timer, asked for from the loop
  REQUIRE_NOTHROW(rt->t->advance(25ms));
  REQUIRE(s.calls == 1);
  CHECK(s.r->error() == wechat::transport_errc::failed);
  CHECK(rt->t->sent() == 0);
  rt->refuse = false;
  rt->t->stop();
}

TEST_CASE("async code2session: a waiter whose completion cannot be posted loses only its own "
          "caller",
          "[async][code2session][flight]") {
  auto rt = std::make_shared<refusing_transport>();
  auto wx = wechat::async_client::create(rig::options(), rt);
  slot<wechat::session_info> first, second;
  wx->code2session("c-twice", first.handler());
  wx->code2session("c-twice", second.handler());
  rt->t->run();
  REQUIRE(rt->t->pending_count() == 1);  // one flight for both
  REQUIRE(rt->t->respond(rt->t->pending()[0].id, 200, session_body));
  rt->refuse_posts = 1;  // the first waiter's completion
  REQUIRE_NOTHROW(rt->t->run());
  CHECK(first.calls == 0);  // its completion was refused
  REQUIRE(second.calls == 1);
  REQUIRE(second.r->ok());
  CHECK(second.r->value().openid == "o-alice");
  rt->t->stop();
}

TEST_CASE("async tokens: a waiter whose completion cannot be posted loses only its own caller",
          "[async][token][flight]") {
  auto rt = std::make_shared<refusing_transport>();
  auto wx = wechat::async_client::create(rig::options(), rt);
  slot<std::string> first, second;
  wx->access_token(first.handler());
  wx->access_token(second.handler());
  rt->t->run();
  REQUIRE(rt->t->pending_count() == 1);  // one refresh for both
  REQUIRE(
      rt->t->respond(rt->t->pending()[0].id, 200, R"({"access_token":"T1","expires_in":7200})"));
  rt->refuse_posts = 1;  // the first waiter's completion
  REQUIRE_NOTHROW(rt->t->run());
  CHECK(first.calls == 0);
  REQUIRE(second.calls == 1);
  CHECK(second.r->value() == "T1");
  rt->t->stop();
}

TEST_CASE("async deadlines: a re-arm the transport refuses throws nothing into the loop, and the "
          "next call arms again",
          "[async][deadline]") {
  auto rt = std::make_shared<refusing_transport>();
  auto wx = wechat::async_client::create(rig::options(), rt);
  wechat::call_options first, second, third;
  first.timeout = 100ms;
  second.timeout = 200ms;
  third.timeout = 500ms;
  slot<wechat::session_info> a, b, c;
  wx->code2session("c-a", a.handler(), first);  // arms the timer for 100 ms
  wx->code2session("c-b", b.handler(), second);
  rt->t->run();
  rt->refuse = true;  // the re-arm for b's deadline, when a's fires
  REQUIRE_NOTHROW(rt->t->advance(100ms));
  REQUIRE(a.calls == 1);
  CHECK(a.r->error() == wechat::transport_errc::timeout);
  rt->refuse = false;
  rt->t->advance(200ms);
  CHECK(b.calls == 0);  // no timer for it
  // The next call arms for the earliest deadline queued, b's, already past: b expires
  // at once, and c at its own time.
  wx->code2session("c-c", c.handler(), third);
  rt->t->advance(1ms);  // the timer armed for a time past runs on the next turn
  REQUIRE(b.calls == 1);
  CHECK(b.r->error() == wechat::transport_errc::timeout);
  CHECK(c.calls == 0);
  rt->t->advance(498ms);
  CHECK(c.calls == 0);
  rt->t->advance(1ms);
  REQUIRE(c.calls == 1);
  CHECK(c.r->error() == wechat::transport_errc::timeout);
  rt->t->stop();
}

TEST_CASE("async calls: a completion the loop refuses drops that caller only, and throws "
          "nothing into the loop",
          "[async][lifetime]") {
  auto rt = std::make_shared<refusing_transport>();
  auto wx = wechat::async_client::create(rig::options(), rt);
  SECTION("a code's completion: a future hears transport_errc::failed") {
    auto f = wx->code2session("c-f", wechat::use_future);
    rt->t->run();
    REQUIRE(rt->t->pending_count() == 1);
    REQUIRE(rt->t->respond(rt->t->pending()[0].id, 200, session_body));
    rt->refuse_posts = 1;
    REQUIRE_NOTHROW(rt->t->run());
    REQUIRE(f.wait_for(0s) == std::future_status::ready);
    CHECK(f.get().error() == wechat::transport_errc::failed);
  }
  SECTION("a call with a token: a future hears transport_errc::failed") {
    auto f = wx->check_session_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", wechat::use_future);
    rt->t->run();
    REQUIRE(rt->t->pending_count() == 1);  // the token
    REQUIRE(
        rt->t->respond(rt->t->pending()[0].id, 200, R"({"access_token":"T1","expires_in":7200})"));
    rt->t->run();
    REQUIRE(rt->t->pending_count() == 1);  // the call
    REQUIRE(rt->t->respond(rt->t->pending()[0].id, 200, R"({"errcode":0,"errmsg":"ok"})"));
    rt->refuse_posts = 1;
    REQUIRE_NOTHROW(rt->t->run());
    REQUIRE(f.wait_for(0s) == std::future_status::ready);
    CHECK(f.get().error() == wechat::transport_errc::failed);
  }
  SECTION("two deadlines due together: the second still expires") {
    wechat::call_options o;
    o.timeout = 100ms;
    slot<wechat::session_info> a, b;
    wx->code2session("c-1", a.handler(), o);
    wx->code2session("c-2", b.handler(), o);
    rt->t->run();
    rt->refuse_posts = 1;  // the first expiry's completion
    REQUIRE_NOTHROW(rt->t->advance(100ms));
    CHECK(a.calls + b.calls == 1);  // one of the two was dropped, the other answered
  }
  rt->t->stop();
}

TEST_CASE("async code2session: at most code_memory_max codes remembered, the oldest forgotten",
          "[async][code2session][bounds]") {
  auto o = rig::options();
  o.code_memory_max = 3;
  rig g(o);
  auto exchange = [&](const std::string& code) {
    slot<wechat::session_info> s;
    g.wx->code2session(code, s.handler());
    g.t->run();
    const auto reqs = g.waiting("/sns/jscode2session");
    if (!reqs.empty()) {
      REQUIRE(reqs.size() == 1);
      REQUIRE(g.t->respond(reqs[0].id, 200, session_body));
      g.t->run();
    }
    REQUIRE(s.calls == 1);
    return s.r->ok();
  };
  for (int i = 0; i < 10; ++i) {
    REQUIRE(exchange("c-" + std::to_string(i)));
    REQUIRE(g.wx->remembered_codes() <= 3);
  }
  CHECK(g.wx->remembered_codes() == 3);
  CHECK(g.t->sent() == 10);
  // The newest three are remembered: no request.
  for (int i = 7; i < 10; ++i)
    CHECK(exchange("c-" + std::to_string(i)));
  CHECK(g.t->sent() == 10);
  // One forgotten by the cap goes to WeChat again.
  slot<wechat::session_info> old;
  g.wx->code2session("c-6", old.handler());
  g.t->run();
  const auto reqs = g.waiting("/sns/jscode2session");
  REQUIRE(reqs.size() == 1);
  REQUIRE(g.t->respond(reqs[0].id, 200, R"({"errcode":40163,"errmsg":"code been used"})"));
  g.t->run();
  REQUIRE(old.calls == 1);
  CHECK(old.r->error() == wechat::api_errc::code_been_used);
  CHECK(g.t->sent() == 11);
}

TEST_CASE("async tokens: WeChat hands back the rejected token: one forced refresh, 30 s apart",
          "[async][token][force]") {
  rig g;
  auto rejected_then = [&](const std::string& token, slot<void>& s) {
    g.wx->check_session_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", s.handler());
    g.t->run();
    auto reqs = g.waiting("/wxa/checksession");
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].request.target.find("access_token=" + token + "&") != std::string::npos);
    REQUIRE(g.t->respond(reqs[0].id, 200, R"({"errcode":40001,"errmsg":"invalid credential"})"));
    g.t->run();
  };
  auto answer_fetch = [&](const std::string& token, bool forced) {
    const auto fetches = g.waiting("/cgi-bin/stable_token");
    REQUIRE(fetches.size() == 1);
    CHECK(nlohmann::json::parse(fetches[0].request.body)["force_refresh"] == forced);
    REQUIRE(g.t->respond(fetches[0].id, 200,
                         R"({"access_token":")" + token + R"(","expires_in":7200})"));
    g.t->run();
  };
  auto answer_call = [&](const std::string& token) {
    const auto reqs = g.waiting("/wxa/checksession");
    REQUIRE(reqs.size() == 1);
    CHECK(reqs[0].request.target.find("access_token=" + token + "&") != std::string::npos);
    REQUIRE(g.t->respond(reqs[0].id, 200, R"({"errcode":0,"errmsg":"ok"})"));
    g.t->run();
  };
  slot<void> first;
  g.wx->access_token([](wechat::result<std::string>) {});
  g.give_token("T1");
  rejected_then("T1", first);
  answer_fetch("T1", false);  // the stable token is still T1: WeChat's own cache
  answer_fetch("T2", true);   // so one forced refresh, which gives a new one
  answer_call("T2");
  REQUIRE(first.calls == 1);
  CHECK(first.r->ok());
  CHECK(g.wx->tokens().fetches() == 3);

  // T2 rejected too, 10 s later: a forced refresh is not allowed again yet (30 s apart).
  g.clock->advance(10000ms);
  slot<void> second;
  rejected_then("T2", second);
  answer_fetch("T2", false);
  CHECK(g.waiting("/cgi-bin/stable_token").empty());  // no forced fetch
  answer_call("T2");  // the call is made again with what WeChat gave
  REQUIRE(second.calls == 1);
  CHECK(g.wx->tokens().fetches() == 4);

  // 30 s after the first forced refresh, it is allowed again.
  g.clock->advance(20000ms);
  slot<void> third;
  rejected_then("T2", third);
  answer_fetch("T2", false);
  answer_fetch("T3", true);
  answer_call("T3");
  REQUIRE(third.calls == 1);
  CHECK(third.r->ok());
  CHECK(g.wx->tokens().fetches() == 6);
}

namespace {

// A store shared by a fleet: tokens, and a refresh lock that one owner holds at a time
// (what the Redis store does with SET NX PX; no TTL needed here). In memory: called on
// the loop, in step with the manual transport.
struct fleet_store final : wechat::token_store {
  wechat::memory_token_store tokens;
  std::map<std::string, std::string> locks;
  std::optional<wechat::stored_token> load(const std::string& k, std::error_code& ec) override {
    return tokens.load(k, ec);
  }
  void save(const std::string& k, const wechat::stored_token& t, std::error_code& ec) override {
    tokens.save(k, t, ec);
  }
  void erase_if(const std::string& k, const std::string& v, std::error_code& ec) override {
    tokens.erase_if(k, v, ec);
  }
  bool acquire(const std::string& k, const std::string& owner, std::chrono::milliseconds,
               std::error_code& ec) override {
    ec.clear();
    return locks.emplace(k, owner).second;
  }
  void release(const std::string& k, const std::string& owner, std::error_code& ec) override {
    ec.clear();
    const auto it = locks.find(k);
    if (it != locks.end() && it->second == owner) locks.erase(it);
  }
  bool answers_at_once() const noexcept override { return true; }
};

}  // namespace

TEST_CASE("async tokens: a peer holds the store's lock: its token, found by polling, serves "
          "every waiter",
          "[async][token][fleet]") {
  auto t = std::make_shared<wechat::manual_transport>();
  auto clock = std::make_shared<wechat::manual_clock>();
  auto store = std::make_shared<fleet_store>();
  auto wx = wechat::async_client::create(rig::options(), t, store, clock);
  const std::string key = "access_token:" + appid + ":stable";
  std::error_code ec;
  REQUIRE(store->acquire(key + ":lock", "peer", 5000ms, ec));  // another server refreshes
  std::vector<slot<std::string>> waiters(5);
  for (auto& w : waiters)
    wx->access_token(w.handler());
  t->run();
  CHECK(t->sent() == 0);  // polling the store, not fetching
  t->advance(100ms);      // five polls find nothing
  CHECK(t->sent() == 0);
  for (auto& w : waiters)
    CHECK(w.calls == 0);
  // The peer saves its token and lets go of the lock.
  wechat::stored_token peer;
  peer.value = "T-peer";
  peer.expires_at_ms = clock->now_ms() + 7200 * 1000;
  store->save(key, peer, ec);
  REQUIRE_FALSE(ec);
  store->release(key + ":lock", "peer", ec);
  t->advance(20ms);  // the next poll
  for (auto& w : waiters) {
    REQUIRE(w.calls == 1);
    CHECK(w.r->value() == "T-peer");
  }
  CHECK(t->sent() == 0);  // nothing fetched from WeChat
  CHECK(wx->tokens().fetches() == 0);
  CHECK(store->locks.empty());  // and the lock was never ours to leave behind

  SECTION("a peer that never saves: after the lock's TTL, this server takes it and fetches") {
    slot<std::string> later;
    REQUIRE(store->acquire(key + ":lock", "peer", 5000ms, ec));
    wx->tokens().invalidate("T-peer");
    wx->access_token(later.handler());
    t->run();
    CHECK(t->sent() == 0);
    store->release(key + ":lock", "peer", ec);  // the peer died; its lock expired
    t->advance(1000ms);
    CHECK(t->sent() == 0);  // still polling: the lock's TTL (5 s) has not passed
    t->advance(4200ms);
    const auto fetches = t->pending();
    REQUIRE(fetches.size() == 1);  // then it takes the lock and fetches
    CHECK(store->locks.count(key + ":lock") == 1);
    REQUIRE(t->respond(fetches[0].id, 200, R"({"access_token":"T-own","expires_in":7200})"));
    t->run();
    REQUIRE(later.calls == 1);
    CHECK(later.r->value() == "T-own");
    CHECK(store->locks.empty());  // released
    CHECK(store->load(key, ec)->value == "T-own");
  }
  t->stop();
}

namespace {

// A clock that throws, for its next `throws` reads, what a broken time source (or a
// bad_alloc inside one) would; otherwise a manual clock.
struct throwing_clock final : wechat::time_source {
  wechat::manual_clock base;
  mutable std::atomic<int> skip{0};  // reads that still succeed before the throws
  mutable std::atomic<int> throws{0};
  std::int64_t now_ms() const override {
    if (skip.load() > 0) {
      --skip;
      return base.now_ms();
    }
    if (throws.load() > 0) {
      --throws;
      throw std::runtime_error("the clock failed");
    }
    return base.now_ms();
  }
};

}  // namespace

TEST_CASE("async tokens: a throw while a fetched token lands reaches no one: the waiters get the "
          "token and the next call refreshes from the store",
          "[async][token][robust]") {
  auto t = std::make_shared<wechat::manual_transport>();
  auto clk = std::make_shared<throwing_clock>();
  auto wx = wechat::async_client::create(rig::options(), t, nullptr, clk);
  slot<std::string> a, b;
  wx->access_token(a.handler());
  wx->access_token(b.handler());
  t->run();
  REQUIRE(t->pending_count() == 1);
  REQUIRE(t->respond(t->pending()[0].id, 200, R"({"access_token":"T1","expires_in":7200})"));
  clk->throws = 1;  // the read that dates the token for the cache
  REQUIRE_NOTHROW(t->run());
  CHECK(clk->throws.load() == 0);  // it was read, and threw
  REQUIRE(a.calls == 1);
  REQUIRE(b.calls == 1);
  CHECK(a.r->value() == "T1");
  CHECK(b.r->value() == "T1");
  // Not cached (it could not be dated), but saved in the store before it landed; and no
  // refresh is left marked running (the next call would wait for ever): the next call
  // refreshes, and finds the token in the store without a fetch.
  slot<std::string> c;
  wx->access_token(c.handler());
  t->run();
  CHECK(t->pending_count() == 0);
  REQUIRE(c.calls == 1);
  CHECK(c.r->value() == "T1");
  CHECK(wx->tokens().fetches() == 1);
  t->stop();
}

TEST_CASE("async tokens: a throw between the fetch and its continuation reaches no one: the token "
          "WeChat handed back is used without a forced refresh",
          "[async][token][robust][force]") {
  auto t = std::make_shared<wechat::manual_transport>();
  auto clk = std::make_shared<throwing_clock>();
  auto wx = wechat::async_client::create(rig::options(), t, nullptr, clk);
  slot<std::string> warm;
  wx->access_token(warm.handler());
  t->run();
  REQUIRE(t->respond(t->pending()[0].id, 200, R"({"access_token":"T1","expires_in":7200})"));
  t->run();
  REQUIRE(warm.r->value() == "T1");
  slot<void> s;
  wx->check_session_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", s.handler());
  t->run();
  REQUIRE(t->pending_count() == 1);
  REQUIRE(
      t->respond(t->pending()[0].id, 200, R"({"errcode":40001,"errmsg":"invalid credential"})"));
  t->run();  // T1 invalidated: a refresh is sent
  REQUIRE(t->pending_count() == 1);
  const auto fetch = t->pending()[0];
  REQUIRE(fetch.request.target.rfind("/cgi-bin/stable_token", 0) == 0);
  CHECK(nlohmann::json::parse(fetch.request.body)["force_refresh"] == false);
  // WeChat hands back T1 again; the clock read that would allow a forced refresh throws.
  REQUIRE(t->respond(fetch.id, 200, R"({"access_token":"T1","expires_in":7200})"));
  clk->throws = 1;
  REQUIRE_NOTHROW(t->run());
  CHECK(clk->throws.load() == 0);
  REQUIRE(t->pending_count() == 1);  // the call again, with T1: no forced fetch
  const auto again = t->pending()[0];
  CHECK(again.request.target.rfind("/wxa/checksession?access_token=T1&", 0) == 0);
  REQUIRE(t->respond(again.id, 200, R"({"errcode":0,"errmsg":"ok"})"));
  t->run();
  REQUIRE(s.calls == 1);
  CHECK(s.r->ok());
  CHECK(wx->tokens().fetches() == 2);
  // No refresh left marked running: a rejection now refreshes again.
  wx->tokens().invalidate("T1");
  slot<std::string> next;
  wx->access_token(next.handler());
  t->run();
  REQUIRE(t->pending_count() == 1);
  REQUIRE(t->respond(t->pending()[0].id, 200, R"({"access_token":"T2","expires_in":7200})"));
  t->run();
  REQUIRE(next.calls == 1);
  CHECK(next.r->value() == "T2");
  t->stop();
}

namespace {

// A store that does not answer at once (as Redis): each call waits at a gate the test
// opens, and is recorded with the thread that made it.
struct gated_store final : wechat::token_store {
  wechat::memory_token_store tokens;
  std::mutex m;
  std::condition_variable opened;
  bool open = false;
  std::vector<std::string> calls;
  std::vector<std::thread::id> threads;

  void enter(const char* what) {
    std::unique_lock<std::mutex> lock(m);
    calls.emplace_back(what);
    threads.push_back(std::this_thread::get_id());
    // Bounded: a store wrongly called on the test's own thread fails the test, not hangs it.
    if (!opened.wait_for(lock, 10s, [&] { return open; })) calls.emplace_back("gate timed out");
  }
  void let_through() {
    {
      std::lock_guard<std::mutex> lock(m);
      open = true;
    }
    opened.notify_all();
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> lock(m);
    return calls;
  }
  std::optional<wechat::stored_token> load(const std::string& k, std::error_code& ec) override {
    enter("load");
    return tokens.load(k, ec);
  }
  void save(const std::string& k, const wechat::stored_token& t, std::error_code& ec) override {
    enter("save");
    tokens.save(k, t, ec);
  }
  void erase_if(const std::string& k, const std::string& v, std::error_code& ec) override {
    enter("erase_if");
    tokens.erase_if(k, v, ec);
  }
  bool acquire(const std::string&, const std::string&, std::chrono::milliseconds,
               std::error_code& ec) override {
    enter("acquire");
    ec.clear();
    return true;
  }
  void release(const std::string&, const std::string&, std::error_code& ec) override {
    enter("release");
    std::unique_lock<std::mutex> lock(m);
    if (!opened.wait_for(lock, 10s, [&] { return !hold_release; }))
      calls.emplace_back("release hold timed out");
    ec.clear();
  }
  // A release waits here, after the gate, while this is set.
  bool hold_release = false;
  void let_release() {
    {
      std::lock_guard<std::mutex> lock(m);
      hold_release = false;
    }
    opened.notify_all();
  }
};

// Runs the manual loop until `done()` holds, for at most 10 s of real time (the store's
// worker thread posts its answers from outside the loop).
template <class Pred> bool run_until(wechat::manual_transport& t, Pred done) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    t.run();
    if (done()) return true;
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(1ms);
  }
}

}  // namespace

TEST_CASE("async tokens: a store that does not answer at once is called on a worker thread, in "
          "order, while the loop goes on",
          "[async][token][store-worker]") {
  auto t = std::make_shared<wechat::manual_transport>();
  auto store = std::make_shared<gated_store>();
  auto wx = wechat::async_client::create(rig::options(), t, store);
  slot<std::string> a;
  wx->access_token(a.handler());
  // The refresh's first store read waits at the gate, on another thread: the loop is free.
  REQUIRE(run_until(*t, [&] { return store->seen().size() == 1; }));
  bool ran = false;
  t->post([&] { ran = true; });
  t->run();
  CHECK(ran);
  CHECK(a.calls == 0);
  CHECK(t->pending_count() == 0);
  store->let_through();
  REQUIRE(run_until(*t, [&] { return t->pending_count() == 1; }));  // load, acquire, load: fetch
  REQUIRE(t->respond(t->pending()[0].id, 200, R"({"access_token":"T1","expires_in":7200})"));
  REQUIRE(run_until(*t, [&] { return a.calls == 1; }));  // landed once saved
  CHECK(a.r->value() == "T1");
  {
    std::error_code ec;
    const auto saved = store->tokens.load(wx->tokens().store_key(), ec);
    REQUIRE(saved);
    CHECK(saved->value == "T1");
  }
  REQUIRE(run_until(*t, [&] { return store->seen().size() == 5; }));
  CHECK(store->seen() == std::vector<std::string>{"load", "acquire", "load", "save", "release"});
  {
    std::lock_guard<std::mutex> lock(store->m);
    for (const auto& id : store->threads)
      CHECK(id != std::this_thread::get_id());
  }
  // WeChat rejects T1: its erase is queued before the next refresh's read, which then
  // finds nothing and fetches.
  wx->tokens().invalidate("T1");
  slot<std::string> b;
  wx->access_token(b.handler());
  REQUIRE(run_until(*t, [&] { return t->pending_count() == 1; }));
  auto seen = store->seen();
  REQUIRE(seen.size() >= 7);
  CHECK(seen[5] == "erase_if");
  CHECK(seen[6] == "load");
  REQUIRE(t->respond(t->pending()[0].id, 200, R"({"access_token":"T2","expires_in":7200})"));
  REQUIRE(run_until(*t, [&] { return b.calls == 1; }));
  CHECK(b.r->value() == "T2");
  CHECK(wx->tokens().fetches() == 2);
  REQUIRE(run_until(*t, [&] { return store->seen().size() == 11; }));
  std::error_code ec;
  const auto saved = store->tokens.load(wx->tokens().store_key(), ec);
  REQUIRE(saved);
  CHECK(saved->value == "T2");
  t->stop();
}

TEST_CASE("async tokens: a store's answer the loop can no longer take lands the refresh as failed, "
          "and frees everything",
          "[async][token][store-worker][lifetime]") {
  auto t = std::make_shared<wechat::manual_transport>();
  auto store = std::make_shared<gated_store>();
  auto wx = wechat::async_client::create(rig::options(), t, store);
  std::weak_ptr<wechat::async_token_provider> provider = wx->tokens().shared_from_this();
  auto f = wx->access_token(wechat::use_future);
  REQUIRE(run_until(*t, [&] { return store->seen().size() == 1; }));
  wx.reset();
  t->stop();  // the loop is gone: the store's answer has nowhere to go
  store->let_through();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  const auto r = f.get();
  CHECK(r.error() == wechat::transport_errc::failed);
  // The refresh's guard held the provider: the worker dropped that last reference on its
  // own thread (the provider's worker then detached itself), and nothing else holds it.
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!provider.expired() && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(1ms);
  CHECK(provider.expired());
  CHECK(store->seen() == std::vector<std::string>{"load"});
}

TEST_CASE("async tokens: a refresh that throws while it holds the store's lock releases it",
          "[async][token][robust][fleet]") {
  auto t = std::make_shared<wechat::manual_transport>();
  auto clk = std::make_shared<throwing_clock>();
  auto store = std::make_shared<fleet_store>();
  auto wx = wechat::async_client::create(rig::options(), t, store, clk);
  std::error_code ec;
  store->tokens.save(wx->tokens().store_key(), {"STALE", 1000}, ec);  // a token expired long ago
  // Reads: get()'s, the first look at the store's (stale) token, then the look once the
  // lock is held, which throws.
  clk->skip = 2;
  clk->throws = 1;
  slot<std::string> a;
  REQUIRE_NOTHROW(wx->access_token(a.handler()));
  REQUIRE_NOTHROW(t->run());
  CHECK(clk->throws.load() == 0);
  REQUIRE(a.calls == 1);
  CHECK(a.r->error() == wechat::transport_errc::failed);
  CHECK(store->locks.empty());  // released: no one waits out its TTL
  CHECK(t->sent() == 0);
  // The next call takes the lock at once and fetches (no poll behind a lock left held).
  slot<std::string> b;
  wx->access_token(b.handler());
  t->run();
  REQUIRE(t->pending_count() == 1);
  REQUIRE(t->respond(t->pending()[0].id, 200, R"({"access_token":"T1","expires_in":7200})"));
  t->run();
  REQUIRE(b.calls == 1);
  CHECK(b.r->value() == "T1");
  CHECK(store->locks.empty());
  const auto saved = store->tokens.load(wx->tokens().store_key(), ec);
  REQUIRE(saved);
  CHECK(saved->value == "T1");
  t->stop();
}

TEST_CASE("async tokens: the loop refuses the save's answer: the waiters still get the fetched "
          "token, and the lock is released",
          "[async][token][store-worker][robust]") {
  auto rt = std::make_shared<refusing_transport>();
  auto store = std::make_shared<gated_store>();
  store->let_through();
  auto wx = wechat::async_client::create(rig::options(), rt, store);
  slot<std::string> a;
  wx->access_token(a.handler());
  REQUIRE(run_until(*rt->t, [&] { return rt->t->pending_count() == 1; }));  // load, acquire, load
  rt->pass_posts = 0;
  rt->refuse_posts = 1;  // the save's answer, posted from the store's worker
  REQUIRE(
      rt->t->respond(rt->t->pending()[0].id, 200, R"({"access_token":"T1","expires_in":7200})"));
  REQUIRE(run_until(*rt->t, [&] { return a.calls == 1; }));
  CHECK(rt->refuse_posts == 0);  // it was refused
  CHECK(a.r->value() == "T1");
  REQUIRE(run_until(*rt->t, [&] { return store->seen().size() == 5; }));
  CHECK(store->seen() == std::vector<std::string>{"load", "acquire", "load", "save", "release"});
  // The token was saved: the next refresh (the cache dropped) finds it without a fetch.
  wx->tokens().invalidate("nothing");  // (a token that is not the current one changes nothing)
  slot<std::string> b;
  wx->access_token(b.handler());
  rt->t->run();
  REQUIRE(b.calls == 1);
  CHECK(b.r->value() == "T1");
  CHECK(wx->tokens().fetches() == 1);
  rt->t->stop();
}

TEST_CASE("async tokens: calls rejected together with one token ask the store to erase it once",
          "[async][token][store-worker]") {
  auto t = std::make_shared<wechat::manual_transport>();
  auto store = std::make_shared<gated_store>();
  store->let_through();
  auto wx = wechat::async_client::create(rig::options(), t, store);
  constexpr int callers = 8;
  std::vector<slot<void>> calls(callers);
  for (auto& c : calls)
    wx->check_session_key("o-alice", "a2V5a2V5a2V5a2V5a2V5aw==", c.handler());
  REQUIRE(run_until(*t, [&] { return t->pending_count() == 1; }));  // one token fetch
  REQUIRE(t->respond(t->pending()[0].id, 200, R"({"access_token":"T1","expires_in":7200})"));
  REQUIRE(run_until(*t, [&] { return t->pending_count() == callers; }));
  // WeChat turns every call away: each invalidates T1 and waits for the next token.
  for (const auto& r : t->pending()) {
    REQUIRE(r.request.target.find("access_token=T1&") != std::string::npos);
    REQUIRE(t->respond(r.id, 200, R"({"errcode":40001,"errmsg":"invalid credential"})"));
  }
  REQUIRE(run_until(*t, [&] { return t->pending_count() == 1; }));  // the next token's fetch
  REQUIRE(t->respond(t->pending()[0].id, 200, R"({"access_token":"T2","expires_in":7200})"));
  REQUIRE(run_until(*t, [&] { return t->pending_count() == callers; }));
  for (const auto& r : t->pending()) {
    REQUIRE(r.request.target.find("access_token=T2&") != std::string::npos);
    REQUIRE(t->respond(r.id, 200, R"({"errcode":0,"errmsg":"ok"})"));
  }
  REQUIRE(run_until(*t, [&] {
    for (const auto& c : calls)
      if (c.calls != 1) return false;
    return true;
  }));
  for (const auto& c : calls)
    CHECK(c.r->ok());
  CHECK(wx->tokens().fetches() == 2);
  // The refresh's calls (load, acquire, load, save, release: twice) and one erase.
  REQUIRE(run_until(*t, [&] { return store->seen().size() >= 11; }));
  const auto seen = store->seen();
  CHECK(std::count(seen.begin(), seen.end(), "erase_if") == 1);
  CHECK(seen.size() == 11);
  // Once a refresh replaced it, a late rejection of T1 erases again, once (compare-and-
  // delete: T2 stays); a rejection of T2 is a new one. The store's calls keep their order:
  // when T2 is gone, every erase queued before it is done.
  wx->tokens().invalidate("T1");
  wx->tokens().invalidate("T1");
  wx->tokens().invalidate("T2");
  std::error_code ec;
  REQUIRE(run_until(*t, [&] { return !store->tokens.load(wx->tokens().store_key(), ec); }));
  const auto after = store->seen();
  CHECK(std::count(after.begin(), after.end(), "erase_if") == 3);
  CHECK(after.size() == 13);
  t->stop();
}

TEST_CASE("async tokens: when_idle waits for a refresh ahead of expiry that no caller waits for",
          "[async][token][idle]") {
  rig g;
  slot<std::string> first;
  g.wx->access_token(first.handler());
  g.give_token("T1", 7200);
  int idle = 0;
  g.wx->tokens().when_idle([&] { ++idle; });
  CHECK(idle == 0);  // never inside the call
  g.t->run();
  CHECK(idle == 1);  // nothing in progress: at once, on the loop

  g.clock->advance(std::chrono::seconds(7200 - 299));  // inside the refresh-ahead window
  slot<std::string> hit;
  g.wx->access_token(hit.handler());
  g.t->run();
  REQUIRE(hit.calls == 1);
  CHECK(hit.r->value() == "T1");  // answered from the cache; the refresh goes on behind it
  g.wx->tokens().when_idle([&] { ++idle; });
  g.t->run();
  CHECK(idle == 1);
  CHECK(g.wx->tokens().fetches() == 1);
  g.give_token("T2");
  CHECK(idle == 2);
  CHECK(g.wx->tokens().fetches() == 2);
}

TEST_CASE("async tokens: when_idle runs after the store calls the refresh queued",
          "[async][token][idle][store-worker]") {
  auto t = std::make_shared<wechat::manual_transport>();
  auto store = std::make_shared<gated_store>();
  store->hold_release = true;
  store->let_through();
  auto wx = wechat::async_client::create(rig::options(), t, store);
  slot<std::string> a;
  wx->access_token(a.handler());
  std::vector<std::string> seen_when_idle;
  bool idle = false;
  wx->tokens().when_idle([&] {
    seen_when_idle = store->seen();
    idle = true;
  });
  REQUIRE(run_until(*t, [&] { return t->pending_count() == 1; }));
  CHECK_FALSE(idle);
  REQUIRE(t->respond(t->pending()[0].id, 200, R"({"access_token":"T1","expires_in":7200})"));
  REQUIRE(run_until(*t, [&] { return a.calls == 1; }));  // landed once saved
  // The lock's release, queued before the refresh landed, is held in the store: when_idle
  // waits for it while the loop runs.
  REQUIRE(run_until(*t, [&] { return store->seen().size() == 5; }));
  for (int i = 0; i < 20; ++i) {
    t->run();
    std::this_thread::sleep_for(1ms);
  }
  CHECK_FALSE(idle);
  store->let_release();
  REQUIRE(run_until(*t, [&] { return idle; }));
  CHECK(a.r->value() == "T1");
  CHECK(seen_when_idle == std::vector<std::string>{"load", "acquire", "load", "save", "release"});
  t->stop();
}

TEST_CASE("async deadlines: on a transport that cannot cancel timers, calls one after another "
          "share the armed timer",
          "[async][deadline]") {
  auto rt = std::make_shared<refusing_transport>();  // the default post_after_cancellable
  auto wx = wechat::async_client::create(rig::options(), rt);
  for (int i = 0; i < 3; ++i) {
    slot<wechat::session_info> one;
    wx->code2session("c-" + std::to_string(i), one.handler());
    rt->t->run();
    REQUIRE(rt->t->respond(rt->t->pending().at(0).id, 200, session_body));
    rt->t->run();
    REQUIRE(one.calls == 1);
    CHECK(rt->t->timers() == 1);  // the first call's, kept: not one per call
  }
  // A call made 10 s later, its deadline (15 s) past the kept timer's, arms nothing; the
  // kept timer fires 5 s later and arms one for it, which ends it in its time.
  rt->t->advance(10s);
  slot<wechat::session_info> later;
  wx->code2session("c-later", later.handler());
  rt->t->run();
  CHECK(rt->t->timers() == 1);
  rt->t->advance(5s);
  CHECK(later.calls == 0);
  CHECK(rt->t->timers() == 1);  // armed again, for the call in flight
  rt->t->advance(9999ms);
  CHECK(later.calls == 0);
  rt->t->advance(1ms);
  REQUIRE(later.calls == 1);
  CHECK(later.r->error() == wechat::transport_errc::timeout);
  rt->t->stop();
}

TEST_CASE("async deadlines: an earlier deadline whose timer is refused leaves the later timer "
          "armed",
          "[async][deadline][robust]") {
  auto rt = std::make_shared<refusing_transport>();
  rt->honour_cancel = true;
  auto wx = wechat::async_client::create(rig::options(), rt);
  wechat::call_options slow, fast;
  slow.timeout = 10s;
  fast.timeout = 100ms;
  slot<wechat::session_info> a, b;
  wx->code2session("c-slow", a.handler(), slow);
  rt->t->run();
  REQUIRE(rt->t->timers() == 1);
  rt->refuse = true;
  CHECK_THROWS_AS(wx->code2session("c-fast", b.handler(), fast), std::bad_alloc);
  rt->refuse = false;
  CHECK(rt->t->timers() == 1);  // not cancelled for a timer that was never set
  CHECK(wx->pending_deadlines() == 1);  // the refused call is not queued
  SECTION("the later call's deadline still fires") {
    rt->t->advance(10s);
    REQUIRE(a.calls == 1);
    CHECK(a.r->error() == wechat::transport_errc::timeout);
  }
  SECTION("and is cancelled when that call ends") {
    REQUIRE(rt->t->respond(rt->t->pending().at(0).id, 200, session_body));
    rt->t->run();
    REQUIRE(a.calls == 1);
    CHECK(a.r->ok());
    CHECK(wx->pending_deadlines() == 0);
    CHECK(rt->t->timers() == 0);
  }
  rt->t->stop();
}

TEST_CASE("async deadlines: a re-arm refused when a timer fires is made at the next "
          "completion",
          "[async][deadline][robust]") {
  auto rt = std::make_shared<refusing_transport>();
  rt->honour_cancel = true;
  auto wx = wechat::async_client::create(rig::options(), rt);
  wechat::call_options first, second, third;
  first.timeout = 100ms;
  second.timeout = 300ms;
  third.timeout = 1s;
  slot<wechat::session_info> a, b, c;
  wx->code2session("c-a", a.handler(), first);
  wx->code2session("c-b", b.handler(), second);
  wx->code2session("c-c", c.handler(), third);
  rt->t->run();
  REQUIRE(rt->t->timers() == 1);
  rt->refuse_cancellable = 1;  // the re-arm for the second call, when the first one's fires
  rt->t->advance(100ms);
  REQUIRE(a.calls == 1);
  CHECK(a.r->error() == wechat::transport_errc::timeout);
  CHECK(rt->refuse_cancellable == 0);
  CHECK(rt->t->timers() == 0);  // refused: the two calls left have no timer
  // The third call's answer comes: its completion arms the timer the second call needs.
  const auto reqs = rt->t->pending();
  REQUIRE(reqs.size() == 3);
  REQUIRE(rt->t->respond(reqs[2].id, 200, session_body));
  rt->t->run();
  REQUIRE(c.calls == 1);
  CHECK(c.r->ok());
  CHECK(rt->t->timers() == 1);
  rt->t->advance(199ms);
  CHECK(b.calls == 0);
  rt->t->advance(1ms);
  REQUIRE(b.calls == 1);
  CHECK(b.r->error() == wechat::transport_errc::timeout);
  CHECK(rt->t->timers() == 0);
  rt->t->stop();
}
