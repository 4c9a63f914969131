// wechat/error.hpp - error categories, exceptions and the two-overload convention.
//
// Every operation that can fail comes in two forms:
//   T f(args..., std::error_code& ec);   // does the work, clears ec first, never throws
//   T f(args...);                        // calls the first, throws wechat::error on failure
//
// Failure domains, one enum and one category each:
//   api_errc       WeChat's own errcode, verbatim (ec.value() == errcode)
//   transport_errc the HTTP exchange failed (connect, timeout, TLS, size, status)
//   protocol_errc  WeChat answered, but not with what the API promises (bad JSON, field)
//   crypto_errc    the primitives: base64, AES-128-CBC, digests
//   decrypt_errc   decrypting and verifying what the device sent
//
// No message produced here ever contains a secret (appsecret, session_key, access_token).
#pragma once

#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace wechat {

// ---------------------------------------------------------------------------------------
// WeChat API errcodes. The value is WeChat's errcode unchanged, so any code WeChat returns
// can be held, named or not: `ec == api_errc::code_been_used`, or `ec.value() == 40163`.
enum class api_errc : int {
  system_busy = -1,               ///< "system error": busy, retry later
  invalid_credential = 40001,     ///< token superseded by a newer fetch, or wrong secret
  invalid_grant_type = 40002,     ///< token, oauth
  invalid_openid = 40003,         ///< getpaidunionid, checksession, user/info, sns/auth
  invalid_appid = 40013,          ///< unknown appid; phone code of another app
  invalid_access_token = 40014,   ///< token is garbage
  invalid_code = 40029,           ///< code unknown, expired, or of another appid
  invalid_refresh_token = 40030,  ///< sns/oauth2/refresh_token
  invalid_args = 40097,           ///< resetusersessionkey
  missing_parameter = 40101,      ///< getpaidunionid with neither order id
  invalid_appsecret = 40125,      ///< wrong secret
  code_been_used = 40163,         ///< a js_code or OAuth code used twice
  invalid_ip = 40164,             ///< caller IP not in the app's whitelist
  code_blocked = 40226,           ///< jscode2session: high-risk user
  access_token_missing = 41001,   ///<
  appid_missing = 41002,          ///<
  appsecret_missing = 41004,      ///<
  code_missing = 41008,           ///<
  access_token_expired = 42001,   ///< token past its lifetime
  refresh_token_expired = 42002,  ///<
  require_post_method = 43002,    ///< stable_token called with GET
  daily_quota_reached = 45009,    ///< daily quota (cgi-bin/token: 2000/day)
  minute_quota_reached = 45011,   ///< rate limit (jscode2session: 100/user/minute)
  api_unauthorized = 48001,       ///< sns/userinfo without snsapi_userinfo
  session_key_not_exist = 87007,  ///< resetusersessionkey: no key for this user
  invalid_sig_method = 87008,     ///< checksession, resetusersessionkey
  invalid_signature = 87009,      ///< wrong or stale session_key
  open_not_exists = 89002,        ///< app not bound to an Open Platform account
  invalid_trade = 89300,          ///< getpaidunionid: no such trade, or window passed
};

/// The HTTP exchange itself failed. Nothing was learnt from WeChat.
enum class transport_errc : int {
  connect_failed = 1,  ///< could not connect (DNS, refused, unreachable)
  timeout,             ///< connect or read timed out
  tls_failed,          ///< TLS handshake or certificate verification failed
  connection_closed,   ///< the peer closed the connection before a full response
  response_too_large,  ///< the response exceeded the configured size cap
  http_status,         ///< the server answered with a non-2xx HTTP status
  insecure_url,        ///< plain http:// to a non-loopback host without explicit opt-in
  invalid_url,         ///< the base URL could not be parsed
  failed,              ///< any other transport failure
};

/// WeChat answered, but the answer is not what the API promises.
enum class protocol_errc : int {
  not_json = 1,   ///< the body is not a JSON document
  not_object,     ///< the body is JSON but not an object
  missing_field,  ///< a field the API promises is absent
  wrong_type,     ///< a field has the wrong JSON type
};

/// The cryptographic primitives.
enum class crypto_errc : int {
  base64_invalid_character = 1,  ///< a character outside the standard alphabet
  base64_invalid_length,         ///< length not a multiple of 4, or misplaced '='
  base64_space_for_plus,         ///< a space where '+' belonged (form/URL decoding)
  base64_percent_encoded,        ///< '%xx' escapes: still URL-encoded
  base64_non_canonical,          ///< non-zero bits in the padding
  bad_key_length,                ///< AES-128 key is not 16 bytes
  bad_iv_length,                 ///< IV is not 16 bytes
  bad_ciphertext_length,         ///< ciphertext empty or not a multiple of 16 bytes
  bad_padding,                   ///< PKCS#7 padding check failed
  openssl_failure,               ///< OpenSSL reported an internal failure
};

