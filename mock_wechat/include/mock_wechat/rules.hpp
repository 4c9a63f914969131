// mock_wechat/rules.hpp - the UnionID rule engine: may this channel see this user's
// unionid? One function answers for every endpoint, in two modes; and the profile era
// (what a user-info API reveals of the user).
//
// bound (the default: WeChat since 2021-02-23, "小程序登录、用户信息相关接口调整说明",
// developers.weixin.qq.com community doc 000cacfa20ce88df04cb468bc52801, and today's
// UnionID guide), for an app bound to Open Platform account O and a user U:
//   code2session, wxcontext   every user of a bound mini program or mini game
//   user_info (decrypted)     always (the anonymous getUserInfo payload still carries it)
//   paid (getpaidunionid)     a mini program (not a mini game), within 5 minutes of a
//                             payment (the window is the endpoint's to check); redundant
//                             today but still answering (wechat-api.md section 8)
//   oauth (sns/oauth2)        mobile apps and websites always; official accounts with
//                             the snsapi_userinfo scope; never a snapshot-page user
//   sns_userinfo              whenever the token's scope allows the call at all
//   follower (user/info)      U follows this official account
// conditional (legacy: WeChat before 2021-02-23, the seed's rules): as bound, except
//   code2session, wxcontext   U follows an official account of O, or has authorized an
//                             official account, mobile app or website of O
// Unbound apps never carry a unionid, in either mode.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace mock_wechat {

enum class app_type { miniprogram, minigame, official_account, mobile_app, website };
enum class unionid_rules { conditional, bound };

/// What user-info APIs reveal of a user.
///   anonymous (the default): WeChat since 2021-04-28 (getUserInfo, community doc
///     000cacfa20ce88df04cb468bc52801), 2021-10-20 (no gender or region anywhere, doc
///     00028edbe3c58081e7cc834705b801) and 2022-11-08 (getUserProfile, doc
///     00022c683e8a80b29bed2142b56c01): wx.getUserInfo and wx.getUserProfile give
///     "微信用户", the grey default avatar, gender 0 and an empty region; sns/userinfo
///     keeps the nickname and avatar but answers sex 0 and an empty region.
///   real: before those dates, the user's own nickname, avatar, gender and region.
enum class profile_era { anonymous, real };
enum class channel {
  code2session,
  wxcontext,
  user_info,  ///< the decrypted wx.getUserInfo payload
  paid,
  oauth,
  sns_userinfo,
  follower,  ///< cgi-bin/user/info: an official account's follower
  user_info_api [[deprecated("use channel::follower")]] = follower,
};

/// A mini program or a mini game: the apps whose users log in with wx.login.
inline constexpr bool is_mini(app_type t) noexcept {
  return t == app_type::miniprogram || t == app_type::minigame;
}

inline const char* to_string(app_type t) noexcept {
  switch (t) {
  case app_type::miniprogram: return "miniprogram";
  case app_type::minigame: return "minigame";
  case app_type::official_account: return "official_account";
  case app_type::mobile_app: return "mobile_app";
  case app_type::website: return "website";
  }
  return "?";
}

inline bool parse_app_type(std::string_view s, app_type& out) noexcept {
  for (app_type t : {app_type::miniprogram, app_type::minigame, app_type::official_account,
                     app_type::mobile_app, app_type::website}) {
    if (s == to_string(t)) {
      out = t;
      return true;
    }
  }
  return false;
}

inline const char* to_string(unionid_rules r) noexcept {
  return r == unionid_rules::bound ? "bound" : "conditional";
}

inline bool parse_unionid_rules(std::string_view s, unionid_rules& out) noexcept {
  if (s == "conditional")
    out = unionid_rules::conditional;
  else if (s == "bound")
    out = unionid_rules::bound;
  else
    return false;
  return true;
}

inline const char* to_string(profile_era e) noexcept {
  return e == profile_era::real ? "real" : "anonymous";
}

inline bool parse_profile_era(std::string_view s, profile_era& out) noexcept {
  if (s == "anonymous")
    out = profile_era::anonymous;
  else if (s == "real")
    out = profile_era::real;
  else
    return false;
  return true;
}

/// What the rule engine needs to know about a user of an app.
struct rule_facts {
  app_type type = app_type::miniprogram;
  bool bound = false;                        ///< the app has an Open Platform account
  bool follows_same_account_oa = false;      ///< follows an official account of that account
  bool authorized_same_account_app = false;  ///< authorized an OA, mobile app or website of it
  bool follows_this_oa = false;              ///< follower: follows this official account
  bool userinfo_scope = false;               ///< oauth: the code had snsapi_userinfo/login scope
  bool snapshot_user = false;                ///< oauth: the official account's snapshot page
};

/// May `ch` carry the user's unionid?
inline bool unionid_allowed(unionid_rules mode, channel ch, const rule_facts& f) noexcept {
  if (!f.bound) return false;
  switch (ch) {
  case channel::code2session:
  case channel::wxcontext:
    return mode == unionid_rules::bound || f.follows_same_account_oa ||
           f.authorized_same_account_app;
  case channel::user_info: return true;
  case channel::paid: return f.type == app_type::miniprogram;
  case channel::oauth:
    // a snapshot-page user's ids are virtual (since 2022-07-12, community doc
    // 000c2c34068880629ced91a2f56001): never the real unionid
    if (f.snapshot_user) return false;
    return f.type == app_type::mobile_app || f.type == app_type::website ||
           (f.type == app_type::official_account && f.userinfo_scope);
  case channel::sns_userinfo: return true;
  case channel::follower: return f.follows_this_oa;
  }
  return false;
}

}  // namespace mock_wechat
