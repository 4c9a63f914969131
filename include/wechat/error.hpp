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
//   msg_crypt_errc WeChat's message crypto (Open Platform pushes, WeCom callbacks)
//   store_errc     the token store and identity directory (memory, Redis)
//   component_errc the component client's own checks (third-party platforms)
//
// Each domain is one table below (an X-macro): a line per value gives its enumerator, its
// value and its message, and the enum, error_name() and the category's message() all come
// from that line. WeChat's table also gives the errmsg WeChat writes, which the mock
// sends. Adding an errcode is one line in WECHAT_API_ERRCODES.
//
// No message produced here ever contains a secret (appsecret, session_key, access_token).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace wechat {

// ---------------------------------------------------------------------------------------
// WeChat's errcodes: X(enumerator, errcode, "errmsg as WeChat writes it", "what it means").
// The value is WeChat's errcode unchanged, so any code WeChat returns can be held, named or
// not: `ec == api_errc::code_been_used`, or `ec.value() == 40163`. Sources: wechat-api.md
// section 2 (WeChat's server API docs, read 2024-2026); the errmsg column is what the live
// API writes before its ", rid: ..." suffix.
// The table macros (WECHAT_API_ERRCODES and the WECHAT_*_ERRCS below) are public and
// stable: expand them to build tables of your own (say, an HTTP status per errcode);
// wechat::api_errcs() gives the same table at run time.
#define WECHAT_API_ERRCODES(X)                                                                     \
  X(system_busy, -1, "system error", "system busy, retry later")                                   \
  X(not_plugin_code, 1007, "",                                                                     \
    "not a plugin code: getpluginopenpid takes the code of wx.pluginLogin inside the plugin, "     \
    "not a wx.login code (WeChat answers this one with an empty errmsg)")                          \
  X(invalid_credential, 40001,                                                                     \
    "invalid credential, access_token is invalid or not latest, could get access_token by "        \
    "getStableAccessToken, more details at https://mmbizurl.cn/s/JtxxFh33r",                       \
    "invalid credential: access_token superseded by a newer fetch, or wrong appsecret")            \
  X(invalid_grant_type, 40002, "invalid grant_type",                                               \
    "invalid grant_type: not the one this API takes (client_credential, authorization_code or "    \
    "refresh_token)")                                                                              \
  X(invalid_openid, 40003, "invalid openid",                                                       \
    "invalid openid: not an openid of this app (another app's, or a user the app has never seen)") \
  X(invalid_appid, 40013, "invalid appid",                                                         \
    "invalid appid: unknown, of an app type this API does not serve, or the code belongs to "      \
    "another app")                                                                                 \
  X(invalid_access_token, 40014, "invalid access_token",                                           \
    "invalid access_token: not a token WeChat issued (truncated, or another kind of token)")       \
  X(invalid_code, 40029, "invalid code",                                                           \
    "invalid code: unknown, expired (5 minutes), or issued to another appid")                      \
  X(invalid_refresh_token, 40030, "invalid refresh_token",                                         \
    "invalid refresh_token: unknown, or issued to another appid")                                  \
  X(invalid_component_credential, 40094, "invalid component credential",                           \
    "invalid component credential: the component_access_token is not one of this "               \
    "component_appid (a third-party platform's token used for another platform)")                 \
  X(invalid_args, 40097, "invalid args", "invalid args: a parameter is empty or malformed")        \
  X(missing_parameter, 40101, "missing parameter",                                                 \
    "missing parameter: give transaction_id, or mch_id with out_trade_no")                         \
  X(invalid_appsecret, 40125, "invalid appsecret",                                                 \
    "invalid appsecret: the secret does not match the appid (a secret reset in the console "       \
    "invalidates the old one)")                                                                    \
  X(code_been_used, 40163, "code been used", "code been used: a login code is single use")         \
  X(invalid_ip, 40164, "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist",             \
    "caller IP not in the app's IP whitelist")                                                     \
  X(code_blocked, 40226, "code blocked", "code blocked: high-risk user")                           \
  X(access_token_missing, 41001, "access_token missing", "access_token missing from the request")  \
  X(appid_missing, 41002, "appid missing", "appid missing from the request")                       \
  X(refresh_token_missing, 41003, "refresh_token missing",                                         \
    "refresh_token missing from the request")                                                      \
  X(appsecret_missing, 41004, "appsecret missing", "appsecret missing from the request")           \
  X(code_missing, 41008, "missing code", "code missing from the request")                          \
  X(openid_missing, 41009, "missing openid", "openid missing from the request")                    \
  X(access_token_expired, 42001, "access_token expired",                                           \
    "access_token expired: past its expires_in; fetch a new one")                                  \
  X(refresh_token_expired, 42002, "refresh_token expired",                                         \
    "refresh_token expired (30 days): the user must authorize again")                              \
  X(require_post_method, 43002, "require POST method",                                             \
    "require POST method: this API takes a POST with a JSON body")                                 \
  X(daily_quota_reached, 45009, "reach max api daily quota limit",                                 \
    "daily API quota reached: wait for the next day, and cache what you fetch (share one access "  \
    "token)")                                                                                      \
  X(minute_quota_reached, 45011, "api minute-quota reach limit, must slower, retry next minute",   \
    "minute API quota reached: slow down, retry next minute")                                      \
  X(data_format_error, 47001, "data format error",                                                 \
    "data format error: the POST body is not the JSON the API expects")                            \
  X(api_unauthorized, 48001, "api unauthorized", "api unauthorized (scope or permission missing)") \
  X(clear_quota_limit_reached, 48006, "forbid to clear quota because of reaching the limit",      \
    "clear_quota refused: the app has already reset its quotas 10 times this month")               \
  X(component_not_authorized, 61003, "component is not authorized by this account",              \
    "component not authorized: this mini program has not authorized the third-party platform "     \
    "(or withdrew the authorization)")                                                             \
  X(component_ticket_expired, 61005, "component ticket is expired",                                \
    "component ticket expired: the component_verify_ticket is older than 12 hours; use the "      \
    "latest one WeChat pushed (every 10 minutes)")                                                 \
  X(component_ticket_invalid, 61006, "component ticket is invalid",                                \
    "component ticket invalid: not the latest or previous ticket pushed to this platform "         \
    "(unknown, empty, or another platform's)")                                                     \
  X(invalid_component, 61011, "invalid component",                                                 \
    "invalid component: the component_appid is not a third-party platform")                       \
  X(authorizer_refresh_token_invalid, 61023, "refresh_token is invalid",                           \
    "authorizer refresh_token invalid: wrong, of another app, or superseded by a new "             \
    "authorization (the mini program authorized the platform again)")                              \
  X(rid_not_found, 76001, "rid not found, please check",                                           \
    "rid not found: not a rid WeChat gave out, or older than 7 days")                              \
  X(invalid_rid, 76002, "rid is error", "invalid rid: empty, or not 3 groups of 8 hex digits")     \
  X(rid_no_permission, 76003, "could not query this rid,no permission",                            \
    "rid of another account: query it with the access_token of the app that made the call")       \
  X(cgi_path_not_found, 76021, "cgi_path not found, please check",                                 \
    "cgi_path not found: give the API's path as \"/cgi-bin/...\", without the host")               \
  X(cgi_path_no_permission, 76022, "could not use this cgi_path, no permission",                   \
    "cgi_path not queryable with this token: /sns/* APIs have no quota or rid to query")           \
  X(session_key_not_exist, 87007, "session_key is not existd or expired",                          \
    "session_key does not exist or expired: the user must wx.login again")                         \
  X(invalid_sig_method, 87008, "invalid sig_method",                                               \
    "invalid sig_method: only hmac_sha256 is accepted")                                            \
  X(invalid_signature, 87009, "invalid signature",                                                 \
    "invalid signature: session_key is wrong or no longer the current one")                        \
  X(open_not_exists, 89002, "open not exists",                                                     \
    "open not exists: app not bound to an Open Platform account")                                  \
  X(invalid_trade, 89300, "invalid trade",                                                         \
    "invalid trade: no such payment, or the 5-minute window has passed")

