// wechat/client.hpp - the calls a WeChat backend makes around login, for one app.
//
//   auto transport = wechat::httplib_transport::create();           // api.weixin.qq.com
//   wechat::client wx({"wx...appid", "secret"}, transport);
//   wechat::session_info s = wx.code2session(code);                  // throws wechat::error
//   std::error_code ec; auto s2 = wx.code2session(code, ec);         // or reports in ec
//
// Every call comes in both forms; the std::error_code one can also fill an error_detail
// (WeChat's errmsg and rid, the HTTP status, the missing field). What the client does for
// you:
// - code2session never sends an access token (its failures cannot break login), and
//   concurrent calls with the same code share one request and one result; the same code
//   again within a short double-submit window (client_options::code_memory, 10 s) returns
//   the remembered result (no 40163 for a front end that double-submits or retries a lost
//   answer), and after it WeChat's own answer, 40163: a used code is worthless again;
// - a call rejected for its token (40001, 40014, 42001) invalidates that token if it is
//   still the current one, refreshes once and retries once;
// - WeChat busy (-1) and transport failures are retried with backoff and jitter, but only
//   for calls that are safe to repeat (never one that consumes a code or rotates a key);
// - 45009/45011 are never retried: ec says to slow down.
// (One class, a short pair of overloads per WeChat call; each call's request and the
// reading of its answer are in detail/calls.hpp, shared with the async client.)
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "wechat/api_types.hpp"
#include "wechat/clock.hpp"
#include "wechat/decrypt.hpp"
#include "wechat/detail/api_response.hpp"
#include "wechat/detail/calls.hpp"
#include "wechat/detail/code_memory.hpp"
#include "wechat/detail/retry.hpp"
#include "wechat/detail/single_flight.hpp"
#include "wechat/detail/token_call.hpp"
#include "wechat/error.hpp"
#include "wechat/token.hpp"
#include "wechat/transport.hpp"

namespace wechat {

/// How a client talks to WeChat for one app.
struct client_options {
  std::string appid;
  std::string secret;
  token_mode tokens = token_mode::stable;  ///< how access tokens are fetched
  int max_attempts = 3;                    ///< for calls safe to repeat
  std::chrono::milliseconds backoff{100};  ///< first backoff; doubled each retry, with jitter
  /// The double-submit window: for this long after a successful exchange, the same code
  /// gets the remembered result (session_key included) instead of WeChat's 40163. It is a
  /// security trade-off: whoever holds a used code (a proxy log, a crash report) gets the
  /// session within the window, so keep it to seconds. 0 remembers nothing (concurrent
  /// callers still share one request). Before 0.2.0 it was 300 s (a code's whole life).
  std::chrono::seconds code_memory{10};
  std::size_t code_memory_max = 100000;  ///< at most this many remembered codes
};

namespace detail {
// The throwing form of a call: runs the error_code form, throws on failure.
template <class F>
auto throwing(F&& f, const char* what) -> decltype(f(std::declval<std::error_code&>(), nullptr)) {
  std::error_code ec;
  error_detail d;
  auto r = f(ec, &d);
  throw_if_error(ec, d, what);
  return r;
}
}  // namespace detail

/// The WeChat server API for one app (appid + secret): every call in two forms, one that
/// sets a std::error_code (and fills an optional error_detail) and one that throws
/// wechat::error / wechat::api_error. One instance is shared by all threads.
class client {
public:
  /// `store` shares access tokens (in memory by default; Redis for a fleet); `clk` is the
  /// time source (the system clock by default).
  client(client_options o, std::shared_ptr<transport> t,
         std::shared_ptr<token_store> store = nullptr,
         std::shared_ptr<const wechat::time_source> clk = nullptr)
      : opt_(std::move(o)), transport_(std::move(t)),
        clock_(clk ? std::move(clk) : default_clock()),
        tokens_(token_options{opt_.appid, opt_.secret, opt_.tokens, std::chrono::seconds(300),
                              opt_.max_attempts, opt_.backoff},
                transport_, std::move(store), clock_),
        codes_(opt_.code_memory, opt_.code_memory_max, clock_) {}

  const std::string& appid() const noexcept { return opt_.appid; }
  /// The access token provider this client uses.
  token_provider& tokens() noexcept { return tokens_; }

  // ------------------------------------------------------------------ mini program --

