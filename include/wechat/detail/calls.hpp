// wechat/detail/calls.hpp - every WeChat call of the app client, once: the request it
// sends and how its answer is read. The sync client (client.hpp) and the async client make
// their calls from these, so both send the same bytes and read answers the same way; they
// differ only in how the request travels (the token rules, retries, threads).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "wechat/api_types.hpp"
#include "wechat/decrypt.hpp"
#include "wechat/detail/api_response.hpp"
#include "wechat/error.hpp"
#include "wechat/transport.hpp"
#include "wechat/url_encode.hpp"

namespace wechat::detail {

// A request body: compact JSON; bytes that are not UTF-8 (from a device, say) become U+FFFD
// instead of throwing from an error_code overload.
inline std::string json_body(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// code2session's answer (jscode2session, component/jscode2session): openid, session_key,
// unionid when the UnionID rules allow.
inline void read_session(const answer& a, session_info& s, std::error_code& ec, error_detail* d) {
  s.openid = required_string(a, "openid", ec, d);
  if (!ec) s.session_key = required_string(a, "session_key", ec, d);
  if (!ec) s.unionid = optional_string(a, "unionid");
}

/// The value of a call that answers nothing but success (check_session_key, sns_auth, clear_quota).
struct no_value {};

/// One WeChat call as both clients make it: the request, and how its answer is read.
template <class T> struct api_call {
  std::string method = "GET";  // "GET" or "POST"
  std::string path;            // "/wxa/getpaidunionid"
  std::string query;         // token calls: what follows access_token ("&openid=..."); plain calls:
                             // the whole query from '?'
  std::string body;          // POST body (JSON), empty for GET
  bool token = false;        // carries the app's access token: the with_token rules apply
  bool safe = true;          // safe to repeat: retried on -1 and transport failures
  bool spends_code = false;  // sends a single-use code: the async client never aborts it
  /// Reads an answer WeChat accepted (errcode 0) into `out`, which starts value-initialized;
  /// a missing or mistyped field sets ec (protocol_errc) and names it in `d`. Never null. A
  /// flat answer is read from its members (required_string(a, ...)); one that nests, from
  /// a.json().
  void (*read)(const answer& a, T& out, std::error_code& ec, error_detail* d) = nullptr;

  /// The request to send; `access_token` is used (url-encoded) for token calls only.
  http_request request(std::string_view access_token = {}) const {
    http_request req;
    req.method = method;
    // One string, sized once: path, the token (url-encoded) for a token call, the query.
    req.target.reserve(path.size() + query.size() +
                       (token ? sizeof "?access_token=" + access_token.size() * 3 : 0));
    req.target += path;
    if (token) {
      req.target += "?access_token=";
      url_encode_to(req.target, access_token);
    }
    req.target += query;
    if (!body.empty()) {
      req.body = body;
      req.content_type = "application/json";
    }
    return req;
  }
};

/// A call that answers nothing to read.
inline void read_nothing(const answer&, no_value&, std::error_code&, error_detail*) {}

/// sns/userinfo for an oauth_token is refused before any request when the token is a
/// snapshot-page user's (is_snapshot_user): true, with ec = api_errc::api_unauthorized
/// (48001, what WeChat answers) and `*d` reset to say so (attempts 0).
inline bool snapshot_refusal(const oauth_token& t, std::error_code& ec, error_detail* d) {
  if (!t.is_snapshot_user) return false;
  ec = api_errc::api_unauthorized;
  if (d) {
    *d = error_detail{};
    d->errcode = static_cast<int>(api_errc::api_unauthorized);
    d->errmsg = "snapshot-page user: the openid is virtual and WeChat refuses sns/userinfo";
  }
  return true;
}

namespace calls {

// A GET that carries the app's access token; `query` follows it ("&openid=...").
template <class T>
api_call<T> token_get(const std::string& path, const std::string& query, bool safe,
                      void (*read)(const answer&, T&, std::error_code&, error_detail*)) {
  api_call<T> c;
  c.path = path;
  c.query = query;
  c.token = true;
  c.safe = safe;
  c.read = read;
  return c;
}

// A POST of a JSON body that carries the app's access token.
template <class T>
api_call<T> token_post(const std::string& path, const nlohmann::json& body, bool safe,
                       void (*read)(const answer&, T&, std::error_code&, error_detail*)) {
  api_call<T> c;
  c.method = "POST";
  c.path = path;
  c.body = json_body(body);
  c.token = true;
  c.safe = safe;
  c.read = read;
  return c;
}

// A GET without the app's access token; `query` is the whole query, from '?'.
template <class T>
api_call<T> plain_get(const std::string& path, const std::string& query, bool safe,
                      void (*read)(const answer&, T&, std::error_code&, error_detail*)) {
  api_call<T> c;
  c.path = path;
  c.query = query;
  c.safe = safe;
  c.read = read;
  return c;
}

// A call that sends a single-use code (never safe to repeat, never aborted once sent).
template <class T> api_call<T> spending_code(api_call<T> c) {
  c.safe = false;
  c.spends_code = true;
  return c;
}

// The query that proves a session_key without sending it: its HMAC signature.
inline std::string session_query(std::string_view openid, std::string_view session_key) {
  return "&openid=" + url_encode(openid) + "&signature=" + session_key_signature(session_key) +
         "&sig_method=hmac_sha256";
}

// sns/oauth2/access_token's and refresh_token's answer.
inline void read_oauth(const answer& j, oauth_token& t, std::error_code& ec, error_detail* d) {
  t.access_token = required_string(j, "access_token", ec, d);
  if (!ec) t.openid = required_string(j, "openid", ec, d);
  if (ec) return;
  t.expires_in = integer_field(j, "expires_in", 7200);
  t.refresh_token = optional_string(j, "refresh_token").value_or("");
  t.scope = optional_string(j, "scope").value_or("");
  t.unionid = optional_string(j, "unionid");
  t.is_snapshot_user = integer_field(j, "is_snapshotuser", 0) == 1;
}

/// GET /sns/jscode2session: never the access token; one attempt (a code is single use).
inline api_call<session_info> code2session(const std::string& appid, const std::string& secret,
                                           std::string_view code) {
  std::string q;  // built in place: no string per parameter
  q.reserve(64 + (appid.size() + secret.size() + code.size()) * 3);
  q += "?appid=";
  url_encode_to(q, appid);
  q += "&secret=";
  url_encode_to(q, secret);
  q += "&js_code=";
  url_encode_to(q, code);
  q += "&grant_type=authorization_code";
  api_call<session_info> c;  // plain_get's, with the query moved in
  c.path = "/sns/jscode2session";
  c.query = std::move(q);
  c.read = read_session;
  return spending_code(std::move(c));
}

/// GET /wxa/getpaidunionid: the unionid.
inline api_call<std::string> get_paid_unionid(std::string_view openid, const paid_order& order) {
  std::string q = "&openid=" + url_encode(openid);
  if (!order.transaction_id.empty()) q += "&transaction_id=" + url_encode(order.transaction_id);
  if (!order.mch_id.empty()) q += "&mch_id=" + url_encode(order.mch_id);
  if (!order.out_trade_no.empty()) q += "&out_trade_no=" + url_encode(order.out_trade_no);
  return token_get<std::string>(
      "/wxa/getpaidunionid", q, true,
      [](const answer& j, std::string& out, std::error_code& ec, error_detail* d) {
        out = required_string(j, "unionid", ec, d);
      });
}

/// GET /wxa/checksession: success is the answer.
inline api_call<no_value> check_session_key(std::string_view openid, std::string_view session_key) {
  return token_get<no_value>("/wxa/checksession", session_query(openid, session_key), true,
                             read_nothing);
}

/// GET /wxa/resetusersessionkey: the new session_key. Not safe to repeat: it rotates the key.
inline api_call<std::string> reset_session_key(std::string_view openid,
                                               std::string_view session_key) {
  return token_get<std::string>(
      "/wxa/resetusersessionkey", session_query(openid, session_key), false,
      [](const answer& j, std::string& out, std::error_code& ec, error_detail* d) {
        out = required_string(j, "session_key", ec, d);
      });
}

/// POST /wxa/business/getuserphonenumber ({"code", "openid" when given}). Not safe to
/// repeat: the code is single use.
inline api_call<phone_info> get_phone_number(std::string_view code, std::string_view openid) {
  nlohmann::json body = {{"code", std::string(code)}};
  if (!openid.empty()) body["openid"] = std::string(openid);
  return spending_code(token_post<phone_info>(
      "/wxa/business/getuserphonenumber", body, false,
      [](const answer& a, phone_info& p, std::error_code& ec, error_detail* d) {
        const nlohmann::json& j = a.json();  // read from the DOM, parsed here
        const auto info = j.find("phone_info");
        if (info == j.end() || !info->is_object()) {
          ec = protocol_errc::missing_field;
          if (d) d->field = "phone_info";
          return;
        }
        p.phone_number = required_string(*info, "phoneNumber", ec, d);
        if (ec) return;
        p.pure_phone_number = optional_string(*info, "purePhoneNumber").value_or("");
        if (const auto cc = info->find("countryCode"); cc != info->end()) {
          if (cc->is_string())
            p.country_code = cc->get<std::string>();
          else if (cc->is_number_integer())
            p.country_code = std::to_string(cc->get<std::int64_t>());
        }
        if (const auto wm = info->find("watermark"); wm != info->end() && wm->is_object()) {
          p.watermark.appid = optional_string(*wm, "appid").value_or("");
          p.watermark.timestamp = integer_field(*wm, "timestamp", 0);
        }
      }));
}

/// GET /sns/oauth2/access_token: one attempt (a code is single use).
inline api_call<oauth_token> oauth_exchange(const std::string& appid, const std::string& secret,
                                            std::string_view code) {
  return spending_code(
      plain_get<oauth_token>("/sns/oauth2/access_token",
                             "?appid=" + url_encode(appid) + "&secret=" + url_encode(secret) +
                                 "&code=" + url_encode(code) + "&grant_type=authorization_code",
                             false, read_oauth));
}

/// GET /sns/oauth2/refresh_token.
inline api_call<oauth_token> oauth_refresh(const std::string& appid,
                                           std::string_view refresh_token) {
  return plain_get<oauth_token>(
      "/sns/oauth2/refresh_token",
      "?appid=" + url_encode(appid) +
          "&grant_type=refresh_token&refresh_token=" + url_encode(refresh_token),
      true, read_oauth);
}

/// GET /sns/userinfo with a user access token (not the app's).
inline api_call<sns_user_info> sns_userinfo(std::string_view access_token, std::string_view openid,
                                            std::string_view lang) {
  return plain_get<sns_user_info>(
      "/sns/userinfo",
      "?access_token=" + url_encode(access_token) + "&openid=" + url_encode(openid) +
          "&lang=" + url_encode(lang),
      true, [](const answer& a, sns_user_info& u, std::error_code& ec, error_detail* d) {
        const nlohmann::json& j = a.json();  // read from the DOM, parsed here
        u.openid = required_string(j, "openid", ec, d);
        if (ec) return;
        u.nickname = optional_string(j, "nickname").value_or("");
        u.sex = static_cast<int>(integer_field(j, "sex", 0));
        u.province = optional_string(j, "province").value_or("");
        u.city = optional_string(j, "city").value_or("");
        u.country = optional_string(j, "country").value_or("");
        u.headimgurl = optional_string(j, "headimgurl").value_or("");
        if (const auto p = j.find("privilege"); p != j.end() && p->is_array())
          for (const auto& v : *p)
            if (v.is_string()) u.privilege.push_back(v.get<std::string>());
        u.unionid = optional_string(j, "unionid");
      });
}

/// GET /sns/auth with a user access token: success is the answer.
inline api_call<no_value> sns_auth(std::string_view access_token, std::string_view openid) {
  return plain_get<no_value>(
      "/sns/auth", "?access_token=" + url_encode(access_token) + "&openid=" + url_encode(openid),
      true, read_nothing);
}

/// GET /cgi-bin/user/info: an official account's follower. A missing openid sets ec, yet
/// the other fields are still read (as the client always did).
inline api_call<follower_info> follower(std::string_view openid, std::string_view lang) {
  return token_get<follower_info>(
      "/cgi-bin/user/info", "&openid=" + url_encode(openid) + "&lang=" + url_encode(lang), true,
      [](const answer& j, follower_info& f, std::error_code& ec, error_detail* d) {
        f.subscribed = integer_field(j, "subscribe", 0) == 1;
        f.openid = required_string(j, "openid", ec, d);
        f.subscribe_time = integer_field(j, "subscribe_time", 0);
        f.unionid = optional_string(j, "unionid");
      });
}

/// GET /wxa/business/getuserencryptkey: the keys, newest first. Any bad item empties the
/// list.
inline api_call<std::vector<user_encrypt_key>> get_user_encrypt_key(std::string_view openid,
                                                                    std::string_view session_key) {
  return token_get<std::vector<user_encrypt_key>>(
      "/wxa/business/getuserencryptkey", session_query(openid, session_key), true,
      [](const answer& a, std::vector<user_encrypt_key>& keys, std::error_code& ec,
         error_detail* d) {
        const nlohmann::json& j = a.json();  // read from the DOM, parsed here
        const auto list = j.find("key_info_list");
        if (list == j.end() || !list->is_array()) {
          ec = protocol_errc::missing_field;
          if (d) d->field = "key_info_list";
          return;
        }
        for (const auto& item : *list) {
          if (!item.is_object()) {
            ec = protocol_errc::wrong_type;
            if (d) d->field = "key_info_list";
            keys.clear();
            return;
          }
          user_encrypt_key k;
          k.encrypt_key = required_string(item, "encrypt_key", ec, d);
          if (ec) {
            keys.clear();
            return;
          }
          k.iv = optional_string(item, "iv").value_or("");
          k.version = integer_field(item, "version", 0);
          k.expire_in = integer_field(item, "expire_in", 0);
          k.create_time = integer_field(item, "create_time", 0);
          keys.push_back(std::move(k));
        }
      });
}

/// POST /wxa/getpluginopenpid ({"code"}): the openpid. Not safe to repeat: the code is
/// single use.
inline api_call<std::string> get_plugin_open_pid(std::string_view code) {
  const nlohmann::json body = {{"code", std::string(code)}};
  return spending_code(
      token_post<std::string>("/wxa/getpluginopenpid", body, false,
                              [](const answer& j, std::string& out, std::error_code& ec,
                                 error_detail* d) { out = required_string(j, "openpid", ec, d); }));
}

/// POST /wxa/getuserriskrank: the app's appid, the request's fields (optional ones only
/// when set). risk_rank must be an integer 0-4.
inline api_call<user_risk_rank> get_user_risk_rank(const std::string& appid,
                                                   const risk_rank_request& r) {
  nlohmann::json body = {
      {"appid", appid}, {"openid", r.openid}, {"scene", r.scene}, {"client_ip", r.client_ip}};
  if (!r.mobile_no.empty()) body["mobile_no"] = r.mobile_no;
  if (!r.email_address.empty()) body["email_address"] = r.email_address;
  if (!r.extended_info.empty()) body["extended_info"] = r.extended_info;
  if (r.is_test) body["is_test"] = true;
  return token_post<user_risk_rank>(
      "/wxa/getuserriskrank", body, true,
      [](const answer& a, user_risk_rank& out, std::error_code& ec, error_detail* d) {
        const nlohmann::json& j = a.json();  // read from the DOM, parsed here
        const auto rank = j.find("risk_rank");
        if (rank == j.end() || rank->is_null()) {
          ec = protocol_errc::missing_field;
          if (d) d->field = "risk_rank";
          return;
        }
        if (!rank->is_number_integer() || rank->get<std::int64_t>() < 0 ||
            rank->get<std::int64_t>() > 4) {  // 0-4, nothing else
          ec = protocol_errc::wrong_type;
          if (d) d->field = "risk_rank";
          return;
        }
        out.risk_rank = rank->get<int>();
        // WeChat writes "unoin_id"; read "union_id" too, should it ever fix the spelling
        out.union_id = integer_field(j, "unoin_id", integer_field(j, "union_id", 0));
      });
}

/// POST /cgi-bin/clear_quota ({"appid"}): success is the answer. Not safe to repeat: each
/// one spends one of the month's 10.
inline api_call<no_value> clear_quota(const std::string& appid) {
  const nlohmann::json body = {{"appid", appid}};
  return token_post<no_value>("/cgi-bin/clear_quota", body, false, read_nothing);
}

/// POST /cgi-bin/openapi/quota/get ({"cgi_path"}).
inline api_call<api_quota> get_api_quota(std::string_view cgi_path) {
  const nlohmann::json body = {{"cgi_path", std::string(cgi_path)}};
  return token_post<api_quota>(
      "/cgi-bin/openapi/quota/get", body, true,
      [](const answer& a, api_quota& q, std::error_code& ec, error_detail* d) {
        const nlohmann::json& j = a.json();  // read from the DOM, parsed here
        const auto quota = j.find("quota");
        if (quota == j.end() || !quota->is_object()) {
          ec = protocol_errc::missing_field;
          if (d) d->field = "quota";
          return;
        }
        q.daily_limit = integer_field(*quota, "daily_limit", 0);
        q.used = integer_field(*quota, "used", 0);
        q.remain = integer_field(*quota, "remain", 0);
      });
}

/// POST /cgi-bin/openapi/rid/get ({"rid"}).
inline api_call<rid_info> get_rid_info(std::string_view rid) {
  const nlohmann::json body = {{"rid", std::string(rid)}};
  return token_post<rid_info>(
      "/cgi-bin/openapi/rid/get", body, true,
      [](const answer& a, rid_info& r, std::error_code& ec, error_detail* d) {
        const nlohmann::json& j = a.json();  // read from the DOM, parsed here
        const auto req = j.find("request");
        if (req == j.end() || !req->is_object()) {
          ec = protocol_errc::missing_field;
          if (d) d->field = "request";
          return;
        }
        r.invoke_time = integer_field(*req, "invoke_time", 0);
        r.cost_in_ms = integer_field(*req, "cost_in_ms", 0);
        r.request_url = optional_string(*req, "request_url").value_or("");
        r.request_body = optional_string(*req, "request_body").value_or("");
        r.response_body = optional_string(*req, "response_body").value_or("");
        r.client_ip = optional_string(*req, "client_ip").value_or("");
      });
}

}  // namespace calls
}  // namespace wechat::detail
