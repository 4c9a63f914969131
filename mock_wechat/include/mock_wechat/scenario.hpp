// mock_wechat/scenario.hpp - a scenario file describes a world to start from: apps,
// users, follows, authorizations, the UnionID rule mode and the profile era.
//
// {
//   "unionid_rules": "bound" | "conditional",                       (optional)
//   "profiles": "anonymous" | "real",                               (optional)
//   "apps": [ {"appid":"wx...","secret":"...","type":"miniprogram",
//              "open_account":"acct-1"} ],                          (open_account optional)
//   "users": [ {"id":"alice", "high_risk":false, "risk_rank":0,
//               "profile":{"nickName":"...","gender":1,"city":"...","province":"...",
//                          "country":"...","language":"zh_CN","avatarUrl":"..."},
//               "follows":["wx<oa>"], "authorized":["wx<app>"]} ],   (all optional but id)
//   "follows": [ {"user":"alice","appid":"wx<oa>"} ],               (optional)
//   "authorizations": [ {"user":"alice","appid":"wx<app>"} ]        (optional)
// }
// An app may give "name" instead of "appid": its appid is then make_appid(name), and
// follows and authorizations may name it by either. Errors carry the path of the entry.
// Refused, with that path: a field the format does not have (a typo such as "secert"
// would otherwise be ignored), an appid declared twice (the second would silently
// replace the first), a user declared twice, a control character (NUL, CR, LF...) in an
// appid, a secret or an open_account (world::add_app's check, which every way of adding
// an app goes through). The admin API's POST /__mock/apps and POST /__mock/users
// {"profile"} parse with the same functions as the file, so they refuse the same.
#pragma once

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "mock_wechat/detail/fields.hpp"
#include "mock_wechat/world.hpp"

