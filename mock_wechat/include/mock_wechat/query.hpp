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

/// The query parameters of a request target ("/path?a=1&b=2"), percent-decoded, '+' as a
/// space. Only the query: WeChat's GET endpoints never read a form body.
inline params parse_query(std::string_view target) {
  params out;
  const auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  const auto decode = percent_decode;
  std::string_view rest = target.substr(q + 1);
  const auto hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      out.emplace(decode(pair.substr(0, eq)),
                  eq == std::string_view::npos ? std::string() : decode(pair.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return out;
}

}  // namespace mock_wechat
