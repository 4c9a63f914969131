// mock_wechat/detail/fields.hpp - checks every JSON input of the mock shares (admin API,
// scenario files, faults): integers in a range, only known fields, no control characters.
// One piece of code, so that the admin API and a scenario file refuse the same things
// with the same words.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mock_wechat/world/types.hpp"

namespace mock_wechat::detail {

/// The value of `v` when it is a JSON integer from `lo` to `hi`, else nullopt. An unsigned
/// value above INT64_MAX is out of range, never wrapped (nlohmann's get<std::int64_t>()
/// reads 18446744073709551615 as -1); a number with a fraction or an exponent is not an
/// integer.
inline std::optional<std::int64_t> integer_in(const nlohmann::json& v, std::int64_t lo,
                                              std::int64_t hi) {
  std::int64_t x = 0;
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return std::nullopt;
    x = static_cast<std::int64_t>(u);
  } else if (v.is_number_integer()) {
    x = v.get<std::int64_t>();
  } else {
    return std::nullopt;
  }
  if (x < lo || x > hi) return std::nullopt;
  return x;
}

/// `what` (e.g. "field 'times'") "must be an integer from LO to HI".
inline std::string range_message(const std::string& what, std::int64_t lo, std::int64_t hi) {
  return what + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

/// Member `key` of object `j` as an integer from `lo` to `hi`: nullopt when absent (or
/// null), admin_error(400) naming the field and the range when it is anything else.
/// `where`: a prefix for the message ("scenario.users[2]: "), may be empty.
inline std::optional<std::int64_t> integer_field(const nlohmann::json& j, const char* key,
                                                 std::int64_t lo, std::int64_t hi,
                                                 const std::string& where = {}) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  const auto v = integer_in(*it, lo, hi);
  if (!v) throw admin_error(400, where + range_message(std::string("field '") + key + "'", lo, hi));
  return v;
}

/// Whether `s` holds a control character (a byte below 0x20, or 0x7f): NUL, CR, LF, TAB...
inline bool has_control_char(std::string_view s) noexcept {
  for (const char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  return false;
}

/// `s` with its control characters as '?', to echo a peer's text in a message.
inline std::string printable(std::string_view s) {
  std::string r(s.substr(0, 64));
  for (char& c : r)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s.size() > 64 ? r + "..." : r;
}

/// Refuses a member of object `j` that is not in `known` (a typo such as "secert" would
/// otherwise be ignored without a word): admin_error(400) "<where>: unknown field 'secert'
/// (known: appid, name, ...)". Does nothing when `j` is not an object.
inline void known_fields_only(const nlohmann::json& j, const std::string& where,
                              std::initializer_list<const char*> known) {
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool found = false;
    for (const char* k : known)
      found = found || it.key() == k;
    if (found) continue;
    std::string message = where;
    message += ": unknown field '";
    message += printable(it.key());
    if (known.size() == 0) {
      message += "' (it takes no fields)";
      throw admin_error(400, message);
    }
    message += "' (known: ";
    bool first = true;
    for (const char* k : known) {
      if (!first) message += ", ";
      message += k;
      first = false;
    }
    message += ')';
    throw admin_error(400, message);
  }
}

}  // namespace mock_wechat::detail