/// Decrypting and verifying what the device sent (wx.getUserInfo, getPhoneNumber...).
/// Each failure is its own value, so a caller can tell them apart; every message says
/// which input was wrong, what was wrong, and what usually causes it.
enum class decrypt_errc : int {
  session_key_malformed = 1,  ///< not 24 base64 characters encoding 16 bytes (-41001)
  session_key_has_space,      ///< a space where '+' belonged
  iv_malformed,               ///< not 24 base64 characters encoding 16 bytes (-41002)
  iv_has_space,               ///< a space where '+' belonged
  data_not_base64,            ///< encryptedData is not base64 (-41003)
  data_has_space,             ///< a space where '+' belonged
  data_bad_length,            ///< decoded encryptedData empty or not a multiple of 16
  bad_padding,                ///< PKCS#7 failed: almost always a stale session_key
  not_json,                   ///< decrypted, but not JSON: wrong iv, or a stale key
  unexpected_payload,         ///< JSON, but not the expected shape
  appid_not_set,              ///< the caller gave no appid to check the watermark
  appid_mismatch,             ///< watermark.appid is not the caller's appid
  watermark_too_old,          ///< watermark.timestamp older than the allowed age
  signature_malformed,        ///< signature is not 40 hex characters
  signature_mismatch,         ///< sha1(rawData + session_key) differs from signature
};

/// Stores (token store, identity directory): in memory, or Redis for a fleet.
enum class store_errc : int {
  unavailable = 1,  ///< the store cannot be reached (Redis down, connection refused)
  conflict,         ///< the data contradicts what is stored (an openid already linked elsewhere)
  corrupt,          ///< what is stored cannot be read back
};

namespace detail {

inline const char* api_errc_text(int code) noexcept {
  switch (code) {
  case 0: return "ok";
  case -1: return "system busy, retry later";
  case 40001:
    return "invalid credential: access_token superseded by a newer fetch, or wrong appsecret";
  case 40002: return "invalid grant_type";
  case 40003: return "invalid openid";
  case 40013: return "invalid appid";
  case 40014: return "invalid access_token";
  case 40029: return "invalid code: unknown, expired (5 minutes), or issued to another appid";
  case 40030: return "invalid refresh_token";
  case 40097: return "invalid args";
  case 40101: return "missing parameter";
  case 40125: return "invalid appsecret";
  case 40163: return "code been used: a login code is single use";
  case 40164: return "caller IP not in the app's IP whitelist";
  case 40226: return "code blocked: high-risk user";
  case 41001: return "access_token missing";
  case 41002: return "appid missing";
  case 41004: return "appsecret missing";
  case 41008: return "code missing";
  case 42001: return "access_token expired";
  case 42002: return "refresh_token expired";
  case 43002: return "require POST method";
  case 45009: return "daily API quota reached";
  case 45011: return "minute API quota reached: slow down, retry next minute";
  case 48001: return "api unauthorized (scope or permission missing)";
  case 87007: return "session_key does not exist or expired";
  case 87008: return "invalid sig_method";
  case 87009: return "invalid signature: session_key is wrong or no longer the current one";
  case 89002: return "open not exists: app not bound to an Open Platform account";
  case 89300: return "invalid trade: no such payment, or the 5-minute window has passed";
  default: return nullptr;
  }
}

class api_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "wechat.api"; }
  std::string message(int code) const override {
    if (const char* text = api_errc_text(code)) return text;
    return "WeChat errcode " + std::to_string(code);
  }
};

class transport_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "wechat.transport"; }
  std::string message(int code) const override {
    switch (static_cast<transport_errc>(code)) {
    case transport_errc::connect_failed: return "could not connect to the WeChat API host";
    case transport_errc::timeout: return "the request timed out";
    case transport_errc::tls_failed: return "TLS handshake or certificate verification failed";
    case transport_errc::connection_closed:
      return "the connection closed before a complete response";
    case transport_errc::response_too_large: return "the response exceeded the size limit";
    case transport_errc::http_status: return "the server answered with a non-2xx HTTP status";
    case transport_errc::insecure_url:
      return "refusing plain http:// to a non-loopback host (allow it explicitly if you must)";
    case transport_errc::invalid_url: return "the base URL is not a valid http(s) URL";
    case transport_errc::failed: return "the HTTP request failed";
    }
    return "unknown transport error";
  }
};

