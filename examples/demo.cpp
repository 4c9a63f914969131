// demo: what `make demo` runs. Decryption end to end, both sides played here: WeChat
// encrypts a realistic wx.getUserInfo payload for the device with a fresh session_key,
// then the backend decrypts and verifies it through the public API, and shows what the
// commonest failures look like. Secrets are never printed, not even demo ones.
#include <wechat/decrypt.hpp>

#include <chrono>
#include <iostream>
#include <string>

namespace {

void step(int n, const std::string& text) {
  std::cout << "\n[" << n << "] " << text << '\n';
}
void line(const std::string& text) {
  std::cout << "    " << text << '\n';
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main() {
  const std::string appid = "wx4f4bc4dec97d474b";

  step(1, "WeChat: wx.login on the device; code2session hands the backend a session_key");
  const std::string session_key = wechat::base64_encode(wechat::random_bytes(16));
  line("session_key: 24 base64 characters (16 random bytes), kept server side, not shown");

  step(2, "WeChat: wx.getUserInfo builds the payload and encrypts it with that key");
  const nlohmann::json payload = {{"openId", "oGZUI0egBJY1zhBYw2KhdUfwVJJE"},
                                  {"nickName", "小程序用户 Band"},
                                  {"gender", 1},
                                  {"language", "zh_CN"},
                                  {"city", "Guangzhou"},
                                  {"province", "Guangdong"},
                                  {"country", "CN"},
                                  {"avatarUrl", "https://thirdwx.qlogo.cn/mmopen/vi_32/"
                                                "aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GF"
                                                "hsf8OYrySdbvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/132"},
                                  {"unionId", "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"},
                                  {"watermark", {{"timestamp", unix_now()}, {"appid", appid}}}};
  const std::string plaintext = payload.dump();
  const std::string iv = wechat::base64_encode(wechat::random_bytes(16));
  const std::string encrypted = wechat::encrypt_data(session_key, plaintext, iv);
  nlohmann::json raw = payload;
  for (const char* k : {"openId", "unionId", "watermark"})
    raw.erase(k);
  const std::string raw_data = raw.dump();
  const std::string signature = wechat::raw_data_signature(raw_data, session_key);
  line("plaintext:     " + std::to_string(plaintext.size()) + " bytes of JSON");
  line("encryptedData: " + std::to_string(encrypted.size()) + " base64 characters, " +
       encrypted.substr(0, 24) + "...");
  line("iv:            " + iv);
  line("rawData:       " + raw_data.substr(0, 60) + "...");
  line("signature:     " + signature + "  (sha1 of rawData + session_key)");

  step(3, "Backend: decrypt_user_info(session_key, {encryptedData, iv, rawData, signature}, "
          "{appid, max_age})");
  wechat::verify_options options;
  options.appid = appid;
  options.max_age = std::chrono::minutes(10);
  std::error_code ec;
  const wechat::user_info user =
      wechat::decrypt_user_info(session_key, {encrypted, iv, raw_data, signature}, options, ec);
  if (ec) {
    std::cerr << "unexpected failure: " << ec.message() << '\n';
    return 1;
  }
  line("padding, JSON, watermark appid, watermark age (10 min), rawData signature: all verified");
  line("openid:   " + user.openid);
  line("nickname: " + user.nickname);
  line("city:     " + user.city + ", " + user.province + ", " + user.country);
  line("unionid:  " + user.unionid.value_or("(none: app not bound to an Open Platform account)"));
  line("watermark: appid " + user.watermark.appid + ", " +
       std::to_string(unix_now() - user.watermark.timestamp) + " s old");

  step(4, "What the commonest failures look like (each is its own error)");
  auto show = [&](const std::string& what, const std::string& key, const wechat::device_data& d,
                  const wechat::verify_options& o) {
    std::error_code e;
    wechat::decrypt_user_info(key, d, o, e);
    line(what + "\n        -> " + wechat::error_name(e) + ": " + e.message());
  };
  const std::string newer_key = wechat::base64_encode(wechat::random_bytes(16));
  show("the device called wx.login again; the backend kept the old key:", newer_key,
       {encrypted, iv}, options);
  std::string spaced = encrypted;
  for (char& c : spaced)
    if (c == '+') c = ' ';
  if (spaced != encrypted)
    show("encryptedData sent in a form body without URL-encoding:", session_key, {spaced, iv},
         options);
  wechat::verify_options other = options;
  other.appid = "wx0000000000000000";
  show("the backend is configured with another mini program's appid:", session_key, {encrypted, iv},
       other);
  show("rawData re-serialized by a proxy before the signature check:", session_key,
       {encrypted, iv, raw.dump(2), signature}, options);

  step(5, "Throwing style: the same call without std::error_code throws wechat::error");
  try {
    wechat::decrypt_user_info(newer_key, {encrypted, iv}, options);
  } catch (const wechat::error& e) {
    line(std::string("caught wechat::error, code ") + e.code().category().name() + "/" +
         wechat::error_name(e.code()));
  }
  std::cout << "\ndemo finished\n";
  return 0;
}
