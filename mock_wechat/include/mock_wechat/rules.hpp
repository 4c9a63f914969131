// mock_wechat/rules.hpp - the UnionID rule engine: may this channel see this user's
// unionid? One function answers for every endpoint, in two modes.
//
// conditional (default; the seed's rules, WeChat's earlier rule set), for an app bound
// to Open Platform account O and a user U:
//   code2session, wxcontext   U follows an official account of O, or has authorized an
//                             official account, mobile app or website of O
//   user_info (decrypted)     always (wx.getUserInfo is itself the consent, for that
//                             payload only)
//   paid (getpaidunionid)     a mini program (not a mini game), within 5 minutes of a
//                             payment (the window is the endpoint's to check)
//   oauth (sns/oauth2)        mobile apps and websites always; official accounts with
//                             the snsapi_userinfo scope
//   sns_userinfo              whenever the token's scope allows the call at all
//   follower (user/info)      U follows this official account
// bound: as conditional, except code2session and wxcontext: every user of a bound app.
// Unbound apps never carry a unionid, in either mode.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace mock_wechat {

enum class app_type { miniprogram, minigame, official_account, mobile_app, website };
enum class unionid_rules { conditional, bound };
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

/// What the rule engine needs to know about a user of an app.
struct rule_facts {
  app_type type = app_type::miniprogram;
  bool bound = false;                        ///< the app has an Open Platform account
  bool follows_same_account_oa = false;      ///< follows an official account of that account
  bool authorized_same_account_app = false;  ///< authorized an OA, mobile app or website of it
  bool follows_this_oa = false;              ///< follower: follows this official account
  bool userinfo_scope = false;               ///< oauth: the code had snsapi_userinfo/login scope
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
    return f.type == app_type::mobile_app || f.type == app_type::website ||
           (f.type == app_type::official_account && f.userinfo_scope);
  case channel::sns_userinfo: return true;
  case channel::follower: return f.follows_this_oa;
  }
  return false;
}

}  // namespace mock_wechat
