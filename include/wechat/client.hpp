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
// (About 700 lines: one class, a short pair of overloads per WeChat call.)
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

#include "wechat/clock.hpp"
#include "wechat/decrypt.hpp"
#include "wechat/detail/api_response.hpp"
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

/// code2session's answer.
struct session_info {
  std::string openid;
  std::string session_key;             ///< keep it on the server; never send it to the device
  std::optional<std::string> unionid;  ///< when the UnionID rules allow
};

/// An order for getPaidUnionId: a transaction_id, or mch_id + out_trade_no.
struct paid_order {
  std::string transaction_id;
  std::string mch_id;
  std::string out_trade_no;
  static paid_order by_transaction(std::string id) { return {std::move(id), {}, {}}; }
  static paid_order by_trade(std::string mch, std::string trade) {
    return {{}, std::move(mch), std::move(trade)};
  }
};

/// sns/oauth2/access_token and refresh_token's answer.
struct oauth_token {
  std::string access_token;
  std::int64_t expires_in = 0;
  std::string refresh_token;
  std::string openid;
  std::string scope;
  std::optional<std::string> unionid;
  /// "is_snapshotuser":1 - the user is on an official account's snapshot page (WeChat
  /// since 2022-07-12, community doc 000c2c34068880629ced91a2f56001): `openid` (and any
  /// unionid) are virtual, not the real user's, and sns/userinfo is refused. Do not link
  /// or store this openid as a user; ask the user to open the full page.
  bool is_snapshot_user = false;
};

/// sns/userinfo's answer.
struct sns_user_info {
  std::string openid, nickname;
  int sex = 0;
  std::string province, city, country, headimgurl;
  std::vector<std::string> privilege;
  std::optional<std::string> unionid;
};

/// cgi-bin/user/info's answer.
struct follower_info {
  bool subscribed = false;
  std::string openid;
  std::int64_t subscribe_time = 0;
  std::optional<std::string> unionid;  ///< followers of a bound official account
};

/// One key of getuserencryptkey's answer: a key wx.getUserCryptoManager gave the device
/// (wechat-api.md section 8). Each lives 3600 s.
struct user_encrypt_key {
  std::string encrypt_key;       ///< base64 of the 16-byte key
  std::int64_t version = 0;      ///< increases with each new key; the device names it
  std::int64_t expire_in = 0;    ///< seconds left (0: expired)
  std::string iv;                ///< hex, as WeChat gives it
  std::int64_t create_time = 0;  ///< Unix seconds
};

/// What getuserriskrank is told about the request (wechat-api.md section 8).
struct risk_rank_request {
  std::string openid;
  int scene = 0;              ///< 0 registration, 1 marketing fraud (2 UGC, mini games)
  std::string client_ip;      ///< the user's IP address
  std::string mobile_no;      ///< optional (empty: not sent)
  std::string email_address;  ///< optional
  std::string extended_info;  ///< optional
  bool is_test = false;       ///< a test call
};

/// getuserriskrank's answer.
struct user_risk_rank {
  int risk_rank = 0;  ///< 0 (lowest) to 4 (highest risk)
  /// WeChat's `unoin_id` (sic: its spelling of union_id). Despite the name it is not a
  /// UnionID: it is the id of this risk query, for support requests.
  std::int64_t union_id = 0;
};

/// cgi-bin/openapi/quota/get's answer: an API's quota for today.
struct api_quota {
  std::int64_t daily_limit = 0;
  std::int64_t used = 0;
  std::int64_t remain = 0;
};

/// cgi-bin/openapi/rid/get's answer: what WeChat recorded of the failed call behind a rid.
struct rid_info {
  std::int64_t invoke_time = 0;  ///< Unix seconds
  std::int64_t cost_in_ms = 0;
  std::string request_url;    ///< the query string (WeChat masks the credentials)
  std::string request_body;   ///< the POST body
  std::string response_body;  ///< the answer, with the rid in its errmsg
  std::string client_ip;
};