// The library's own domains: X(enumerator, value, "message"). Values are stable.

/// The HTTP exchange itself failed. Nothing was learnt from WeChat.
#define WECHAT_TRANSPORT_ERRCS(X)                                                                  \
  X(connect_failed, 1, "could not connect to the WeChat API host")                                 \
  X(timeout, 2, "the request timed out")                                                           \
  X(tls_failed, 3, "TLS handshake or certificate verification failed")                             \
  X(connection_closed, 4, "the connection closed before a complete response")                      \
  X(response_too_large, 5, "the response exceeded the size limit")                                 \
  X(http_status, 6, "the server answered with a non-2xx HTTP status")                              \
  X(insecure_url, 7,                                                                               \
    "refusing plain http:// to a non-loopback host (allow it explicitly if you must)")             \
  X(invalid_url, 8, "the base URL is not a valid http(s) URL")                                     \
  X(failed, 9, "the HTTP request failed")

/// WeChat answered, but the answer is not what the API promises.
#define WECHAT_PROTOCOL_ERRCS(X)                                                                   \
  X(not_json, 1, "the response body is not JSON")                                                  \
  X(not_object, 2, "the response body is not a JSON object")                                       \
  X(missing_field, 3, "the response lacks a field the API promises")                               \
  X(wrong_type, 4, "a response field has an unexpected JSON type")

