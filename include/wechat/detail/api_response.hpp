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

#include "wechat/detail/answer.hpp"
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

// Shared by the DOM's and the answer's readings of a field.

/// `s` when it is one whole integer of T ("7200"; not "7200abc", " 5", "+5" or "1e300").
template <class T> std::optional<T> whole_integer(std::string_view s) noexcept {
  T v{};
  const char* end = s.data() + s.size();
  const auto [ptr, err] = std::from_chars(s.data(), end, v);
  if (err == std::errc() && ptr == end && !s.empty()) return v;
  return std::nullopt;
}

/// A number cut toward zero, when an int64_t holds it: [-2^63, 2^63), both bounds exact in
/// a double; NaN fails both tests (converting one beyond is undefined behaviour).
inline std::optional<std::int64_t> integer_of_double(double d) noexcept {
  if (d >= -9223372036854775808.0 && d < 9223372036854775808.0) return static_cast<std::int64_t>(d);
  return std::nullopt;
}

/// A member's integer when it is an integral number an int64_t holds, or a string that is
/// one whole integer ("40029": some gateways quote numbers); nullopt for anything else (a
/// fraction, an exponent, a number beyond int64_t, other text, other kinds). The errcode
/// and the integer fields read a member so.
inline std::optional<std::int64_t> integer_or_integer_string(const answer& a,
                                                             const answer::member& m) {
  if (m.type == answer::kind::integer) return json_reader::int64_of_integral(a.text(m));
  if (m.type != answer::kind::string) return std::nullopt;
  std::string s;
  a.string_value(m, s);
  return whole_integer<std::int64_t>(s);
}

/// Sets a field's error: protocol_errc::missing_field or wrong_type, naming it in `d`.
inline void field_error(protocol_errc e, const char* name, std::error_code& ec, error_detail* d) {
  ec = e;
  if (d) d->field = name;
}

/// An answer's errcode into `out`: 0 when absent or null; an integer, or a string that is
/// one whole integer ("40029": some gateways quote it), within int's range. False for
/// anything else: a float, a string with more than the number (" 40029", "40029abc"),
/// "0x10" or "+0", and an integer beyond int (4294967296 was cut to 32 bits, and read as
/// success).
inline bool read_errcode(const answer& a, int& out) {
  out = 0;
  const auto* m = a.find("errcode");
  if (m == nullptr || m->type == answer::kind::null) return true;
  const auto v = integer_or_integer_string(a, *m);
  if (!v || *v < INT_MIN || *v > INT_MAX) return false;
  out = static_cast<int>(*v);
  return true;
}

/// Reads an API answer, `body`, which it keeps. Sets ec to the errcode (api_category) when
/// it is non-zero, or to protocol_errc::not_json / not_object / wrong_type (an errcode that
/// is no int). Fills `d` (when given) with errmsg and rid.
inline answer parse_answer(std::string body, std::error_code& ec, error_detail* d) {
  ec.clear();
  answer::shape found = answer::shape::not_json;
  answer a = answer::read(std::move(body), found);
  if (found == answer::shape::not_json) {
    ec = protocol_errc::not_json;
    return answer();
  }
  if (found == answer::shape::not_object) {
    ec = protocol_errc::not_object;
    return answer();
  }
  int errcode = 0;
  if (!read_errcode(a, errcode)) {
    field_error(protocol_errc::wrong_type, "errcode", ec, d);
    return answer();
  }
  if (errcode != 0) {
    ec = make_api_error_code(errcode);
    if (d) {
      d->errcode = errcode;
      d->errmsg.clear();
      if (const auto* m = a.find("errmsg"); m != nullptr && m->type == answer::kind::string)
        a.string_value(*m, d->errmsg);
      d->rid = extract_rid(d->errmsg);
    }
  }
  return a;
}

/// A response read: a transport failure (`sent`, as the transport set it) fills
/// `d.http_status` with the status the transport saw (0 when none) and `d.cause` with what
/// it said of it (http_response::failure); an answer goes through parse_answer(). Shared by
/// round_trip and the async client, which gets `res` and `sent` in a handler.
inline answer read_response(http_response&& res, const std::error_code& sent, std::error_code& ec,
                            error_detail& d) {
  if (sent) {
    ec = sent;
    d.http_status = res.status;
    d.cause = std::move(res.failure);
    return answer();
  }
  return parse_answer(std::move(res.body), ec, &d);
}

