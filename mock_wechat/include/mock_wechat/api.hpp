// mock_wechat/api.hpp - the WeChat endpoints, HTTP-agnostic: a parsed request in, the
// exact response WeChat would send out. Presence checks (missing parameters) happen
// here; identity and state checks in the world; the answer is formatted here with the
// real conventions (wechat-api.md section 1):
//   - API errors are HTTP 200 with a compact {"errcode":N,"errmsg":"... rid: R"} body;
//     /sns/* write ", rid: ", /cgi-bin/* and /wxa/* write " rid: "; the rid's first group
//     is the virtual time in hex;
//   - errcode is absent on success for jscode2session, token, stable_token, sns/oauth2/*,
//     sns/userinfo, user/info, and present as 0,"ok" for the /wxa/* calls and sns/auth;
//   - Content-Type: text/plain for /sns/*, "application/json; encoding=utf-8" (sic) for
//     token and stable_token, "application/json; charset=UTF-8" for the rest;
//   - bodies are compact JSON with no trailing newline.
// WeCom's endpoints (qyapi.weixin.qq.com: cgi-bin/gettoken, cgi-bin/miniprogram/
// jscode2session) are served on the same port in WeCom's style (notes-issue17.md section
// 3): errcode 0 present on success, errmsg "<text>, hint: [..], from ip: .., more info at
// https://open.work.weixin.qq.com/devtool/query?e=<code>" with WeCom's own texts.
#pragma once

#include <atomic>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mock_wechat/ids.hpp"
#include "mock_wechat/observe.hpp"
#include "mock_wechat/query.hpp"
#include "mock_wechat/world.hpp"

namespace mock_wechat {

/// An HTTP request to a WeChat endpoint, already parsed.
struct api_request {
  std::string_view method;
  std::string_view path;
  const params* query = nullptr;
  std::string_view body;

  /// The value of query parameter `name`, or empty: the first one sent when it was given
  /// twice (query.hpp's first_param; the journal shows every value).
  std::string_view param(const char* name) const {
    if (query == nullptr) return {};
    const std::string* v = first_param(*query, name);
    return v == nullptr ? std::string_view{} : std::string_view(*v);
  }
};

/// The answer, ready to send.
struct api_response {
  int status = 200;
  std::string content_type;
  std::string body;
  int errcode = 0;  ///< WeChat's errcode in the body (0 on success), for stats and journal
};

/// The errmsg WeChat writes for `errcode` (wechat/error.hpp's table; "system error" for a
/// code the table does not name, as an injected fault may give).
inline const char* errmsg_text(int errcode) noexcept {
  const auto* e = wechat::find_api_errc(errcode);
  return e != nullptr ? e->errmsg : "system error";
}

/// WeChat's answer when it fails inside ({"errcode":-1,"errmsg":"system error"}), for a
/// handler that threw and for injected faults.
inline const std::string& system_error_body() {
  static const std::string body =
      "{\"errcode\":" + std::to_string(static_cast<int>(wechat::api_errc::system_busy)) +
      ",\"errmsg\":\"" + errmsg_text(static_cast<int>(wechat::api_errc::system_busy)) + "\"}";
  return body;
}

class wechat_api {
public:
  explicit wechat_api(world& w) : world_(w) {}

  /// The journal cgi-bin/openapi/rid/get answers from (the server's); without one every
  /// rid is unknown (76001).
  void set_journal(const journal* j) noexcept { journal_ = j; }

  /// Every path this API serves.
  static const std::vector<std::string>& paths() {
    static const std::vector<std::string> p = {
        "/sns/jscode2session",
        "/cgi-bin/token",
        "/cgi-bin/stable_token",
        "/wxa/getpaidunionid",
        "/wxa/checksession",
        "/wxa/resetusersessionkey",
        "/wxa/business/getuserphonenumber",
        "/sns/oauth2/access_token",
        "/sns/oauth2/refresh_token",
        "/sns/userinfo",
        "/sns/auth",
        "/cgi-bin/user/info",
        // wechat-api.md section 8
        "/wxa/business/getuserencryptkey",
        "/wxa/getpluginopenpid",
        "/wxa/getuserriskrank",
        "/cgi-bin/clear_quota",
        "/cgi-bin/openapi/quota/get",
        "/cgi-bin/openapi/rid/get",
        // Open Platform third-party platforms
        "/cgi-bin/component/api_component_token",
        "/cgi-bin/component/api_authorizer_token",
        "/sns/component/jscode2session",
        // WeCom (qyapi.weixin.qq.com)
        "/cgi-bin/gettoken",
        "/cgi-bin/miniprogram/jscode2session",
    };
    return p;
  }