/// The cryptographic primitives.
#define WECHAT_CRYPTO_ERRCS(X)                                                                     \
  X(base64_invalid_character, 1,                                                                   \
    "base64: character outside the standard alphabet (A-Z a-z 0-9 + / =)")                         \
  X(base64_invalid_length, 2, "base64: length is not a multiple of 4, or '=' is misplaced")        \
  X(base64_space_for_plus, 3,                                                                      \
    "base64: contains a space where '+' belonged; the value went through form or URL "             \
    "decoding without being URL-encoded first")                                                    \
  X(base64_percent_encoded, 4, "base64: contains %-escapes; the value is still URL-encoded")       \
  X(base64_non_canonical, 5, "base64: non-zero bits in the final padding")                         \
  X(bad_key_length, 6, "AES-128 key must be 16 bytes")                                             \
  X(bad_iv_length, 7, "AES-CBC IV must be 16 bytes")                                               \
  X(bad_ciphertext_length, 8, "ciphertext is empty or not a multiple of the 16-byte block")        \
  X(bad_padding, 9, "PKCS#7 padding check failed")                                                 \
  X(openssl_failure, 10, "OpenSSL reported a failure")

/// Decrypting and verifying what the device sent (wx.getUserInfo, getPhoneNumber...).
/// Each failure is its own value, so a caller can tell them apart; every message says
/// which input was wrong, what was wrong, and what usually causes it.
#define WECHAT_DECRYPT_ERRCS(X)                                                                    \
  X(session_key_malformed, 1,                                                                      \
    "session_key is malformed: expected 24 base64 characters encoding 16 bytes (WeChat "           \
    "sample: -41001); it was truncated, or is not the session_key that code2session returned")     \
  X(session_key_has_space, 2,                                                                      \
    "session_key contains a space where '+' belonged: it went through URL/form decoding; "         \
    "store it exactly as code2session returned it")                                                \
  X(iv_malformed, 3,                                                                               \
    "iv is malformed: expected 24 base64 characters encoding 16 bytes (WeChat sample: "            \
    "-41002); the front end sent another field, or it was truncated")                              \
  X(iv_has_space, 4,                                                                               \
    "iv contains a space where '+' belonged: the front end sent it unencoded in a URL or "         \
    "form body; send JSON, or encodeURIComponent it")                                              \
  X(data_not_base64, 5,                                                                            \
    "encryptedData is not base64 (WeChat sample: -41003); the front end sent another field, "      \
    "or the value was altered in transit")                                                         \
  X(data_has_space, 6,                                                                             \
    "encryptedData contains a space where '+' belonged: the front end sent it unencoded in a "     \
    "URL or form body; send JSON, or encodeURIComponent it")                                       \
  X(data_bad_length, 7,                                                                            \
    "encryptedData decodes to an empty or partial AES block (not a multiple of 16 bytes); it "     \
    "was truncated in transit or in storage")                                                      \
  X(bad_padding, 8,                                                                                \
    "decryption failed the PKCS#7 padding check (WeChat sample: -41003): almost always the "       \
    "session_key is from an older wx.login than the data; call wx.login, exchange the new "        \
    "code, then fetch the data again")                                                             \
  X(not_json, 9,                                                                                   \
    "decrypted, but the plaintext is not JSON (WeChat sample: -41003): the iv does not belong "    \
    "to this encryptedData, or the session_key is stale")                                          \
  X(unexpected_payload, 10,                                                                        \
    "decrypted JSON does not have the expected shape (a required field is missing or of the "      \
    "wrong type): it is another kind of payload")                                                  \
  X(appid_not_set, 11,                                                                             \
    "no appid was given to check the watermark against; set verify_options.appid")                 \
  X(appid_mismatch, 12,                                                                            \
    "watermark appid is not this app's appid (WeChat sample: -41003): the data was produced "      \
    "for another mini program, or the backend is configured with the wrong appid")                 \
  X(watermark_too_old, 13,                                                                         \
    "watermark timestamp is older than the allowed age: the payload is being replayed, or the "    \
    "device's data was cached too long")                                                           \
  X(signature_malformed, 14,                                                                       \
    "signature is not 40 hexadecimal characters: the front end sent another field")                \
  X(signature_mismatch, 15,                                                                        \
    "rawData signature does not match sha1(rawData + session_key): rawData was altered "           \
    "(re-serialized, re-encoded), or the session_key is stale")                                    \
  X(profile_without_ids, 16,                                                                       \
    "decrypted and verified, but this is wx.getUserProfile data: it carries no openId and no "     \
    "unionId (WeChat since 2021-04); read it with decrypt_user_profile, and take the ids from "     \
    "code2session")

