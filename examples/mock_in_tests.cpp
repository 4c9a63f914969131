// mock_in_tests: how to write your own offline integration test of a WeChat login backend.
//
// The backend below (`account_service`) is a stand-in for yours: it signs users in with
// the code from wx.login and keeps their profile. The tests run it against the embedded
// mock of api.weixin.qq.com over real HTTP on loopback; no network, no WeChat account.
// Copy this file, replace account_service with your own code, and keep the pattern:
//
//   1. one mock_wechat::server per test (or per fixture): it binds a free port;
//   2. register your app in its world, point your client's base_url at mock.base_url();
//   3. play the device with world().login(), get_user_info(), pay()...;
//   4. bend the world: clock().advance() for expiry, faults().add() for WeChat failing;
//   5. one clock for both sides: give your code mock.world().time_source() (the client,
//      the resolver, verify_options::clock) so that advancing the mock's clock ages what
//      your code checks too (watermarks, remembered codes, tokens).
//
// The mock behaves as WeChat does today (the UnionID rules since 2021-02-23, anonymous
// profiles since 2021-04-28); mock_wechat::options::rules and ::profiles give the older
// behaviour when a test needs it.
//
// Build: link wechat::mock (it brings wechat::wechat) and Catch2.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <mock_wechat/mock_wechat.hpp>
#include <wechat/wechat.hpp>

#include <map>
#include <mutex>
#include <string>

// ---- the code under test: a small backend ------------------------------------------------
struct account {
  std::string openid;
  std::optional<std::string> unionid;
  std::string nickname;
};

class account_service {
public:
  /// `clock`: what "now" is for the watermark's age check (the system clock in production).
  account_service(wechat::client& wx, std::string appid,
                  std::shared_ptr<const wechat::time_source> clock)
      : wx_(wx), appid_(std::move(appid)), clock_(std::move(clock)) {}

  /// Signs a user in. Returns the openid, or the error WeChat (or the network) gave.
  std::string sign_in(const std::string& code, std::error_code& ec) {
    const auto s = wx_.code2session(code, ec);
    if (ec) return {};
    std::lock_guard<std::mutex> lock(mutex_);
    auto& a = accounts_[s.openid];
    a.openid = s.openid;
    if (s.unionid) a.unionid = s.unionid;
    keys_[s.openid] = s.session_key;
    return s.openid;
  }

  /// Stores the profile the device sent (wx.getUserInfo or wx.getUserProfile data), after
  /// decrypting and verifying it.
  void update_profile(const std::string& openid, const wechat::device_data& d,
                      std::error_code& ec) {
    std::string key;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      key = keys_.at(openid);
    }
    wechat::verify_options v;
    v.appid = appid_;
    v.max_age = std::chrono::minutes(10);  // a replayed payload is refused
    v.clock = clock_.get();
    // getUserProfile data carries no ids: the profile alone, the ids stay the session's
    const auto profile = wechat::decrypt_user_profile(key, d, v, ec);
    if (ec) return;
    std::lock_guard<std::mutex> lock(mutex_);
    accounts_[openid].nickname = profile.nickname;
  }

  account get(const std::string& openid) {
    std::lock_guard<std::mutex> lock(mutex_);
    return accounts_.at(openid);
  }

private:
  wechat::client& wx_;
  std::string appid_;
  std::shared_ptr<const wechat::time_source> clock_;
  std::mutex mutex_;
  std::map<std::string, account> accounts_;
  std::map<std::string, std::string> keys_;  // session_key per openid: server side only
};

// ---- the tests ------------------------------------------------------------------------------
namespace {

const std::string appid = "wx1234567890abcdef";
const std::string secret = "test-secret";

// Everything one test needs: the mock, a client pointed at it, the service.
struct world_fixture {
  mock_wechat::server mock;
  std::shared_ptr<wechat::transport> transport;
  wechat::client wx;
  account_service service;

  // The client and the service read the mock's clock: one time for the whole test.
  world_fixture()
      : transport(make_transport(mock)),
        wx(options(), transport, nullptr, mock.world().time_source()),
        service(wx, appid, mock.world().time_source()) {
    // A mini program bound to an Open Platform account: UnionIDs exist.
    mock.world().add_app({appid, secret, mock_wechat::app_type::miniprogram, "my-open-account"});
  }
  static std::shared_ptr<wechat::transport> make_transport(const mock_wechat::server& m) {
    wechat::httplib_transport_options t;
    t.base_url = m.base_url();
    t.read_timeout = std::chrono::milliseconds(500);  // faults below use longer delays
    return wechat::httplib_transport::create(t);
  }
  static wechat::client_options options() {
    wechat::client_options o;
    o.appid = appid;
    o.secret = secret;
    o.backoff = std::chrono::milliseconds(1);  // keep retries fast in tests
    return o;
  }
};

}  // namespace

