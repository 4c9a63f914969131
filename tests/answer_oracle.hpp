// The reading of WeChat's answers as it was done on nlohmann's DOM, kept as the oracle of
// detail::answer, which reads the body without building one: parse_answer's outcome (the
// error, the errcode, errmsg and rid) and every field helper on the top-level members
// (required_string, optional_string, integer_field) must agree on any body. Shared by
// answer_parity_test (mutations of real answers) and fuzz/fuzz_answer.cpp (any bytes).
#pragma once

#include <wechat/detail/api_response.hpp>

#include <charconv>
#include <climits>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace answer_oracle {

// What a body reads as: the outcome, each probed field and each member the DOM has,
// written out so that two readings compare as strings and a mismatch prints both.
inline const char* const probes[] = {"errcode",     "errmsg",  "openid",
                                     "session_key", "unionid", "access_token",
                                     "expires_in",  "a",       "open\xc3\xa9"};

// The field rules on the DOM, frozen as the library had them before detail::answer (the
// library's own DOM overloads now share code with the answer's: a slip there would show on
// both sides).
inline std::string dom_required_string(const nlohmann::json& j, const std::string& name,
                                       std::error_code& ec, wechat::error_detail* d) {
  const auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    ec = wechat::protocol_errc::missing_field;
    if (d) d->field = name;
    return {};
  }
  if (!it->is_string()) {
    ec = wechat::protocol_errc::wrong_type;
    if (d) d->field = name;
    return {};
  }
  return it->get<std::string>();
}

inline std::optional<std::string> dom_optional_string(const nlohmann::json& j,
                                                      const std::string& name) {
  const auto it = j.find(name);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) return std::nullopt;
  return it->get<std::string>();
}

inline std::int64_t dom_integer_field(const nlohmann::json& j, const std::string& name,
                                      std::int64_t fallback) {
  const auto it = j.find(name);
  if (it == j.end()) return fallback;
  if (it->is_number_unsigned()) {
    const auto u = it->get<std::uint64_t>();
    return u <= static_cast<std::uint64_t>(INT64_MAX) ? static_cast<std::int64_t>(u) : fallback;
  }
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (it->is_number_float()) {
    const double d = it->get<double>();
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 ? static_cast<std::int64_t>(d)
                                                                    : fallback;
  }
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    std::int64_t v = 0;
    const char* end = s.data() + s.size();
    const auto [ptr, err] = std::from_chars(s.data(), end, v);
    if (err == std::errc() && ptr == end && !s.empty()) return v;
  }
  return fallback;
}

// One field, read by the three rules: `Required(name, ec, d)`, `Optional(name)`,
// `Integer(name, fallback)`.
template <class Required, class Optional, class Integer>
void read_field(const std::string& name, Required req, Optional opt, Integer integer,
                std::ostringstream& out) {
  std::error_code ec;
  wechat::error_detail d;
  const std::string v = req(name, ec, &d);
  const auto o = opt(name);
  out << " | " << name << ": required " << ec.message() << " [" << d.field << "] '" << v
      << "' optional " << (o ? "'" + *o + "'" : std::string("none")) << " integer "
      << integer(name, -7);
}

inline const char* kind_of(const nlohmann::json& v) {
  if (v.is_string()) return "string";
  if (v.is_number()) return "number";
  if (v.is_boolean()) return "boolean";
  if (v.is_null()) return "null";
  return v.is_object() ? "object" : "array";
}

inline const char* kind_of(wechat::detail::answer::kind k) {
  using kind = wechat::detail::answer::kind;
  switch (k) {
  case kind::string: return "string";
  case kind::integer:
  case kind::number: return "number";
  case kind::boolean: return "boolean";
  case kind::null: return "null";
  case kind::object: return "object";
  case kind::array: return "array";
  }
  return "?";
}

inline void outcome(std::ostringstream& out, const std::error_code& ec,
                    const wechat::error_detail& d) {
  out << ec.category().name() << ":" << ec.value() << " field[" << d.field << "] errcode "
      << d.errcode << " errmsg[" << d.errmsg << "] rid[" << d.rid << "]";
}

