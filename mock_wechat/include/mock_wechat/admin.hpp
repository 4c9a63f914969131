// mock_wechat/admin.hpp - the admin API under /__mock (DESIGN.md's contract): the
// device side (login, user_info, user_profile, phone, pay, oauth_code, wxcontext), the control side
// (apps, follow, unfollow, authorize, users, clock, faults, reset), Open Platform
// third-party platforms (components, component_push, component_authorize) and WeCom (corps,
// wecom_login), and what the mock saw
// (requests, stats, health); and one call for load generators (logins: many wx.login
// calls with their payloads). All bodies are JSON; errors are HTTP 400/404 with
// {"error":"..."} naming the field or the unknown thing (507 naming the limit when the
// world or the fault table is full); a call that fails after it changed the world in part
// (logins) answers what it did beside the error (admin_partial_error). Success is HTTP 200.
#pragma once

#include <charconv>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mock_wechat/api.hpp"
#include "mock_wechat/detail/fields.hpp"
#include "mock_wechat/faults.hpp"
#include "mock_wechat/observe.hpp"
#include "mock_wechat/push.hpp"
#include "mock_wechat/scenario.hpp"
#include "mock_wechat/world.hpp"

namespace mock_wechat {

/// An admin call that failed part way, after it had changed the world: the error (its
/// status and text), and the members to answer beside "error" that say what was done
/// (POST /__mock/logins: {"error":"...","logins":[the logins made before it]}).
class admin_partial_error : public admin_error {
public:
  admin_partial_error(const admin_error& e, nlohmann::json done)
      : admin_error(e.status(), e.what()),
        done_(std::make_shared<const nlohmann::json>(std::move(done))) {}
  /// A JSON object: what the call did before it failed.
  const nlohmann::json& done() const noexcept { return *done_; }

private:
  std::shared_ptr<const nlohmann::json> done_;  ///< shared: copying the exception never throws
};

struct admin_response {
  int status = 200;
  std::string body;  ///< compact JSON
};

class admin_api {
public:
  admin_api(world& w, fault_table& f, journal& j, stats_table& s)
      : world_(w), faults_(f), journal_(j), stats_(s) {}

  /// Answers a request under /__mock. `query` may be null.
  admin_response handle(std::string_view method, std::string_view path, std::string_view body,
                        const params* query) {
    try {
      return {200, dispatch(method, path, body, query)
                       .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
    } catch (const admin_error& e) {
      nlohmann::json answer = {{"error", e.what()}};
      if (const auto* partial = dynamic_cast<const admin_partial_error*>(&e))
        answer.update(partial->done());
      return {e.status(), answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
    }
  }

private:
  static nlohmann::json parse_body(std::string_view body) {
    if (body.empty()) return nlohmann::json::object();
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) throw admin_error(400, "the body is not valid JSON");
    if (!j.is_object()) throw admin_error(400, "the body must be a JSON object");
    return j;
  }

  // The body of a call that takes the fields `known` and no other: a typo ("usr") is a
  // 400 naming it and the fields the call takes, never a field silently ignored.
  struct call_args;
  static nlohmann::json parse_body(const call_args& a, std::initializer_list<const char*> known) {
    auto j = parse_body(a.body);
    detail::known_fields_only(j, "POST /__mock" + std::string(a.call), known);
    return j;
  }

  static std::string str(const nlohmann::json& j, const char* key, bool required = true) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (required) throw admin_error(400, std::string("field '") + key + "' is required");
      return {};
    }
    if (!it->is_string())
      throw admin_error(400, std::string("field '") + key + "' must be a string");
    return it->get<std::string>();
  }

  static std::string query_param(const params* q, const char* key) {
    if (q == nullptr) return {};
    const std::string* v = first_param(*q, key);
    return v == nullptr ? std::string() : *v;
  }

  // The one query parameter the listing and clearing calls take is "path": another name
  // ("pth") would clear or list everything, so it is refused.
  static std::string path_param(const call_args& a) {
    if (a.query != nullptr)
      for (const auto& kv : *a.query)
        if (kv.first != "path")
          throw admin_error(400, "/__mock" + std::string(a.call) + ": unknown query parameter '" +
                                     detail::printable(kv.first) + "' (known: path" +
                                     (a.call == "/faults" ? ", id" : "") + ")");
    return query_param(a.query, "path");
  }

