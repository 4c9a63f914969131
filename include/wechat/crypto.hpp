// wechat/crypto.hpp - the primitives WeChat's login protocol uses, on OpenSSL's EVP API.
//
//   base64 (strict, standard alphabet, with diagnoses for the commonest corruptions),
//   AES-128-CBC with strict PKCS#7, AES-256-CBC without padding (for the message crypto of
//   msg_crypt.hpp, which pads to 32 bytes itself), SHA-1 hex, HMAC-SHA256 hex,
//   constant-time comparison, random bytes.
//
// Depends on OpenSSL's libcrypto only.
#pragma once

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "wechat/error.hpp"

namespace wechat {

namespace detail {

inline constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63 for alphabet characters, 64 for '=', 255 for anything else.
inline constexpr std::array<std::uint8_t, 256> make_base64_table() {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t)
    v = 255;
  for (int i = 0; i < 64; ++i)
    t[static_cast<unsigned char>(base64_alphabet[i])] = static_cast<std::uint8_t>(i);
  t[static_cast<unsigned char>('=')] = 64;
  return t;
}
inline constexpr std::array<std::uint8_t, 256> base64_table = make_base64_table();

/// Exact decoded size of a well-formed base64 text (caller validated length % 4 == 0).
inline std::size_t base64_decoded_size(std::string_view text) noexcept {
  if (text.empty()) return 0;
  std::size_t n = text.size() / 4 * 3;
  if (text.back() == '=') --n;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --n;
  return n;
}

/// Classifies why `text` is not strict base64. Called only on the slow (failure) path.
inline crypto_errc base64_diagnose(std::string_view text) noexcept {
  bool space = false, percent = false, other = false;
  for (char c : text) {
    if (c == ' ')
      space = true;
    else if (c == '%')
      percent = true;
    else if (base64_table[static_cast<unsigned char>(c)] == 255)
      other = true;
  }
  if (space) return crypto_errc::base64_space_for_plus;
  if (percent) return crypto_errc::base64_percent_encoded;
  if (other) return crypto_errc::base64_invalid_character;
  return crypto_errc::base64_invalid_length;
}

// Four lookup tables, one per position in a quad, holding the 6-bit value already shifted
// into place; anything that is not an alphabet character (including '=') maps to a value
// with bit 24 set, so a quad decodes with four loads, three ORs and one test.
inline constexpr std::uint32_t base64_bad = 0x01000000u;
inline constexpr std::array<std::array<std::uint32_t, 256>, 4> make_base64_quad_tables() {
  std::array<std::array<std::uint32_t, 256>, 4> t{};
  for (auto& table : t)
    for (auto& v : table)
      v = base64_bad;
  for (std::uint32_t i = 0; i < 64; ++i) {
    const auto c = static_cast<unsigned char>(base64_alphabet[i]);
    t[0][c] = i << 18;
    t[1][c] = i << 12;
    t[2][c] = i << 6;
    t[3][c] = i;
  }
  return t;
}
inline constexpr auto base64_quad = make_base64_quad_tables();

/// Strict decode of `text` into `out` (room for base64_decoded_size bytes). Returns the
/// number of bytes written; sets ec on failure. Rejects: characters outside the standard
/// alphabet, length not a multiple of 4, '=' anywhere but the last two places, non-zero
/// padding bits.
inline std::size_t base64_decode_to(std::string_view text, unsigned char* out,
                                    std::error_code& ec) noexcept {
  ec.clear();
  const std::size_t len = text.size();
  if (len % 4 != 0) {
    ec = base64_diagnose(text);
    return 0;
  }
  if (len == 0) return 0;
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t pad = 0;
  if (in[len - 1] == '=') pad = (in[len - 2] == '=') ? 2 : 1;
  const std::size_t full = (len - (pad ? 4 : 0)) / 4;  // quads without padding
  std::size_t o = 0;
  std::uint32_t bad = 0;
  for (std::size_t q = 0; q < full; ++q, in += 4) {
    const std::uint32_t v = base64_quad[0][in[0]] | base64_quad[1][in[1]] | base64_quad[2][in[2]] |
                            base64_quad[3][in[3]];
    bad |= v;
    out[o] = static_cast<unsigned char>(v >> 16);
    out[o + 1] = static_cast<unsigned char>(v >> 8);
    out[o + 2] = static_cast<unsigned char>(v);
    o += 3;
  }
  if (bad & base64_bad) {  // checked once at the end: failures are the rare path
    ec = base64_diagnose(text);
    return 0;
  }
  if (pad) {
    const std::uint32_t a = base64_table[in[0]], b = base64_table[in[1]];
    const std::uint32_t c = pad == 1 ? base64_table[in[2]] : 0;
    if (a >= 64 || b >= 64 || c >= 64) {
      ec = base64_diagnose(text);
      return 0;
    }
    if (pad == 2) {
      if (b & 0x0f) {
        ec = crypto_errc::base64_non_canonical;
        return 0;
      }
      out[o++] = static_cast<unsigned char>((a << 2) | (b >> 4));
    } else {
      if (c & 0x03) {
        ec = crypto_errc::base64_non_canonical;
        return 0;
      }
      const std::uint32_t v = (a << 18) | (b << 12) | (c << 6);
      out[o++] = static_cast<unsigned char>(v >> 16);
      out[o++] = static_cast<unsigned char>(v >> 8);
    }
  }
  return o;
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
// A cipher fetched by name, freed at exit: the cipher functions below keep one each.
struct fetched_cipher {
  EVP_CIPHER* cipher;
  explicit fetched_cipher(const char* name) : cipher(EVP_CIPHER_fetch(nullptr, name, nullptr)) {}
  fetched_cipher(const fetched_cipher&) = delete;
  fetched_cipher& operator=(const fetched_cipher&) = delete;
  ~fetched_cipher() { EVP_CIPHER_free(cipher); }
};
#endif

/// The AES-128-CBC cipher, fetched once per process (OpenSSL 3 otherwise re-fetches it on
/// every EVP_*Init call, which costs more than decrypting a small payload).
inline const EVP_CIPHER* aes128_cbc() noexcept {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  static const fetched_cipher h("AES-128-CBC");
  return h.cipher;
#else
  return EVP_aes_128_cbc();
#endif
}

inline const EVP_MD* sha1_md() noexcept {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  struct holder {
    EVP_MD* md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    ~holder() { EVP_MD_free(md); }
  };
  static const holder h;
  return h.md;
#else
  return EVP_sha1();
#endif
}

// A cipher context set up once for `cipher` and a direction, OpenSSL's padding on or off;
// later uses only load key and IV. `ctx` is null when OpenSSL cannot provide one.
struct cipher_ctx {
  EVP_CIPHER_CTX* ctx;
  cipher_ctx(const EVP_CIPHER* cipher, bool decrypt, bool padding) : ctx(EVP_CIPHER_CTX_new()) {
    if (ctx != nullptr &&
        (cipher == nullptr ||
         EVP_CipherInit_ex(ctx, cipher, nullptr, nullptr, nullptr, decrypt ? 0 : 1) != 1 ||
         EVP_CIPHER_CTX_set_padding(ctx, padding ? 1 : 0) != 1)) {
      EVP_CIPHER_CTX_free(ctx);
      ctx = nullptr;
    }
  }
  cipher_ctx(const cipher_ctx&) = delete;
  cipher_ctx& operator=(const cipher_ctx&) = delete;
  ~cipher_ctx() { EVP_CIPHER_CTX_free(ctx); }
};

/// One AES-128-CBC context per thread and direction, set up once (cipher, and padding off
/// for decryption: the PKCS#7 check is ours): later calls only load key and IV.
/// Allocating and configuring a context per call costs more than a small decrypt.
/// Returns nullptr if OpenSSL cannot provide one.
inline EVP_CIPHER_CTX* thread_cipher_ctx(bool decrypt) noexcept {
  thread_local const cipher_ctx dec_h(aes128_cbc(), true, false);
  thread_local const cipher_ctx enc_h(aes128_cbc(), false, true);
  return decrypt ? dec_h.ctx : enc_h.ctx;
}

/// AES-128-CBC decrypt of `len` bytes (a non-zero multiple of 16) into `out` (room for
/// len bytes) with a strict PKCS#7 check. Returns the plaintext length.
inline std::size_t aes128_cbc_decrypt_to(const unsigned char* key, const unsigned char* iv,
                                         const unsigned char* in, std::size_t len,
                                         unsigned char* out, std::error_code& ec) noexcept {
  ec.clear();
  if (len == 0 || len % 16 != 0 || len > static_cast<std::size_t>(INT32_MAX)) {
    ec = crypto_errc::bad_ciphertext_length;
    return 0;
  }
  EVP_CIPHER_CTX* ctx = thread_cipher_ctx(true);
  if (ctx == nullptr || EVP_DecryptInit_ex(ctx, nullptr, nullptr, key, iv) != 1) {
    ec = crypto_errc::openssl_failure;
    return 0;
  }
  int n = 0, tail = 0;
  if (EVP_DecryptUpdate(ctx, out, &n, in, static_cast<int>(len)) != 1 ||
      EVP_DecryptFinal_ex(ctx, out + n, &tail) != 1) {
    ec = crypto_errc::openssl_failure;
    return 0;
  }
  const std::size_t total = static_cast<std::size_t>(n) + static_cast<std::size_t>(tail);
  // Strict PKCS#7: the last byte p is 1..16 and the last p bytes all equal p. The scan
  // always covers 16 bytes, so its time does not depend on where it fails.
  const unsigned p = out[total - 1];
  unsigned bad = static_cast<unsigned>(p == 0) | static_cast<unsigned>(p > 16);
  for (unsigned i = 1; i <= 16; ++i) {
    const unsigned in_pad = static_cast<unsigned>(i <= p);
    bad |= in_pad & static_cast<unsigned>(out[total - i] != p);
  }
  if (bad) {
    ec = crypto_errc::bad_padding;
    return 0;
  }
  return total - p;
}

/// The AES-256-CBC cipher (WeChat's message crypto), fetched once per process.
inline const EVP_CIPHER* aes256_cbc() noexcept {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  static const fetched_cipher h("AES-256-CBC");
  return h.cipher;
#else
  return EVP_aes_256_cbc();
#endif
}

/// One AES-256-CBC context per thread and direction, with OpenSSL's padding off both ways:
/// WeChat's message crypto pads to 32 bytes (PKCS#7 with K = 32), which OpenSSL's padding,
/// per 16-byte block, cannot do. Returns nullptr if OpenSSL cannot provide one.
inline EVP_CIPHER_CTX* thread_aes256_ctx(bool decrypt) noexcept {
  thread_local const cipher_ctx dec_h(aes256_cbc(), true, false);
  thread_local const cipher_ctx enc_h(aes256_cbc(), false, false);
  return decrypt ? dec_h.ctx : enc_h.ctx;
}

/// AES-256-CBC without padding over `len` bytes (a non-zero multiple of 16, at most
/// INT32_MAX), key 32 bytes, iv 16 bytes, into `out` (room for len bytes; may be `in`).
/// Sets ec to bad_ciphertext_length or openssl_failure.
inline void aes256_cbc_nopad(bool decrypt, const unsigned char* key, const unsigned char* iv,
                             const unsigned char* in, std::size_t len, unsigned char* out,
                             std::error_code& ec) noexcept {
  ec.clear();
  if (len == 0 || len % 16 != 0 || len > static_cast<std::size_t>(INT32_MAX)) {
    ec = crypto_errc::bad_ciphertext_length;
    return;
  }
  EVP_CIPHER_CTX* ctx = thread_aes256_ctx(decrypt);
  int n = 0, tail = 0;
  if (ctx == nullptr || EVP_CipherInit_ex(ctx, nullptr, nullptr, key, iv, decrypt ? 0 : 1) != 1 ||
      EVP_CipherUpdate(ctx, out, &n, in, static_cast<int>(len)) != 1 ||
      EVP_CipherFinal_ex(ctx, out + n, &tail) != 1 ||
      static_cast<std::size_t>(n) + static_cast<std::size_t>(tail) != len)
    ec = crypto_errc::openssl_failure;
}

/// AES-128 takes a 16-byte key and a 16-byte IV. Sets ec when either is not.
inline bool check_key_iv(std::string_view key, std::string_view iv, std::error_code& ec) noexcept {
  if (key.size() != 16)
    ec = crypto_errc::bad_key_length;
  else if (iv.size() != 16)
    ec = crypto_errc::bad_iv_length;
  return !ec;
}

}  // namespace detail

/// Standard base64 with '=' padding.
inline std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.resize((bytes.size() + 2) / 3 * 4);
  const auto* in = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t i = 0, o = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v =
        (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
    out[o++] = detail::base64_alphabet[(v >> 18) & 63];
    out[o++] = detail::base64_alphabet[(v >> 12) & 63];
    out[o++] = detail::base64_alphabet[(v >> 6) & 63];
    out[o++] = detail::base64_alphabet[v & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = std::uint32_t{in[i]} << 16;
    if (rest == 2) v |= std::uint32_t{in[i + 1]} << 8;
    out[o++] = detail::base64_alphabet[(v >> 18) & 63];
    out[o++] = detail::base64_alphabet[(v >> 12) & 63];
    out[o++] = rest == 2 ? detail::base64_alphabet[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  return out;
}

/// Strict base64 decode (standard alphabet, padded). Errors (crypto_errc):
/// base64_space_for_plus, base64_percent_encoded, base64_invalid_character,
/// base64_invalid_length, base64_non_canonical.
inline std::string base64_decode(std::string_view text, std::error_code& ec) {
  std::string out;
  if (text.size() % 4 != 0) {
    ec = detail::base64_diagnose(text);
    return out;
  }
  out.resize(detail::base64_decoded_size(text));
  const std::size_t n =
      detail::base64_decode_to(text, reinterpret_cast<unsigned char*>(out.data()), ec);
  out.resize(ec ? 0 : n);
  return out;
}

/// Throwing overload of base64_decode.
inline std::string base64_decode(std::string_view text) {
  std::error_code ec;
  auto r = base64_decode(text, ec);
  throw_if_error(ec, "base64_decode");
  return r;
}

/// AES-128-CBC decrypt with strict PKCS#7 padding. key and iv are raw 16-byte strings.
/// Errors: bad_key_length, bad_iv_length, bad_ciphertext_length, bad_padding,
/// openssl_failure.
inline std::string aes128_cbc_decrypt(std::string_view key, std::string_view iv,
                                      std::string_view ciphertext, std::error_code& ec) {
  std::string out;
  ec.clear();
  if (!detail::check_key_iv(key, iv, ec)) return out;
  out.resize(ciphertext.size());
  const std::size_t n = detail::aes128_cbc_decrypt_to(
      reinterpret_cast<const unsigned char*>(key.data()),
      reinterpret_cast<const unsigned char*>(iv.data()),
      reinterpret_cast<const unsigned char*>(ciphertext.data()), ciphertext.size(),
      reinterpret_cast<unsigned char*>(out.data()), ec);
  out.resize(ec ? 0 : n);
  return out;
}

/// Throwing overload of aes128_cbc_decrypt.
inline std::string aes128_cbc_decrypt(std::string_view key, std::string_view iv,
                                      std::string_view ciphertext) {
  std::error_code ec;
  auto r = aes128_cbc_decrypt(key, iv, ciphertext, ec);
  throw_if_error(ec, "aes128_cbc_decrypt");
  return r;
}

/// AES-128-CBC encrypt with PKCS#7 padding (what WeChat does to device data; the mock
/// uses it). Errors: bad_key_length, bad_iv_length, openssl_failure.
inline std::string aes128_cbc_encrypt(std::string_view key, std::string_view iv,
                                      std::string_view plaintext, std::error_code& ec) {
  std::string out;
  ec.clear();
  if (!detail::check_key_iv(key, iv, ec)) return out;
  if (plaintext.size() > static_cast<std::size_t>(INT32_MAX) - 16) {
    ec = crypto_errc::bad_ciphertext_length;
    return out;
  }
  EVP_CIPHER_CTX* ctx = detail::thread_cipher_ctx(false);
  out.resize(plaintext.size() + 16);
  int n = 0, tail = 0;
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx, nullptr, nullptr, reinterpret_cast<const unsigned char*>(key.data()),
                         reinterpret_cast<const unsigned char*>(iv.data())) != 1 ||
      EVP_EncryptUpdate(ctx, o, &n, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, o + n, &tail) != 1) {
    ec = crypto_errc::openssl_failure;
    out.clear();
    return out;
  }
  out.resize(static_cast<std::size_t>(n) + static_cast<std::size_t>(tail));
  return out;
}

/// Throwing overload of aes128_cbc_encrypt.
inline std::string aes128_cbc_encrypt(std::string_view key, std::string_view iv,
                                      std::string_view plaintext) {
  std::error_code ec;
  auto r = aes128_cbc_encrypt(key, iv, plaintext, ec);
  throw_if_error(ec, "aes128_cbc_encrypt");
  return r;
}

/// Lowercase hex of arbitrary bytes.
inline std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = digits[b >> 4];
    out[2 * i + 1] = digits[b & 15];
  }
  return out;
}