namespace detail {
// A request body: compact JSON; bytes that are not UTF-8 (from a device, say) become U+FFFD
// instead of throwing from an error_code overload.
inline std::string json_body(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// code2session's answer (jscode2session, component/jscode2session): openid, session_key,
// unionid when the UnionID rules allow.
inline void read_session(const nlohmann::json& j, session_info& s, std::error_code& ec,
                         error_detail* d) {
  s.openid = required_string(j, "openid", ec, d);
  if (!ec) s.session_key = required_string(j, "session_key", ec, d);
  if (!ec) s.unionid = optional_string(j, "unionid");
}

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
      http_request req;
      req.target = "/sns/jscode2session?appid=" + url_encode(opt_.appid) +
                   "&secret=" + url_encode(opt_.secret) + "&js_code=" + url_encode(code) +
                   "&grant_type=authorization_code";
      // Not safe to repeat: a code is single use. One attempt.
      const auto j = exchange(req, r.ec, &r.detail, false);
      if (!r.ec) detail::read_session(j, r.value, r.ec, &r.detail);
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
    std::string q = "&openid=" + url_encode(openid);
    if (!order.transaction_id.empty()) q += "&transaction_id=" + url_encode(order.transaction_id);
    if (!order.mch_id.empty()) q += "&mch_id=" + url_encode(order.mch_id);
    if (!order.out_trade_no.empty()) q += "&out_trade_no=" + url_encode(order.out_trade_no);
    const auto j = with_token("/wxa/getpaidunionid", q, {}, ec, d, true);
    if (ec) return {};
    return detail::required_string(j, "unionid", ec, d);
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
    with_token("/wxa/checksession", session_query(openid, session_key), {}, ec, d, true);
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
    const auto j = with_token("/wxa/resetusersessionkey", session_query(openid, session_key), {},
                              ec, d, false);
    if (ec) return {};
    return detail::required_string(j, "session_key", ec, d);
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
    nlohmann::json body = {{"code", std::string(code)}};
    if (!openid.empty()) body["openid"] = std::string(openid);
    const auto j =
        with_token("/wxa/business/getuserphonenumber", "", detail::json_body(body), ec, d, false);
    phone_info p;
    if (ec) return p;
    const auto info = j.find("phone_info");
    if (info == j.end() || !info->is_object()) {
      ec = protocol_errc::missing_field;
      if (d) d->field = "phone_info";
      return p;
    }
    p.phone_number = detail::required_string(*info, "phoneNumber", ec, d);
    if (ec) return p;
    p.pure_phone_number = detail::optional_string(*info, "purePhoneNumber").value_or("");
    if (const auto cc = info->find("countryCode"); cc != info->end()) {
      if (cc->is_string())
        p.country_code = cc->get<std::string>();
      else if (cc->is_number_integer())
        p.country_code = std::to_string(cc->get<std::int64_t>());
    }
    if (const auto wm = info->find("watermark"); wm != info->end() && wm->is_object()) {
      p.watermark.appid = detail::optional_string(*wm, "appid").value_or("");
      p.watermark.timestamp = detail::integer_field(*wm, "timestamp", 0);
    }
    return p;
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
    http_request req;
    req.target = "/sns/oauth2/access_token?appid=" + url_encode(opt_.appid) +
                 "&secret=" + url_encode(opt_.secret) + "&code=" + url_encode(code) +
                 "&grant_type=authorization_code";
    return read_oauth(exchange(req, ec, d, false), ec, d);
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
    http_request req;
    req.target = "/sns/oauth2/refresh_token?appid=" + url_encode(opt_.appid) +
                 "&grant_type=refresh_token&refresh_token=" + url_encode(refresh_token);
    return read_oauth(exchange(req, ec, d, true), ec, d);
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
    http_request req;
    req.target = "/sns/userinfo?access_token=" + url_encode(access_token) +
                 "&openid=" + url_encode(openid) + "&lang=" + url_encode(lang);
    const auto j = exchange(req, ec, d, true);
    sns_user_info u;
    if (ec) return u;
    u.openid = detail::required_string(j, "openid", ec, d);
    if (ec) return u;
    u.nickname = detail::optional_string(j, "nickname").value_or("");
    u.sex = static_cast<int>(detail::integer_field(j, "sex", 0));
    u.province = detail::optional_string(j, "province").value_or("");
    u.city = detail::optional_string(j, "city").value_or("");
    u.country = detail::optional_string(j, "country").value_or("");
    u.headimgurl = detail::optional_string(j, "headimgurl").value_or("");
    if (const auto p = j.find("privilege"); p != j.end() && p->is_array())
      for (const auto& v : *p)
        if (v.is_string()) u.privilege.push_back(v.get<std::string>());
    u.unionid = detail::optional_string(j, "unionid");
    return u;
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
    if (token.is_snapshot_user) {
      ec = api_errc::api_unauthorized;
      if (d) {
        *d = error_detail{};
        d->errcode = static_cast<int>(api_errc::api_unauthorized);
        d->errmsg = "snapshot-page user: the openid is virtual and WeChat refuses sns/userinfo";
      }
      return {};
    }
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
    http_request req;
    req.target =
        "/sns/auth?access_token=" + url_encode(access_token) + "&openid=" + url_encode(openid);
    exchange(req, ec, d, true);
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
    const auto j =
        with_token("/cgi-bin/user/info",
                   "&openid=" + url_encode(openid) + "&lang=" + url_encode(lang), {}, ec, d, true);
    follower_info f;
    if (ec) return f;
    f.subscribed = detail::integer_field(j, "subscribe", 0) == 1;
    f.openid = detail::required_string(j, "openid", ec, d);
    f.subscribe_time = detail::integer_field(j, "subscribe_time", 0);
    f.unionid = detail::optional_string(j, "unionid");
    return f;
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
    const auto j = with_token("/wxa/business/getuserencryptkey", session_query(openid, session_key),
                              {}, ec, d, true);
    std::vector<user_encrypt_key> keys;
    if (ec) return keys;
    const auto list = j.find("key_info_list");
    if (list == j.end() || !list->is_array()) {
      ec = protocol_errc::missing_field;
      if (d) d->field = "key_info_list";
      return keys;
    }
    for (const auto& item : *list) {
      if (!item.is_object()) {
        ec = protocol_errc::wrong_type;
        if (d) d->field = "key_info_list";
        return {};
      }
      user_encrypt_key k;
      k.encrypt_key = detail::required_string(item, "encrypt_key", ec, d);
      if (ec) return {};
      k.iv = detail::optional_string(item, "iv").value_or("");
      k.version = detail::integer_field(item, "version", 0);
      k.expire_in = detail::integer_field(item, "expire_in", 0);
      k.create_time = detail::integer_field(item, "create_time", 0);
      keys.push_back(std::move(k));
    }
    return keys;
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
    const nlohmann::json body = {{"code", std::string(code)}};
    const auto j = with_token("/wxa/getpluginopenpid", "", detail::json_body(body), ec, d, false);
    if (ec) return {};
    return detail::required_string(j, "openpid", ec, d);
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
    nlohmann::json body = {{"appid", opt_.appid},
                           {"openid", r.openid},
                           {"scene", r.scene},
                           {"client_ip", r.client_ip}};
    if (!r.mobile_no.empty()) body["mobile_no"] = r.mobile_no;
    if (!r.email_address.empty()) body["email_address"] = r.email_address;
    if (!r.extended_info.empty()) body["extended_info"] = r.extended_info;
    if (r.is_test) body["is_test"] = true;
    const auto j = with_token("/wxa/getuserriskrank", "", detail::json_body(body), ec, d, true);
    user_risk_rank out;
    if (ec) return out;
    const auto rank = j.find("risk_rank");
    if (rank == j.end() || rank->is_null()) {
      ec = protocol_errc::missing_field;
      if (d) d->field = "risk_rank";
      return out;
    }
    if (!rank->is_number_integer() || rank->get<std::int64_t>() < 0 ||
        rank->get<std::int64_t>() > 4) {  // 0-4, nothing else
      ec = protocol_errc::wrong_type;
      if (d) d->field = "risk_rank";
      return out;
    }
    out.risk_rank = rank->get<int>();
    // WeChat writes "unoin_id"; read "union_id" too, should it ever fix the spelling
    out.union_id = detail::integer_field(j, "unoin_id", detail::integer_field(j, "union_id", 0));
    return out;
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
    const nlohmann::json body = {{"appid", opt_.appid}};
    with_token("/cgi-bin/clear_quota", "", detail::json_body(body), ec, d, false);
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
    const nlohmann::json body = {{"cgi_path", std::string(cgi_path)}};
    const auto j =
        with_token("/cgi-bin/openapi/quota/get", "", detail::json_body(body), ec, d, true);
    api_quota q;
    if (ec) return q;
    const auto quota = j.find("quota");
    if (quota == j.end() || !quota->is_object()) {
      ec = protocol_errc::missing_field;
      if (d) d->field = "quota";
      return q;
    }
    q.daily_limit = detail::integer_field(*quota, "daily_limit", 0);
    q.used = detail::integer_field(*quota, "used", 0);
    q.remain = detail::integer_field(*quota, "remain", 0);
    return q;
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
    const nlohmann::json body = {{"rid", std::string(rid)}};
    const auto j = with_token("/cgi-bin/openapi/rid/get", "", detail::json_body(body), ec, d, true);
    rid_info r;
    if (ec) return r;
    const auto req = j.find("request");
    if (req == j.end() || !req->is_object()) {
      ec = protocol_errc::missing_field;
      if (d) d->field = "request";
      return r;
    }
    r.invoke_time = detail::integer_field(*req, "invoke_time", 0);
    r.cost_in_ms = detail::integer_field(*req, "cost_in_ms", 0);
    r.request_url = detail::optional_string(*req, "request_url").value_or("");
    r.request_body = detail::optional_string(*req, "request_body").value_or("");
    r.response_body = detail::optional_string(*req, "response_body").value_or("");
    r.client_ip = detail::optional_string(*req, "client_ip").value_or("");
    return r;
  }
  /// Throwing overload of get_rid_info.
  rid_info get_rid_info(std::string_view rid) {
    return detail::throwing(
        [&](std::error_code& ec, error_detail* d) { return get_rid_info(rid, ec, d); },
        "get_rid_info");
  }

private:
  using code_result = detail::shared_result<session_info>;

