// mock_wechat/query.hpp - the query string of a request target, decoded.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace mock_wechat {

using params = std::multimap<std::string, std::string>;  // == httplib::Params

/// A query component percent-decoded, '+' as a space; a '%' not followed by two hex
/// digits stays as it is.
inline std::string percent_decode(std::string_view s) {
  std::string r;
  r.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      r.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      r.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      r.push_back(s[i]);
    }
  }
  return r;
}

/// One '&'-separated part of a query string, as sent (not decoded).
struct query_part {
  std::string_view text;   ///< the whole part: "name=value" or "name"
  std::string_view name;   ///< before the first '='
  std::string_view value;  ///< after the first '=' (empty when there is none)
  bool has_value = false;  ///< whether there was a '='
};

/// Calls `f(query_part)` for each non-empty part of the query of a request target
/// ("/path?a=1&b=2#frag": "a=1", then "b=2"), in the order sent. The one tokenizer of the
/// mock: the handlers' parameters (parse_query), the journal's "query" and rid/get's
/// request_url all come from it, so they cannot disagree about what was sent.
template <class F> void for_each_query_part(std::string_view target, F&& f) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return;
  std::string_view rest = target.substr(q + 1);
  const auto hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view text = rest.substr(0, amp);
    if (!text.empty()) {
      query_part p;
      p.text = text;
      const auto eq = text.find('=');
      p.name = text.substr(0, eq);
      p.has_value = eq != std::string_view::npos;
      if (p.has_value) p.value = text.substr(eq + 1);
      f(p);
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
}

/// The query parameters of a request target ("/path?a=1&b=2"), percent-decoded, '+' as a
/// space, every value kept: a name given twice has two entries, in the order sent. Only
/// the query: WeChat's GET endpoints never read a form body.
inline params parse_query(std::string_view target) {
  params out;
  for_each_query_part(target, [&](const query_part& p) {
    out.emplace(percent_decode(p.name), percent_decode(p.value));  // multimap: appended
  });
  return out;
}

/// The value of parameter `name` a handler reads: the **first** one sent, when a name is
/// given twice (as cpp-httplib's get_param_value, Go's Query().Get and Java's
/// getParameter do; what WeChat does is not documented). nullptr when absent.
inline const std::string* first_param(const params& q, std::string_view name) {
  const auto it = q.lower_bound(std::string(name));  // equal keys keep insertion order
  return it != q.end() && it->first == name ? &it->second : nullptr;
}

}  // namespace mock_wechat