namespace detail {
/// True when `text` is 40 hex characters, either case (a SHA-1 signature as a peer sends
/// it); `lower` then holds it in lowercase, as sha1_hex writes it.
inline bool sha1_hex_lowercase(std::string_view text, std::string& lower) {
  if (text.size() != 40) return false;
  lower.assign(text);
  for (char& c : lower) {
    if (c >= 'A' && c <= 'F')
      c = static_cast<char>(c - 'A' + 'a');
    else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}
}  // namespace detail

/// Lowercase hex SHA-1 of `data` (40 characters). Cannot fail short of OpenSSL being
/// broken, in which case it throws wechat::error(openssl_failure).
inline std::string sha1_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, detail::sha1_md(), nullptr) != 1)
    throw error(make_error_code(crypto_errc::openssl_failure), "sha1");
  return to_hex(std::string_view(reinterpret_cast<const char*>(md), len));
}

/// Lowercase hex HMAC-SHA256 (64 characters) of `message` under `key`.
inline std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), md,
           &len) == nullptr)
    throw error(make_error_code(crypto_errc::openssl_failure), "hmac_sha256");
  return to_hex(std::string_view(reinterpret_cast<const char*>(md), len));
}

/// Compares two strings in time that depends only on their lengths, not their contents.
inline bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

/// `n` bytes from OpenSSL's CSPRNG. Error: openssl_failure.
inline std::string random_bytes(std::size_t n, std::error_code& ec) {
  ec.clear();
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    ec = crypto_errc::openssl_failure;
    out.clear();
  }
  return out;
}

/// Throwing overload of random_bytes.
inline std::string random_bytes(std::size_t n) {
  std::error_code ec;
  auto r = random_bytes(n, ec);
  throw_if_error(ec, "random_bytes");
  return r;
}

}  // namespace wechat
