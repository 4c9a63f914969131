// Decrypt + verify + parse of a realistic ~400-byte wx.getUserInfo payload, beside:
//   openssl_floor   base64 decode + AES-128-CBC decrypt with OpenSSL alone (no JSON):
//                   the most any implementation can reach
//   nlohmann_dom    the same decrypt, then a full nlohmann::json DOM parse: what a
//                   straightforward implementation does
// The Node.js peer (decrypt_peer.js) runs on the same input in the same run_decrypt.sh.
//
//   decrypt_bench --write-fixture FILE   writes the input for the peer, then benchmarks
#include <benchmark/benchmark.h>
#include <wechat/decrypt.hpp>

#include <cstring>
#include <fstream>
#include <iostream>

namespace {

const std::string appid = "wx4f4bc4dec97d474b";
const std::string session_key = "tiihtNczf5v6AKRyjwEUhQ==";
const std::string iv = "r7BXXKkLb8qrSNn05n0qiA==";

std::string plaintext() {
  // A realistic payload: a real avatar URL length, a Chinese nick name, a unionId.
  return nlohmann::json{{"openId", "oGZUI0egBJY1zhBYw2KhdUfwVJJE"},
                        {"nickName", "微信用户 Band"},
                        {"gender", 1},
                        {"language", "zh_CN"},
                        {"city", "Guangzhou"},
                        {"province", "Guangdong"},
                        {"country", "CN"},
                        {"avatarUrl", "https://thirdwx.qlogo.cn/mmopen/vi_32/"
                                      "aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySd"
                                      "bvAMvTsw3mo8ibKicsnfN5pRjl1p8HQ/132"},
                        {"unionId", "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"},
                        {"watermark", {{"timestamp", 1700000000}, {"appid", appid}}}}
      .dump();
}

const std::string& encrypted() {
  static const std::string e = wechat::encrypt_data(session_key, plaintext(), iv);
  return e;
}

void decrypt_user_info(benchmark::State& state) {
  wechat::verify_options o;
  o.appid = appid;
  const wechat::device_data d{encrypted(), iv};
  for (auto _ : state) {
    std::error_code ec;
    auto u = wechat::decrypt_user_info(session_key, d, o, ec);
    if (ec) state.SkipWithError("decrypt failed");
    benchmark::DoNotOptimize(u);
  }
  state.counters["payload_bytes"] = static_cast<double>(plaintext().size());
}
BENCHMARK(decrypt_user_info);

void decrypt_user_info_signed(benchmark::State& state) {
  wechat::verify_options o;
  o.appid = appid;
  const std::string raw =
      R"({"nickName":"微信用户 Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"https://thirdwx.qlogo.cn/132"})";
  const std::string sig = wechat::raw_data_signature(raw, session_key);
  const wechat::device_data d{encrypted(), iv, raw, sig};
  for (auto _ : state) {
    std::error_code ec;
    auto u = wechat::decrypt_user_info(session_key, d, o, ec);
    if (ec) state.SkipWithError("decrypt failed");
    benchmark::DoNotOptimize(u);
  }
}
BENCHMARK(decrypt_user_info_signed);

void nlohmann_dom(benchmark::State& state) {
  wechat::verify_options o;
  o.appid = appid;
  const wechat::device_data d{encrypted(), iv};
  for (auto _ : state) {
    std::error_code ec;
    auto j = wechat::decrypt_json(session_key, d, o, ec);
    if (ec) state.SkipWithError("decrypt failed");
    benchmark::DoNotOptimize(j);
  }
}
BENCHMARK(nlohmann_dom);

// The floor: OpenSSL's own base64 (EVP_DecodeBlock) and AES, cipher fetched once and the
// context reused, no JSON at all.
void openssl_floor(benchmark::State& state) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const std::string& data = encrypted();
  std::string buf(data.size(), '\0'), out(data.size() + 16, '\0');
  unsigned char key[18], ivb[18];
  for (auto _ : state) {
    EVP_DecodeBlock(key, reinterpret_cast<const unsigned char*>(session_key.data()), 24);
    EVP_DecodeBlock(ivb, reinterpret_cast<const unsigned char*>(iv.data()), 24);
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                            reinterpret_cast<const unsigned char*>(data.data()),
                            static_cast<int>(data.size()));
    n -= (data.end()[-1] == '=') + (data.end()[-2] == '=');
    int m = 0, t = 0;
    EVP_DecryptInit_ex(ctx, cipher, nullptr, key, ivb);
    EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &m,
                      reinterpret_cast<const unsigned char*>(buf.data()), n);
    if (EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + m, &t) != 1)
      state.SkipWithError("decrypt failed");
    benchmark::DoNotOptimize(out.data());
  }
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(cipher);
}
BENCHMARK(openssl_floor);

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--write-fixture") == 0) {
      std::ofstream(argv[i + 1]) << nlohmann::json{
          {"appid", appid},
          {"session_key", session_key},
          {"iv", iv},
          {"encrypted_data", encrypted()},
          {"plaintext_bytes",
           plaintext().size()}}.dump();
      for (int j = i; j + 2 <= argc; ++j)
        argv[j] = argv[j + 2];
      argc -= 2;
      break;
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
