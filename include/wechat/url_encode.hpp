// wechat/url_encode.hpp - percent-encoding of a query parameter value, shared by the
// client's requests (transport.hpp) and the query of an encrypted push (msg_crypt.hpp).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace wechat {

namespace detail {
// RFC 3986's unreserved characters: A-Z a-z 0-9 - _ . ~ (a table: one load per byte).
inline constexpr std::array<bool, 256> url_unreserved = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[static_cast<std::size_t>(c)] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                                     c == '~';
  return t;
}();
}  // namespace detail

/// Appends `s` percent-encoded to `out` (RFC 3986 unreserved characters kept, every other
/// byte as %XX, upper-case): a request's query is built in one string. `s` must not view
/// `out` itself (appending may move its bytes).
inline void url_encode_to(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::size_t kept = 0;  // start of the run of unreserved bytes not yet appended
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (detail::url_unreserved[c]) continue;
    out.append(s.data() + kept, i - kept);
    const char escaped[3] = {'%', hex[c >> 4], hex[c & 15]};
    out.append(escaped, 3);
    kept = i + 1;
  }
  out.append(s.data() + kept, s.size() - kept);
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters kept).
inline std::string url_encode(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  url_encode_to(out, s);
  return out;
}

}  // namespace wechat