TEST_CASE("a user signs in with the code from wx.login") {
  world_fixture f;
  const std::string code = f.mock.world().login(appid, "alice");  // the device's wx.login()
  std::error_code ec;
  const std::string openid = f.service.sign_in(code, ec);
  REQUIRE_FALSE(ec);
  CHECK(openid == mock_wechat::openid(appid, "alice"));  // the mock's ids are deterministic
  // a bound app: the unionid at once, no follow or consent needed (WeChat since 2021-02-23)
  CHECK(f.service.get(openid).unionid == mock_wechat::unionid("my-open-account", "alice"));
}

TEST_CASE("an app not bound to an Open Platform account never gets a unionid") {
  world_fixture f;
  f.mock.world().add_app({appid, secret, mock_wechat::app_type::miniprogram, ""});  // unbind
  std::error_code ec;
  const std::string openid = f.service.sign_in(f.mock.world().login(appid, "alice"), ec);
  REQUIRE_FALSE(ec);
  CHECK_FALSE(f.service.get(openid).unionid);
}

TEST_CASE("the profile the device sends is decrypted and verified: anonymous, as today") {
  world_fixture f;
  std::error_code ec;
  const std::string openid = f.service.sign_in(f.mock.world().login(appid, "bob"), ec);
  REQUIRE_FALSE(ec);
  const auto p = f.mock.world().get_user_info(appid, "bob");  // wx.getUserInfo
  f.service.update_profile(openid, {p.encrypted_data, p.iv, p.raw_data, p.signature}, ec);
  REQUIRE_FALSE(ec);
  CHECK(f.service.get(openid).nickname == "微信用户");  // since 2021-04-28
  const auto q = f.mock.world().get_user_profile(appid, "bob");  // wx.getUserProfile: no ids
  f.service.update_profile(openid, {q.encrypted_data, q.iv, q.raw_data, q.signature}, ec);
  CHECK_FALSE(ec);
  f.mock.world().set_profiles(mock_wechat::profile_era::real);  // before 2021-04-28
  const auto r = f.mock.world().get_user_info(appid, "bob");
  f.service.update_profile(openid, {r.encrypted_data, r.iv, r.raw_data, r.signature}, ec);
  REQUIRE_FALSE(ec);
  CHECK(f.service.get(openid).nickname == "bob");  // the user's own (the mock derives it)
}

TEST_CASE("a code is single use and dies after five minutes (the mock's clock)") {
  world_fixture f;
  std::error_code ec;
  const std::string code = f.mock.world().login(appid, "carol");
  f.mock.world().clock().advance(301);  // five minutes and a second later
  f.service.sign_in(code, ec);
  CHECK(ec == wechat::api_errc::invalid_code);  // 40029, as WeChat answers
}

TEST_CASE("a profile replayed 11 minutes later is refused (one clock for mock and service)") {
  world_fixture f;
  std::error_code ec;
  const std::string openid = f.service.sign_in(f.mock.world().login(appid, "frank"), ec);
  REQUIRE_FALSE(ec);
  const auto p = f.mock.world().get_user_info(appid, "frank");
  f.mock.world().clock().advance(std::chrono::minutes(11));  // the service's clock moves too
  f.service.update_profile(openid, {p.encrypted_data, p.iv, p.raw_data, p.signature}, ec);
  CHECK(ec == wechat::decrypt_errc::watermark_too_old);
}

TEST_CASE("the device logged in again: the old session_key no longer decrypts") {
  world_fixture f;
  std::error_code ec;
  const std::string openid = f.service.sign_in(f.mock.world().login(appid, "dave"), ec);
  REQUIRE_FALSE(ec);
  f.mock.world().login(appid, "dave");  // a new wx.login; our server kept the old key
  const auto p = f.mock.world().get_user_info(appid, "dave");
  f.service.update_profile(openid, {p.encrypted_data, p.iv, p.raw_data, p.signature}, ec);
  CHECK(ec.category() == wechat::decrypt_category());  // a typed error, never garbage
}

TEST_CASE("WeChat failing: busy, slow, or gone, the service gets a typed error, never a hang") {
  world_fixture f;
  std::error_code ec;
  mock_wechat::fault busy;
  busy.path = "/sns/jscode2session";
  busy.errcode = -1;  // "system error": WeChat is busy
  busy.times = 1;
  f.mock.faults().add(busy);
  f.service.sign_in(f.mock.world().login(appid, "erin"), ec);
  CHECK(ec == wechat::api_errc::system_busy);  // a code is single use: never retried blindly

  mock_wechat::fault slow;
  slow.path = "/sns/jscode2session";
  slow.delay_ms = 2000;  // beyond the transport's 500 ms read timeout
  slow.times = 1;
  f.mock.faults().add(slow);
  const auto t0 = std::chrono::steady_clock::now();
  f.service.sign_in(f.mock.world().login(appid, "erin"), ec);
  CHECK(ec.category() == wechat::transport_category());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1500));

  f.service.sign_in(f.mock.world().login(appid, "erin"), ec);  // faults used up: fine again
  CHECK_FALSE(ec);
}