  static std::string session_query(std::string_view openid, std::string_view session_key) {
    return "&openid=" + url_encode(openid) + "&signature=" + session_key_signature(session_key) +
           "&sig_method=hmac_sha256";
  }

  // One request (retried on -1 and transport failures when `safe`), parsed.
  nlohmann::json exchange(const http_request& req, std::error_code& ec, error_detail* d,
                          bool safe) {
    return detail::exchange(*transport_, req, safe ? opt_.max_attempts : 1, opt_.backoff, ec, d);
  }

  // A call that carries the access token. A token WeChat rejects (40001, 40014, 42001)
  // is invalidated and the call retried once with a fresh one.
  nlohmann::json with_token(const char* path, const std::string& query, const std::string& body,
                            std::error_code& ec, error_detail* d, bool safe) {
    return detail::with_token(
        tokens_, ec, d, [&](const std::string& token, std::error_code& cec, error_detail* cd) {
          http_request req;
          req.method = body.empty() ? "GET" : "POST";
          req.target = std::string(path) + "?access_token=" + url_encode(token) + query;
          if (!body.empty()) {
            req.body = body;
            req.content_type = "application/json";
          }
          return exchange(req, cec, cd, safe);
        });
  }

  oauth_token read_oauth(const nlohmann::json& j, std::error_code& ec, error_detail* d) {
    oauth_token t;
    if (ec) return t;
    t.access_token = detail::required_string(j, "access_token", ec, d);
    if (!ec) t.openid = detail::required_string(j, "openid", ec, d);
    if (ec) return t;
    t.expires_in = detail::integer_field(j, "expires_in", 7200);
    t.refresh_token = detail::optional_string(j, "refresh_token").value_or("");
    t.scope = detail::optional_string(j, "scope").value_or("");
    t.unionid = detail::optional_string(j, "unionid");
    t.is_snapshot_user = detail::integer_field(j, "is_snapshotuser", 0) == 1;
    return t;
  }

  client_options opt_;
  std::shared_ptr<transport> transport_;
  std::shared_ptr<const wechat::time_source> clock_;
  token_provider tokens_;
  detail::code_memory<session_info> codes_;  // in flight and remembered
};

}  // namespace wechat