/// WeChat's message crypto (WXBizMsgCrypt): the encrypted pushes of the Open Platform
/// (component_verify_ticket, authorization events), of official accounts in safe mode and of
/// WeCom callbacks. Each message gives the official sample's code where one matches
/// ("WXBizMsgCrypt -40001": the same in every language of WeChat's sample, read 2026 from the
/// Python and C++ copies), what was wrong and what usually causes it. The sample's
/// -40003 ComputeSignature, -40009 EncodeBase64 and -40011 GenReturnXml have no value here:
/// those steps cannot fail short of OpenSSL failing (crypto_errc::openssl_failure), which is
/// also what a failing cipher gives (-40006 EncryptAES and -40007 DecryptAES in the sample).
#define WECHAT_MSG_CRYPT_ERRCS(X)                                                                  \
  X(signature_mismatch, 1,                                                                         \
    "msg_signature does not match sha1 of the sorted token, timestamp, nonce and Encrypt "         \
    "(WXBizMsgCrypt -40001 ValidateSignature_Error): the token configured here differs from the "  \
    "platform's, another platform's push reached this URL, the timestamp, nonce or body was "      \
    "altered, or the handler passed the query's signature (which does not cover Encrypt) instead " \
    "of msg_signature")                                                                            \
  X(signature_malformed, 2,                                                                        \
    "msg_signature is not 40 hexadecimal characters (WXBizMsgCrypt -40001): the query string "     \
    "lost it (the push is not in safe mode: no encrypt_type=aes), or the handler read another "    \
    "parameter")                                                                                   \
  X(xml_malformed, 3,                                                                              \
    "the XML is malformed (WXBizMsgCrypt -40002 ParseXml_Error): not well-formed, not rooted at "  \
    "<xml>, nested too deep, or with the element asked for twice; the body was cut short, or is "  \
    "not a WeChat message")                                                                        \
  X(encrypt_missing, 4,                                                                            \
    "the XML body has no <Encrypt> element (WXBizMsgCrypt -40002): the platform sends in "         \
    "plaintext mode (choose safe mode in its message settings), or this is not a WeChat push")     \
  X(element_missing, 5,                                                                            \
    "the decrypted message has no such element (WXBizMsgCrypt -40002): it is another kind of "     \
    "push (its InfoType, or MsgType and Event, says which)")                                       \
  X(aes_key_malformed, 6,                                                                          \
    "EncodingAESKey is not 43 characters of the base64 alphabet, A-Z a-z 0-9 + / "                 \
    "(WXBizMsgCrypt -40004 IllegalAesKey): it was copied incompletely or with a space or a "       \
    "trailing '=', or another setting (the token, the appsecret) was given in its place")          \
  X(appid_mismatch, 7,                                                                             \
    "the decrypted message ends with another appid than this one (WXBizMsgCrypt -40005 "           \
    "ValidateAppid_Error, ValidateCorpid_Error in WeCom): another platform's push reached this "   \
    "URL (two platforms sharing one endpoint and its token and key: their tickets would "          \
    "overwrite each other), or the appid (component_appid, corpid) configured here is wrong")      \
  X(bad_random_prefix, 8,                                                                          \
    "the random prefix given to encrypt is not 16 bytes (WXBizMsgCrypt -40006 EncryptAES_Error)")  \
  X(ciphertext_bad_length, 9,                                                                      \
    "Encrypt decodes to a size that is not a non-zero multiple of 32 bytes (WXBizMsgCrypt -40007 " \
    "DecryptAES_Error): it was truncated (a body cut short, a proxy's size limit) or is not "      \
    "WeChat's ciphertext")                                                                         \
  X(bad_padding, 10,                                                                               \
    "decryption failed the padding check, 1 to 32 bytes of equal value (WXBizMsgCrypt -40007): "   \
    "the EncodingAESKey here is not the one the platform encrypted with (it was regenerated: "     \
    "configure the new one, and keep the previous one to try too)")                                \
  X(bad_message_length, 11,                                                                        \
    "the decrypted length field does not fit the data (WXBizMsgCrypt -40008 IllegalBuffer): the "  \
    "EncodingAESKey here is not the one the platform encrypted with (it was regenerated), or the " \
    "sender is not WeChat")                                                                        \
  X(encrypt_not_base64, 12,                                                                        \
    "Encrypt is not standard base64 (WXBizMsgCrypt -40010 DecodeBase64_Error): the body was "      \
    "altered in transit, or another element was read")                                             \
  X(encrypt_has_space, 13,                                                                         \
    "Encrypt (or echostr) contains a space where '+' belonged (WXBizMsgCrypt -40010): it was "     \
    "read from a URL query with form decoding; pass the value as it was sent")                     \
  X(message_too_large, 14,                                                                         \
    "the message exceeds the 1 MiB limit (msg_crypt_max_bytes): WeChat's pushes are a few KiB; "   \
    "this one is not WeChat's")                                                                    \
  X(token_missing, 15,                                                                             \
    "no token was given: the platform's message token is required (with an empty one anybody "     \
    "could sign a push)")                                                                          \
  X(appid_missing, 16,                                                                             \
    "no appid was given: the component_appid (Open Platform), the official account's appid, or "   \
    "the corpid or suite id (WeCom) that every message must end with")