// The errcode rule on the DOM: 0 when absent or null; an int, or a string that is one
// whole int.
inline bool dom_errcode(const nlohmann::json& j, int& out) {
  out = 0;
  const auto it = j.find("errcode");
  if (it == j.end() || it->is_null()) return true;
  if (it->is_number_unsigned()) {
    const auto u = it->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT_MAX)) return false;
    out = static_cast<int>(u);
    return true;
  }
  if (it->is_number_integer()) {
    const auto v = it->get<std::int64_t>();
    if (v < INT_MIN || v > INT_MAX) return false;
    out = static_cast<int>(v);
    return true;
  }
  if (!it->is_string()) return false;
  const auto& s = it->get_ref<const std::string&>();
  const char* end = s.data() + s.size();
  const auto [ptr, err] = std::from_chars(s.data(), end, out);
  if (err == std::errc() && ptr == end && !s.empty()) return true;
  out = 0;
  return false;
}

/// The reading on nlohmann's DOM (the library's reading before detail::answer).
inline std::string by_dom(const std::string& body) {
  std::ostringstream out;
  std::error_code ec;
  wechat::error_detail d;
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    outcome(out, wechat::protocol_errc::not_json, d);
    return out.str();
  }
  if (!j.is_object()) {
    outcome(out, wechat::protocol_errc::not_object, d);
    return out.str();
  }
  int errcode = 0;
  if (!dom_errcode(j, errcode)) {
    d.field = "errcode";
    outcome(out, wechat::protocol_errc::wrong_type, d);
    return out.str();
  }
  if (errcode != 0) {
    ec = wechat::make_api_error_code(errcode);
    d.errcode = errcode;
    const auto m = j.find("errmsg");
    d.errmsg = m != j.end() && m->is_string() ? m->get<std::string>() : std::string();
    d.rid = wechat::detail::extract_rid(d.errmsg);
  }
  outcome(out, ec, d);
  const auto req = [&](const std::string& n, std::error_code& e, wechat::error_detail* dd) {
    return dom_required_string(j, n, e, dd);
  };
  const auto opt = [&](const std::string& n) { return dom_optional_string(j, n); };
  const auto integer = [&](const std::string& n, std::int64_t f) {
    return dom_integer_field(j, n, f);
  };
  for (const char* name : probes)
    read_field(name, req, opt, integer, out);
  out << " | an object | members:";  // each member of the DOM: its kind, and its reading
  for (const auto& [key, value] : j.items()) {
    out << " " << key << "=" << kind_of(value);
    if (key.find('\0') == std::string::npos) read_field(key, req, opt, integer, out);
  }
  return out.str();
}

/// The library's reading (detail::parse_answer and the helpers on its members; and the
/// DOM it parses on demand).
inline std::string by_answer(const std::string& body) {
  std::ostringstream out;
  std::error_code ec;
  wechat::error_detail d;
  const auto a = wechat::detail::parse_answer(body, ec, &d);
  outcome(out, ec, d);
  if (ec && ec.category() != wechat::api_category()) return out.str();
  const auto req = [&](const std::string& n, std::error_code& e, wechat::error_detail* dd) {
    return wechat::detail::required_string(a, n.c_str(), e, dd);
  };
  const auto opt = [&](const std::string& n) {
    return wechat::detail::optional_string(a, n.c_str());
  };
  const auto integer = [&](const std::string& n, std::int64_t f) {
    return wechat::detail::integer_field(a, n.c_str(), f);
  };
  for (const char* name : probes)
    read_field(name, req, opt, integer, out);
  const auto& dom = a.json();
  out << (dom.is_object() ? " | an object" : " | not an object") << " | members:";
  for (const auto& [key, value] : dom.items()) {  // the DOM's keys, read from the table
    const auto* m = a.find(key);
    out << " " << key << "=" << (m ? kind_of(m->type) : "absent");
    // the helpers take a C string: a key with a NUL is compared by its kind only
    if (key.find('\0') == std::string::npos) read_field(key, req, opt, integer, out);
  }
  a.each_member([&](std::string_view key, const wechat::detail::answer::member&) {
    if (!dom.contains(std::string(key))) out << " | a member the DOM lacks: " << key;
  });
  return out.str();
}

}  // namespace answer_oracle
