// wechat/url_encode.hpp - percent-encoding of a query parameter value, shared by the
// client's requests (transport.hpp) and the query of an encrypted push (msg_crypt.hpp).
#pragma once

#include <string>
#include <string_view>

namespace wechat {

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters kept).
inline std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace wechat