  static bool serves(std::string_view path) {
    for (const auto& p : paths())
      if (p == path) return true;
    return false;
  }

  /// The Content-Type WeChat uses for `path`.
  static const char* content_type(std::string_view path) noexcept {
    if (path.rfind("/sns/", 0) == 0) return "text/plain";
    if (path == "/cgi-bin/token" || path == "/cgi-bin/stable_token")
      return "application/json; encoding=utf-8";
    return "application/json; charset=UTF-8";
  }

  /// WeChat's error answer for `e` on `path`.
  api_response error(std::string_view path, wechat::api_errc e) const {
    return error(path, static_cast<int>(e));
  }
  /// Whether `path` is one of WeCom's (qyapi.weixin.qq.com), answered in WeCom's style.
  static bool is_wecom(std::string_view path) noexcept {
    return path == "/cgi-bin/gettoken" || path == "/cgi-bin/miniprogram/jscode2session";
  }

  /// The errmsg text WeCom writes for `errcode` where it differs from WeChat's (live
  /// answers quoted in notes-issue17.md section 3.1, read 2026:
  /// https://developer.work.weixin.qq.com/document/path/91039), else the error table's.
  static const char* wecom_errmsg_text(int errcode) noexcept {
    using wechat::api_errc;
    if (errcode == static_cast<int>(api_errc::appid_missing)) return "corpid missing";
    if (errcode == static_cast<int>(api_errc::appsecret_missing)) return "corpsecret missing";
    if (errcode == static_cast<int>(api_errc::invalid_appid)) return "invalid corpid";
    if (errcode == static_cast<int>(api_errc::invalid_credential)) return "invalid credential";
    return errmsg_text(errcode);
  }

  /// WeChat's error answer for any errcode (an injected fault may give one the table does
  /// not name); WeCom's for WeCom's paths.
  api_response error(std::string_view path, int errcode) const {
    if (is_wecom(path)) return wecom_error(path, errcode);
    api_response r;
    r.content_type = content_type(path);
    r.errcode = errcode;
    const bool sns = path.rfind("/sns/", 0) == 0;
    r.body.reserve(96);
    r.body += "{\"errcode\":";
    r.body += std::to_string(errcode);
    r.body += ",\"errmsg\":\"";
    r.body += errmsg_text(errcode);
    r.body += sns ? ", rid: " : " rid: ";
    r.body += rid(world_.now());
    r.body += "\"}";
    return r;
  }

  /// WeCom's error answer: `{"errcode":N,"errmsg":"<text>, hint: [<virtual now>_<n>_<32
  /// hex>], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e=N"}`.
  api_response wecom_error(std::string_view path, int errcode) const {
    api_response r;
    r.content_type = content_type(path);
    r.errcode = errcode;
    r.body = "{\"errcode\":" + std::to_string(errcode) + ",\"errmsg\":\"" +
             wecom_errmsg_text(errcode) + ", hint: [" + std::to_string(world_.now()) + "_" +
             std::to_string(hints_.fetch_add(1) % 1000) + "_" + wechat::to_hex(random_chars(16)) +
             "], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/"
             "query?e=" +
             std::to_string(errcode) + "\"}";
    return r;
  }

  /// Answers a request to a WeChat endpoint. Unknown paths: HTTP 404 with
  /// {"errcode":-1,"errmsg":"unknown api <path>"}.
  api_response handle(const api_request& q) {
    count_quota(q);
    const std::string_view p = q.path;
    if (p == "/sns/jscode2session") return jscode2session(q);
    if (p == "/cgi-bin/token") return token(q);
    if (p == "/cgi-bin/stable_token") return stable_token(q);
    if (p == "/wxa/getpaidunionid") return getpaidunionid(q);
    if (p == "/wxa/checksession") return checksession(q);
    if (p == "/wxa/resetusersessionkey") return resetusersessionkey(q);
    if (p == "/wxa/business/getuserphonenumber") return getuserphonenumber(q);
    if (p == "/sns/oauth2/access_token") return oauth_access_token(q);
    if (p == "/sns/oauth2/refresh_token") return oauth_refresh_token(q);
    if (p == "/sns/userinfo") return sns_userinfo(q);
    if (p == "/sns/auth") return sns_auth(q);
    if (p == "/cgi-bin/user/info") return user_info(q);
    if (p == "/wxa/business/getuserencryptkey") return getuserencryptkey(q);
    if (p == "/wxa/getpluginopenpid") return getpluginopenpid(q);
    if (p == "/wxa/getuserriskrank") return getuserriskrank(q);
    if (p == "/cgi-bin/clear_quota") return clear_quota(q);
    if (p == "/cgi-bin/openapi/quota/get") return quota_get(q);
    if (p == "/cgi-bin/openapi/rid/get") return rid_get(q);
    if (p == "/cgi-bin/component/api_component_token") return component_token(q);
    if (p == "/cgi-bin/component/api_authorizer_token") return authorizer_token(q);
    if (p == "/sns/component/jscode2session") return component_jscode2session(q);
    if (p == "/cgi-bin/gettoken") return wecom_gettoken(q);
    if (p == "/cgi-bin/miniprogram/jscode2session") return wecom_jscode2session(q);
    api_response r;
    r.status = 404;
    r.content_type = "application/json; charset=UTF-8";
    r.errcode = static_cast<int>(wechat::api_errc::system_busy);
    r.body = "{\"errcode\":" + std::to_string(r.errcode) +
             ",\"errmsg\":" + detail::json_escape("unknown api " + std::string(p)) + "}";
    return r;
  }

private:
  api_response ok(std::string_view path, std::string body) const {
    api_response r;
    r.content_type = content_type(path);
    r.body = std::move(body);
    return r;
  }