class protocol_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "wechat.protocol"; }
  std::string message(int code) const override {
    switch (static_cast<protocol_errc>(code)) {
    case protocol_errc::not_json: return "the response body is not JSON";
    case protocol_errc::not_object: return "the response body is not a JSON object";
    case protocol_errc::missing_field: return "the response lacks a field the API promises";
    case protocol_errc::wrong_type: return "a response field has an unexpected JSON type";
    }
    return "unknown protocol error";
  }
};

class crypto_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "wechat.crypto"; }
  std::string message(int code) const override {
    switch (static_cast<crypto_errc>(code)) {
    case crypto_errc::base64_invalid_character:
      return "base64: character outside the standard alphabet (A-Z a-z 0-9 + / =)";
    case crypto_errc::base64_invalid_length:
      return "base64: length is not a multiple of 4, or '=' is misplaced";
    case crypto_errc::base64_space_for_plus:
      return "base64: contains a space where '+' belonged; the value went through form or URL "
             "decoding without being URL-encoded first";
    case crypto_errc::base64_percent_encoded:
      return "base64: contains %-escapes; the value is still URL-encoded";
    case crypto_errc::base64_non_canonical: return "base64: non-zero bits in the final padding";
    case crypto_errc::bad_key_length: return "AES-128 key must be 16 bytes";
    case crypto_errc::bad_iv_length: return "AES-CBC IV must be 16 bytes";
    case crypto_errc::bad_ciphertext_length:
      return "ciphertext is empty or not a multiple of the 16-byte block";
    case crypto_errc::bad_padding: return "PKCS#7 padding check failed";
    case crypto_errc::openssl_failure: return "OpenSSL reported a failure";
    }
    return "unknown crypto error";
  }
};

class decrypt_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "wechat.decrypt"; }
  std::string message(int code) const override {
    switch (static_cast<decrypt_errc>(code)) {
    case decrypt_errc::session_key_malformed:
      return "session_key is malformed: expected 24 base64 characters encoding 16 bytes "
             "(WeChat sample: -41001); it was truncated, or is not the session_key that "
             "code2session returned";
    case decrypt_errc::session_key_has_space:
      return "session_key contains a space where '+' belonged: it went through URL/form "
             "decoding; store it exactly as code2session returned it";
    case decrypt_errc::iv_malformed:
      return "iv is malformed: expected 24 base64 characters encoding 16 bytes (WeChat "
             "sample: -41002); the front end sent another field, or it was truncated";
    case decrypt_errc::iv_has_space:
      return "iv contains a space where '+' belonged: the front end sent it unencoded in a "
             "URL or form body; send JSON, or encodeURIComponent it";
    case decrypt_errc::data_not_base64:
      return "encryptedData is not base64 (WeChat sample: -41003); the front end sent "
             "another field, or the value was altered in transit";
    case decrypt_errc::data_has_space:
      return "encryptedData contains a space where '+' belonged: the front end sent it "
             "unencoded in a URL or form body; send JSON, or encodeURIComponent it";
    case decrypt_errc::data_bad_length:
      return "encryptedData decodes to an empty or partial AES block (not a multiple of 16 "
             "bytes); it was truncated in transit or in storage";
    case decrypt_errc::bad_padding:
      return "decryption failed the PKCS#7 padding check (WeChat sample: -41003): almost "
             "always the session_key is from an older wx.login than the data; call "
             "wx.login, exchange the new code, then fetch the data again";
    case decrypt_errc::not_json:
      return "decrypted, but the plaintext is not JSON (WeChat sample: -41003): the iv does "
             "not belong to this encryptedData, or the session_key is stale";
    case decrypt_errc::unexpected_payload:
      return "decrypted JSON does not have the expected shape (a required field is missing "
             "or of the wrong type): it is another kind of payload";
    case decrypt_errc::appid_not_set:
      return "no appid was given to check the watermark against; set verify_options.appid";
    case decrypt_errc::appid_mismatch:
      return "watermark appid is not this app's appid (WeChat sample: -41003): the data "
             "was produced for another mini program, or the backend is configured with the "
             "wrong appid";
    case decrypt_errc::watermark_too_old:
      return "watermark timestamp is older than the allowed age: the payload is being "
             "replayed, or the device's data was cached too long";
    case decrypt_errc::signature_malformed:
      return "signature is not 40 hexadecimal characters: the front end sent another field";
    case decrypt_errc::signature_mismatch:
      return "rawData signature does not match sha1(rawData + session_key): rawData was "
             "altered (re-serialized, re-encoded), or the session_key is stale";
    }
    return "unknown decrypt error";
  }
};