  // What a call's function gets of the request.
  struct call_args {
    std::string_view body;
    const params* query;    ///< may be null
    std::string_view call;  ///< the path under /__mock: "/login"
  };
  using call_fn = nlohmann::json (admin_api::*)(const call_args&);

  // The methods a route answers; HEAD is GET.
  enum method_bits : unsigned { on_get = 1, on_post = 2, on_delete = 4 };

  static unsigned method_bit(std::string_view method) noexcept {
    if (method == "GET" || method == "HEAD") return on_get;
    if (method == "POST") return on_post;
    if (method == "DELETE") return on_delete;
    return 0;
  }

  // One admin call: a path under /__mock, the methods it takes, the function that answers.
  struct route {
    std::string_view path;
    unsigned methods;
    call_fn call;
  };

  // Every admin call (DESIGN.md's table). A path with several methods has one entry per
  // function; any other method, like any other path, is an unknown admin call (404).
  static const route* find_route(std::string_view call, unsigned method) noexcept {
    static constexpr route routes[] = {
        {"/health", on_get, &admin_api::health},
        {"/reset", on_post, &admin_api::reset},
        {"/apps", on_post, &admin_api::add_app},
        {"/apps", on_get, &admin_api::list_apps},
        {"/users", on_post, &admin_api::set_user},
        {"/follow", on_post, &admin_api::relate<&world::follow>},
        {"/unfollow", on_post, &admin_api::relate<&world::unfollow>},
        {"/authorize", on_post, &admin_api::relate<&world::authorize>},
        {"/login", on_post, &admin_api::login},
        {"/logins", on_post, &admin_api::logins},
        {"/user_info", on_post, &admin_api::user_info},
        {"/user_profile", on_post, &admin_api::user_profile},
        {"/phone", on_post, &admin_api::phone},
        {"/pay", on_post, &admin_api::pay},
        {"/oauth_code", on_post, &admin_api::oauth_code},
        {"/wxcontext", on_post, &admin_api::wxcontext},
        {"/plugin_login", on_post, &admin_api::plugin_login},
        {"/components", on_post, &admin_api::add_component},
        {"/components", on_get, &admin_api::list_pushes},
        {"/component_push", on_post, &admin_api::component_push},
        {"/component_authorize", on_post, &admin_api::component_authorize},
        {"/corps", on_post, &admin_api::add_corp},
        {"/wecom_login", on_post, &admin_api::wecom_login},
        {"/clock", on_get, &admin_api::clock_now},
        {"/clock", on_post, &admin_api::set_clock},
        {"/faults", on_post, &admin_api::add_fault},
        {"/faults", on_get, &admin_api::list_faults},
        {"/faults", on_delete, &admin_api::clear_faults},
        {"/requests", on_get, &admin_api::list_requests},
        {"/requests", on_delete, &admin_api::clear_requests},
        {"/stats", on_get, &admin_api::stats},
    };
    for (const route& r : routes)
      if (r.path == call && (r.methods & method) != 0) return &r;
    return nullptr;
  }

  nlohmann::json dispatch(std::string_view method, std::string_view path, std::string_view body,
                          const params* q) {
    constexpr std::string_view prefix = "/__mock";
    if (path.substr(0, prefix.size()) != prefix)
      throw admin_error(404, "not an admin path: the admin API lives under /__mock");
    if (const route* r = find_route(path.substr(prefix.size()), method_bit(method)))
      return (this->*(r->call))(call_args{body, q, r->path});
    throw admin_error(404, "unknown admin call " + std::string(method) + " " + std::string(path));
  }

  // The control side.

  nlohmann::json reset(const call_args& a) {
    parse_body(a, {});  // no fields: '{"keep_apps":true}' is refused, not a reset
    world_.reset();
    journal_.clear();
    faults_.clear();
    stats_.clear();
    return {{"status", "ok"}};
  }

