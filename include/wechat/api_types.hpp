// wechat/api_types.hpp - the values of the WeChat calls: what the sync client (client.hpp)
// and the async client are given and return. Plain structs, no behaviour beyond
// paid_order's two constructors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wechat {

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

}  // namespace wechat