class store_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "wechat.store"; }
  std::string message(int code) const override {
    switch (static_cast<store_errc>(code)) {
    case store_errc::unavailable: return "the store cannot be reached";
    case store_errc::conflict:
      return "the openid is already linked to another unionid: one openid has one unionid per Open "
             "Platform account; check the app's binding and the data fed to the directory";
    case store_errc::corrupt: return "the stored data cannot be read back";
    }
    return "unknown store error";
  }
};

}  // namespace detail

/// The category of store failures ("wechat.store").
inline const std::error_category& store_category() noexcept {
  static const detail::store_category_impl instance;
  return instance;
}
/// Makes store_errc values usable as std::error_code.
inline std::error_code make_error_code(store_errc e) noexcept {
  return {static_cast<int>(e), store_category()};
}

/// The category of WeChat's own errcodes ("wechat.api").
inline const std::error_category& api_category() noexcept {
  static const detail::api_category_impl instance;
  return instance;
}
/// The category of HTTP exchange failures ("wechat.transport").
inline const std::error_category& transport_category() noexcept {
  static const detail::transport_category_impl instance;
  return instance;
}
/// The category of malformed WeChat answers ("wechat.protocol").
inline const std::error_category& protocol_category() noexcept {
  static const detail::protocol_category_impl instance;
  return instance;
}
/// The category of primitive crypto failures ("wechat.crypto").
inline const std::error_category& crypto_category() noexcept {
  static const detail::crypto_category_impl instance;
  return instance;
}
/// The category of decrypt-and-verify failures ("wechat.decrypt").
inline const std::error_category& decrypt_category() noexcept {
  static const detail::decrypt_category_impl instance;
  return instance;
}

/// Makes api_errc values usable as std::error_code (the value is the errcode).
inline std::error_code make_error_code(api_errc e) noexcept {
  return {static_cast<int>(e), api_category()};
}
/// Makes transport_errc values usable as std::error_code.
inline std::error_code make_error_code(transport_errc e) noexcept {
  return {static_cast<int>(e), transport_category()};
}
/// Makes protocol_errc values usable as std::error_code.
inline std::error_code make_error_code(protocol_errc e) noexcept {
  return {static_cast<int>(e), protocol_category()};
}
/// Makes crypto_errc values usable as std::error_code.
inline std::error_code make_error_code(crypto_errc e) noexcept {
  return {static_cast<int>(e), crypto_category()};
}
/// Makes decrypt_errc values usable as std::error_code.
inline std::error_code make_error_code(decrypt_errc e) noexcept {
  return {static_cast<int>(e), decrypt_category()};
}

namespace detail {
inline const char* api_errc_name(int code) noexcept {
  switch (code) {
  case -1: return "system_busy";
  case 40001: return "invalid_credential";
  case 40002: return "invalid_grant_type";
  case 40003: return "invalid_openid";
  case 40013: return "invalid_appid";
  case 40014: return "invalid_access_token";
  case 40029: return "invalid_code";
  case 40030: return "invalid_refresh_token";
  case 40097: return "invalid_args";
  case 40101: return "missing_parameter";
  case 40125: return "invalid_appsecret";
  case 40163: return "code_been_used";
  case 40164: return "invalid_ip";
  case 40226: return "code_blocked";
  case 41001: return "access_token_missing";
  case 41002: return "appid_missing";
  case 41004: return "appsecret_missing";
  case 41008: return "code_missing";
  case 42001: return "access_token_expired";
  case 42002: return "refresh_token_expired";
  case 43002: return "require_post_method";
  case 45009: return "daily_quota_reached";
  case 45011: return "minute_quota_reached";
  case 48001: return "api_unauthorized";
  case 87007: return "session_key_not_exist";
  case 87008: return "invalid_sig_method";
  case 87009: return "invalid_signature";
  case 89002: return "open_not_exists";
  case 89300: return "invalid_trade";
  default: return nullptr;
  }
}

inline const char* library_errc_name(const std::error_category& cat, int v) noexcept {
  if (cat == transport_category()) {
    static constexpr const char* names[] = {
        nullptr,       "connect_failed",    "timeout",
        "tls_failed",  "connection_closed", "response_too_large",
        "http_status", "insecure_url",      "invalid_url",
        "failed"};
    return v > 0 && v < 10 ? names[v] : nullptr;
  }
  if (cat == protocol_category()) {
    static constexpr const char* names[] = {nullptr, "not_json", "not_object", "missing_field",
                                            "wrong_type"};
    return v > 0 && v < 5 ? names[v] : nullptr;
  }
  if (cat == crypto_category()) {
    static constexpr const char* names[] = {nullptr,
                                            "base64_invalid_character",
                                            "base64_invalid_length",
                                            "base64_space_for_plus",
                                            "base64_percent_encoded",
                                            "base64_non_canonical",
                                            "bad_key_length",
                                            "bad_iv_length",
                                            "bad_ciphertext_length",
                                            "bad_padding",
                                            "openssl_failure"};
    return v > 0 && v < 11 ? names[v] : nullptr;
  }
  if (cat == store_category()) {
    static constexpr const char* names[] = {nullptr, "unavailable", "conflict", "corrupt"};
    return v > 0 && v < 4 ? names[v] : nullptr;
  }
  if (cat == decrypt_category()) {
    static constexpr const char* names[] = {nullptr,
                                            "session_key_malformed",
                                            "session_key_has_space",
                                            "iv_malformed",
                                            "iv_has_space",
                                            "data_not_base64",
                                            "data_has_space",
                                            "data_bad_length",
                                            "bad_padding",
                                            "not_json",
                                            "unexpected_payload",
                                            "appid_not_set",
                                            "appid_mismatch",
                                            "watermark_too_old",
                                            "signature_malformed",
                                            "signature_mismatch"};
    return v > 0 && v < 16 ? names[v] : nullptr;
  }
  return nullptr;
}
}  // namespace detail