/// Stores (token store, identity directory): in memory, or Redis for a fleet.
#define WECHAT_STORE_ERRCS(X)                                                                      \
  X(unavailable, 1, "the store cannot be reached")                                                 \
  X(conflict, 2,                                                                                   \
    "the openid is already linked to another unionid: one openid has one unionid per Open "        \
    "Platform account; check the app's binding and the data fed to the directory")                 \
  X(corrupt, 3, "the stored data cannot be read back")

/// What the component client (wechat/component.hpp) itself refuses; WeChat's own answers
/// are api_errc, the push's crypto msg_crypt_errc, the store's store_errc.
#define WECHAT_COMPONENT_ERRCS(X)                                                                  \
  X(no_ticket, 1,                                                                                  \
    "no component_verify_ticket in the store for this component_appid: WeChat pushes one every "   \
    "10 minutes to the platform's authorization event URL; check that the URL reaches "            \
    "handle_push, that the store is shared by the servers (Redis for a fleet), or restart the "    \
    "pushes (api_start_push_ticket)")                                                              \
  X(no_refresh_token, 2,                                                                           \
    "no authorizer_refresh_token in the store for this authorizer: give it with "                  \
    "set_authorizer_refresh_token (from the authorization: api_query_auth, or "                    \
    "api_get_authorizer_list)")                                                                    \
  X(push_not_encrypted, 3,                                                                         \
    "the push's query has no encrypt_type=aes: the platform's pushes are always encrypted; this "  \
    "is not WeChat's push, or the query was not passed")                                           \
  X(push_query_incomplete, 4,                                                                      \
    "the push's query lacks timestamp, nonce or msg_signature (error_detail::field says which): "  \
    "pass every query parameter as received")                                                      \
  X(push_field_invalid, 5,                                                                         \
    "the decrypted push has an empty or malformed field (error_detail::field says which)")

#define WECHAT_DETAIL_ENUMERATOR(name, value, ...) name = value,