  /// Exchanges a wx.login code: GET /sns/jscode2session. Errors: api_errc (invalid_code,
  /// code_been_used, code_blocked, minute_quota_reached, invalid_appsecret...),
  /// transport_errc, protocol_errc.
  session_info code2session(std::string_view code, std::error_code& ec, error_detail* d = nullptr) {
    return codes_.run(std::string(code), ec, d, [&](code_result& r) {
      // Not safe to repeat: a code is single use. One attempt.
      r.value = run(detail::calls::code2session(opt_.appid, opt_.secret, code), r.ec, &r.detail);
    });
  }
  session_info code2session(std::string_view code) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return code2session(code, ec, d); },
        "code2session");
  }

  /// How many exchanged codes the client remembers now (and so how many session results
  /// it holds), codes in flight included: at most code_memory_max plus those in flight,
  /// none older than code_memory.
  std::size_t remembered_codes() { return codes_.size(); }

  /// The unionid of a user who paid within the last 5 minutes: GET /wxa/getpaidunionid.
  /// Errors: api_errc::open_not_exists (app unbound), invalid_trade (no such payment, or
  /// the window passed), invalid_openid, missing_parameter; token and transport errors.
  std::string get_paid_unionid(std::string_view openid, const paid_order& order,
                               std::error_code& ec, error_detail* d = nullptr) {
    return run(detail::calls::get_paid_unionid(openid, order), ec, d);
  }
  /// Throwing overload of get_paid_unionid.
  std::string get_paid_unionid(std::string_view openid, const paid_order& order) {
    return detail::throwing([&](std::error_code& ec,
                                error_detail* d) { return get_paid_unionid(openid, order, ec, d); },
                            "get_paid_unionid");
  }

  /// Is `session_key` the user's current key? GET /wxa/checksession. No error: yes.
  /// api_errc::invalid_signature (87009): no, it is stale (the user logged in again).
  void check_session_key(std::string_view openid, std::string_view session_key, std::error_code& ec,
                         error_detail* d = nullptr) {
    run(detail::calls::check_session_key(openid, session_key), ec, d);
  }
  /// Throwing overload of check_session_key.
  void check_session_key(std::string_view openid, std::string_view session_key) {
    detail::throwing(
        [&](std::error_code& ec, error_detail* d) {
          check_session_key(openid, session_key, ec, d);
          return 0;
        },
        "check_session_key");
  }

  /// Replaces the user's session_key: GET /wxa/resetusersessionkey. Returns the new key
  /// (the old one dies at once). Not retried on -1: it changes state.
  std::string reset_session_key(std::string_view openid, std::string_view session_key,
                                std::error_code& ec, error_detail* d = nullptr) {
    return run(detail::calls::reset_session_key(openid, session_key), ec, d);
  }
  /// Throwing overload of reset_session_key.
  std::string reset_session_key(std::string_view openid, std::string_view session_key) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) {
          return reset_session_key(openid, session_key, ec, d);
        },
        "reset_session_key");
  }

  /// The phone number behind a getPhoneNumber button code: POST
  /// /wxa/business/getuserphonenumber. `openid`, when given, is checked against the
  /// code. Not retried on -1: the code is single use.
  phone_info get_phone_number(std::string_view code, std::string_view openid, std::error_code& ec,
                              error_detail* d = nullptr) {
    return run(detail::calls::get_phone_number(code, openid), ec, d);
  }
  /// Throwing overload of get_phone_number.
  phone_info get_phone_number(std::string_view code, std::string_view openid = {}) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return get_phone_number(code, openid, ec, d); },
        "get_phone_number");
  }

  // ------------------------------------------- official accounts, apps, websites --

  /// Exchanges a web/app OAuth code: GET /sns/oauth2/access_token. One attempt.
  oauth_token oauth_exchange(std::string_view code, std::error_code& ec,
                             error_detail* d = nullptr) {
    return run(detail::calls::oauth_exchange(opt_.appid, opt_.secret, code), ec, d);
  }
  /// Throwing overload of oauth_exchange.
  oauth_token oauth_exchange(std::string_view code) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return oauth_exchange(code, ec, d); },
        "oauth_exchange");
  }

  /// Renews a user access token: GET /sns/oauth2/refresh_token.
  oauth_token oauth_refresh(std::string_view refresh_token, std::error_code& ec,
                            error_detail* d = nullptr) {
    return run(detail::calls::oauth_refresh(opt_.appid, refresh_token), ec, d);
  }
  /// Throwing overload of oauth_refresh.
  oauth_token oauth_refresh(std::string_view refresh_token) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return oauth_refresh(refresh_token, ec, d); },
        "oauth_refresh");
  }

  /// A user's profile with a user access token: GET /sns/userinfo.
  sns_user_info sns_userinfo(std::string_view access_token, std::string_view openid,
                             std::error_code& ec, error_detail* d = nullptr,
                             std::string_view lang = "zh_CN") {
    return run(detail::calls::sns_userinfo(access_token, openid, lang), ec, d);
  }
  /// Throwing overload of sns_userinfo.
  sns_user_info sns_userinfo(std::string_view access_token, std::string_view openid) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) {
          return sns_userinfo(access_token, openid, ec, d);
        },
        "sns_userinfo");
  }
  /// sns/userinfo for what oauth_exchange returned. A snapshot-page user (is_snapshot_user)
  /// has no profile to give: api_errc::api_unauthorized (48001, what WeChat answers) at
  /// once, without a request (error_detail::attempts 0).
  sns_user_info sns_userinfo(const oauth_token& token, std::error_code& ec,
                             error_detail* d = nullptr, std::string_view lang = "zh_CN") {
    if (detail::snapshot_refusal(token, ec, d)) return {};
    return sns_userinfo(token.access_token, token.openid, ec, d, lang);
  }
  /// Throwing overload of sns_userinfo for an oauth_token.
  sns_user_info sns_userinfo(const oauth_token& token) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return sns_userinfo(token, ec, d); },
        "sns_userinfo");
  }

  /// Is this user access token valid for this openid? GET /sns/auth. No error: yes.
  void sns_auth(std::string_view access_token, std::string_view openid, std::error_code& ec,
                error_detail* d = nullptr) {
    run(detail::calls::sns_auth(access_token, openid), ec, d);
  }
  /// Throwing overload of sns_auth.
  void sns_auth(std::string_view access_token, std::string_view openid) {
    detail::throwing(
        [&](std::error_code& ec, error_detail* d) {
          sns_auth(access_token, openid, ec, d);
          return 0;
        },
        "sns_auth");
  }

  /// An official account's follower: GET /cgi-bin/user/info. Errors: api_errc
  /// (invalid_openid...), transport_errc, protocol_errc.
  follower_info follower(std::string_view openid, std::error_code& ec, error_detail* d = nullptr,
                         std::string_view lang = "zh_CN") {
    return run(detail::calls::follower(openid, lang), ec, d);
  }
  /// Throwing overload of follower.
  follower_info follower(std::string_view openid) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return follower(openid, ec, d); }, "follower");
  }
  /// Deprecated since 0.2.0: "user_info" is the decrypted wx.getUserInfo payload; this is
  /// follower().
  [[deprecated("use client::follower")]] follower_info user_info(std::string_view openid,
                                                                 std::error_code& ec,
                                                                 error_detail* d = nullptr,
                                                                 std::string_view lang = "zh_CN") {
    return follower(openid, ec, d, lang);
  }
  /// Deprecated since 0.2.0: use follower().
  [[deprecated("use client::follower")]] follower_info user_info(std::string_view openid) {
    return follower(openid);
  }

  // ------------------------------- login-adjacent calls (wechat-api.md section 8) --

  /// The user's last 3 encryption keys (wx.getUserCryptoManager's), newest first: GET
  /// /wxa/business/getuserencryptkey. `session_key` proves the user's current session
  /// (only its HMAC signature is sent). Errors: api_errc::invalid_signature (87009: the
  /// key is stale, the user logged in again), invalid_openid, invalid_sig_method; token,
  /// transport and protocol errors.
  std::vector<user_encrypt_key> get_user_encrypt_key(std::string_view openid,
                                                     std::string_view session_key,
                                                     std::error_code& ec,
                                                     error_detail* d = nullptr) {
    return run(detail::calls::get_user_encrypt_key(openid, session_key), ec, d);
  }
  /// Throwing overload of get_user_encrypt_key.
  std::vector<user_encrypt_key> get_user_encrypt_key(std::string_view openid,
                                                     std::string_view session_key) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) {
          return get_user_encrypt_key(openid, session_key, ec, d);
        },
        "get_user_encrypt_key");
  }

  /// A plugin user's openpid (one id per plugin and user, not an openid) from the code of
  /// wx.pluginLogin: POST /wxa/getpluginopenpid, with the host mini program's token. Not
  /// retried on -1: the code is single use. Errors: api_errc::invalid_code (unknown,
  /// expired, of another host), code_been_used, not_plugin_code (1007: a wx.login code).
  std::string get_plugin_open_pid(std::string_view code, std::error_code& ec,
                                  error_detail* d = nullptr) {
    return run(detail::calls::get_plugin_open_pid(code), ec, d);
  }
  /// Throwing overload of get_plugin_open_pid.
  std::string get_plugin_open_pid(std::string_view code) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return get_plugin_open_pid(code, ec, d); },
        "get_plugin_open_pid");
  }

  /// The user's risk rank (0-4) for a registration or marketing scene: POST
  /// /wxa/getuserriskrank (this client's appid is sent). Errors: api_errc::invalid_openid,
  /// data_format_error (a required field empty), invalid_appid; token and transport errors.
  user_risk_rank get_user_risk_rank(const risk_rank_request& r, std::error_code& ec,
                                    error_detail* d = nullptr) {
    return run(detail::calls::get_user_risk_rank(opt_.appid, r), ec, d);
  }
  /// Throwing overload of get_user_risk_rank.
  user_risk_rank get_user_risk_rank(const risk_rank_request& r) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return get_user_risk_rank(r, ec, d); },
        "get_user_risk_rank");
  }

  /// Resets this app's daily API quotas (45009 lifts): POST /cgi-bin/clear_quota. WeChat
  /// allows 10 a month: then api_errc::clear_quota_limit_reached (48006). Not retried.
  void clear_quota(std::error_code& ec, error_detail* d = nullptr) {
    run(detail::calls::clear_quota(opt_.appid), ec, d);
  }
  /// Throwing overload of clear_quota.
  void clear_quota() {
    detail::throwing(
        [&](std::error_code& ec, error_detail* d) {
          clear_quota(ec, d);
          return 0;
        },
        "clear_quota");
  }

  /// Today's quota of one API of this app ("/cgi-bin/..." or "/wxa/...", no host): POST
  /// /cgi-bin/openapi/quota/get. Errors: api_errc::cgi_path_not_found (76021),
  /// cgi_path_no_permission (76022: /sns/* APIs).
  api_quota get_api_quota(std::string_view cgi_path, std::error_code& ec,
                          error_detail* d = nullptr) {
    return run(detail::calls::get_api_quota(cgi_path), ec, d);
  }
  /// Throwing overload of get_api_quota.
  api_quota get_api_quota(std::string_view cgi_path) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return get_api_quota(cgi_path, ec, d); },
        "get_api_quota");
  }

  /// What WeChat recorded of this app's failed call behind `rid` (error_detail::rid,
  /// api_error::rid()): POST /cgi-bin/openapi/rid/get. Errors: api_errc::rid_not_found
  /// (76001, also past 7 days), invalid_rid (76002), rid_no_permission (76003: another
  /// app's call).
  rid_info get_rid_info(std::string_view rid, std::error_code& ec, error_detail* d = nullptr) {
    return run(detail::calls::get_rid_info(rid), ec, d);
  }
  /// Throwing overload of get_rid_info.
  rid_info get_rid_info(std::string_view rid) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return get_rid_info(rid, ec, d); },
        "get_rid_info");
  }

