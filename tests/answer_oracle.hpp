// The reading of WeChat's answers as it was done on nlohmann's DOM, kept as the oracle of
// detail::answer, which reads the body without building one: parse_answer's outcome (the
// error, the errcode, errmsg and rid) and every field helper on the top-level members
// (required_string, optional_string, integer_field) must agree on any body. Shared by
// answer_parity_test (mutations of real answers) and fuzz/fuzz_answer.cpp (any bytes).
#pragma once

#include <wechat/detail/api_response.hpp>

#include <charconv>
#include <climits>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace answer_oracle {

// What a body reads as: the outcome and each probed field, written out so that two
// readings compare as strings and a mismatch prints both.
inline const char* const probes[] = {"errcode",     "errmsg",  "openid",
                                     "session_key", "unionid", "access_token",
                                     "expires_in",  "a",       "open\xc3\xa9"};

template <class Source> void probe_fields(const Source& s, std::ostringstream& out) {
  for (const char* name : probes) {
    std::error_code ec;
    wechat::error_detail d;
    const std::string v = wechat::detail::required_string(s, name, ec, &d);
    const auto o = wechat::detail::optional_string(s, name);
    out << " | " << name << ": required " << ec.message() << " [" << d.field << "] '" << v
        << "' optional " << (o ? "'" + *o + "'" : std::string("none")) << " integer "
        << wechat::detail::integer_field(s, name, -7);
  }
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
  probe_fields(j, out);
  out << " | dom: " << j.size() << " members";  // size, not dump(): dump() recurses
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
  probe_fields(a, out);
  out << " | dom: " << (a.json().is_object() ? a.json().size() : 999999) << " members";
  return out.str();
}

}  // namespace answer_oracle