/// WeChat API errcodes (WECHAT_API_ERRCODES above).
enum class api_errc : int { WECHAT_API_ERRCODES(WECHAT_DETAIL_ENUMERATOR) };
/// The HTTP exchange itself failed. Nothing was learnt from WeChat.
enum class transport_errc : int { WECHAT_TRANSPORT_ERRCS(WECHAT_DETAIL_ENUMERATOR) };
/// WeChat answered, but the answer is not what the API promises.
enum class protocol_errc : int { WECHAT_PROTOCOL_ERRCS(WECHAT_DETAIL_ENUMERATOR) };
/// The cryptographic primitives.
enum class crypto_errc : int { WECHAT_CRYPTO_ERRCS(WECHAT_DETAIL_ENUMERATOR) };
/// Decrypting and verifying what the device sent; each failure its own value.
enum class decrypt_errc : int { WECHAT_DECRYPT_ERRCS(WECHAT_DETAIL_ENUMERATOR) };
/// WeChat's message crypto (WXBizMsgCrypt); each failure its own value.
enum class msg_crypt_errc : int { WECHAT_MSG_CRYPT_ERRCS(WECHAT_DETAIL_ENUMERATOR) };
/// Stores (token store, identity directory): in memory, or Redis for a fleet.
enum class store_errc : int { WECHAT_STORE_ERRCS(WECHAT_DETAIL_ENUMERATOR) };
/// The component client's own checks (third-party platforms).
enum class component_errc : int { WECHAT_COMPONENT_ERRCS(WECHAT_DETAIL_ENUMERATOR) };

#undef WECHAT_DETAIL_ENUMERATOR

/// One line of WeChat's errcode table.
struct api_errc_info {
  api_errc code;
  const char* name;    ///< the enumerator's name, as error_name() gives it
  const char* errmsg;  ///< the errmsg WeChat writes (before ", rid: ...")
  const char* text;    ///< what it means, as the library's messages say it
};

namespace detail {
#define WECHAT_DETAIL_API_INFO(name, value, errmsg, text) {api_errc::name, #name, errmsg, text},
inline constexpr api_errc_info api_errc_table[] = {WECHAT_API_ERRCODES(WECHAT_DETAIL_API_INFO)};
#undef WECHAT_DETAIL_API_INFO

// A library domain's names and messages, by value (nullptr for a value it does not have).
// clang-format off
#define WECHAT_DETAIL_CASE_NAME(name, value, text) case value: return #name;
#define WECHAT_DETAIL_CASE_TEXT(name, value, text) case value: return text;
// clang-format on
#define WECHAT_DETAIL_DOMAIN(domain, TABLE)                                                        \
  inline const char* domain##_name(int v) noexcept {                                               \
    switch (v) { TABLE(WECHAT_DETAIL_CASE_NAME) default : return nullptr; }                        \
  }                                                                                                \
  inline const char* domain##_text(int v) noexcept {                                               \
    switch (v) { TABLE(WECHAT_DETAIL_CASE_TEXT) default : return nullptr; }                        \
  }
WECHAT_DETAIL_DOMAIN(transport_errc, WECHAT_TRANSPORT_ERRCS)
WECHAT_DETAIL_DOMAIN(protocol_errc, WECHAT_PROTOCOL_ERRCS)
WECHAT_DETAIL_DOMAIN(crypto_errc, WECHAT_CRYPTO_ERRCS)
WECHAT_DETAIL_DOMAIN(decrypt_errc, WECHAT_DECRYPT_ERRCS)
WECHAT_DETAIL_DOMAIN(msg_crypt_errc, WECHAT_MSG_CRYPT_ERRCS)
WECHAT_DETAIL_DOMAIN(store_errc, WECHAT_STORE_ERRCS)
WECHAT_DETAIL_DOMAIN(component_errc, WECHAT_COMPONENT_ERRCS)
#undef WECHAT_DETAIL_DOMAIN
#undef WECHAT_DETAIL_CASE_TEXT
#undef WECHAT_DETAIL_CASE_NAME
}  // namespace detail

/// The lines of WeChat's errcode table, for iterating: `for (const auto& e : api_errcs())`.
struct api_errc_range {
  const api_errc_info* first;
  const api_errc_info* last;
  constexpr const api_errc_info* begin() const noexcept { return first; }
  constexpr const api_errc_info* end() const noexcept { return last; }
  constexpr std::size_t size() const noexcept { return static_cast<std::size_t>(last - first); }
};
/// Every errcode the library names, in the table's order.
constexpr api_errc_range api_errcs() noexcept {
  return {detail::api_errc_table,
          detail::api_errc_table + sizeof(detail::api_errc_table) / sizeof(api_errc_info)};
}

/// The table's line for `errcode`, or nullptr for an errcode the library does not name.
inline const api_errc_info* find_api_errc(int errcode) noexcept {
  for (const auto& e : detail::api_errc_table)
    if (static_cast<int>(e.code) == errcode) return &e;
  return nullptr;
}

