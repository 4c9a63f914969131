// wechat/detail/api_response.hpp - reading WeChat's answers: JSON whatever the
// Content-Type, a missing errcode is 0, unknown fields ignored, errmsg and rid kept.
#pragma once

#include <charconv>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "wechat/error.hpp"
#include "wechat/transport.hpp"

namespace wechat {

// error_detail, filled here, is declared in wechat/error.hpp.

namespace detail {

/// The rid at the end of an errmsg ("... rid: 66c69111-4157f271-729ca238"), or empty.
inline std::string extract_rid(std::string_view errmsg) {
  const auto p = errmsg.rfind("rid: ");
  if (p == std::string_view::npos) return {};
  std::string_view r = errmsg.substr(p + 5);
  std::size_t n = 0;
  while (n < r.size() &&
         ((r[n] >= '0' && r[n] <= '9') || (r[n] >= 'a' && r[n] <= 'f') || r[n] == '-'))
    ++n;
  return std::string(r.substr(0, n));
}

/// An answer's errcode into `out`: 0 when absent or null; an integer, or a string that is
/// one whole integer ("40029": some gateways quote it), within int's range. False for
/// anything else: a float, a string with more than the number (" 40029", "40029abc"),
/// "0x10" or "+0", and an integer beyond int (4294967296 was cut to 32 bits, and read as
/// success).
inline bool read_errcode(const nlohmann::json& j, int& out) {
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

/// Parses an API answer. Sets ec to the errcode (api_category) when it is non-zero, or to
/// protocol_errc::not_json / not_object. Fills `d` (when given) with errmsg and rid.
inline nlohmann::json parse_answer(const http_response& res, std::error_code& ec, error_detail* d) {
  ec.clear();
  auto j = nlohmann::json::parse(res.body, nullptr, false);
  if (j.is_discarded()) {
    ec = protocol_errc::not_json;
    return nullptr;
  }
  if (!j.is_object()) {
    ec = protocol_errc::not_object;
    return nullptr;
  }
  int errcode = 0;
  if (!read_errcode(j, errcode)) {
    ec = protocol_errc::wrong_type;
    if (d) d->field = "errcode";
    return nullptr;
  }
  if (errcode != 0) {
    ec = make_api_error_code(errcode);
    if (d) {
      d->errcode = errcode;
      const auto m = j.find("errmsg");
      d->errmsg = m != j.end() && m->is_string() ? m->get<std::string>() : std::string();
      d->rid = extract_rid(d->errmsg);
    }
  }
  return j;
}

/// A response read: a transport failure (`sent`, as the transport set it) fills
/// `d.http_status` with the status the transport saw (0 when none) and `d.cause` with what
/// it said of it (http_response::failure); an answer goes through parse_answer(). Shared by
/// round_trip and the async client, which gets `res` and `sent` in a handler.
inline nlohmann::json read_response(http_response&& res, const std::error_code& sent,
                                    std::error_code& ec, error_detail& d) {
  if (sent) {
    ec = sent;
    d.http_status = res.status;
    d.cause = std::move(res.failure);
    return nullptr;
  }
  return parse_answer(res, ec, &d);
}

/// One request and its answer read: sends `req`, then read_response().
inline nlohmann::json round_trip(transport& t, const http_request& req, std::error_code& ec,
                                 error_detail& d) {
  std::error_code sent;
  http_response res = t.send(req, sent);
  return read_response(std::move(res), sent, ec, d);
}

/// A required string field; sets protocol_errc::missing_field / wrong_type.
inline std::string required_string(const nlohmann::json& j, const char* name, std::error_code& ec,
                                   error_detail* d) {
  const auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    ec = protocol_errc::missing_field;
    if (d) d->field = name;
    return {};
  }
  if (!it->is_string()) {
    ec = protocol_errc::wrong_type;
    if (d) d->field = name;
    return {};
  }
  return it->get<std::string>();
}

/// An optional string field (absent, null or empty: nullopt).
inline std::optional<std::string> optional_string(const nlohmann::json& j, const char* name) {
  const auto it = j.find(name);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) return std::nullopt;
  return it->get<std::string>();
}

/// An integer field, accepting a number or a string that is one whole integer ("7200");
/// `fallback` when absent, or when the value is no integer an int64_t holds: a string with
/// more than the number ("7200abc", "1e300", " 5", "+5"), a number beyond +-9.2e18 (1e300, or
/// 18446744073709551615: converting one is undefined behaviour, or a wrapped sign), any
/// other type. A fractional number is cut toward zero.
inline std::int64_t integer_field(const nlohmann::json& j, const char* name,
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
    // [-2^63, 2^63): both bounds exact in a double; NaN fails both tests.
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

}  // namespace detail
}  // namespace wechat
