// mock_wechat/ids.hpp - identifiers in the real shapes.
//
// Deterministic (tests can predict them, restarts agree):
//   openid(appid, user)          'o' + 27 characters, 28 in all
//   unionid(open_account, user)  'o' + 27 characters, 28 in all
//   make_appid(name)             "wx" + 16 lowercase hex
// Random (a fresh value each time, like WeChat's):
//   session keys (24 base64 characters of 16 random bytes), login/phone/OAuth codes
//   (32 characters), access tokens (136 characters), request ids.
#pragma once

#include <wechat/crypto.hpp>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>

namespace mock_wechat {

namespace detail {

inline constexpr char id_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// 27 characters of the url-safe alphabet from a SHA-1 of (tag, a, b).
inline std::string hashed_id(std::string_view tag, std::string_view a, std::string_view b) {
  std::string input;
  input.reserve(tag.size() + a.size() + b.size() + 2);
  input.append(tag).push_back('\n');
  input.append(a).push_back('\n');
  input.append(b);
  const std::string hex = wechat::sha1_hex(input);  // 40 hex = 160 bits
  std::string out;
  out.reserve(27);
  // 160 bits give 26 full 6-bit groups; the 27th reuses the first bits again.
  std::uint64_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; out.size() < 27; i = (i + 1) % hex.size()) {
    const char c = hex[i];
    acc = (acc << 4) | static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    bits += 4;
    if (bits >= 6) {
      bits -= 6;
      out.push_back(id_alphabet[(acc >> bits) & 63]);
    }
  }
  return out;
}

inline std::mt19937_64& rng() {
  thread_local std::mt19937_64 engine([] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }());
  return engine;
}

}  // namespace detail

/// The user's openid in app `appid`: 28 characters, a pure function of (appid, user).
inline std::string openid(std::string_view appid, std::string_view user) {
  return "o" + detail::hashed_id("openid", appid, user);
}

/// The user's unionid under Open Platform account `open_account`: 28 characters, a pure
/// function of (open_account, user).
inline std::string unionid(std::string_view open_account, std::string_view user) {
  return "o" + detail::hashed_id("unionid", open_account, user);
}

/// A real-shaped appid ("wx" + 16 lowercase hex) derived from a name, for tests and
/// scenario files that prefer names.
inline std::string make_appid(std::string_view name) {
  return "wx" + wechat::sha1_hex(std::string("appid\n").append(name)).substr(0, 16);
}

/// `n` random characters of [A-Za-z0-9] (codes), or of the url-safe alphabet (tokens).
inline std::string random_chars(std::size_t n, bool url_safe = false) {
  static constexpr char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out(n, '\0');
  auto& g = detail::rng();
  std::uint64_t r = 0;
  int left = 0;
  for (auto& c : out) {
    if (left == 0) {
      r = g();
      left = 10;
    }
    const unsigned v = static_cast<unsigned>(r & 63);
    r >>= 6;
    --left;
    c = url_safe ? detail::id_alphabet[v] : alnum[v % 62];
  }
  return out;
}

/// A fresh session_key: 24 base64 characters encoding 16 random bytes.
inline std::string new_session_key() {
  std::string raw(16, '\0');
  auto& g = detail::rng();
  for (int i = 0; i < 16; i += 8) {
    const std::uint64_t v = g();
    for (int j = 0; j < 8; ++j)
      raw[static_cast<std::size_t>(i) + static_cast<std::size_t>(j)] =
          static_cast<char>(v >> (8 * j));
  }
  return wechat::base64_encode(raw);
}

/// A fresh access token in the real shape: "<2 digits>_" + 133 url-safe characters.
inline std::string new_access_token() {
  const auto d = static_cast<unsigned>(detail::rng()() % 90 + 10);
  return std::to_string(d) + "_" + random_chars(133, true);
}

/// A request id: three groups of 8 lowercase hex digits, the first the Unix time.
inline std::string rid(std::int64_t unix_seconds) {
  char buf[32];
  const std::uint64_t r = detail::rng()();
  std::snprintf(buf, sizeof buf, "%08x-%08x-%08x", static_cast<unsigned>(unix_seconds),
                static_cast<unsigned>(r >> 32), static_cast<unsigned>(r));
  return buf;
}

}  // namespace mock_wechat