/// The stable, machine-readable name of an error: the enumerator's name without its
/// domain ("code_been_used", "bad_padding", "timeout"); "api_<errcode>" for a WeChat
/// errcode this library does not name; "ok" for no error; otherwise "<category>_<value>".
/// For logs and for the `error` field of your own API's answers.
inline std::string error_name(const std::error_code& ec) {
  if (!ec) return "ok";
  if (ec.category() == api_category()) {
    if (const char* n = detail::api_errc_name(ec.value())) return n;
    return "api_" + std::to_string(ec.value());
  }
  if (const char* n = detail::library_errc_name(ec.category(), ec.value())) return n;
  return std::string(ec.category().name()) + "_" + std::to_string(ec.value());
}

/// An errcode WeChat returned, as an error_code in api_category (0 stays "no error").
inline std::error_code make_api_error_code(int errcode) noexcept {
  return errcode == 0 ? std::error_code{} : std::error_code{errcode, api_category()};
}

/// Base of every exception the library throws. code() tells the domain and value.
class error : public std::system_error {
public:
  using std::system_error::system_error;
};

/// WeChat answered with a non-zero errcode. what() carries errmsg and rid (WeChat's
/// request id, for support tickets); never a secret.
class api_error : public error {
public:
  api_error(int errcode, std::string errmsg, std::string rid)
      : error(make_api_error_code(errcode), describe(errcode, errmsg)), errcode_(errcode),
        errmsg_(std::move(errmsg)), rid_(std::move(rid)) {}

  /// WeChat's errcode, verbatim.
  int errcode() const noexcept { return errcode_; }
  /// errmsg exactly as WeChat returned it (includes the rid).
  const std::string& errmsg() const noexcept { return errmsg_; }
  /// The request id parsed from errmsg ("66c69111-4157f271-729ca238"), or empty.
  const std::string& rid() const noexcept { return rid_; }

private:
  static std::string describe(int errcode, const std::string& errmsg) {
    return "WeChat errcode " + std::to_string(errcode) + ": " + errmsg;
  }
  int errcode_;
  std::string errmsg_;
  std::string rid_;
};

/// Throws wechat::error when ec holds an error. `context` (optional) is prefixed to the
/// message, e.g. "decrypt_user_info".
inline void throw_if_error(const std::error_code& ec, const char* context = nullptr) {
  if (!ec) return;
  if (context != nullptr) throw error(ec, context);
  throw error(ec);
}

}  // namespace wechat

namespace std {
template <> struct is_error_code_enum<wechat::api_errc> : true_type {};
template <> struct is_error_code_enum<wechat::transport_errc> : true_type {};
template <> struct is_error_code_enum<wechat::protocol_errc> : true_type {};
template <> struct is_error_code_enum<wechat::crypto_errc> : true_type {};
template <> struct is_error_code_enum<wechat::decrypt_errc> : true_type {};
template <> struct is_error_code_enum<wechat::store_errc> : true_type {};
}  // namespace std
