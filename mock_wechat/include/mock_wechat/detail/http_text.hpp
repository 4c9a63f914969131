// mock_wechat/detail/http_text.hpp - the lexical pieces of an HTTP/1.1 head (RFC 9110
// section 5.6): tokens, case-insensitive names, optional whitespace, comma lists, a
// Content-Length. Shared by the mock's request reader (detail/http1.hpp) and
// wechat-loadtest's response reader (loadtest/http_reader.hpp); depends on nothing else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mock_wechat::detail::http1 {

/// A tchar of RFC 9110 section 5.6.2 (the characters of a method or a field name).
inline bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
  case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
  case '.': case '^': case '_': case '`': case '|': case '~': return true;
  default: return false;
  }
}

/// `s` equals `lower` (given in lower case), ignoring the case of `s`'s ASCII letters.
inline bool equals_lower(std::string_view s, std::string_view lower) noexcept {
  if (s.size() != lower.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if ((s[i] >= 'A' && s[i] <= 'Z' ? s[i] | 0x20 : s[i]) != lower[i]) return false;
  return true;
}

/// `v` without leading and trailing spaces and tabs (OWS).
inline std::string_view trim(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
    v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
    v.remove_suffix(1);
  return v;
}

/// Whether the comma-separated list `v` holds `token` (any case; `token` in lower case).
inline bool has_token(std::string_view v, std::string_view token) noexcept {
  while (!v.empty()) {
    const std::size_t comma = v.find(',');
    if (equals_lower(trim(v.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return false;
}

/// "1*DIGIT" up to 2^40, else -1.
inline std::int64_t parse_length(std::string_view v) noexcept {
  if (v.empty() || v.size() > 13) return -1;
  std::int64_t n = 0;
  for (const char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n > (std::int64_t{1} << 40) ? -1 : n;
}

}  // namespace mock_wechat::detail::http1
