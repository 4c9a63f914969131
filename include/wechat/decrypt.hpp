// wechat/decrypt.hpp - decrypt and verify what a mini program sends to its backend.
//
// The device calls wx.getUserInfo / getPhoneNumber and forwards encryptedData and iv
// (and, for user info, rawData and signature). The backend decrypts them with the user's
// session_key from code2session: AES-128-CBC, PKCS#7, key = base64(session_key),
// iv = base64(iv). Then it must verify: the watermark's appid is its own, the watermark
// is fresh enough (optional; no other SDK checks it), and sha1(rawData + session_key)
// equals signature.
//
// Every failure is a distinct decrypt_errc whose message says which input was wrong,
// what was wrong, and what usually causes it. No message ever contains the session_key.
//
// Depends on OpenSSL's libcrypto and nlohmann/json (generic form only). No HTTP.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

#include "wechat/clock.hpp"
#include "wechat/crypto.hpp"
#include "wechat/detail/json_reader.hpp"
#include "wechat/error.hpp"

namespace wechat {

/// The watermark WeChat puts in every encrypted payload.
struct watermark {
  std::int64_t timestamp = 0;  ///< Unix seconds when WeChat produced the payload
  std::string appid;           ///< the mini program the payload was produced for
};

/// Decrypted wx.getUserInfo payload. The device-side names are camelCase (openId,
/// nickName, avatarUrl, unionId); lowercase variants (openid, nickname, unionid...) are
/// accepted too.
///
/// Since 2021-04-28 WeChat's getUserInfo gives an anonymous profile ("微信用户", the grey
/// default avatar, gender 0, empty region) that still carries openId and unionId; since
/// 2021-10-20 no user-info API gives gender or region (wechat-api.md section 8). Data from
/// wx.getUserProfile has no openId: decrypt_user_info refuses it with
/// decrypt_errc::profile_without_ids; decrypt_user_profile reads it.
struct user_info {
  std::string openid;                  ///< "openId" (required)
  std::string nickname;                ///< "nickName"
  int gender = 0;                      ///< 0 unknown, 1 male, 2 female
  std::string language;                ///< "language"
  std::string city;                    ///< "city"
  std::string province;                ///< "province"
  std::string country;                 ///< "country"
  std::string avatar_url;              ///< "avatarUrl"
  std::optional<std::string> unionid;  ///< "unionId": only when the app is bound
  wechat::watermark watermark;         ///< "watermark" (required)
};

/// Decrypted wx.getUserProfile payload (base library 2.10.4+, since 2021-04): the profile
/// and the watermark, no openId and no unionId (wechat-api.md section 8). Since 2022-11-08
/// its profile is anonymous too ("微信用户", the grey avatar): real profiles now come from
/// what the user types (the chooseAvatar button, the nickname input), never from an API.
struct user_profile {
  std::string nickname;         ///< "nickName"
  int gender = 0;               ///< 0 unknown, 1 male, 2 female (0 since 2021-10-20)
  std::string language;         ///< "language"
  std::string city;             ///< "city" (empty since 2021-10-20)
  std::string province;         ///< "province"
  std::string country;          ///< "country"
  std::string avatar_url;       ///< "avatarUrl"
  wechat::watermark watermark;  ///< "watermark" (required)
};

/// Decrypted phone number payload (old-style getPhoneNumber, and the phone_info object
/// of wxa/business/getuserphonenumber).
struct phone_info {
  std::string phone_number;       ///< "phoneNumber", with country prefix: "+8613800138000"
  std::string pure_phone_number;  ///< "purePhoneNumber": "13800138000"
  std::string country_code;       ///< "countryCode": "86" (WeChat sends a string or a number)
  wechat::watermark watermark;    ///< "watermark" (required)
};

/// What the device forwarded. Views: they must outlive the call only.
struct device_data {
  std::string_view encrypted_data{};  ///< base64 "encryptedData"
  std::string_view iv{};              ///< base64 "iv"
  std::string_view raw_data{};        ///< user info only: "rawData" (verified when given)
  std::string_view signature{};       ///< user info only: "signature" (40 hex characters)
};

/// How to verify a decrypted payload.
struct verify_options {
  /// Your mini program's appid: the watermark must carry it. Required.
  std::string_view appid{};
  /// Reject payloads whose watermark is older than this; zero (default) disables the check.
  std::chrono::seconds max_age{0};
  /// "Now" in Unix seconds for the age check; zero (default) reads `clock`.
  std::int64_t now = 0;
  /// The clock for the age check when `now` is zero; null (default): the system clock. In
  /// a test against the mock, its clock (`mock.world().time_source().get()`), so that
  /// moving the mock's time ages the watermark too. Must outlive the call.
  const wechat::time_source* clock = nullptr;
};

namespace detail {

// Decodes a 16-byte base64 value (session_key or iv) into out[16], classifying failures.
inline decrypt_errc decode_key16(std::string_view text, unsigned char* out, decrypt_errc malformed,
                                 decrypt_errc has_space) noexcept {
  if (text.find(' ') != std::string_view::npos) return has_space;
  // 24 characters encode 16 bytes only with "==" at the end; without it they encode 17
  // or 18, which must not be written into a 16-byte key.
  if (text.size() != 24 || base64_decoded_size(text) != 16) return malformed;
  std::error_code ec;
  if (base64_decode_to(text, out, ec) != 16 || ec) return malformed;
  return decrypt_errc{};
}

/// base64 + AES-128-CBC + PKCS#7: the plaintext in a per-thread buffer, valid until the
/// next call on this thread. Sets ec (decrypt_errc) on failure.
inline std::string_view decrypt_plaintext(std::string_view session_key, std::string_view data,
                                          std::string_view iv, std::error_code& ec) {
  ec.clear();
  unsigned char key[16], ivb[16];
  if (auto e = decode_key16(session_key, key, decrypt_errc::session_key_malformed,
                            decrypt_errc::session_key_has_space);
      e != decrypt_errc{}) {
    ec = e;
    return {};
  }
  if (auto e = decode_key16(iv, ivb, decrypt_errc::iv_malformed, decrypt_errc::iv_has_space);
      e != decrypt_errc{}) {
    ec = e;
    OPENSSL_cleanse(key, sizeof key);
    return {};
  }
  thread_local std::string buffer;
  std::error_code bec;
  if (data.size() % 4 != 0) {
    bec = base64_diagnose(data);
  } else {
    const std::size_t size = base64_decoded_size(data);
    // A buffer grown by an unusually large payload is given back at the next payload of
    // less than half its size: a thread holds at most 64 KiB, or twice its last
    // payload's size (docs/bounds.md).
    constexpr std::size_t keep = std::size_t{64} * 1024;
    if (buffer.capacity() > std::max(keep, 2 * size)) std::string().swap(buffer);
    buffer.resize(size);
  }
  std::size_t n = 0;
  if (!bec) n = base64_decode_to(data, reinterpret_cast<unsigned char*>(buffer.data()), bec);
  if (bec) {
    ec = bec == crypto_errc::base64_space_for_plus ? decrypt_errc::data_has_space
                                                   : decrypt_errc::data_not_base64;
    OPENSSL_cleanse(key, sizeof key);
    return {};
  }
  if (n == 0 || n % 16 != 0) {
    ec = decrypt_errc::data_bad_length;
    OPENSSL_cleanse(key, sizeof key);
    return {};
  }
  auto* p = reinterpret_cast<unsigned char*>(buffer.data());
  std::error_code cec;
  const std::size_t plain = aes128_cbc_decrypt_to(key, ivb, p, n, p, cec);  // in place
  OPENSSL_cleanse(key, sizeof key);
  if (cec) {
    ec = cec == crypto_errc::bad_padding ? make_error_code(decrypt_errc::bad_padding) : cec;
    return {};
  }
  return std::string_view(buffer.data(), plain);
}

inline std::int64_t unix_now() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline decrypt_errc check_watermark(const watermark& w, const verify_options& opt) noexcept {
  if (opt.appid.empty()) return decrypt_errc::appid_not_set;
  if (!constant_time_equal(w.appid, opt.appid)) return decrypt_errc::appid_mismatch;
  if (opt.max_age.count() > 0) {
    const std::int64_t now = opt.now != 0 ? opt.now : opt.clock ? opt.clock->now() : unix_now();
    if (now - w.timestamp > opt.max_age.count()) return decrypt_errc::watermark_too_old;
  }
  return decrypt_errc{};
}

// Reads {"timestamp":N,"appid":"..."}; both required.
inline void read_watermark(json_reader& r, watermark& w) {
  if (r.peek() != '{') {
    r.skip(0);
    r.set_shape_error();
    return;
  }
  bool has_ts = false, has_appid = false;
  r.object(
      [&](std::string_view k) {
        if (k == "timestamp")
          has_ts = r.integer(w.timestamp);
        else if (k == "appid")
          has_appid = r.string(w.appid);
        else
          r.skip(1);
      },
      1);
  if (!has_ts || !has_appid) r.set_shape_error();
}

// Reads the top-level object; valid JSON that is not an object is a shape error.
template <class OnKey> void read_top_object(json_reader& r, OnKey&& on_key) {
  if (r.peek() != '{') {
    r.skip(0);
    r.set_shape_error();
    return;
  }
  r.object(on_key);
}

// Shared tail of the typed decrypts: parse errors, then the watermark.
inline void finish_typed(json_reader& r, bool required_present, const watermark& w,
                         const verify_options& opt, std::error_code& ec) {
  if (r.syntax_error() || !r.finish()) {
    ec = decrypt_errc::not_json;
  } else if (r.shape_error() || !required_present) {
    ec = decrypt_errc::unexpected_payload;
  } else if (auto e = check_watermark(w, opt); e != decrypt_errc{}) {
    ec = e;
  }
}

}  // namespace detail

/// The rawData signature WeChat computes: lowercase hex sha1(rawData + session_key), where
/// session_key is its base64 text as code2session returned it.
inline std::string raw_data_signature(std::string_view raw_data, std::string_view session_key) {
  std::string buf;
  buf.reserve(raw_data.size() + session_key.size());
  buf.append(raw_data).append(session_key);
  std::string sig = sha1_hex(buf);
  OPENSSL_cleanse(buf.data(), buf.size());
  return sig;
}

/// Verifies `signature == sha1(rawData + session_key)` in constant time.
/// Errors: signature_malformed (not 40 hex characters), signature_mismatch.
inline void verify_signature(std::string_view raw_data, std::string_view signature,
                             std::string_view session_key, std::error_code& ec) {
  ec.clear();
  std::string lower;
  if (!detail::sha1_hex_lowercase(signature, lower)) {
    ec = decrypt_errc::signature_malformed;
    return;
  }
  if (!constant_time_equal(raw_data_signature(raw_data, session_key), lower))
    ec = decrypt_errc::signature_mismatch;
}

/// Throwing overload of verify_signature.
inline void verify_signature(std::string_view raw_data, std::string_view signature,
                             std::string_view session_key) {
  std::error_code ec;
  verify_signature(raw_data, signature, session_key, ec);
  throw_if_error(ec, "verify_signature");
}

/// The signature checksession and resetusersessionkey expect: lowercase hex
/// hmac_sha256(key = session_key base64 TEXT, message = "").
inline std::string session_key_signature(std::string_view session_key) {
  return hmac_sha256_hex(session_key, "");
}

namespace detail {

// Decrypts and verifies a user-info-shaped payload (getUserInfo or getUserProfile) into
// `out`; `has_openid` says whether it carried an openId. The watermark and a nickName are
// required (a phone-number payload, say, is unexpected_payload), the rawData signature
// checked when given. On error `out` is left for the caller to clear.
inline void decrypt_profile_payload(std::string_view session_key, const device_data& data,
                                    const verify_options& options, user_info& out,
                                    bool& has_openid, std::error_code& ec) {
  has_openid = false;
  bool has_nickname = false;
  const std::string_view plain =
      detail::decrypt_plaintext(session_key, data.encrypted_data, data.iv, ec);
  if (ec) return;
  detail::json_reader r(plain);
  bool has_watermark = false;
  std::string unionid;
  std::int64_t gender = 0;
  detail::read_top_object(r, [&](std::string_view k) {
    if (k == "openId" || k == "openid")
      has_openid = r.string(out.openid);
    else if (k == "nickName" || k == "nickname")
      has_nickname = r.string(out.nickname);
    else if (k == "gender") {
      if (r.peek() == 'n')
        r.skip(1);
      else
        r.integer(gender);
    } else if (k == "language")
      r.string(out.language);
    else if (k == "city")
      r.string(out.city);
    else if (k == "province")
      r.string(out.province);
    else if (k == "country")
      r.string(out.country);
    else if (k == "avatarUrl" || k == "avatar_url")
      r.string(out.avatar_url);
    else if (k == "unionId" || k == "unionid") {
      if (r.string(unionid)) out.unionid = std::move(unionid);
    } else if (k == "watermark") {
      has_watermark = true;
      detail::read_watermark(r, out.watermark);
    } else
      r.skip(1);
  });
  if (gender < 0 || gender > 2) r.set_shape_error();
  out.gender = static_cast<int>(gender);
  // getUserInfo data always has its openId; a profile (no ids) at least its nickName
  detail::finish_typed(r, has_watermark && (has_openid || has_nickname), out.watermark, options,
                       ec);
  if (!ec && (!data.raw_data.empty() || !data.signature.empty()))
    verify_signature(data.raw_data, data.signature, session_key, ec);
}

}  // namespace detail

/// Decrypts and verifies a wx.getUserInfo payload. Verifies the rawData signature too when
/// `data.raw_data` or `data.signature` is given.
/// Errors: every decrypt_errc (profile_without_ids: genuine wx.getUserProfile data, which
/// has no openId; use decrypt_user_profile); crypto_errc::openssl_failure.
inline user_info decrypt_user_info(std::string_view session_key, const device_data& data,
                                   const verify_options& options, std::error_code& ec) {
  user_info out;
  bool has_openid = false;
  detail::decrypt_profile_payload(session_key, data, options, out, has_openid, ec);
  if (!ec && !has_openid) ec = decrypt_errc::profile_without_ids;
  if (ec) out = user_info{};
  return out;
}

/// Throwing overload of decrypt_user_info.
inline user_info decrypt_user_info(std::string_view session_key, const device_data& data,
                                   const verify_options& options) {
  std::error_code ec;
  auto r = decrypt_user_info(session_key, data, options, ec);
  throw_if_error(ec, "decrypt_user_info");
  return r;
}

/// Decrypts and verifies a wx.getUserProfile payload: the profile and the watermark, no
/// ids (take them from code2session). getUserInfo data is accepted too; its ids are not
/// part of the result. The watermark is checked as for decrypt_user_info, the rawData
/// signature when given. Errors: every decrypt_errc but profile_without_ids;
/// crypto_errc::openssl_failure.
inline user_profile decrypt_user_profile(std::string_view session_key, const device_data& data,
                                         const verify_options& options, std::error_code& ec) {
  user_info u;
  bool has_openid = false;
  detail::decrypt_profile_payload(session_key, data, options, u, has_openid, ec);
  user_profile out;
  if (ec) return out;
  out.nickname = std::move(u.nickname);
  out.gender = u.gender;
  out.language = std::move(u.language);
  out.city = std::move(u.city);
  out.province = std::move(u.province);
  out.country = std::move(u.country);
  out.avatar_url = std::move(u.avatar_url);
  out.watermark = std::move(u.watermark);
  return out;
}

/// Throwing overload of decrypt_user_profile.
inline user_profile decrypt_user_profile(std::string_view session_key, const device_data& data,
                                         const verify_options& options) {
  std::error_code ec;
  auto r = decrypt_user_profile(session_key, data, options, ec);
  throw_if_error(ec, "decrypt_user_profile");
  return r;
}

/// Decrypts and verifies a phone number payload (getPhoneNumber's encryptedData).
/// Errors: every decrypt_errc except the signature ones; crypto_errc::openssl_failure.
inline phone_info decrypt_phone_number(std::string_view session_key, const device_data& data,
                                       const verify_options& options, std::error_code& ec) {
  phone_info out;
  const std::string_view plain =
      detail::decrypt_plaintext(session_key, data.encrypted_data, data.iv, ec);
  if (ec) return out;
  detail::json_reader r(plain);
  bool has_phone = false, has_watermark = false;
  detail::read_top_object(r, [&](std::string_view k) {
    if (k == "phoneNumber")
      has_phone = r.string(out.phone_number);
    else if (k == "purePhoneNumber")
      r.string(out.pure_phone_number);
    else if (k == "countryCode")
      r.string_or_number(out.country_code);
    else if (k == "watermark") {
      has_watermark = true;
      detail::read_watermark(r, out.watermark);
    } else
      r.skip(1);
  });
  detail::finish_typed(r, has_phone && has_watermark, out.watermark, options, ec);
  if (ec) out = phone_info{};
  return out;
}

/// Throwing overload of decrypt_phone_number.
inline phone_info decrypt_phone_number(std::string_view session_key, const device_data& data,
                                       const verify_options& options) {
  std::error_code ec;
  auto r = decrypt_phone_number(session_key, data, options, ec);
  throw_if_error(ec, "decrypt_phone_number");
  return r;
}

/// Decrypts any encrypted payload and verifies its watermark, returning the whole JSON
/// object (for payloads this library does not model: share info, run data...).
/// Verifies the rawData signature when given. Errors: as decrypt_user_info.
inline nlohmann::json decrypt_json(std::string_view session_key, const device_data& data,
                                   const verify_options& options, std::error_code& ec) {
  const std::string_view plain =
      detail::decrypt_plaintext(session_key, data.encrypted_data, data.iv, ec);
  if (ec) return nullptr;
  nlohmann::json j = nlohmann::json::parse(plain, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    ec = decrypt_errc::not_json;
    return nullptr;
  }
  watermark w;
  const auto wm = j.is_object() ? j.find("watermark") : j.end();
  if (!j.is_object() || wm == j.end() || !wm->is_object() || !wm->contains("appid") ||
      !(*wm)["appid"].is_string() || !wm->contains("timestamp") ||
      !(*wm)["timestamp"].is_number_integer()) {
    ec = decrypt_errc::unexpected_payload;
    return nullptr;
  }
  w.appid = (*wm)["appid"].get<std::string>();
  w.timestamp = (*wm)["timestamp"].get<std::int64_t>();
  if (auto e = detail::check_watermark(w, options); e != decrypt_errc{}) {
    ec = e;
    return nullptr;
  }
  if (!data.raw_data.empty() || !data.signature.empty()) {
    verify_signature(data.raw_data, data.signature, session_key, ec);
    if (ec) return nullptr;
  }
  return j;
}

/// Throwing overload of decrypt_json.
inline nlohmann::json decrypt_json(std::string_view session_key, const device_data& data,
                                   const verify_options& options) {
  std::error_code ec;
  auto r = decrypt_json(session_key, data, options, ec);
  throw_if_error(ec, "decrypt_json");
  return r;
}

/// Decrypts without any verification: the plaintext as WeChat encrypted it. For
/// diagnostics (showing which appid a payload was really for); never trust its content.
/// Errors: the decrypt_errc values up to bad_padding; crypto_errc::openssl_failure.
inline std::string decrypt_unverified(std::string_view session_key, std::string_view encrypted_data,
                                      std::string_view iv, std::error_code& ec) {
  return std::string(detail::decrypt_plaintext(session_key, encrypted_data, iv, ec));
}

/// Throwing overload of decrypt_unverified.
inline std::string decrypt_unverified(std::string_view session_key, std::string_view encrypted_data,
                                      std::string_view iv) {
  std::error_code ec;
  auto r = decrypt_unverified(session_key, encrypted_data, iv, ec);
  throw_if_error(ec, "decrypt_unverified");
  return r;
}

/// Encrypts `plaintext` the way WeChat does for the device: returns base64 encryptedData
/// for base64 `session_key` and `iv`. For tests, fixtures and the mock.
/// Errors: session_key_malformed, session_key_has_space, iv_malformed, iv_has_space,
/// crypto_errc::openssl_failure.
inline std::string encrypt_data(std::string_view session_key, std::string_view plaintext,
                                std::string_view iv, std::error_code& ec) {
  ec.clear();
  unsigned char key[16], ivb[16];
  if (auto e = detail::decode_key16(session_key, key, decrypt_errc::session_key_malformed,
                                    decrypt_errc::session_key_has_space);
      e != decrypt_errc{}) {
    ec = e;
    return {};
  }
  if (auto e =
          detail::decode_key16(iv, ivb, decrypt_errc::iv_malformed, decrypt_errc::iv_has_space);
      e != decrypt_errc{}) {
    ec = e;
    OPENSSL_cleanse(key, sizeof key);
    return {};
  }
  std::string cipher =
      aes128_cbc_encrypt(std::string_view(reinterpret_cast<char*>(key), 16),
                         std::string_view(reinterpret_cast<char*>(ivb), 16), plaintext, ec);
  OPENSSL_cleanse(key, sizeof key);
  if (ec) return {};
  return base64_encode(cipher);
}

/// Throwing overload of encrypt_data.
inline std::string encrypt_data(std::string_view session_key, std::string_view plaintext,
                                std::string_view iv) {
  std::error_code ec;
  auto r = encrypt_data(session_key, plaintext, iv, ec);
  throw_if_error(ec, "encrypt_data");
  return r;
}

}  // namespace wechat
