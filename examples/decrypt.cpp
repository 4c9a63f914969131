// decrypt: decrypt and verify what a mini program sends up, with no network at all. Uses
// WeChat's own published sample (appid wx4f4bc4dec97d474b), in both error styles: a
// std::error_code you test, or an exception (wechat::error, a std::system_error) you catch.
// Only OpenSSL is linked: target wechat::crypto.
#include <wechat/decrypt.hpp>

#include <iostream>
#include <string>

int main() {
  // What the backend holds (session_key, from code2session) and what the device sent up.
  const std::string session_key = "tiihtNczf5v6AKRyjwEUhQ==";
  const std::string iv = "r7BXXKkLb8qrSNn05n0qiA==";
  const std::string encrypted_data =
      "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+"
      "oNPdbB+"
      "3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/"
      "fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/"
      "1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//"
      "FRAUid1OksQaQx4CMs8LOddcQhULW4"
      "ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/"
      "8wR2SiRS7MNACwTyrGvt9ts8p12P"
      "KFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+"
      "T8yO5hzuyDb/"
      "XcxxmK01EpqOyuxINew==";
  wechat::verify_options verify;
  verify.appid = "wx4f4bc4dec97d474b";  // the watermark must carry your appid

  // 1. error_code style: no exceptions; the code says exactly which check failed.
  std::error_code ec;
  const wechat::user_info user =
      wechat::decrypt_user_info(session_key, {encrypted_data, iv}, verify, ec);
  if (ec) {
    std::cerr << wechat::error_name(ec) << ": " << ec.message() << "\n";
    return 1;
  }
  std::cout << "decrypted: " << user.nickname << ", openId " << user.openid << ", " << user.city
            << ", " << user.province << ", " << user.country << ", unionId "
            << user.unionid.value_or("(none)") << ", watermark time " << user.watermark.timestamp
            << "\n";

  // 2. exception style: the same call without the error_code throws wechat::error.
  try {
    verify.appid = "wx0000000000000000";  // a payload meant for another app
    wechat::decrypt_user_info(session_key, {encrypted_data, iv}, verify);
    return 1;
  } catch (const wechat::error& e) {
    std::cout << "another appid -> " << wechat::error_name(e.code()) << ": " << e.what() << "\n";
  }

  // 3. The commonest real failure: a stale session_key (the device logged in again).
  const std::string stale_key = "AAAAAAAAAAAAAAAAAAAAAA==";
  verify.appid = "wx4f4bc4dec97d474b";
  wechat::decrypt_user_info(stale_key, {encrypted_data, iv}, verify, ec);
  std::cout << "stale key -> " << wechat::error_name(ec) << ": " << ec.message() << "\n";

  // 4. The second commonest: '+' turned into ' ' by a form-encoded request.
  std::string mangled = encrypted_data;
  mangled[mangled.find('+')] = ' ';
  wechat::decrypt_user_info(session_key, {mangled, iv}, verify, ec);
  std::cout << "space for plus -> " << wechat::error_name(ec) << ": " << ec.message() << "\n";
  return 0;
}