namespace detail {

// A category whose names and messages come from one of the tables above.
template <const char* (*Text)(int)> class table_category final : public std::error_category {
public:
  explicit table_category(const char* name, const char* unknown) noexcept
      : name_(name), unknown_(unknown) {}
  const char* name() const noexcept override { return name_; }
  std::string message(int code) const override {
    if (const char* text = Text(code)) return text;
    return unknown_;
  }

private:
  const char* name_;
  const char* unknown_;
};

class api_category_impl final : public std::error_category {
public:
  const char* name() const noexcept override { return "wechat.api"; }
  std::string message(int code) const override {
    if (code == 0) return "ok";
    if (const auto* e = find_api_errc(code)) return e->text;
    return "WeChat errcode " + std::to_string(code);
  }
};

}  // namespace detail

/// The category of store failures ("wechat.store").
inline const std::error_category& store_category() noexcept {
  static const detail::table_category<detail::store_errc_text> instance("wechat.store",
                                                                        "unknown store error");
  return instance;
}
/// Makes store_errc values usable as std::error_code.
inline std::error_code make_error_code(store_errc e) noexcept {
  return {static_cast<int>(e), store_category()};
}

/// The category of the component client's own failures ("wechat.component").
inline const std::error_category& component_category() noexcept {
  static const detail::table_category<detail::component_errc_text> instance(
      "wechat.component", "unknown component error");
  return instance;
}
/// Makes component_errc values usable as std::error_code.
inline std::error_code make_error_code(component_errc e) noexcept {
  return {static_cast<int>(e), component_category()};
}

/// The category of WeChat's own errcodes ("wechat.api").
inline const std::error_category& api_category() noexcept {
  static const detail::api_category_impl instance;
  return instance;
}
/// The category of HTTP exchange failures ("wechat.transport").
inline const std::error_category& transport_category() noexcept {
  static const detail::table_category<detail::transport_errc_text> instance(
      "wechat.transport", "unknown transport error");
  return instance;
}
/// The category of malformed WeChat answers ("wechat.protocol").
inline const std::error_category& protocol_category() noexcept {
  static const detail::table_category<detail::protocol_errc_text> instance(
      "wechat.protocol", "unknown protocol error");
  return instance;
}
/// The category of primitive crypto failures ("wechat.crypto").
inline const std::error_category& crypto_category() noexcept {
  static const detail::table_category<detail::crypto_errc_text> instance("wechat.crypto",
                                                                         "unknown crypto error");
  return instance;
}
/// The category of decrypt-and-verify failures ("wechat.decrypt").
inline const std::error_category& decrypt_category() noexcept {
  static const detail::table_category<detail::decrypt_errc_text> instance("wechat.decrypt",
                                                                          "unknown decrypt error");
  return instance;
}

