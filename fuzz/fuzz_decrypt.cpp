// libFuzzer: everything the device sends is attacker-controlled. The input is split at
// '\n' into session_key, iv, encryptedData, rawData, signature (missing parts empty).
// Every decrypt entry point must return a typed error or a verified result: no crash, no
// exception from the error_code overloads, no sanitizer report.
#include <wechat/decrypt.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (int i = 0; i < 4; ++i) {
    const auto nl = in.find('\n', start);
    if (nl == std::string_view::npos) break;
    parts.push_back(in.substr(start, nl - start));
    start = nl + 1;
  }
  parts.push_back(in.substr(std::min(start, in.size())));
  parts.resize(5);
  const wechat::device_data d{parts[2], parts[1], parts[3], parts[4]};
  wechat::verify_options v;
  v.appid = "wx4f4bc4dec97d474b";
  v.max_age = std::chrono::seconds(600);
  std::error_code ec;
  (void)wechat::decrypt_user_info(parts[0], d, v, ec);
  (void)wechat::decrypt_user_profile(parts[0], d, v, ec);
  (void)wechat::decrypt_phone_number(parts[0], d, v, ec);
  (void)wechat::decrypt_json(parts[0], d, v, ec);
  (void)wechat::verify_signature(parts[3], parts[0], parts[4], ec);
  (void)wechat::base64_decode(in, ec);
  // And a payload we encrypt ourselves from the raw input: the JSON reader on any bytes.
  const std::string key = "tiihtNczf5v6AKRyjwEUhQ==", iv = "r7BXXKkLb8qrSNn05n0qiA==";
  const std::string enc = wechat::encrypt_data(key, std::string(in), iv);
  (void)wechat::decrypt_user_info(key, {enc, iv}, v, ec);
  (void)wechat::decrypt_user_profile(key, {enc, iv}, v, ec);
  (void)wechat::decrypt_phone_number(key, {enc, iv}, v, ec);
  return 0;
}
