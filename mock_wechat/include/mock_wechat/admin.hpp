// mock_wechat/admin.hpp - the admin API under /__mock (DESIGN.md's contract): the
// device side (login, user_info, phone, pay, oauth_code, wxcontext), the control side
// (apps, follow, unfollow, authorize, users, clock, faults, reset) and what the mock saw
// (requests, stats, health). All bodies are JSON; errors are HTTP 400/404 with
// {"error":"..."} naming the field or the unknown thing. Success is HTTP 200.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mock_wechat/api.hpp"
#include "mock_wechat/faults.hpp"
#include "mock_wechat/observe.hpp"
#include "mock_wechat/scenario.hpp"
#include "mock_wechat/world.hpp"

namespace mock_wechat {

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
      return {e.status(), nlohmann::json{{"error", e.what()}}.dump(
                              -1, ' ', false, nlohmann::json::error_handler_t::replace)};
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
    const auto it = q->find(key);
    return it == q->end() ? std::string() : it->second;
  }

  nlohmann::json dispatch(std::string_view method, std::string_view path, std::string_view body,
                          const params* q) {
    const bool get = method == "GET" || method == "HEAD", post = method == "POST",
               del = method == "DELETE";
    constexpr std::string_view prefix = "/__mock";
    if (path.substr(0, prefix.size()) != prefix)
      throw admin_error(404, "not an admin path: the admin API lives under /__mock");
    const std::string_view call = path.substr(prefix.size());

    if (call == "/health" && get) return {{"status", "ok"}};
    if (call == "/reset" && post) {
      world_.reset();
      journal_.clear();
      faults_.clear();
      stats_.clear();
      return {{"status", "ok"}};
    }
    if (call == "/apps" && post) return to_json(world_.add_app(app_from_json(parse_body(body))));
    if (call == "/apps" && get) {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& x : world_.apps())
        a.push_back(to_json(x));
      return a;
    }
    if (call == "/users" && post) {
      const auto j = parse_body(body);
      const std::string user = str(j, "user");
      if (const auto it = j.find("high_risk"); it != j.end()) {
        if (!it->is_boolean()) throw admin_error(400, "field 'high_risk' must be true or false");
        world_.set_high_risk(user, it->get<bool>());
      }
      if (const auto it = j.find("profile"); it != j.end())
        world_.set_profile(user, profile_from_json(user, *it, "profile"));
      return {{"status", "ok"}};
    }
    if ((call == "/follow" || call == "/unfollow" || call == "/authorize") && post) {
      const auto j = parse_body(body);
      const std::string user = str(j, "user"), appid = str(j, "appid");
      if (call == "/follow")
        world_.follow(user, appid);
      else if (call == "/unfollow")
        world_.unfollow(user, appid);
      else
        world_.authorize(user, appid);
      return {{"status", "ok"}};
    }
    if (call == "/login" && post) {
      const auto j = parse_body(body);
      return {{"code", world_.login(str(j, "appid"), str(j, "user"))}};
    }
    if (call == "/user_info" && post) {
      const auto j = parse_body(body);
      const auto p = world_.user_info(str(j, "appid"), str(j, "user"));
      return {{"rawData", p.raw_data},
              {"signature", p.signature},
              {"encryptedData", p.encrypted_data},
              {"iv", p.iv}};
    }
    if (call == "/phone" && post) {
      const auto j = parse_body(body);
      const auto p = world_.phone(str(j, "appid"), str(j, "user"), str(j, "phone", false));
      return {{"code", p.code}, {"encryptedData", p.encrypted_data}, {"iv", p.iv}};
    }
    if (call == "/pay" && post) {
      const auto j = parse_body(body);
      const auto p = world_.pay(str(j, "appid"), str(j, "user"));
      return {{"transaction_id", p.transaction_id},
              {"mch_id", p.mch_id},
              {"out_trade_no", p.out_trade_no}};
    }
    if (call == "/oauth_code" && post) {
      const auto j = parse_body(body);
      return {{"code", world_.oauth_code(str(j, "appid"), str(j, "user"), str(j, "scope"))}};
    }
    if (call == "/wxcontext" && post) {
      const auto j = parse_body(body);
      const auto c = world_.wxcontext(str(j, "appid"), str(j, "user"));
      nlohmann::json r = {
          {"OPENID", c.openid}, {"APPID", c.appid}, {"ENV", c.env}, {"SOURCE", c.source}};
      if (c.unionid) r["UNIONID"] = *c.unionid;
      return r;
    }
    if (call == "/clock" && (get || post)) {
      if (post) {
        const auto j = parse_body(body);
        const auto adv = j.find("advance"), set = j.find("set");
        if (adv != j.end() && set != j.end())
          throw admin_error(400, "give 'advance' or 'set', not both");
        if (adv != j.end()) {
          if (!adv->is_number_integer())
            throw admin_error(400, "field 'advance' must be an integer (seconds)");
          world_.clock().advance(adv->get<std::int64_t>());
        } else if (set != j.end()) {
          if (!set->is_number_integer() || set->get<std::int64_t>() < 0)
            throw admin_error(400, "field 'set' must be a non-negative integer (Unix seconds)");
          bool freeze = true;
          if (const auto fr = j.find("frozen"); fr != j.end()) {
            if (!fr->is_boolean()) throw admin_error(400, "field 'frozen' must be true or false");
            freeze = fr->get<bool>();
          }
          world_.clock().set(set->get<std::int64_t>(), freeze);
        } else if (const auto fr = j.find("frozen");
                   fr != j.end() && fr->is_boolean() && !fr->get<bool>()) {
          world_.clock().resume();
        } else {
          throw admin_error(400, "give 'advance' (seconds) or 'set' (Unix seconds)");
        }
      }
      return {{"now", world_.now()}};
    }
    if (call == "/faults") {
      if (post) {
        const auto id = faults_.add(fault::from_json(parse_body(body)));
        return {{"status", "ok"}, {"id", id}};
      }
      if (get) return faults_.to_json();
      if (del) {
        faults_.clear(query_param(q, "path"));
        return {{"status", "ok"}};
      }
    }
    if (call == "/requests") {
      if (get) return journal_.to_json(query_param(q, "path"));
      if (del) {
        journal_.clear(query_param(q, "path"));
        return {{"status", "ok"}};
      }
    }
    if (call == "/stats" && get)
      return {{"endpoints", stats_.to_json()},
              {"world", world_.sizes()},
              {"journal", {{"capacity", journal_.capacity()}, {"entries", journal_.count()}}}};
    throw admin_error(404, "unknown admin call " + std::string(method) + " " + std::string(path));
  }

  world& world_;
  fault_table& faults_;
  journal& journal_;
  stats_table& stats_;
};

}  // namespace mock_wechat
