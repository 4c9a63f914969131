// wechat/msg_crypt.hpp - WeChat's message crypto (WXBizMsgCrypt): verify, decrypt and
// encrypt the XML messages WeChat pushes to a server.
//
// The Open Platform pushes its component_verify_ticket (every 10 minutes) and its
// authorization events this way; official accounts in safe mode and WeCom callbacks use the
// same scheme. The rules (WeChat Open Platform, "Technical_Plan" of its message encryption,
// read 2026; WeChat's WXBizMsgCrypt samples, 2014; notes in docs/component.md):
//   - EncodingAESKey: 43 characters; AESKey = base64_decode(EncodingAESKey + "="), 32 bytes.
//   - AES-256-CBC, IV = AESKey[0:16]. Plaintext = 16 random bytes, the message's length as a
//     4-byte big-endian integer, the message, then the appid (component_appid; WeCom: the
//     corpid or suite id), PKCS#7-padded to a multiple of 32 bytes (not 16: the pad is 1..32).
//   - Encrypt = base64(ciphertext); msg_signature = hex(sha1(concatenation of token,
//     timestamp, nonce and Encrypt, sorted as byte strings)).
// A push is `POST url?signature=..&timestamp=T&nonce=N&encrypt_type=aes&msg_signature=S` with
// body `<xml><AppId><![CDATA[..]]></AppId><Encrypt><![CDATA[E]]></Encrypt></xml>`.
//
// Checked here, each failure its own msg_crypt_errc: the signature (before anything is
// decrypted, compared in constant time), base64, the ciphertext's size (a multiple of 32),
// every padding byte (no SDK read in 2026 checks more than the last), the length field
// against the data (computed in size_t: the official C++ sample's 32-bit sum can wrap), and
// the appid at the end (WxJava skips this check; it is what tells two platforms' pushes
// apart). Bodies over msg_crypt_max_bytes are refused unread. No message contains the key,
// the token or any plaintext.
//
// Depends on OpenSSL's libcrypto only (no JSON, no HTTP). The XML reader is minimal and
// strict: it reads what WeChat writes and refuses the rest (attributes, comments, DOCTYPE,
// entities beyond the five predefined ones, mixed content).
#pragma once

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "wechat/crypto.hpp"
#include "wechat/error.hpp"
#include "wechat/url_encode.hpp"

namespace wechat {

/// The largest XML body decrypt_message reads, the largest Encrypt decrypt reads and the
/// largest XML encrypt makes: 1 MiB. WeChat's pushes are a few KiB; the official C++
/// sample's own limit (kMaxBase64Size, 10^9) bounds nothing a server can afford.
inline constexpr std::size_t msg_crypt_max_bytes = std::size_t{1} << 20;

namespace detail {

/// The deepest nesting the XML reader accepts (WeChat's messages nest 3 deep).
inline constexpr int xml_max_depth = 16;

// A strict reader of WeChat's XML: `[<?xml ...?>] <xml> children </xml>`, elements without
// attributes, each holding CDATA sections, plain text (the five predefined entities
// decoded) or child elements, never a mix (whitespace around CDATA or between elements
// aside). Reads the whole document and records the content of the root's direct child
// named `want`: its text, or for an element with children its inner markup.
class xml_reader {
public:
  explicit xml_reader(std::string_view doc) noexcept : s_(doc) {}

