// The C++20 coroutine layer (wechat::use_coroutine), under GCC 12 (clang 14 cannot build
// C++20 coroutines against Debian's libstdc++ here): a coroutine awaits calls one after
// another and resumes on the transport's loop; many run at once on one thread; an error
// comes back as a result, not an exception. Built with -std=c++20; ASan in `make asan`.
#include <catch2/catch.hpp>
#include <wechat/async.hpp>
#include <wechat/async/manual_transport.hpp>

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#ifndef WECHAT_ASYNC_COROUTINES
#error "this test is built as C++20 with coroutines"
#endif

namespace {

// The smallest coroutine type: starts at once, frees itself at the end (what
// drogon::AsyncTask or asio's detached spawn do).
struct fire_and_forget {
  struct promise_type {
    fire_and_forget get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() { std::terminate(); }
  };
};

struct login_outcome {
  std::optional<wechat::result<wechat::session_info>> session;
  std::optional<wechat::result<std::string>> unionid;
  bool resumed_on_loop = true;
  bool finished = false;
};

// A login handler as a backend writes it: the code's session, then the paid unionid.
fire_and_forget login(std::shared_ptr<wechat::async_client> wx,
                      std::shared_ptr<wechat::manual_transport> t, std::string code,
                      login_outcome& out) {
  auto s = co_await wx->code2session(code, wechat::use_coroutine);
  out.resumed_on_loop = out.resumed_on_loop && t->running_in_loop();
  const bool ok = s.ok();
  const std::string openid = ok ? s.value().openid : std::string();
  out.session.emplace(std::move(s));
  if (ok) {
    auto u = co_await wx->get_paid_unionid(openid, wechat::paid_order::by_transaction("tx"),
                                           wechat::use_coroutine);
    out.resumed_on_loop = out.resumed_on_loop && t->running_in_loop();
    out.unionid.emplace(std::move(u));
  }
  out.finished = true;
}

}  // namespace

TEST_CASE("co_await: calls in sequence, resumed on the loop, many coroutines on one thread",
          "[async][coroutine]") {
  auto t = std::make_shared<wechat::manual_transport>();
  wechat::client_options o;
  o.appid = "wx1000000000000001";
  o.secret = "s3cret";
  auto wx = wechat::async_client::create(o, t);

  std::vector<login_outcome> outs(50);
  for (std::size_t i = 0; i < outs.size(); ++i)
    login(wx, t, "c-" + std::to_string(i), outs[i]);
  for (auto& x : outs)
    CHECK_FALSE(x.session);  // suspended: nothing ran inside the call
  t->run();
  REQUIRE(t->pending_count() == 50);
  for (auto& r : t->pending()) {
    const std::string code = r.request.target.substr(r.request.target.find("js_code=") + 8, 4);
    if (code == "c-7&")  // one code fails
      t->respond(r.id, 200, R"({"errcode":40029,"errmsg":"invalid code"})");
    else
      t->respond(r.id, 200,
                 R"({"openid":"o-)" + code.substr(0, code.find('&')) +
                     R"(","session_key":"a2V5a2V5a2V5a2V5a2V5aw=="})");
  }
  t->run();
  auto token = t->pending();
  REQUIRE(token.size() == 1);  // 49 coroutines wait behind one token fetch
  t->respond(token[0].id, 200, R"({"access_token":"T1","expires_in":7200})");
  t->run();
  REQUIRE(t->pending_count() == 49);
  for (auto& r : t->pending())
    t->respond(r.id, 200, R"({"unionid":"u-1"})");
  t->run();
  for (std::size_t i = 0; i < outs.size(); ++i) {
    INFO(i);
    REQUIRE(outs[i].finished);
    CHECK(outs[i].resumed_on_loop);
    if (i == 7) {
      CHECK(outs[i].session->error() == wechat::api_errc::invalid_code);
      CHECK_FALSE(outs[i].unionid);
    } else {
      CHECK(outs[i].session->value().openid == "o-c-" + std::to_string(i));
      CHECK(outs[i].unionid->value() == "u-1");
    }
  }
}

TEST_CASE("co_await: a deadline ends the wait with a result, the coroutine goes on",
          "[async][coroutine][deadline]") {
  auto t = std::make_shared<wechat::manual_transport>();
  wechat::client_options o;
  o.appid = "wx1000000000000001";
  o.secret = "s3cret";
  auto wx = wechat::async_client::create(o, t);
  std::optional<wechat::result<std::string>> got;
  [](std::shared_ptr<wechat::async_client> c,
     std::optional<wechat::result<std::string>>& out) -> fire_and_forget {
    wechat::call_options opts;
    opts.timeout = std::chrono::milliseconds(500);
    out.emplace(co_await c->access_token(wechat::use_coroutine, opts));
  }(wx, got);
  t->advance(std::chrono::milliseconds(499));
  CHECK_FALSE(got);
  t->advance(std::chrono::milliseconds(1));
  REQUIRE(got);
  CHECK(got->error() == wechat::transport_errc::timeout);
  t->stop();
}