/// The category of message crypto failures ("wechat.msg_crypt").
inline const std::error_category& msg_crypt_category() noexcept {
  static const detail::table_category<detail::msg_crypt_errc_text> instance(
      "wechat.msg_crypt", "unknown message crypto error");
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
/// Makes msg_crypt_errc values usable as std::error_code.
inline std::error_code make_error_code(msg_crypt_errc e) noexcept {
  return {static_cast<int>(e), msg_crypt_category()};
}

namespace detail {
inline const char* library_errc_name(const std::error_category& cat, int v) noexcept {
  if (cat == transport_category()) return transport_errc_name(v);
  if (cat == protocol_category()) return protocol_errc_name(v);
  if (cat == crypto_category()) return crypto_errc_name(v);
  if (cat == decrypt_category()) return decrypt_errc_name(v);
  if (cat == msg_crypt_category()) return msg_crypt_errc_name(v);
  if (cat == store_category()) return store_errc_name(v);
  if (cat == component_category()) return component_errc_name(v);
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
    if (const auto* e = find_api_errc(ec.value())) return e->name;
    return "api_" + std::to_string(ec.value());
  }
  if (const char* n = detail::library_errc_name(ec.category(), ec.value())) return n;
  return std::string(ec.category().name()) + "_" + std::to_string(ec.value());
}

/// An errcode WeChat returned, as an error_code in api_category (0 stays "no error").
inline std::error_code make_api_error_code(int errcode) noexcept {
  return errcode == 0 ? std::error_code{} : std::error_code{errcode, api_category()};
}

/// What is known about a failure beyond its error_code: WeChat's errmsg and rid, the HTTP
/// status, or the field that was missing. Filled by the calls that take an
/// `error_detail*`. Never holds a secret.
struct error_detail {
  int errcode = 0;      ///< WeChat's errcode (api errors)
  std::string errmsg;   ///< WeChat's errmsg, verbatim (api errors)
  std::string rid;      ///< WeChat's request id, for support tickets
  int http_status = 0;  ///< the HTTP status (transport_errc::http_status)
  std::string field;    ///< the missing or mistyped field (protocol errors)
  int attempts = 0;     ///< how many requests the call made
  /// What the transport said of its failure (http_response::failure): the host and the
  /// cause in words, e.g. "127.0.0.1:8443: connection refused"; empty when it said nothing.
  /// (Its `{}` keeps an initialiser of the fields above free of -Wmissing-field-initializers.)
  std::string cause{};
};

/// Base of every exception the library throws. code() tells the domain and value.
class error : public std::system_error {
public:
  using std::system_error::system_error;
};

/// WeChat answered with a non-zero errcode. what() carries errmsg and rid (WeChat's
/// request id, for support tickets); never a secret.
class api_error : public error {
public:
  /// `context`, when given, names the call and starts what() ("code2session: WeChat
  /// errcode 40029: ...").
  api_error(int errcode, std::string errmsg, std::string rid, const char* context = nullptr)
      : error(make_api_error_code(errcode), describe(errcode, errmsg, context)), errcode_(errcode),
        errmsg_(std::move(errmsg)), rid_(std::move(rid)) {}

  /// WeChat's errcode, verbatim.
  int errcode() const noexcept { return errcode_; }
  /// errmsg exactly as WeChat returned it (includes the rid); empty when the failure did
  /// not come with WeChat's answer at hand.
  const std::string& errmsg() const noexcept { return errmsg_; }
  /// The request id parsed from errmsg ("66c69111-4157f271-729ca238"), or empty.
  const std::string& rid() const noexcept { return rid_; }

private:
  static std::string describe(int errcode, const std::string& errmsg, const char* context) {
    // std::system_error appends ": " and the library's text for the errcode.
    std::string d = context != nullptr && *context != '\0' ? std::string(context) + ": " : "";
    d += "WeChat errcode " + std::to_string(errcode);
    if (!errmsg.empty()) d += ": " + errmsg;
    return d;
  }
  int errcode_;
  std::string errmsg_;
  std::string rid_;
};

/// The one throw helper: does nothing when ec holds no error; throws wechat::api_error
/// for a WeChat errcode (errmsg and rid from `d`), wechat::error otherwise. Either way the
/// message starts with `context` (the call, e.g. "code2session"), and for other domains
/// names the field or HTTP status that `d` holds, and ends with its cause: "code2session:
/// could not connect to the WeChat API host (127.0.0.1:1: connection refused)".
inline void throw_if_error(const std::error_code& ec, const error_detail& d,
                           const char* context = nullptr) {
  if (!ec) return;
  if (ec.category() == api_category())
    throw api_error(d.errcode != 0 ? d.errcode : ec.value(), d.errmsg, d.rid, context);
  std::string msg = context != nullptr ? context : "";
  if (!d.field.empty()) msg += " (field '" + d.field + "')";
  if (d.http_status != 0) msg += " (HTTP " + std::to_string(d.http_status) + ")";
  error e = msg.empty() ? error(ec) : error(ec, msg);
  // std::system_error ends its text with the code's message; the cause reads best after
  // it, so the text is set again, whole (a copy of the exception keeps it).
  if (!d.cause.empty())
    static_cast<std::runtime_error&>(e) = std::runtime_error(e.what() + (" (" + d.cause + ")"));
  throw e;
}

/// Throws when ec holds an error, as above, with no detail.
inline void throw_if_error(const std::error_code& ec, const char* context = nullptr) {
  throw_if_error(ec, error_detail{}, context);
}

}  // namespace wechat

namespace std {
template <> struct is_error_code_enum<wechat::api_errc> : true_type {};
template <> struct is_error_code_enum<wechat::transport_errc> : true_type {};
template <> struct is_error_code_enum<wechat::protocol_errc> : true_type {};
template <> struct is_error_code_enum<wechat::crypto_errc> : true_type {};
template <> struct is_error_code_enum<wechat::decrypt_errc> : true_type {};
template <> struct is_error_code_enum<wechat::msg_crypt_errc> : true_type {};
template <> struct is_error_code_enum<wechat::store_errc> : true_type {};
template <> struct is_error_code_enum<wechat::component_errc> : true_type {};
}  // namespace std