  // True when the document is well-formed by the rules above and rooted at <xml>; `found`
  // then counts the root's children named `want` and `value` holds the last one's content.
  bool read(std::string_view want, std::string& value, int& found) {
    want_ = want;
    value_ = &value;
    found_ = 0;
    if (s_.substr(0, 5) == "<?xml") {  // the declaration: "<?xml" and a space, no markup
      const std::size_t end = s_.find("?>");
      if (end == std::string_view::npos || s_.size() < 6 || !is_ws(s_[5]) ||
          s_.substr(0, end).find('<', 1) != std::string_view::npos)
        return false;
      pos_ = end + 2;
    }
    skip_ws();
    if (!element(0)) return false;
    skip_ws();
    found = found_;
    return pos_ == s_.size();
  }

private:
  static bool is_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  static bool is_name_start(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  }
  static bool is_name_char(char c) noexcept {
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
  }
  bool at(std::string_view prefix) const noexcept {
    return s_.substr(pos_, prefix.size()) == prefix;
  }
  void skip_ws() noexcept {
    while (pos_ < s_.size() && is_ws(s_[pos_]))
      ++pos_;
  }
  std::string_view name() noexcept {
    const std::size_t start = pos_;
    if (pos_ < s_.size() && is_name_start(s_[pos_])) {
      ++pos_;
      while (pos_ < s_.size() && is_name_char(s_[pos_]))
        ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }

  // Plain text up to the next '<' (or the end), entities decoded into `out` when capturing.
  // Sets `non_ws` when it holds anything but whitespace.
  bool text(std::string* out, bool& non_ws) {
    while (pos_ < s_.size() && s_[pos_] != '<') {
      const char c = s_[pos_];
      if (c == '&') {
        static constexpr std::pair<std::string_view, char> entities[] = {
            {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
        bool known = false;
        for (const auto& [entity, ch] : entities) {
          if (at(entity)) {
            if (out != nullptr) out->push_back(ch);
            pos_ += entity.size();
            known = true;
            break;
          }
        }
        if (!known) return false;
        non_ws = true;
        continue;
      }
      if (c == '>' && pos_ >= 2 && s_.substr(pos_ - 2, 3) == "]]>") return false;  // XML 1.0 2.4
      if (!is_ws(c)) non_ws = true;
      if (out != nullptr) out->push_back(c);
      ++pos_;
    }
    return true;
  }

  // One element at `pos_` ('<' expected) and everything in it.
  bool element(int depth) {
    if (depth > xml_max_depth || !at("<")) return false;
    ++pos_;
    const std::string_view tag = name();
    if (tag.empty() || (depth == 0 && tag != "xml")) return false;
    const bool capture = depth == 1 && tag == want_;
    std::string content;
    std::string* out = capture ? &content : nullptr;
    skip_ws();
    if (at("/>")) {
      pos_ += 2;
      return finish(capture, content);
    }
    if (!at(">")) return false;  // attributes are not WeChat's
    ++pos_;
    const std::size_t inner = pos_;
    bool has_child = false, has_cdata = false, has_text = false;
    std::string plain;  // text outside CDATA, kept apart: whitespace beside CDATA is dropped
    for (;;) {
      if (pos_ >= s_.size()) return false;
      if (at("</")) break;
      if (at("<![CDATA[")) {
        const std::size_t end = s_.find("]]>", pos_ + 9);
        if (end == std::string_view::npos) return false;
        if (out != nullptr) out->append(s_.substr(pos_ + 9, end - pos_ - 9));
        pos_ = end + 3;
        has_cdata = true;
      } else if (at("<")) {
        if (at("<!") || at("<?")) return false;  // comments, DOCTYPE, instructions
        if (!element(depth + 1)) return false;
        has_child = true;
      } else if (!text(out != nullptr ? &plain : nullptr, has_text)) {
        return false;
      }
    }
    const std::size_t inner_end = pos_;
    pos_ += 2;
    if (name() != tag) return false;
    skip_ws();
    if (!at(">")) return false;
    ++pos_;
    if ((has_child || has_cdata) && has_text) return false;  // mixed content
    if (has_child && has_cdata) return false;
    if (has_child)
      content.assign(s_.substr(inner, inner_end - inner));
    else if (!has_cdata)
      content = std::move(plain);
    return finish(capture, content);
  }

  bool finish(bool capture, std::string& content) {
    if (capture) {
      ++found_;
      *value_ = std::move(content);
    }
    return true;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string_view want_;
  std::string* value_ = nullptr;
  int found_ = 0;
};

// Appends `text` as one or more CDATA sections ("]]>" cannot sit inside one).
inline void append_cdata(std::string& out, std::string_view text) {
  out += "<![CDATA[";
  for (std::size_t at = text.find("]]>"); at != std::string_view::npos; at = text.find("]]>")) {
    out.append(text.substr(0, at + 2)).append("]]><![CDATA[");
    text.remove_prefix(at + 2);
  }
  out.append(text).append("]]>");
}

// Appends `text` as XML character data (&, < and > escaped).
inline void append_escaped(std::string& out, std::string_view text) {
  for (const char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
}

// Erases a string's bytes (a token, a plaintext) before it is freed.
inline void cleanse(std::string& s) noexcept {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

}  // namespace detail

/// The content of the element `name` directly under the root `<xml>` of `xml`: the text of
/// its CDATA sections, or its plain text with the five predefined entities decoded, or, for
/// an element holding elements, its inner markup. For the decrypted message of a push:
/// `xml_element_text(inner, "InfoType", ec)` ("component_verify_ticket",
/// "unauthorized"...), "ComponentVerifyTicket", "AppId", "CreateTime".
/// The whole document is checked first. Errors (msg_crypt_errc): message_too_large (over
/// msg_crypt_max_bytes), xml_malformed (including `name` appearing twice), element_missing.
inline std::string xml_element_text(std::string_view xml, std::string_view name,
                                    std::error_code& ec) {
  ec.clear();
  std::string value;
  int found = 0;
  if (xml.size() > msg_crypt_max_bytes)
    ec = msg_crypt_errc::message_too_large;
  else if (!detail::xml_reader(xml).read(name, value, found) || found > 1)
    ec = msg_crypt_errc::xml_malformed;
  else if (found == 0)
    ec = msg_crypt_errc::element_missing;
  if (ec) value.clear();
  return value;
}

/// Throwing overload of xml_element_text.
inline std::string xml_element_text(std::string_view xml, std::string_view name) {
  std::error_code ec;
  auto r = xml_element_text(xml, name, ec);
  throw_if_error(ec, "xml_element_text");
  return r;
}

/// WeChat's message signature: lowercase hex sha1 of `token`, `timestamp`, `nonce` and
/// `encrypt` sorted as byte strings and concatenated. With `encrypt` empty it is the plain
/// `signature` of the query string (sha1 over the token, timestamp and nonce alone).
inline std::string msg_signature(std::string_view token, std::string_view timestamp,
                                 std::string_view nonce, std::string_view encrypt) {
  std::array<std::string_view, 4> parts{token, timestamp, nonce, encrypt};
  std::sort(parts.begin(), parts.end());
  std::string buf;
  buf.reserve(token.size() + timestamp.size() + nonce.size() + encrypt.size());
  for (const auto p : parts)
    buf.append(p);
  std::string sig = sha1_hex(buf);
  detail::cleanse(buf);
  return sig;
}

/// One encrypted message: what WeChat sends, as msg_crypt::encrypt produces it.
struct encrypted_message {
  std::string encrypt;        ///< base64 ciphertext: the <Encrypt> element
  std::string msg_signature;  ///< the query's msg_signature (covers encrypt)
  std::string signature;      ///< the query's plain signature (token, timestamp, nonce only)
  std::string timestamp;      ///< the query's timestamp, as given to encrypt
  std::string nonce;          ///< the query's nonce, as given to encrypt
  std::string appid;          ///< the receiving app (component_appid, corpid)

  /// The body of a push as the Open Platform sends it:
  /// `<xml><AppId><![CDATA[appid]]></AppId><Encrypt><![CDATA[encrypt]]></Encrypt></xml>`.
  std::string push_xml() const {
    std::string x = "<xml><AppId>";
    detail::append_cdata(x, appid);
    x += "</AppId><Encrypt>";
    detail::append_cdata(x, encrypt);
    x += "</Encrypt></xml>";
    return x;
  }

  /// The query string of a push, as WeChat sends it (a live push, logged 2016, carries
  /// both signatures): `signature=..&timestamp=..&nonce=..&encrypt_type=aes&msg_signature=..`.
  std::string push_query() const {
    std::string q = "signature=";
    q += url_encode(signature);
    q += "&timestamp=";
    q += url_encode(timestamp);
    q += "&nonce=";
    q += url_encode(nonce);
    q += "&encrypt_type=aes&msg_signature=";
    q += url_encode(msg_signature);
    return q;
  }

  /// The encrypted answer to a push (the official sample's GenReturnXml): `<xml><Encrypt>..
  /// </Encrypt><MsgSignature>..</MsgSignature><TimeStamp>..</TimeStamp><Nonce>..</Nonce></xml>`.
  std::string reply_xml() const {
    std::string x = "<xml><Encrypt>";
    detail::append_cdata(x, encrypt);
    x += "</Encrypt><MsgSignature>";
    detail::append_cdata(x, msg_signature);
    x += "</MsgSignature><TimeStamp>";
    detail::append_escaped(x, timestamp);
    x += "</TimeStamp><Nonce>";
    detail::append_cdata(x, nonce);
    x += "</Nonce></xml>";
    return x;
  }
};

/// WeChat's message crypto for one receiver: its token, EncodingAESKey and appid
/// (component_appid for the Open Platform, the official account's appid, or the corpid or
/// suite id for WeCom). Its const operations are safe to call from many threads at once.
/// The key and the token are erased when it is destroyed.
///
/// When the EncodingAESKey is regenerated, WeChat advises keeping the previous one too:
/// build a second msg_crypt with it and try it when the current one says bad_padding or
/// bad_message_length.
class msg_crypt {
public:
  /// Checks and keeps the configuration. On failure `ec` says why and every operation
  /// returns that same error. Errors (msg_crypt_errc): token_missing, aes_key_malformed
  /// (not 43 characters of the base64 alphabet), appid_missing.
  msg_crypt(std::string token, std::string_view encoding_aes_key, std::string appid,
            std::error_code& ec)
      : token_(std::move(token)), appid_(std::move(appid)) {
    init(encoding_aes_key, ec);
  }

  /// Throwing overload: throws wechat::error with the errors above.
  msg_crypt(std::string token, std::string_view encoding_aes_key, std::string appid)
      : token_(std::move(token)), appid_(std::move(appid)) {
    std::error_code ec;
    init(encoding_aes_key, ec);
    throw_if_error(ec, "msg_crypt");
  }

  // Copies only: a moved-from token would be empty, and sign with nothing.
  msg_crypt(const msg_crypt&) = default;
  msg_crypt& operator=(const msg_crypt& other) {
    if (this != &other) {  // the old key and token are erased, not left in freed memory
      detail::cleanse(token_);
      token_ = other.token_;
      appid_ = other.appid_;
      key_ = other.key_;
      config_ = other.config_;
    }
    return *this;
  }
  ~msg_crypt() {
    OPENSSL_cleanse(key_.data(), key_.size());
    detail::cleanse(token_);
  }

  /// The appid every message must end with.
  const std::string& appid() const noexcept { return appid_; }

  /// The construction's error (none when the configuration is usable).
  std::error_code config_error() const noexcept { return config_; }

  /// The msg_signature of `encrypt` sent with `timestamp` and `nonce` (lowercase hex).
  std::string signature(std::string_view timestamp, std::string_view nonce,
                        std::string_view encrypt) const {
    return msg_signature(token_, timestamp, nonce, encrypt);
  }

  /// Verifies the plain `signature` of a request's query: sha1 over the token, timestamp and
  /// nonce (no ciphertext). It is how an official account checks its URL (a GET with
  /// signature, timestamp, nonce and a plaintext echostr: answer the echostr, whatever the
  /// encryption mode), and the `signature` WeChat sends beside msg_signature on a push.
  /// Compared in constant time. Errors (msg_crypt_errc): the construction's error,
  /// signature_malformed, signature_mismatch; crypto_errc::openssl_failure.
  void verify_signature(std::string_view signature, std::string_view timestamp,
                        std::string_view nonce, std::error_code& ec) const {
    ec.clear();
    if (config_) {
      ec = config_;
      return;
    }
    check_signature(signature, timestamp, nonce, {}, ec);
  }

  /// Throwing overload of verify_signature.
  void verify_signature(std::string_view signature, std::string_view timestamp,
                        std::string_view nonce) const {
    std::error_code ec;
    verify_signature(signature, timestamp, nonce, ec);
    throw_if_error(ec, "msg_crypt::verify_signature");
  }

  /// Verifies `msg_signature` over `encrypt` (the <Encrypt> element's text, or an encrypted echostr
  /// of a URL check), then decrypts it and checks the padding, the length field and the
  /// appid at the end. Returns the message (the inner XML; for WeCom's URL check, the echostr
  /// text to answer with). Errors (msg_crypt_errc): the construction's error,
  /// message_too_large, signature_malformed, signature_mismatch, encrypt_has_space,
  /// encrypt_not_base64, ciphertext_bad_length, bad_padding, bad_message_length,
  /// appid_mismatch; crypto_errc::openssl_failure.
  std::string decrypt(std::string_view msg_signature, std::string_view timestamp,
                      std::string_view nonce, std::string_view encrypt, std::error_code& ec) const {
    ec.clear();
    std::string out;
    if (config_) {
      ec = config_;
      return out;
    }
    if (encrypt.size() > msg_crypt_max_bytes) {
      ec = msg_crypt_errc::message_too_large;
      return out;
    }
    check_signature(msg_signature, timestamp, nonce, encrypt, ec);
    if (ec) return out;
    std::string buf;
    std::size_t n = 0;
    if (encrypt.size() % 4 != 0) {
      ec = detail::base64_diagnose(encrypt);
    } else {
      buf.resize(detail::base64_decoded_size(encrypt));
      n = detail::base64_decode_to(encrypt, reinterpret_cast<unsigned char*>(buf.data()), ec);
    }
    if (ec) {
      ec = ec == crypto_errc::base64_space_for_plus ? msg_crypt_errc::encrypt_has_space
                                                    : msg_crypt_errc::encrypt_not_base64;
      return out;
    }
    if (n == 0 || n % 32 != 0) {
      ec = msg_crypt_errc::ciphertext_bad_length;
      return out;
    }
    auto* p = reinterpret_cast<unsigned char*>(buf.data());
    detail::aes256_cbc_nopad(true, key_.data(), key_.data(), p, n, p, ec);  // iv = key[0:16]
    if (!ec) out = unwrap(std::string_view(buf.data(), n), ec);
    detail::cleanse(buf);
    return out;
  }

  /// Throwing overload of decrypt.
  std::string decrypt(std::string_view msg_signature, std::string_view timestamp,
                      std::string_view nonce, std::string_view encrypt) const {
    std::error_code ec;
    auto r = decrypt(msg_signature, timestamp, nonce, encrypt, ec);
    throw_if_error(ec, "msg_crypt::decrypt");
    return r;
  }

  /// The whole push, as the official sample's DecryptMsg: the query's msg_signature,
  /// timestamp and nonce and the POST body; reads <Encrypt> from the body and decrypts it
  /// as decrypt does. Returns the inner XML (read it with xml_element_text).
  /// Errors: as decrypt, and xml_malformed, encrypt_missing.
  std::string decrypt_message(std::string_view msg_signature, std::string_view timestamp,
                              std::string_view nonce, std::string_view body,
                              std::error_code& ec) const {
    ec.clear();
    if (config_) {
      ec = config_;
      return {};
    }
    const std::string encrypt = xml_element_text(body, "Encrypt", ec);
    if (ec == msg_crypt_errc::element_missing) ec = msg_crypt_errc::encrypt_missing;
    if (ec) return {};
    return decrypt(msg_signature, timestamp, nonce, encrypt, ec);
  }

  /// Throwing overload of decrypt_message.
  std::string decrypt_message(std::string_view msg_signature, std::string_view timestamp,
                              std::string_view nonce, std::string_view body) const {
    std::error_code ec;
    auto r = decrypt_message(msg_signature, timestamp, nonce, body, ec);
    throw_if_error(ec, "msg_crypt::decrypt_message");
    return r;
  }

  /// Encrypts `message` (the inner XML) as WeChat does, with a fresh random prefix of 16
  /// letters and digits (WeChat's prefixes are printable too: the sample's is ASCII), and
  /// signs it with `timestamp` and `nonce`. What the mock pushes; what a receiver answers.
  /// Errors: the construction's error, message_too_large (the XML would exceed
  /// msg_crypt_max_bytes); crypto_errc::openssl_failure.
  encrypted_message encrypt(std::string_view message, std::string_view timestamp,
                            std::string_view nonce, std::error_code& ec) const {
    ec.clear();
    std::string prefix = random_bytes(16, ec);
    if (ec) return {};
    static constexpr char alnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (char& c : prefix)
      c = alnum[static_cast<unsigned char>(c) % 62];
    return encrypt_with_prefix(message, timestamp, nonce, prefix, ec);
  }

  /// Throwing overload of encrypt.
  encrypted_message encrypt(std::string_view message, std::string_view timestamp,
                            std::string_view nonce) const {
    std::error_code ec;
    auto r = encrypt(message, timestamp, nonce, ec);
    throw_if_error(ec, "msg_crypt::encrypt");
    return r;
  }

  /// encrypt with the given 16-byte random prefix: deterministic, for tests and published
  /// vectors. Errors: as encrypt, and bad_random_prefix (not 16 bytes).
  encrypted_message encrypt_with_prefix(std::string_view message, std::string_view timestamp,
                                        std::string_view nonce, std::string_view random_prefix,
                                        std::error_code& ec) const {
    ec.clear();
    encrypted_message m;
    if (config_) {
      ec = config_;
      return m;
    }
    if (random_prefix.size() != 16) {
      ec = msg_crypt_errc::bad_random_prefix;
      return m;
    }
    const std::size_t body = 20 + message.size() + appid_.size();
    const std::size_t padded = body + (32 - body % 32);
    // The XML forms add their tags (under 256 bytes) and at most 5 bytes for each byte of
    // appid, timestamp and nonce (a "]]>" split out of CDATA, an '&' escaped).
    if (message.size() > msg_crypt_max_bytes ||
        (padded + 2) / 3 * 4 + 256 + 5 * (appid_.size() + timestamp.size() + nonce.size()) >
            msg_crypt_max_bytes) {
      ec = msg_crypt_errc::message_too_large;
      return m;
    }
    std::string buf;
    buf.reserve(padded);
    buf.append(random_prefix);
    const auto len = static_cast<std::uint32_t>(message.size());
    for (const int shift : {24, 16, 8, 0})
      buf += static_cast<char>((len >> shift) & 0xff);
    buf.append(message).append(appid_);
    buf.append(padded - body, static_cast<char>(padded - body));  // PKCS#7, K = 32
    auto* p = reinterpret_cast<unsigned char*>(buf.data());
    detail::aes256_cbc_nopad(false, key_.data(), key_.data(), p, padded, p, ec);
    if (!ec) {
      m.encrypt = base64_encode(buf);
      m.msg_signature = signature_or(timestamp, nonce, m.encrypt, ec);
      m.signature = signature_or(timestamp, nonce, {}, ec);
      m.timestamp = timestamp;
      m.nonce = nonce;
      m.appid = appid_;
    }
    detail::cleanse(buf);
    return m;
  }

  /// Throwing overload of encrypt_with_prefix.
  encrypted_message encrypt_with_prefix(std::string_view message, std::string_view timestamp,
                                        std::string_view nonce,
                                        std::string_view random_prefix) const {
    std::error_code ec;
    auto r = encrypt_with_prefix(message, timestamp, nonce, random_prefix, ec);
    throw_if_error(ec, "msg_crypt::encrypt_with_prefix");
    return r;
  }

private:
  void init(std::string_view key, std::error_code& ec) noexcept {
    ec.clear();
    if (token_.empty()) {
      ec = msg_crypt_errc::token_missing;
    } else if (appid_.empty()) {
      ec = msg_crypt_errc::appid_missing;
    } else if (!decode_key(key)) {
      ec = msg_crypt_errc::aes_key_malformed;
    }
    config_ = ec;
  }

  // AESKey = base64_decode(EncodingAESKey + "="). WeChat's keys are 43 random characters,
  // so the last one's two low bits (past the 32 bytes) are usually set: they are ignored,
  // as every SDK's decoder does (the sample's own key ends in 'G', value 6).
  bool decode_key(std::string_view key) noexcept {
    if (key.size() != 43) return false;
    std::array<char, 44> text{};
    for (std::size_t i = 0; i < 43; ++i) {
      if (detail::base64_table[static_cast<unsigned char>(key[i])] >= 64) return false;
      text[i] = key[i];
    }
    text[42] = detail::base64_alphabet[detail::base64_table[static_cast<unsigned char>(key[42])] &
                                       ~std::uint8_t{3}];
    text[43] = '=';
    std::error_code ec;
    const std::size_t n =
        detail::base64_decode_to(std::string_view(text.data(), text.size()), key_.data(), ec);
    OPENSSL_cleanse(text.data(), text.size());
    return !ec && n == key_.size();
  }

  void check_signature(std::string_view given, std::string_view timestamp, std::string_view nonce,
                       std::string_view encrypt, std::error_code& ec) const {
    std::string lower;
    if (!detail::sha1_hex_lowercase(given, lower)) {
      ec = msg_crypt_errc::signature_malformed;
      return;
    }
    const std::string expected = signature_or(timestamp, nonce, encrypt, ec);
    if (!ec && !constant_time_equal(expected, lower)) ec = msg_crypt_errc::signature_mismatch;
  }

  // signature() for the error_code overloads: an OpenSSL failure sets ec, never throws.
  std::string signature_or(std::string_view timestamp, std::string_view nonce,
                           std::string_view encrypt, std::error_code& ec) const {
    try {
      return signature(timestamp, nonce, encrypt);
    } catch (const error& e) {
      ec = e.code();
      return {};
    }
  }

  // The decrypted plaintext: padding, length field, appid; returns the message.
  std::string unwrap(std::string_view plain, std::error_code& ec) const {
    // Every padding byte is checked (PKCS#7 with K = 32: the last p bytes equal p, p in
    // 1..32); the scan covers 32 bytes wherever it fails. plain.size() is a multiple of 32.
    const std::size_t size = plain.size();
    const unsigned p = static_cast<unsigned char>(plain[size - 1]);
    unsigned bad = static_cast<unsigned>(p == 0) | static_cast<unsigned>(p > 32);
    for (unsigned i = 1; i <= 32; ++i)
      bad |= static_cast<unsigned>(i <= p) &
             static_cast<unsigned>(static_cast<unsigned char>(plain[size - i]) != p);
    if (bad) {
      ec = msg_crypt_errc::bad_padding;
      return {};
    }
    const std::string_view content = plain.substr(0, size - p);
    if (content.size() < 20) {
      ec = msg_crypt_errc::bad_message_length;
      return {};
    }
    std::size_t len = 0;  // size_t: the official C++ sample's unsigned sum can wrap
    for (std::size_t i = 16; i < 20; ++i)
      len = (len << 8) | static_cast<unsigned char>(content[i]);
    if (len > content.size() - 20) {
      ec = msg_crypt_errc::bad_message_length;
      return {};
    }
    if (!constant_time_equal(content.substr(20 + len), appid_)) {
      ec = msg_crypt_errc::appid_mismatch;
      return {};
    }
    return std::string(content.substr(20, len));
  }

  std::string token_;
  std::string appid_;
  std::array<unsigned char, 32> key_{};
  std::error_code config_;
};

}  // namespace wechat