  static void add_field(std::string& b, const char* name, std::string_view value) {
    b += '"';
    b += name;
    b += "\":";
    b += detail::json_escape(value);
  }

  // GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code
  api_response jscode2session(const api_request& q) {
    const auto appid = q.param("appid"), secret = q.param("secret"), code = q.param("js_code");
    if (appid.empty()) return error(q.path, wechat::api_errc::appid_missing);
    if (secret.empty()) return error(q.path, wechat::api_errc::appsecret_missing);
    if (code.empty()) return error(q.path, wechat::api_errc::code_missing);
    const auto o = world_.exchange_js_code(appid, secret, code);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, session_body(o.value));
  }

  // jscode2session's success (the app's own and a platform's): {"session_key","openid",
  // "unionid"?}, no errcode.
  static std::string session_body(const session_grant& g) {
    std::string b;
    b.reserve(128);
    b += "{\"session_key\":\"";
    b += g.session_key;  // base64: nothing to escape
    b += "\",\"openid\":\"";
    b += g.openid;  // url-safe alphabet
    if (g.unionid) {
      b += "\",\"unionid\":\"";
      b += *g.unionid;
    }
    b += "\"}";
    return b;
  }

  static std::string token_body(const token_grant& g) {
    return "{\"access_token\":\"" + g.access_token +
           "\",\"expires_in\":" + std::to_string(g.expires_in) + "}";
  }