namespace mock_wechat {

namespace detail {

inline const nlohmann::json& member(const nlohmann::json& j, const char* key,
                                    const std::string& where) {
  static const nlohmann::json null_value;
  if (!j.is_object()) throw admin_error(400, where + " must be a JSON object");
  const auto it = j.find(key);
  return it == j.end() ? null_value : *it;
}

inline std::string string_field(const nlohmann::json& j, const char* key, const std::string& where,
                                bool required) {
  const auto& v = member(j, key, where);
  if (v.is_null()) {
    if (required) throw admin_error(400, where + ": field '" + key + "' is required");
    return {};
  }
  if (!v.is_string()) throw admin_error(400, where + ": field '" + key + "' must be a string");
  return v.get<std::string>();
}

inline const nlohmann::json& array_field(const nlohmann::json& j, const char* key,
                                         const std::string& where) {
  static const nlohmann::json empty = nlohmann::json::array();
  const auto& v = member(j, key, where);
  if (v.is_null()) return empty;
  if (!v.is_array()) throw admin_error(400, where + ": field '" + key + "' must be an array");
  return v;
}

}  // namespace detail

/// Parses an app object (admin API and scenario files). Throws admin_error(400) naming the
/// field, for an unknown field too.
inline app app_from_json(const nlohmann::json& j, const std::string& where = "app") {
  app a;
  a.appid = detail::string_field(j, "appid", where, false);
  detail::known_fields_only(j, where, {"appid", "name", "secret", "type", "open_account"});
  const std::string name = detail::string_field(j, "name", where, false);
  if (a.appid.empty() && !name.empty()) a.appid = make_appid(name);
  if (a.appid.empty()) throw admin_error(400, where + ": field 'appid' is required");
  a.secret = detail::string_field(j, "secret", where, false);
  const std::string type = detail::string_field(j, "type", where, false);
  if (!type.empty() && !parse_app_type(type, a.type))
    throw admin_error(400, where +
                               ": field 'type' must be miniprogram, minigame, official_account, "
                               "mobile_app or website");
  a.open_account = detail::string_field(j, "open_account", where, false);
  return a;
}

inline nlohmann::json to_json(const app& a) {
  nlohmann::json j = {{"appid", a.appid}, {"secret", a.secret}, {"type", to_string(a.type)}};
  if (a.bound()) j["open_account"] = a.open_account;
  return j;
}

/// Parses a profile object ("nickName", "gender", ...). Throws admin_error(400).
inline profile profile_from_json(const std::string& user, const nlohmann::json& j,
                                 const std::string& where) {
  profile p;
  p.nickname = user;
  if (!j.is_object()) throw admin_error(400, where + " must be a JSON object");
  detail::known_fields_only(
      j, where, {"nickName", "gender", "language", "city", "province", "country", "avatarUrl"});
  auto s = [&](const char* k, std::string& out) {
    const auto v = detail::string_field(j, k, where, false);
    if (!v.empty()) out = v;
  };
  s("nickName", p.nickname);
  s("language", p.language);
  s("city", p.city);
  s("province", p.province);
  s("country", p.country);
  s("avatarUrl", p.avatar_url);
  if (const auto it = j.find("gender"); it != j.end()) {
    const auto g = detail::integer_in(*it, 0, 2);  // not get<int>(): 4294967297 is not 1
    if (!g) throw admin_error(400, where + ": field 'gender' must be 0, 1 or 2");
    p.gender = static_cast<int>(*g);
  }
  if (p.avatar_url.empty())
    p.avatar_url =
        "https://thirdwx.qlogo.cn/mmopen/vi_32/" + detail::hashed_id("avatar", user, "") + "/132";
  return p;
}

namespace detail {

// An app named in follows/authorizations: its appid, or the name an app was declared with
// ("name" instead of "appid": make_appid(name)).
inline std::string app_ref(world& w, const std::string& ref) {
  if (w.find_app(ref)) return ref;
  const std::string by_name = make_appid(ref);
  return w.find_app(by_name) ? by_name : ref;
}

// Runs `act` (a world call that may throw admin_error) with `where` before its message.
template <class Act> void at(const std::string& where, Act&& act) {
  try {
    act();
  } catch (const admin_error& e) {
    throw admin_error(e.status(), where + ": " + e.what());
  }
}

}  // namespace detail

/// Applies a scenario (already parsed) to the world. Throws admin_error(400) naming the
/// first problem, e.g. "scenario.apps[2]: field 'type' must be ...".
inline void apply_scenario(world& w, const nlohmann::json& s) {
  const std::string root = "scenario";
  if (!s.is_object()) throw admin_error(400, "scenario must be a JSON object");
  detail::known_fields_only(s, root,
                            {"unionid_rules", "profiles", "apps", "users", "follows",
                             "authorizations"});
  if (const auto rules = detail::string_field(s, "unionid_rules", root, false); !rules.empty()) {
    unionid_rules r;
    if (!parse_unionid_rules(rules, r))
      throw admin_error(400, "scenario: field 'unionid_rules' must be bound or conditional");
    w.set_rules(r);
  }
  if (const auto era = detail::string_field(s, "profiles", root, false); !era.empty()) {
    profile_era e;
    if (!parse_profile_era(era, e))
      throw admin_error(400, "scenario: field 'profiles' must be anonymous or real");
    w.set_profiles(e);
  }
  const auto& apps = detail::array_field(s, "apps", root);
  std::map<std::string, std::string> declared;  // appid (or user id) -> where it was first
  for (std::size_t i = 0; i < apps.size(); ++i) {
    const std::string where = root + ".apps[" + std::to_string(i) + "]";
    app a = app_from_json(apps[i], where);
    if (const auto [it, fresh] = declared.emplace(a.appid, where); !fresh)
      throw admin_error(400, where + ": appid " + detail::printable(a.appid) +
                                 " is declared twice (first at " +
                                 it->second + ")");
    detail::at(where, [&] { w.add_app(std::move(a)); });
  }
  declared.clear();
  const auto& users = detail::array_field(s, "users", root);
  for (std::size_t i = 0; i < users.size(); ++i) {
    const std::string where = root + ".users[" + std::to_string(i) + "]";
    const std::string id = detail::string_field(users[i], "id", where, true);
    detail::known_fields_only(users[i], where,
                              {"id", "high_risk", "risk_rank", "profile", "follows", "authorized"});
    if (const auto [it, fresh] = declared.emplace(id, where); !fresh)
      throw admin_error(400, where + ": user " + detail::printable(id) +
                                 " is declared twice (first at " + it->second + ")");
    if (const auto& hr = detail::member(users[i], "high_risk", where); !hr.is_null()) {
      if (!hr.is_boolean())
        throw admin_error(400, where + ": field 'high_risk' must be true or false");
      w.set_high_risk(id, hr.get<bool>());
    }
    if (const auto& rr = detail::member(users[i], "risk_rank", where); !rr.is_null()) {
      const auto rank = detail::integer_in(rr, 0, 4);
      if (!rank) throw admin_error(400, where + ": field 'risk_rank' must be 0, 1, 2, 3 or 4");
      w.set_risk_rank(id, static_cast<int>(*rank));
    }
    if (const auto& p = detail::member(users[i], "profile", where); !p.is_null())
      w.set_profile(id, profile_from_json(id, p, where + ".profile"));
    const auto& fl = detail::array_field(users[i], "follows", where);
    for (std::size_t k = 0; k < fl.size(); ++k) {
      const std::string at = where + ".follows[" + std::to_string(k) + "]";
      if (!fl[k].is_string()) throw admin_error(400, at + ": an appid or app name (a string)");
      detail::at(at, [&] { w.follow(id, detail::app_ref(w, fl[k].get<std::string>())); });
    }
    const auto& au = detail::array_field(users[i], "authorized", where);
    for (std::size_t k = 0; k < au.size(); ++k) {
      const std::string at = where + ".authorized[" + std::to_string(k) + "]";
      if (!au[k].is_string()) throw admin_error(400, at + ": an appid or app name (a string)");
      detail::at(at, [&] { w.authorize(id, detail::app_ref(w, au[k].get<std::string>())); });
    }
  }
  const auto& follows = detail::array_field(s, "follows", root);
  for (std::size_t i = 0; i < follows.size(); ++i) {
    const std::string where = root + ".follows[" + std::to_string(i) + "]";
    const std::string user = detail::string_field(follows[i], "user", where, true),
                      app = detail::string_field(follows[i], "appid", where, true);
    detail::known_fields_only(follows[i], where, {"user", "appid"});
    detail::at(where, [&] { w.follow(user, detail::app_ref(w, app)); });
  }
  const auto& auths = detail::array_field(s, "authorizations", root);
  for (std::size_t i = 0; i < auths.size(); ++i) {
    const std::string where = root + ".authorizations[" + std::to_string(i) + "]";
    const std::string user = detail::string_field(auths[i], "user", where, true),
                      app = detail::string_field(auths[i], "appid", where, true);
    detail::known_fields_only(auths[i], where, {"user", "appid"});
    detail::at(where, [&] { w.authorize(user, detail::app_ref(w, app)); });
  }
}

/// Reads and applies a scenario file. Throws admin_error(400) for an unreadable file, one
/// that is not JSON, or bad content (mock_wechat exits 2 on any of them).
inline void load_scenario_file(world& w, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw admin_error(400, "cannot read scenario file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) throw admin_error(400, "scenario file " + path + " is not valid JSON");
  apply_scenario(w, j);
}

}  // namespace mock_wechat
