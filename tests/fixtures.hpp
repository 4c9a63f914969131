// Shared test fixtures: WeChat's own published sample (a payload encrypted by WeChat's
// servers, from the official decryption sample code) and helpers that build fresh ones.
#pragma once

#include <wechat/decrypt.hpp>

#include <string>

namespace fixtures {

// From WeChat's official "encryptedData decryption" sample (appid wx4f4bc4dec97d474b).
inline const std::string sample_appid = "wx4f4bc4dec97d474b";
inline const std::string sample_session_key = "tiihtNczf5v6AKRyjwEUhQ==";
inline const std::string sample_iv = "r7BXXKkLb8qrSNn05n0qiA==";
inline const std::string sample_encrypted_data =
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
inline constexpr std::int64_t sample_timestamp = 1477314187;

/// A fresh random session_key or iv (24 base64 characters).
inline std::string random_key() {
  return wechat::base64_encode(wechat::random_bytes(16));
}

/// A session_key whose base64 text contains '+', for the space-for-plus cases.
inline std::string key_with_plus() {
  for (;;) {
    std::string k = random_key();
    if (k.find('+') != std::string::npos) return k;
  }
}

/// Encrypted data (base64) of `plaintext` under `key`/`iv`.
inline std::string encrypt(const std::string& key, const std::string& iv,
                           const std::string& plaintext) {
  return wechat::encrypt_data(key, plaintext, iv);
}

}  // namespace fixtures