  nlohmann::json add_app(const call_args& a) {
    return to_json(world_.add_app(app_from_json(parse_body(a.body))));
  }

  nlohmann::json list_apps(const call_args& /*unused*/) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& x : world_.apps())
      a.push_back(to_json(x));
    return a;
  }

  nlohmann::json set_user(const call_args& a) {
    const auto j = parse_body(a, {"user", "high_risk", "risk_rank", "profile"});
    const std::string user = str(j, "user");
    int rank = -1;  // checked before anything changes
    if (const auto it = j.find("risk_rank"); it != j.end() && !it->is_null()) {
      const auto r = detail::integer_in(*it, 0, 4);
      if (!r) throw admin_error(400, "field 'risk_rank' must be 0, 1, 2, 3 or 4");
      rank = static_cast<int>(*r);
    }
    if (const auto it = j.find("high_risk"); it != j.end()) {
      if (!it->is_boolean()) throw admin_error(400, "field 'high_risk' must be true or false");
      world_.set_high_risk(user, it->get<bool>());
    }
    if (const auto it = j.find("profile"); it != j.end())
      world_.set_profile(user, profile_from_json(user, *it, "profile"));
    if (rank >= 0) world_.set_risk_rank(user, rank);
    return {{"status", "ok"}};
  }

  // {"user","appid"}: what the user does with an app (world::follow, unfollow, authorize).
  template <void (world::*Act)(const std::string&, const std::string&)>
  nlohmann::json relate(const call_args& a) {
    const auto j = parse_body(a, {"user", "appid"});
    const std::string user = str(j, "user"), appid = str(j, "appid");
    (world_.*Act)(user, appid);
    return {{"status", "ok"}};
  }

  nlohmann::json clock_now(const call_args& /*unused*/) { return {{"now", world_.now()}}; }

  // {"advance":seconds}, {"set":unix,"frozen"?} or {"frozen":false}; answers the new now.
  // The virtual time stays within 0 to virtual_clock::max_unix (9999-12-31): a value that
  // would leave it is 400 naming the field and the range it may take now.
  nlohmann::json set_clock(const call_args& a) {
    const auto j = parse_body(a, {"advance", "set", "frozen"});
    const auto adv = j.find("advance"), set = j.find("set");
    constexpr std::int64_t max = virtual_clock::max_unix;
    if (adv != j.end() && set != j.end())
      throw admin_error(400, "give 'advance' or 'set', not both");
    if (adv != j.end() && j.contains("frozen"))
      throw admin_error(400, "field 'frozen' goes with 'set' (or alone, false, to resume)");
    if (adv != j.end()) {
      const std::int64_t now = world_.now();
      const auto s = detail::integer_in(*adv, -now, max - now);
      if (!s)
        throw admin_error(400, detail::range_message("field 'advance'", -now, max - now) +
                                   " (seconds: the virtual time, now " + std::to_string(now) +
                                   ", stays from 0 to " + std::to_string(max) + ")");
      try {
        world_.clock().advance(*s);
      } catch (const std::out_of_range& e) {  // the clock ran past a bound meanwhile
        throw admin_error(400, std::string("field 'advance': ") + e.what());
      }
    } else if (set != j.end()) {
      const auto t = detail::integer_in(*set, 0, max);
      if (!t)
        throw admin_error(400, detail::range_message("field 'set'", 0, max) +
                                   " (Unix seconds, up to 9999-12-31T23:59:59Z)");
      bool freeze = true;
      if (const auto fr = j.find("frozen"); fr != j.end()) {
        if (!fr->is_boolean()) throw admin_error(400, "field 'frozen' must be true or false");
        freeze = fr->get<bool>();
      }
      world_.clock().set(*t, freeze);
    } else if (const auto fr = j.find("frozen");
               fr != j.end() && fr->is_boolean() && !fr->get<bool>()) {
      world_.clock().resume();
    } else {
      throw admin_error(400, "give 'advance' (seconds) or 'set' (Unix seconds)");
    }
    // the ticket pushes the new time makes due are delivered before the answer (and those
    // the pusher thread claimed a moment before): a test that advances 600 s finds the new
    // ticket at its receiver
    run_due_pushes_and_wait(world_);
    return clock_now(a);
  }

  nlohmann::json add_fault(const call_args& a) {
    const auto id = faults_.add(fault::from_json(parse_body(a.body)));
    return {{"status", "ok"}, {"id", id}};
  }

  nlohmann::json list_faults(const call_args& /*unused*/) { return faults_.to_json(); }

  // DELETE /__mock/faults: every fault, those of ?path=, or the one fault ?id= (the id
  // POST answered; a tool that added a fault removes its own and no one else's).
  nlohmann::json clear_faults(const call_args& a) {
    if (a.query != nullptr && first_param(*a.query, "id") != nullptr) {
      if (a.query->size() != 1)
        throw admin_error(400, "DELETE /__mock/faults: give ?id= or ?path=, not both");
      const std::string& v = *first_param(*a.query, "id");
      std::uint64_t id = 0;
      const auto* end = v.data() + v.size();
      const auto r = std::from_chars(v.data(), end, id);
      if (v.empty() || r.ec != std::errc() || r.ptr != end || id == 0)
        throw admin_error(400, "DELETE /__mock/faults: id '" + detail::printable(v) +
                                   "' is not a fault id (a whole number from POST /__mock/faults)");
      if (!faults_.remove(id))
        throw admin_error(404, "DELETE /__mock/faults: no active fault has id " + v);
      return {{"status", "ok"}};
    }
    faults_.clear(path_param(a));
    return {{"status", "ok"}};
  }

  // The device side: what wx.login, wx.getUserInfo, the phone button... give the device.

  nlohmann::json login(const call_args& a) {
    const auto j = parse_body(a, {"appid", "user"});
    return {{"code", world_.login(str(j, "appid"), str(j, "user"))}};
  }

  // POST /__mock/logins, for load generators: many wx.login calls in one request, each
  // followed at once by the payloads `with` names, made with THAT login's session_key.
  //   {"appid", "users":[names] | "user_prefix","first"?,"count", "with"?:["user_info",
  //    "user_profile","phone"], "phone"?}
  //   -> {"logins":[{"user","code","openid","unionid"?,"user_info"?,"user_profile"?,
  //      "phone"?}]}, in the order of the users
  // Each entry is what POST /__mock/login, then user_info, user_profile and phone (in that
  // order, whatever the order of `with`) give for the user, by the same world calls;
  // "unionid" is there when jscode2session, redeeming the code now, would give one
  // (world::code2session_ids, which shares redeem_js_code's rule). Each world call takes
  // its shards' locks as the single calls do: no lock is held across the batch, so other
  // threads' WeChat calls go on meanwhile. (The event engine runs the call on its
  // connection's loop, like any answer: that loop's other connections wait for it, about
  // 50 ms for 1,000 entries with every payload in a Release build.) Everything the request
  // says is checked before the first login; an error after it (507 at the codes or
  // sessions limit) answers the logins made so far beside the error, {"error","logins"}:
  // those entries are whole, the user that failed is the next in order (its own login may
  // have happened: its key may have changed).
  static constexpr std::size_t max_logins = 1000;  ///< users per call

  struct login_extras {
    bool user_info = false, user_profile = false, phone = false;
  };

  static bool given(const nlohmann::json& j, const char* key) {
    const auto it = j.find(key);
    return it != j.end() && !it->is_null();
  }

  // The users of a logins call: "users", or "user_prefix" + first..first+count-1; each
  // name as /__mock/login takes it, none twice.
  static std::vector<std::string> login_users(const nlohmann::json& j) {
    const bool list = given(j, "users"), prefix = given(j, "user_prefix"),
               count = given(j, "count"), first = given(j, "first");
    if (list && (prefix || count || first))
      throw admin_error(400, "give 'users' or 'user_prefix' with 'count' (and 'first'), not both");
    std::vector<std::string> users;
    const std::string range = "1 to " + std::to_string(max_logins);
    if (list) {
      const auto& u = j.at("users");
      if (!u.is_array()) throw admin_error(400, "field 'users' must be an array of user names");
      if (u.empty() || u.size() > max_logins)
        throw admin_error(400, "field 'users' must hold " + range + " user names (it holds " +
                                   std::to_string(u.size()) + ")");
      for (std::size_t i = 0; i < u.size(); ++i) {
        if (!u[i].is_string())
          throw admin_error(400, "field 'users': item " + std::to_string(i) + " must be a string");
        users.push_back(u[i].get<std::string>());
      }
    } else if (prefix || count) {
      if (!prefix) throw admin_error(400, "field 'user_prefix' is required with 'count'");
      if (!count) throw admin_error(400, "field 'count' is required with 'user_prefix'");
      const std::string p = str(j, "user_prefix");
      const auto n = *detail::integer_field(j, "count", 1, static_cast<std::int64_t>(max_logins));
      const std::int64_t from =
          detail::integer_field(j, "first", 0, std::int64_t{1} << 53).value_or(0);
      for (std::int64_t k = 0; k < n; ++k)
        users.push_back(p + std::to_string(from + k));
    } else if (first) {
      throw admin_error(400, "field 'first' goes with 'user_prefix' and 'count'");
    } else {
      throw admin_error(400, "give 'users' (a list of user names) or 'user_prefix' with 'count'");
    }
    std::unordered_map<std::string_view, std::size_t> seen;
    for (std::size_t i = 0; i < users.size(); ++i) {
      try {
        detail::directory::check_user(users[i]);  // /__mock/login's rule
      } catch (const admin_error& e) {
        throw admin_error(400, "user '" + detail::printable(users[i]) + "' (index " +
                                   std::to_string(i) + "): " + e.what());
      }
      const auto [it, fresh] = seen.emplace(users[i], i);
      if (!fresh)
        throw admin_error(400, "user '" + detail::printable(users[i]) + "' appears twice (index " +
                                   std::to_string(it->second) + " and " + std::to_string(i) + ")");
    }
    return users;
  }

  // "with": the payloads to make after each login, each named at most once.
  static login_extras login_with(const nlohmann::json& j) {
    login_extras x;
    if (!given(j, "with")) return x;
    const auto& w = j.at("with");
    constexpr const char* names = "\"user_info\", \"user_profile\" or \"phone\"";
    if (!w.is_array())
      throw admin_error(400, std::string("field 'with' must be an array of ") + names);
    for (std::size_t i = 0; i < w.size(); ++i) {
      const std::string item = w[i].is_string() ? w[i].get<std::string>() : std::string();
      bool* flag = item == "user_info"      ? &x.user_info
                   : item == "user_profile" ? &x.user_profile
                   : item == "phone"        ? &x.phone
                                            : nullptr;
      if (flag == nullptr)
        throw admin_error(400, "field 'with': item " + std::to_string(i) + " (" +
                                   detail::printable(w[i].dump()) + ") must be " + names);
      if (*flag) throw admin_error(400, "field 'with' names '" + item + "' twice");
      *flag = true;
    }
    return x;
  }

  nlohmann::json logins(const call_args& a) {
    const auto j =
        parse_body(a, {"appid", "users", "user_prefix", "first", "count", "with", "phone"});
    const std::string appid = str(j, "appid");
    const std::vector<std::string> users = login_users(j);
    const login_extras with = login_with(j);
    if (given(j, "phone") && !with.phone)
      throw admin_error(400, "field 'phone' goes with \"phone\" in 'with'");
    const std::string phone = world::checked_phone(str(j, "phone", false));
    world_.check_mini_app(appid, "login");  // 404/400 as /__mock/login, before any login
    nlohmann::json done = nlohmann::json::array();
    for (const std::string& user : users) {
      try {
        nlohmann::json entry = {{"user", user}, {"code", world_.login(appid, user)}};
        auto ids = world_.code2session_ids(appid, user);
        entry["openid"] = std::move(ids.openid);
        if (ids.unionid) entry["unionid"] = std::move(*ids.unionid);
        if (with.user_info) entry["user_info"] = payload_json(world_.get_user_info(appid, user));
        if (with.user_profile)
          entry["user_profile"] = payload_json(world_.get_user_profile(appid, user));
        if (with.phone) entry["phone"] = phone_json(world_.phone(appid, user, phone));
        done.push_back(std::move(entry));
      } catch (const admin_error& e) {
        throw admin_partial_error(e, {{"logins", std::move(done)}});
      }
    }
    return {{"logins", std::move(done)}};
  }

  static nlohmann::json phone_json(const phone_payload& p) {
    return {{"code", p.code}, {"encryptedData", p.encrypted_data}, {"iv", p.iv}};
  }

  static nlohmann::json payload_json(const user_info_payload& p) {
    return {{"rawData", p.raw_data},
            {"signature", p.signature},
            {"encryptedData", p.encrypted_data},
            {"iv", p.iv}};
  }

  nlohmann::json user_info(const call_args& a) {
    const auto j = parse_body(a, {"appid", "user"});
    return payload_json(world_.get_user_info(str(j, "appid"), str(j, "user")));
  }

  nlohmann::json user_profile(const call_args& a) {
    const auto j = parse_body(a, {"appid", "user"});
    return payload_json(world_.get_user_profile(str(j, "appid"), str(j, "user")));
  }

  nlohmann::json phone(const call_args& a) {
    const auto j = parse_body(a, {"appid", "user", "phone"});
    return phone_json(world_.phone(str(j, "appid"), str(j, "user"), str(j, "phone", false)));
  }

  nlohmann::json pay(const call_args& a) {
    const auto j = parse_body(a, {"appid", "user"});
    const auto p = world_.pay(str(j, "appid"), str(j, "user"));
    return {{"transaction_id", p.transaction_id},
            {"mch_id", p.mch_id},
            {"out_trade_no", p.out_trade_no}};
  }

  nlohmann::json oauth_code(const call_args& a) {
    const auto j = parse_body(a, {"appid", "user", "scope", "snapshot"});
    bool snapshot = false;
    if (const auto it = j.find("snapshot"); it != j.end()) {
      if (!it->is_boolean()) throw admin_error(400, "field 'snapshot' must be true or false");
      snapshot = it->get<bool>();
    }
    return {{"code", world_.oauth_code(str(j, "appid"), str(j, "user"), str(j, "scope"),
                                       snapshot)}};
  }

  nlohmann::json wxcontext(const call_args& a) {
    const auto j = parse_body(a, {"appid", "user"});
    const auto c = world_.wxcontext(str(j, "appid"), str(j, "user"));
    nlohmann::json r = {
        {"OPENID", c.openid}, {"APPID", c.appid}, {"ENV", c.env}, {"SOURCE", c.source}};
    if (c.unionid) r["UNIONID"] = *c.unionid;
    return r;
  }

  // wx.pluginLogin inside a plugin: {"appid" (the host mini program),"plugin_appid","user"}.
  nlohmann::json plugin_login(const call_args& a) {
    const auto j = parse_body(a, {"appid", "plugin_appid", "user"});
    return {{"code", world_.plugin_login(str(j, "appid"), str(j, "plugin_appid"), str(j, "user"))}};
  }

  // Open Platform third-party platforms and WeCom.

  // What a push gave: {"ticket_pushed","answer","error"?}.
  static nlohmann::json push_json(const push_record& r) {
    nlohmann::json j = {{"ticket_pushed", r.ticket_pushed}, {"answer", r.answer}};
    if (!r.error.empty()) j["error"] = r.error;
    return j;
  }

  // {"component_appid","secret","token","encoding_aes_key","ticket_url"?}: the platform
  // (no secret), and what its first push gave.
  nlohmann::json add_component(const call_args& a) {
    const auto j =
        parse_body(a, {"component_appid", "secret", "token", "encoding_aes_key", "ticket_url"});
    component c;
    c.component_appid = str(j, "component_appid");
    c.secret = str(j, "secret");
    c.token = str(j, "token");
    c.encoding_aes_key = str(j, "encoding_aes_key");
    c.ticket_url = str(j, "ticket_url", false);
    const ticket_push p = world_.add_component(c);  // no lock held from here
    nlohmann::json r = {{"component_appid", c.component_appid},
                        {"token", c.token},
                        {"encoding_aes_key", c.encoding_aes_key}};
    if (!c.ticket_url.empty()) r["ticket_url"] = c.ticket_url;
    r.update(push_json(push_and_record(world_, p)));
    return r;
  }

  // GET ?component_appid=X: the platform's last 16 pushes, oldest first.
  nlohmann::json list_pushes(const call_args& a) {
    if (a.query != nullptr)
      for (const auto& kv : *a.query)
        if (kv.first != "component_appid")
          throw admin_error(400, "/__mock" + std::string(a.call) + ": unknown query parameter '" +
                                     detail::printable(kv.first) + "' (known: component_appid)");
    const std::string id = query_param(a.query, "component_appid");
    if (id.empty()) throw admin_error(400, "query parameter 'component_appid' is required");
    nlohmann::json pushes = nlohmann::json::array();
    for (const auto& r : world_.component_pushes(id)) {
      auto p = push_json(r);
      p["at"] = r.at;
      p["ok"] = r.ok();
      pushes.push_back(std::move(p));
    }
    return {{"component_appid", id}, {"pushes", std::move(pushes)}};
  }

  // {"component_appid"}: a fresh ticket now, pushed; the ticket too (the admin's view, for
  // tests with no receiver).
  nlohmann::json component_push(const call_args& a) {
    const auto j = parse_body(a, {"component_appid"});
    const ticket_push p = world_.push_component_ticket(str(j, "component_appid"));
    auto r = push_json(push_and_record(world_, p));
    r["ticket"] = p.ticket;
    return r;
  }

  // {"component_appid","appid","revoke"?}: the app authorizes the platform (or withdraws).
  nlohmann::json component_authorize(const call_args& a) {
    const auto j = parse_body(a, {"component_appid", "appid", "revoke"});
    const std::string component_appid = str(j, "component_appid"), appid = str(j, "appid");
    bool revoke = false;
    if (const auto it = j.find("revoke"); it != j.end() && !it->is_null()) {
      if (!it->is_boolean()) throw admin_error(400, "field 'revoke' must be true or false");
      revoke = it->get<bool>();
    }
    if (revoke) {
      world_.revoke_component(component_appid, appid);
      return {
          {"component_appid", component_appid}, {"authorizer_appid", appid}, {"authorized", false}};
    }
    return {{"component_appid", component_appid},
            {"authorizer_appid", appid},
            {"authorizer_refresh_token", world_.authorize_component(component_appid, appid)}};
  }

  // {"corpid","corpsecret"}: a WeCom corp with a mini program.
  nlohmann::json add_corp(const call_args& a) {
    const auto j = parse_body(a, {"corpid", "corpsecret"});
    const std::string corpid = str(j, "corpid"), secret = str(j, "corpsecret");
    world_.add_corp(corpid, secret);
    return {{"corpid", corpid}, {"corpsecret", secret}};
  }

  // {"corpid","userid"}: wx.qy.login in the corp's mini program.
  nlohmann::json wecom_login(const call_args& a) {
    const auto j = parse_body(a, {"corpid", "userid"});
    return {{"code", world_.wecom_login(str(j, "corpid"), str(j, "userid"))}};
  }

  // What the mock saw.

  nlohmann::json list_requests(const call_args& a) {
    return journal_.to_json(path_param(a));
  }

  nlohmann::json clear_requests(const call_args& a) {
    journal_.clear(path_param(a));
    return {{"status", "ok"}};
  }

  nlohmann::json stats(const call_args& /*unused*/) {
    return {{"endpoints", stats_.to_json()},
            {"world", world_.sizes()},
            {"journal", {{"capacity", journal_.capacity()}, {"entries", journal_.count()}}}};
  }

  nlohmann::json health(const call_args& /*unused*/) { return {{"status", "ok"}}; }

  world& world_;
  fault_table& faults_;
  journal& journal_;
  stats_table& stats_;
};

}  // namespace mock_wechat
