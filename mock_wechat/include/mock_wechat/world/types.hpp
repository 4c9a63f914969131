// mock_wechat/world/types.hpp - the values the world deals in: its lifetimes and limits,
// apps and profiles, what the device gets (payloads), what the WeChat side grants, and
// the two error models' types: admin_error (control side, an HTTP status) and
// outcome<T> (WeChat side, an api_errc).
#pragma once

#include <wechat/error.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mock_wechat/rules.hpp"

namespace mock_wechat {

/// Lifetimes and limits (wechat-api.md section 7).
namespace limits {
inline constexpr std::int64_t code_lifetime = 300;          ///< wx.login, phone, OAuth codes
inline constexpr std::int64_t website_code_lifetime = 600;  ///< website OAuth codes
inline constexpr std::int64_t token_lifetime = 7200;        ///< every access_token
inline constexpr std::int64_t token_overlap = 300;          ///< old token after a new fetch
inline constexpr std::int64_t stable_renew_before = 300;    ///< stable_token renewal
inline constexpr int stable_force_per_day = 20;
inline constexpr std::int64_t stable_force_min_gap = 30;
inline constexpr int token_fetches_per_day = 2000;
inline constexpr int js_code_per_user_minute = 100;
inline constexpr std::int64_t payment_window = 300;
inline constexpr std::int64_t refresh_token_lifetime = std::int64_t{30} * 86400;
// wechat-api.md section 8
inline constexpr std::int64_t encrypt_key_lifetime = 3600;  ///< getuserencryptkey's keys
inline constexpr int encrypt_keys_listed = 3;               ///< the user's last 3 keys
inline constexpr int quota_clears_per_month = 10;           ///< cgi-bin/clear_quota
inline constexpr std::int64_t rid_lifetime = std::int64_t{7} * 86400;  ///< openapi/rid/get
// Open Platform third-party platforms (notes-issue17.md section 2; WeChat's docs, read 2026:
// https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/component_verify_ticket.html)
inline constexpr std::int64_t ticket_push_interval = 600;  ///< a ticket push every 10 minutes
inline constexpr std::int64_t ticket_lifetime = 43200;     ///< a ticket is valid 12 hours
inline constexpr int pushes_kept = 16;                     ///< push records per platform
inline constexpr int push_timeout_s = 5;  ///< WeChat waits 5 s for the receiver's "success"
}  // namespace limits

/// How much the world holds at most, so that nothing an admin caller or a network peer
/// does can grow the mock's memory without end (docs/bounds.md). Time bounds come first
/// (codes are forgotten 5 minutes after issue, payments 6, tokens a day after they die,
/// refresh tokens after their 30 days); these counts hold even with a frozen clock.
/// At a limit the admin API answers 507 naming it; the WeChat side answers 45009 when no
/// new access token can be kept.
struct world_limits {
  std::size_t apps = 10000;
  std::size_t users = 1000000;        ///< users with flags, a profile, follows or authorizations
  std::size_t sessions = 4000000;     ///< (app, user) pairs that logged in: session keys, openids
  std::size_t codes = 4000000;        ///< unexpired codes of each kind (login, phone, OAuth)
  std::size_t payments = 4000000;     ///< payments, kept 6 minutes
  std::size_t tokens = 1000000;       ///< app access tokens, kept until a day after they die
  std::size_t user_tokens = 4000000;  ///< OAuth user access tokens, likewise
  std::size_t refresh_tokens = 1000000;  ///< OAuth refresh tokens, kept 30 days and 1
  std::size_t components = 1000;         ///< Open Platform third-party platforms (like apps)
  /// (platform, app) authorizations, each with its authorizer_refresh_token
  std::size_t component_authorizations = 100000;
  std::size_t corps = 10000;  ///< WeCom corps
};

/// A control-side failure: HTTP status (400 bad request, 404 unknown thing, 507 a limit of
/// world_limits) and message.
class admin_error : public std::runtime_error {
public:
  admin_error(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

private:
  int status_;
};

/// An app registered with the mock.
struct app {
  std::string appid;
  std::string secret;
  app_type type = app_type::miniprogram;
  std::string open_account;  ///< Open Platform account it is bound to; empty: unbound
  bool bound() const noexcept { return !open_account.empty(); }
};

/// What wx.getUserInfo reveals of a user. Defaults are derived from the user's name.
struct profile {
  std::string nickname;
  int gender = 0;
  std::string language = "zh_CN";
  std::string city = "Guangzhou";
  std::string province = "Guangdong";
  std::string country = "China";
  std::string avatar_url;
};

/// The grey default avatar WeChat gives every anonymous profile (the URL published in
/// developers' reports of getUserInfo/getUserProfile payloads since 2021-04-28).
inline constexpr const char* anonymous_avatar_url =
    "https://thirdwx.qlogo.cn/mmopen/vi_32/"
    "POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/"
    "132";

/// What wx.getUserInfo (since 2021-04-28) and wx.getUserProfile (since 2022-11-08) reveal
/// of anyone: nickName "微信用户", the grey avatar, gender 0, empty region and language
/// (wechat-api.md section 8; the language is "zh_CN" or empty there: the mock chooses
/// empty, as in the payloads developers published).
inline profile anonymous_profile() {
  profile p;
  p.nickname = "微信用户";
  p.language.clear();
  p.city.clear();
  p.province.clear();
  p.country.clear();
  p.avatar_url = anonymous_avatar_url;
  return p;
}

/// The result of a WeChat-side operation: a value, or the WeChat errcode to answer.
template <class T> struct outcome {
  wechat::api_errc errc{};  ///< api_errc{} (0) on success
  T value{};
  bool ok() const noexcept { return errc == wechat::api_errc{}; }
  static outcome fail(wechat::api_errc e) {
    outcome o;
    o.errc = e;
    return o;
  }
};
/// The value of an outcome that has none beyond success.
struct done {};

struct session_grant {  ///< jscode2session success
  std::string session_key, openid;
  std::optional<std::string> unionid;
};
struct token_grant {  ///< cgi-bin/token, stable_token, sns/oauth2 success
  std::string access_token;
  std::int64_t expires_in = 0;
  std::string refresh_token, openid, scope;
  std::optional<std::string> unionid;
  bool snapshot_user = false;  ///< sns/oauth2: the official account's snapshot page
};
struct token_owner {  ///< whom a presented access_token belongs to
  std::shared_ptr<const mock_wechat::app> app;
  std::string user, scope;  ///< sns tokens only
};
struct phone_grant {
  std::string phone_number, pure_phone_number, country_code;
  std::int64_t timestamp = 0;
};
struct sns_user {
  std::string openid;
  profile prof;
  std::optional<std::string> unionid;
};
struct follower_record {  ///< cgi-bin/user/info success
  bool subscribed = false;
  std::string openid;
  std::int64_t subscribe_time = 0;
  std::optional<std::string> unionid;
};

struct encrypt_key_record {  ///< one key of getuserencryptkey's key_info_list
  std::string encrypt_key;    ///< base64 of 16 bytes
  std::string iv;             ///< 16 lowercase hex characters
  std::int64_t version = 0;   ///< increases with each new key
  std::int64_t expire_in = 0;  ///< seconds left; 0 once expired
  std::int64_t create_time = 0;
};
struct risk_grant {  ///< getuserriskrank success
  int risk_rank = 0;
  std::int64_t unoin_id = 0;  ///< (sic) WeChat's name for the request's id
};
struct wecom_session {  ///< WeCom's cgi-bin/miniprogram/jscode2session success
  std::string corpid, userid, session_key;
};
struct quota_usage {  ///< cgi-bin/openapi/quota/get success
  std::int64_t daily_limit = 0, used = 0, remain = 0;
};

/// What the device gets from wx.getUserInfo.
struct user_info_payload {
  std::string raw_data, signature, encrypted_data, iv;
};
/// What the device gets from the phone-number button.
struct phone_payload {
  std::string code, encrypted_data, iv;
};
/// A WeChat Pay payment.
struct payment_record {
  std::string transaction_id, mch_id, out_trade_no;
};
/// What cloud.getWXContext() returns inside a cloud function.
struct wx_context {
  std::string openid, appid;
  std::optional<std::string> unionid;
  std::string env = "mock-env", source = "wx_client";
};

/// Deprecated since 0.2.0: follower_record (the library's wechat::follower_info is the
/// client's side of the same answer).
using follower_info [[deprecated("use mock_wechat::follower_record")]] = follower_record;

namespace detail {

/// A JSON string literal for `s`; invalid UTF-8 is replaced, never thrown on.
inline std::string json_escape(std::string_view s) {
  return nlohmann::json(std::string(s))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The admin API's answer at a limit of world_limits (HTTP 507). `expires`: the entries
/// die with time (codes, payments), so moving the clock makes room; others stay until a
/// reset.
inline admin_error limit_reached(const char* what, std::size_t limit, bool expires = false) {
  return admin_error(507, std::string("the mock is at its limit of ") + std::to_string(limit) +
                              " " + what + " (mock_wechat::world_limits, spread over 16 shards); " +
                              (expires ? "they are forgotten as the clock moves past their life, "
                                         "or POST /__mock/reset"
                                       : "POST /__mock/reset, or raise the limit"));
}

}  // namespace detail
}  // namespace mock_wechat