private:
  using code_result = detail::shared_result<session_info>;

  // One call: a token call through detail::with_token (a token WeChat rejects, 40001,
  // 40014 or 42001, is invalidated and the call retried once with a fresh one), a plain
  // call as it is; each retried on -1 and transport failures when it is safe to repeat.
  // The answer is read only when WeChat accepted the call; what the read fills is returned
  // even when it sets ec (as each call always did).
  template <class T> T run(const detail::api_call<T>& c, std::error_code& ec, error_detail* d) {
    const int attempts = c.safe ? opt_.max_attempts : 1;
    detail::answer j;
    if (c.token)
      j = detail::with_token(
          tokens_, ec, d, [&](const std::string& token, std::error_code& cec, error_detail* cd) {
            return detail::exchange(*transport_, c.request(token), attempts, opt_.backoff, cec, cd);
          });
    else
      j = detail::exchange(*transport_, c.request(), attempts, opt_.backoff, ec, d);
    T out{};
    if (!ec) c.read(j, out, ec, d);
    return out;
  }

  client_options opt_;
  std::shared_ptr<transport> transport_;
  std::shared_ptr<const wechat::time_source> clock_;
  token_provider tokens_;
  detail::code_memory<session_info> codes_;  // in flight and remembered
};

}  // namespace wechat