  // GET /cgi-bin/token?grant_type=client_credential&appid&secret
  api_response token(const api_request& q) {
    const auto appid = q.param("appid"), secret = q.param("secret");
    if (appid.empty()) return error(q.path, wechat::api_errc::appid_missing);
    if (secret.empty()) return error(q.path, wechat::api_errc::appsecret_missing);
    if (q.param("grant_type") != "client_credential")
      return error(q.path, wechat::api_errc::invalid_grant_type);
    const auto o = world_.fetch_token(appid, secret);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, token_body(o.value));
  }

  // POST /cgi-bin/stable_token {"grant_type","appid","secret","force_refresh"?}
  api_response stable_token(const api_request& q) {
    if (q.method != "POST") return error(q.path, wechat::api_errc::require_post_method);
    const auto j = nlohmann::json::parse(q.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return error(q.path, wechat::api_errc::data_format_error);
    auto str = [&](const char* k) -> std::string {
      const auto it = j.find(k);
      return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    const std::string appid = str("appid"), secret = str("secret");
    if (appid.empty()) return error(q.path, wechat::api_errc::appid_missing);
    if (secret.empty()) return error(q.path, wechat::api_errc::appsecret_missing);
    if (str("grant_type") != "client_credential")
      return error(q.path, wechat::api_errc::invalid_grant_type);
    bool force = false;
    if (const auto it = j.find("force_refresh"); it != j.end() && !it->is_null()) {
      if (!it->is_boolean()) return error(q.path, wechat::api_errc::data_format_error);
      force = it->get<bool>();
    }
    const auto o = world_.fetch_stable_token(appid, secret, force);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, token_body(o.value));
  }

  // GET /wxa/getpaidunionid?access_token&openid&transaction_id | mch_id+out_trade_no
  api_response getpaidunionid(const api_request& q) {
    const auto owner = world_.check_app_token(q.param("access_token"));
    if (!owner.ok()) return error(q.path, owner.errc);
    const auto o =
        world_.paid_unionid(*owner.value.app, q.param("openid"), q.param("transaction_id"),
                            q.param("mch_id"), q.param("out_trade_no"));
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, "{\"unionid\":\"" + o.value + "\",\"errcode\":0,\"errmsg\":\"ok\"}");
  }

  // GET /wxa/checksession?access_token&openid&signature&sig_method=hmac_sha256
  api_response checksession(const api_request& q) {
    const auto owner = world_.check_app_token(q.param("access_token"));
    if (!owner.ok()) return error(q.path, owner.errc);
    const auto o = world_.check_session(*owner.value.app, q.param("openid"), q.param("signature"),
                                        q.param("sig_method"));
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, "{\"errcode\":0,\"errmsg\":\"ok\"}");
  }

  // GET /wxa/resetusersessionkey?access_token&openid&signature&sig_method=hmac_sha256
  api_response resetusersessionkey(const api_request& q) {
    const auto owner = world_.check_app_token(q.param("access_token"));
    if (!owner.ok()) return error(q.path, owner.errc);
    const auto o = world_.reset_session(*owner.value.app, q.param("openid"), q.param("signature"),
                                        q.param("sig_method"));
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path,
              "{\"errcode\":0,\"errmsg\":\"ok\",\"openid\":" + detail::json_escape(o.value.openid) +
                  ",\"session_key\":\"" + o.value.session_key + "\"}");
  }

  // POST /wxa/business/getuserphonenumber?access_token  {"code","openid"?}
  api_response getuserphonenumber(const api_request& q) {
    if (q.method != "POST") return error(q.path, wechat::api_errc::require_post_method);
    const auto owner = world_.check_app_token(q.param("access_token"));
    if (!owner.ok()) return error(q.path, owner.errc);
    const auto j = nlohmann::json::parse(q.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return error(q.path, wechat::api_errc::data_format_error);
    const auto code = j.find("code");
    if (code == j.end() || !code->is_string() || code->get<std::string>().empty())
      return error(q.path, wechat::api_errc::code_missing);
    std::string oid;
    if (const auto it = j.find("openid"); it != j.end() && it->is_string())
      oid = it->get<std::string>();
    const auto o = world_.phone_number(*owner.value.app, code->get<std::string>(), oid);
    if (!o.ok()) return error(q.path, o.errc);
    std::string b = "{\"errcode\":0,\"errmsg\":\"ok\",\"phone_info\":{";
    add_field(b, "phoneNumber", o.value.phone_number);
    b += ',';
    add_field(b, "purePhoneNumber", o.value.pure_phone_number);
    b += ',';
    add_field(b, "countryCode", o.value.country_code);
    b += ",\"watermark\":{\"timestamp\":" + std::to_string(o.value.timestamp) + ",";
    add_field(b, "appid", owner.value.app->appid);
    b += "}}}";
    return ok(q.path, std::move(b));
  }

  static std::string oauth_body(const token_grant& g) {
    std::string b = "{\"access_token\":\"" + g.access_token +
                    "\",\"expires_in\":" + std::to_string(g.expires_in) + ",\"refresh_token\":\"" +
                    g.refresh_token + "\",";
    add_field(b, "openid", g.openid);
    b += ',';
    add_field(b, "scope", g.scope);
    if (g.snapshot_user) b += ",\"is_snapshotuser\":1";
    if (g.unionid) {
      b += ',';
      add_field(b, "unionid", *g.unionid);
    }
    return b + "}";
  }

  // GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code
  api_response oauth_access_token(const api_request& q) {
    const auto appid = q.param("appid"), secret = q.param("secret"), code = q.param("code");
    if (appid.empty()) return error(q.path, wechat::api_errc::appid_missing);
    if (secret.empty()) return error(q.path, wechat::api_errc::appsecret_missing);
    if (code.empty()) return error(q.path, wechat::api_errc::code_missing);
    if (q.param("grant_type") != "authorization_code")
      return error(q.path, wechat::api_errc::invalid_grant_type);
    const auto o = world_.exchange_oauth_code(appid, secret, code);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, oauth_body(o.value));
  }

  // GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token
  api_response oauth_refresh_token(const api_request& q) {
    const auto appid = q.param("appid"), rt = q.param("refresh_token");
    if (appid.empty()) return error(q.path, wechat::api_errc::appid_missing);
    if (rt.empty()) return error(q.path, wechat::api_errc::refresh_token_missing);
    if (q.param("grant_type") != "refresh_token")
      return error(q.path, wechat::api_errc::invalid_grant_type);
    const auto o = world_.refresh_oauth(appid, rt);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, oauth_body(o.value));
  }

  // GET /sns/userinfo?access_token&openid&lang
  api_response sns_userinfo(const api_request& q) {
    const auto owner = world_.check_sns_token(q.param("access_token"));
    if (!owner.ok()) return error(q.path, owner.errc);
    const auto o = world_.sns_userinfo(owner.value, q.param("openid"));
    if (!o.ok()) return error(q.path, o.errc);
    nlohmann::json j = {{"openid", o.value.openid},
                        {"nickname", o.value.prof.nickname},
                        {"sex", o.value.prof.gender},
                        {"province", o.value.prof.province},
                        {"city", o.value.prof.city},
                        {"country", o.value.prof.country},
                        {"headimgurl", o.value.prof.avatar_url},
                        {"privilege", nlohmann::json::array()}};
    if (o.value.unionid) j["unionid"] = *o.value.unionid;
    return ok(q.path, ordered_dump(j, {"openid", "nickname", "sex", "province", "city", "country",
                                       "headimgurl", "privilege", "unionid"}));
  }

  // GET /sns/auth?access_token&openid
  api_response sns_auth(const api_request& q) {
    const auto owner = world_.check_sns_token(q.param("access_token"));
    if (!owner.ok()) return error(q.path, owner.errc);
    if (q.param("openid") != world_.openid_of(owner.value))
      return error(q.path, wechat::api_errc::invalid_openid);
    return ok(q.path, "{\"errcode\":0,\"errmsg\":\"ok\"}");
  }

  // GET /cgi-bin/user/info?access_token&openid&lang
  api_response user_info(const api_request& q) {
    const auto owner = world_.check_app_token(q.param("access_token"));
    if (!owner.ok()) return error(q.path, owner.errc);
    const auto o = world_.follower(*owner.value.app, q.param("openid"));
    if (!o.ok()) return error(q.path, o.errc);
    std::string b;
    if (!o.value.subscribed) {
      b = "{\"subscribe\":0,";
      add_field(b, "openid", o.value.openid);
      return ok(q.path, b + "}");
    }
    b = "{\"subscribe\":1,";
    add_field(b, "openid", o.value.openid);
    b += ",\"language\":\"zh_CN\",\"subscribe_time\":" + std::to_string(o.value.subscribe_time);
    if (o.value.unionid) {
      b += ',';
      add_field(b, "unionid", *o.value.unionid);
    }
    b += ",\"remark\":\"\",\"groupid\":0,\"tagid_list\":[],\"subscribe_scene\":\"ADD_SCENE_QR_"
         "CODE\","
         "\"qr_scene\":0,\"qr_scene_str\":\"\"}";
    return ok(q.path, std::move(b));
  }

  // ------------------------------- login-adjacent endpoints (wechat-api.md section 8) --

  // A POST endpoint that carries an app token: 43002 for another method, the token's
  // checks, 47001 for a body that is not a JSON object. api_errc{} with `owner` and `j`
  // set, or the errcode to answer.
  wechat::api_errc post_with_token(const api_request& q, token_owner& owner, nlohmann::json& j) {
    if (q.method != "POST") return wechat::api_errc::require_post_method;
    auto o = world_.check_app_token(q.param("access_token"));
    if (!o.ok()) return o.errc;
    owner = std::move(o.value);
    j = nlohmann::json::parse(q.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return wechat::api_errc::data_format_error;
    return {};
  }

  // A string member of a request body: nullopt when absent or not a string.
  static std::optional<std::string> body_string(const nlohmann::json& j, const char* name) {
    const auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  }

  // Counts the call against its app's daily quota for the path (world/quotas.hpp): the
  // app of its access_token, or for stable_token the registered appid its body names.
  void count_quota(const api_request& q) {
    if (q.path.rfind("/sns/", 0) == 0) return;  // no quota for /sns/* (76022)
    if (const auto token = q.param("access_token"); !token.empty()) {
      world_.count_call(q.path, token);
    } else if (q.path == "/cgi-bin/stable_token") {
      const auto j = nlohmann::json::parse(q.body, nullptr, false);
      if (j.is_object())
        if (const auto appid = body_string(j, "appid")) world_.count_call_by_app(q.path, *appid);
    }
  }

  // GET (or POST, same query) /wxa/business/getuserencryptkey?access_token&openid&signature
  // &sig_method=hmac_sha256
  api_response getuserencryptkey(const api_request& q) {
    const auto owner = world_.check_app_token(q.param("access_token"));
    if (!owner.ok()) return error(q.path, owner.errc);
    const auto o = world_.user_encrypt_keys(*owner.value.app, q.param("openid"),
                                            q.param("signature"), q.param("sig_method"));
    if (!o.ok()) return error(q.path, o.errc);
    std::string b = "{\"errcode\":0,\"errmsg\":\"ok\",\"key_info_list\":[";
    for (std::size_t i = 0; i < o.value.size(); ++i) {
      const auto& k = o.value[i];
      if (i > 0) b += ',';
      b += "{\"encrypt_key\":\"" + k.encrypt_key + "\",\"version\":" + std::to_string(k.version) +
           ",\"expire_in\":" + std::to_string(k.expire_in) + ",\"iv\":\"" + k.iv +
           "\",\"create_time\":" + std::to_string(k.create_time) + "}";
    }
    return ok(q.path, b + "]}");
  }

  // POST /wxa/getpluginopenpid?access_token  {"code"}
  api_response getpluginopenpid(const api_request& q) {
    token_owner owner;
    nlohmann::json j;
    if (const auto e = post_with_token(q, owner, j); e != wechat::api_errc{})
      return error(q.path, e);
    const auto code = body_string(j, "code");
    if (!code || code->empty()) return error(q.path, wechat::api_errc::code_missing);
    const auto o = world_.plugin_open_pid(*owner.app, *code);
    if (!o.ok()) return error(q.path, o.errc);
    std::string b = "{\"errcode\":0,\"errmsg\":\"ok\",";
    add_field(b, "openpid", o.value);
    return ok(q.path, b + "}");
  }

  // POST /wxa/getuserriskrank?access_token  {"appid","openid","scene","client_ip",
  // "mobile_no"?,"email_address"?,"extended_info"?,"is_test"?}. A required field missing
  // or of the wrong type, a scene other than 0, 1 or 2, a mistyped optional field: 47001.
  api_response getuserriskrank(const api_request& q) {
    token_owner owner;
    nlohmann::json j;
    if (const auto e = post_with_token(q, owner, j); e != wechat::api_errc{})
      return error(q.path, e);
    const auto appid = body_string(j, "appid"), oid = body_string(j, "openid"),
               ip = body_string(j, "client_ip");
    const auto scene = j.find("scene");
    bool well_formed = appid && !appid->empty() && oid && !oid->empty() && ip && !ip->empty() &&
                       scene != j.end() && scene->is_number_integer() &&
                       scene->get<std::int64_t>() >= 0 && scene->get<std::int64_t>() <= 2;
    for (const char* optional : {"mobile_no", "email_address", "extended_info"})
      if (const auto it = j.find(optional); it != j.end() && !it->is_null() && !it->is_string())
        well_formed = false;
    if (const auto it = j.find("is_test"); it != j.end() && !it->is_null() && !it->is_boolean())
      well_formed = false;
    if (!well_formed) return error(q.path, wechat::api_errc::data_format_error);
    const auto o = world_.user_risk_rank(*owner.app, *appid, *oid);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, "{\"errcode\":0,\"errmsg\":\"getuserriskrank succ\",\"risk_rank\":" +
                          std::to_string(o.value.risk_rank) +
                          ",\"unoin_id\":" + std::to_string(o.value.unoin_id) + "}");
  }

  // POST /cgi-bin/clear_quota?access_token  {"appid"}
  api_response clear_quota(const api_request& q) {
    token_owner owner;
    nlohmann::json j;
    if (const auto e = post_with_token(q, owner, j); e != wechat::api_errc{})
      return error(q.path, e);
    const auto appid = body_string(j, "appid");
    if (!appid || appid->empty()) return error(q.path, wechat::api_errc::appid_missing);
    const auto o = world_.clear_quota(*owner.app, *appid);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, "{\"errcode\":0,\"errmsg\":\"ok\"}");
  }

  // POST /cgi-bin/openapi/quota/get?access_token  {"cgi_path"}
  api_response quota_get(const api_request& q) {
    token_owner owner;
    nlohmann::json j;
    if (const auto e = post_with_token(q, owner, j); e != wechat::api_errc{})
      return error(q.path, e);
    const auto path = body_string(j, "cgi_path");
    if (!path) return error(q.path, wechat::api_errc::data_format_error);
    const auto o = world_.api_quota(*owner.app, *path);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, "{\"errcode\":0,\"errmsg\":\"ok\",\"quota\":{\"daily_limit\":" +
                          std::to_string(o.value.daily_limit) +
                          ",\"used\":" + std::to_string(o.value.used) +
                          ",\"remain\":" + std::to_string(o.value.remain) + "}}");
  }

  // A rid as the mock writes them: 3 groups of 8 lowercase hex digits.
  static bool rid_shaped(std::string_view r) noexcept {
    if (r.size() != 26) return false;
    for (std::size_t i = 0; i < r.size(); ++i) {
      const char c = r[i];
      if (i == 8 || i == 17) {
        if (c != '-') return false;
      } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
        return false;
      }
    }
    return true;
  }

  // The query string of a request target with the values of secret fields as "***"
  // (is_secret_field, on the name as the handlers read it: decoded, so "access%5Ftoken" is
  // access_token too). Every part is kept, a name given twice included.
  static std::string redacted_query(std::string_view target) {
    std::string out;
    for_each_query_part(target, [&](const query_part& p) {
      if (!out.empty()) out += '&';
      if (p.has_value && is_secret_field(percent_decode(p.name))) {
        out.append(p.name);
        out += "=***";
      } else {
        out.append(p.text);
      }
    });
    return out;
  }

  // POST /cgi-bin/openapi/rid/get?access_token  {"rid"}: from the journal (observe.hpp),
  // the app's own calls of the last 7 days that the journal still holds. 76002 rid
  // missing or malformed, 76001 unknown (or forgotten, or the journal is off), 76003
  // another app's call (or one that named no app), 76022 a /sns/* call.
  api_response rid_get(const api_request& q) {
    token_owner owner;
    nlohmann::json j;
    if (const auto e = post_with_token(q, owner, j); e != wechat::api_errc{})
      return error(q.path, e);
    const auto r = body_string(j, "rid");
    if (!r || !rid_shaped(*r)) return error(q.path, wechat::api_errc::invalid_rid);
    const auto e = journal_ != nullptr ? journal_->find_rid(*r) : std::nullopt;
    if (!e || world_.now() - e->time > limits::rid_lifetime)
      return error(q.path, wechat::api_errc::rid_not_found);
    if (e->appid != owner.app->appid) return error(q.path, wechat::api_errc::rid_no_permission);
    if (e->path.rfind("/sns/", 0) == 0)
      return error(q.path, wechat::api_errc::cgi_path_no_permission);
    std::string request_body;
    if (!e->body.empty() && e->body_size == e->body.size()) {
      auto b = nlohmann::json::parse(e->body, nullptr, false);
      if (!b.is_discarded()) {
        redact(b);
        request_body = b.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      }
    }
    std::string b = "{\"errcode\":0,\"errmsg\":\"ok\",\"request\":{\"invoke_time\":" +
                    std::to_string(e->time) +
                    ",\"cost_in_ms\":" + std::to_string(e->latency_us / 1000) + ",";
    add_field(b, "request_url", redacted_query(e->target));
    b += ',';
    add_field(b, "request_body", request_body);
    b += ',';
    add_field(b, "response_body", e->response);
    b += ',';
    add_field(b, "client_ip", e->client_ip);
    return ok(q.path, b + "}}");
  }

  // ------------ Open Platform third-party platforms (wechat-api.md section 8; notes-issue17.md
  // section 2, WeChat's docs read 2026:
  // https://developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/ThirdParty/token/component_access_token.html)

  // POST /cgi-bin/component/api_component_token {"component_appid","component_appsecret",
  // "component_verify_ticket"}: 47001, 41002, 41004, then the world's 61011, 40125, 61006,
  // 61005. A ticket missing, null or empty is 61006 as live (WxJava #2967), not 41xxx.
  api_response component_token(const api_request& q) {
    const auto j = nlohmann::json::parse(q.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return error(q.path, wechat::api_errc::data_format_error);
    const std::string appid = body_string(j, "component_appid").value_or(""),
                      secret = body_string(j, "component_appsecret").value_or(""),
                      ticket = body_string(j, "component_verify_ticket").value_or("");
    if (appid.empty()) return error(q.path, wechat::api_errc::appid_missing);
    if (secret.empty()) return error(q.path, wechat::api_errc::appsecret_missing);
    const auto o = world_.fetch_component_token(appid, secret, ticket);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, "{\"component_access_token\":\"" + o.value.access_token +
                          "\",\"expires_in\":" + std::to_string(o.value.expires_in) + "}");
  }

  // POST /cgi-bin/component/api_authorizer_token?component_access_token  {"component_appid",
  // "authorizer_appid","authorizer_refresh_token"}: the token (41001, 40014, 40001, 42001),
  // 47001, 41002, 40094 (the token of another platform), 41002, 41003, then the world's
  // 61003, 61023.
  api_response authorizer_token(const api_request& q) {
    const auto owner = world_.check_component_token(q.param("component_access_token"));
    if (!owner.ok()) return error(q.path, owner.errc);
    const auto j = nlohmann::json::parse(q.body, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return error(q.path, wechat::api_errc::data_format_error);
    const std::string component_appid = body_string(j, "component_appid").value_or(""),
                      authorizer = body_string(j, "authorizer_appid").value_or(""),
                      refresh = body_string(j, "authorizer_refresh_token").value_or("");
    if (component_appid.empty()) return error(q.path, wechat::api_errc::appid_missing);
    if (component_appid != owner.value)
      return error(q.path, wechat::api_errc::invalid_component_credential);
    if (authorizer.empty()) return error(q.path, wechat::api_errc::appid_missing);
    if (refresh.empty()) return error(q.path, wechat::api_errc::refresh_token_missing);
    const auto o = world_.fetch_authorizer_token(component_appid, authorizer, refresh);
    if (!o.ok()) return error(q.path, o.errc);
    std::string b = "{\"authorizer_access_token\":\"" + o.value.access_token +
                    "\",\"expires_in\":" + std::to_string(o.value.expires_in) + ",";
    add_field(b, "authorizer_refresh_token", o.value.refresh_token);
    return ok(q.path, b + "}");
  }

  // GET /sns/component/jscode2session?appid&js_code&grant_type=authorization_code
  // &component_appid&component_access_token: 41002, 41008, 41002, 41001, the token's
  // checks, 40094, then the world's 40013, 61003 and jscode2session's own.
  api_response component_jscode2session(const api_request& q) {
    const auto appid = q.param("appid"), code = q.param("js_code"),
               component_appid = q.param("component_appid"),
               token = q.param("component_access_token");
    if (appid.empty()) return error(q.path, wechat::api_errc::appid_missing);
    if (code.empty()) return error(q.path, wechat::api_errc::code_missing);
    if (component_appid.empty()) return error(q.path, wechat::api_errc::appid_missing);
    const auto owner = world_.check_component_token(token);  // 41001 when empty
    if (!owner.ok()) return error(q.path, owner.errc);
    if (owner.value != component_appid)
      return error(q.path, wechat::api_errc::invalid_component_credential);
    const auto o = world_.component_exchange_js_code(component_appid, appid, code);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, session_body(o.value));
  }

  // ------------------ WeCom (notes-issue17.md section 3; WeCom's docs read 2026:
  // https://developer.work.weixin.qq.com/document/path/91039 and .../path/96959)

  // GET /cgi-bin/gettoken?corpid&corpsecret: 41002, 41004, then the world's 40013, 40001.
  api_response wecom_gettoken(const api_request& q) {
    const auto corpid = q.param("corpid"), secret = q.param("corpsecret");
    if (corpid.empty()) return error(q.path, wechat::api_errc::appid_missing);
    if (secret.empty()) return error(q.path, wechat::api_errc::appsecret_missing);
    const auto o = world_.fetch_corp_token(corpid, secret);
    if (!o.ok()) return error(q.path, o.errc);
    return ok(q.path, "{\"errcode\":0,\"errmsg\":\"ok\",\"access_token\":\"" +
                          o.value.access_token +
                          "\",\"expires_in\":" + std::to_string(o.value.expires_in) + "}");
  }

  // GET /cgi-bin/miniprogram/jscode2session?access_token&js_code&grant_type=authorization_code:
  // the token (41001, 40014, 42001), 41008, then the world's 40029.
  api_response wecom_jscode2session(const api_request& q) {
    const auto owner = world_.check_corp_token(q.param("access_token"));
    if (!owner.ok()) return error(q.path, owner.errc);
    const auto code = q.param("js_code");
    if (code.empty()) return error(q.path, wechat::api_errc::code_missing);
    const auto o = world_.wecom_exchange_code(owner.value, code);
    if (!o.ok()) return error(q.path, o.errc);
    std::string b = "{";
    add_field(b, "corpid", o.value.corpid);
    b += ',';
    add_field(b, "userid", o.value.userid);
    b += ",\"session_key\":\"" + o.value.session_key + "\",\"errcode\":0,\"errmsg\":\"ok\"}";
    return ok(q.path, std::move(b));
  }

  // Compact JSON with the keys in WeChat's order (nlohmann sorts them).
  static std::string ordered_dump(const nlohmann::json& j,
                                  std::initializer_list<const char*> order) {
    std::string b = "{";
    for (const char* k : order) {
      const auto it = j.find(k);
      if (it == j.end()) continue;
      if (b.size() > 1) b += ',';
      b += detail::json_escape(k);
      b += ':';
      b += it->dump();
    }
    return b + "}";
  }

  world& world_;
  const journal* journal_ = nullptr;
  mutable std::atomic<unsigned> hints_{0};  ///< the <n> of WeCom's hints
};

}  // namespace mock_wechat
