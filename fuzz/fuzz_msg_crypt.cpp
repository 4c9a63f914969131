// libFuzzer: a push to the Open Platform's URL is attacker-controlled: msg_signature,
// timestamp, nonce and the XML body. The input is split at its first three '\n' into those
// four (missing parts empty). Every entry point of msg_crypt.hpp must return a typed error
// or a verified message: no crash, no exception from the error_code overloads, no sanitizer
// report. And what decrypts must round-trip: encrypted again it decrypts to the same
// message, and encrypted again with the same random prefix it is the same ciphertext.
#include <wechat/msg_crypt.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

// WeChat's Sample.py configuration (docs/component.md, vector V1).
constexpr std::string_view token = "spamtest";
constexpr std::string_view aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
constexpr std::string_view appid = "wx2c2769f8efd9abc2";

void require(bool ok) {
  if (!ok) __builtin_trap();
}

// A decrypted message encrypts and decrypts back to itself, in every XML form.
void round_trip(const wechat::msg_crypt& c, const std::string& message, std::string_view ts,
                std::string_view nonce) {
  std::error_code ec;
  const wechat::encrypted_message m = c.encrypt(message, ts, nonce, ec);
  if (ec) {
    require(ec == wechat::msg_crypt_errc::message_too_large);
    return;
  }
  require(c.decrypt(m.msg_signature, ts, nonce, m.encrypt, ec) == message && !ec);
  require(c.decrypt_message(m.msg_signature, ts, nonce, m.push_xml(), ec) == message && !ec);
  const std::string reply = m.reply_xml();
  require(c.decrypt_message(m.msg_signature, ts, nonce, reply, ec) == message && !ec);
  require(wechat::xml_element_text(reply, "Nonce", ec) == nonce && !ec);
  require(wechat::xml_element_text(reply, "TimeStamp", ec) == ts && !ec);
  require(wechat::xml_element_text(reply, "MsgSignature", ec) == m.msg_signature && !ec);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const auto nl = in.find('\n', start);
    if (nl == std::string_view::npos) break;
    parts.push_back(in.substr(start, nl - start));
    start = nl + 1;
  }
  parts.push_back(in.substr(std::min(start, in.size())));
  parts.resize(4);
  const std::string_view sig = parts[0], ts = parts[1], nonce = parts[2], body = parts[3];

  static const wechat::msg_crypt c(std::string(token), aes_key, std::string(appid));
  std::error_code ec;

  // 1. The push as it came.
  std::string message = c.decrypt_message(sig, ts, nonce, body, ec);
  if (!ec) round_trip(c, message, ts, nonce);

  // 2. Signed by whoever knows the token: the body's Encrypt, or the body as Encrypt.
  std::string encrypt = wechat::xml_element_text(body, "Encrypt", ec);
  if (ec) encrypt = std::string(body);
  message = c.decrypt(c.signature(ts, nonce, encrypt), ts, nonce, encrypt, ec);
  if (!ec) round_trip(c, message, ts, nonce);

  // 3. Any plaintext (the body cut to whole 32-byte blocks, padding, length field and appid
  // its own), encrypted under the key: decrypt either refuses it or accepts exactly what
  // encrypt_with_prefix would have made.
  if (body.size() >= 32 && body.size() <= 64 * 1024) {
    std::string plain(body.substr(0, body.size() / 32 * 32));
    std::string key = wechat::base64_decode(std::string(aes_key.substr(0, 42)) + "E=", ec);
    require(!ec && key.size() == 32);
    auto* k = reinterpret_cast<const unsigned char*>(key.data());
    auto* p = reinterpret_cast<unsigned char*>(plain.data());
    std::string cipher = plain;
    auto* q = reinterpret_cast<unsigned char*>(cipher.data());
    wechat::detail::aes256_cbc_nopad(false, k, k, p, plain.size(), q, ec);
    require(!ec);
    const std::string e = wechat::base64_encode(cipher);
    message = c.decrypt(c.signature(ts, nonce, e), ts, nonce, e, ec);
    if (!ec) {
      require(c.encrypt_with_prefix(message, ts, nonce, plain.substr(0, 16)).encrypt == e);
      round_trip(c, message, ts, nonce);
    }
  }

  // 4. The XML reader, on the body, for the names a handler reads.
  for (const char* name : {"Encrypt", "AppId", "ToUserName", "InfoType", "ComponentVerifyTicket",
                           "CreateTime", "xml", ""})
    (void)wechat::xml_element_text(body, name, ec);

  // 5. The configuration: the signature line as a token, the timestamp line as a key, the
  // nonce line as an appid; what such a msg_crypt encrypts, it decrypts.
  const wechat::msg_crypt d(std::string(sig), ts, std::string(nonce), ec);
  if (!ec && body.size() <= 64 * 1024) round_trip(d, std::string(body), "1", "2");
  return 0;
}