/// One request and its answer read: sends `req`, then read_response().
inline answer round_trip(transport& t, const http_request& req, std::error_code& ec,
                         error_detail& d) {
  std::error_code sent;
  http_response res = t.send(req, sent);
  return read_response(std::move(res), sent, ec, d);
}

// The fields of an answer. Each rule is written for the answer's top-level members (read
// from the body) and for a DOM (the members of a nested object), and reads the same.

/// A required string field; sets protocol_errc::missing_field (absent or null) or
/// wrong_type (not a string). "" is a value.
inline std::string required_string(const answer& a, const char* name, std::error_code& ec,
                                   error_detail* d) {
  const auto* m = a.find(name);
  if (m == nullptr || m->type == answer::kind::null) {
    field_error(protocol_errc::missing_field, name, ec, d);
    return {};
  }
  if (m->type != answer::kind::string) {
    field_error(protocol_errc::wrong_type, name, ec, d);
    return {};
  }
  std::string s;
  a.string_value(*m, s);
  return s;
}

inline std::string required_string(const nlohmann::json& j, const char* name, std::error_code& ec,
                                   error_detail* d) {
  const auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    field_error(protocol_errc::missing_field, name, ec, d);
    return {};
  }
  if (!it->is_string()) {
    field_error(protocol_errc::wrong_type, name, ec, d);
    return {};
  }
  return it->get<std::string>();
}

/// An optional string field (absent, not a string, or empty: nullopt).
inline std::optional<std::string> optional_string(const answer& a, const char* name) {
  const auto* m = a.find(name);
  if (m == nullptr || m->type != answer::kind::string || m->size == 2) return std::nullopt;
  std::string s;  // not empty: an escape decodes to a character at least
  a.string_value(*m, s);
  return s;
}

inline std::optional<std::string> optional_string(const nlohmann::json& j, const char* name) {
  const auto it = j.find(name);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    return std::nullopt;
  return it->get<std::string>();
}

/// An integer field, accepting a number or a string that is one whole integer ("7200");
/// `fallback` when absent, or when the value is no integer an int64_t holds: a string with
/// more than the number ("7200abc", "1e300", " 5", "+5"), a number beyond +-9.2e18 (1e300, or
/// 18446744073709551615), any other type. A fractional number is cut toward zero.
inline std::int64_t integer_field(const answer& a, const char* name, std::int64_t fallback) {
  const auto* m = a.find(name);
  if (m == nullptr) return fallback;
  auto v = integer_or_integer_string(a, *m);
  if (!v && (m->type == answer::kind::integer || m->type == answer::kind::number)) {
    // A fraction or an exponent: a double, as in nlohmann. So is an integer below -2^63 or
    // above 2^64 - 1 (one between 2^63 and 2^64 - 1 is unsigned there; as a double it is
    // out of range too, the same outcome). -9223372036854775809 rounds to -2^63, which an
    // int64_t holds.
    const auto t = a.text(*m);
    double x = 0;  // a number too small for a double stays 0, as strtod makes it
    std::from_chars(t.data(), t.data() + t.size(), x);
    v = integer_of_double(x);
  }
  return v.value_or(fallback);
}

inline std::int64_t integer_field(const nlohmann::json& j, const char* name,
                                  std::int64_t fallback) {
  const auto it = j.find(name);
  if (it == j.end()) return fallback;
  std::optional<std::int64_t> v;
  if (it->is_number_unsigned()) {
    const auto u = it->get<std::uint64_t>();
    if (u <= static_cast<std::uint64_t>(INT64_MAX)) v = static_cast<std::int64_t>(u);
  } else if (it->is_number_integer()) {
    v = it->get<std::int64_t>();
  } else if (it->is_number_float()) {
    v = integer_of_double(it->get<double>());
  } else if (it->is_string()) {
    v = whole_integer<std::int64_t>(it->get_ref<const std::string&>());
  }
  return v.value_or(fallback);
}

}  // namespace detail
}  // namespace wechat
