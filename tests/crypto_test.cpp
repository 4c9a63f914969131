#include <catch2/catch.hpp>
#include <wechat/crypto.hpp>

#include <string>

using namespace std::string_literals;

namespace {
std::string unhex(const std::string& h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}
std::error_code decode_error(std::string_view text) {
  std::error_code ec;
  const std::string out = wechat::base64_decode(text, ec);
  CHECK(out.empty());
  return ec;
}
}  // namespace

TEST_CASE("base64 matches the RFC 4648 test vectors both ways", "[crypto][base64]") {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    CHECK(wechat::base64_encode(plain) == encoded);
    std::error_code ec;
    CHECK(wechat::base64_decode(encoded, ec) == plain);
    CHECK_FALSE(ec);
    CHECK(wechat::base64_decode(encoded) == plain);  // throwing overload
  }
}

TEST_CASE("base64 round-trips every byte value at every length", "[crypto][base64]") {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all.push_back(static_cast<char>(i));
  for (std::size_t len = 0; len <= all.size(); ++len) {
    const std::string in = all.substr(all.size() - len);
    CHECK(wechat::base64_decode(wechat::base64_encode(in)) == in);
  }
}

TEST_CASE("base64 says a space stood where '+' belonged", "[crypto][base64]") {
  CHECK(wechat::base64_decode("ab+/cQ==").size() == 4);  // the valid original...
  CHECK(decode_error("ab /cQ==") == wechat::crypto_errc::base64_space_for_plus);
  // ...even when the space also broke the length
  CHECK(decode_error("ab /cQ=") == wechat::crypto_errc::base64_space_for_plus);
  CHECK(std::error_code(wechat::crypto_errc::base64_space_for_plus).message().find("'+'") !=
        std::string::npos);
}

TEST_CASE("base64 rejects each malformation with its own error", "[crypto][base64]") {
  SECTION("URL-encoded value") {
    CHECK(decode_error("ab%2Bcd==") == wechat::crypto_errc::base64_percent_encoded);
  }
  SECTION("characters outside the standard alphabet, base64url included") {
    CHECK(decode_error("ab-_cd==") == wechat::crypto_errc::base64_invalid_character);
    CHECK(decode_error("abc\n") == wechat::crypto_errc::base64_invalid_character);
    CHECK(decode_error("ab\0d"s) == wechat::crypto_errc::base64_invalid_character);
  }
  SECTION("length not a multiple of 4 (missing padding)") {
    CHECK(decode_error("Zg") == wechat::crypto_errc::base64_invalid_length);
    CHECK(decode_error("Zm9vYg=") == wechat::crypto_errc::base64_invalid_length);
  }
  SECTION("'=' anywhere but the end") {
    CHECK(decode_error("Zg==Zg==") == wechat::crypto_errc::base64_invalid_length);
    CHECK(decode_error("Z===") == wechat::crypto_errc::base64_invalid_length);
    CHECK(decode_error("====") == wechat::crypto_errc::base64_invalid_length);
    CHECK(decode_error("Zm=v") == wechat::crypto_errc::base64_invalid_length);
  }
  SECTION("non-zero padding bits (non-canonical)") {
    CHECK(decode_error("Zh==") == wechat::crypto_errc::base64_non_canonical);
    CHECK(decode_error("Zm9=") == wechat::crypto_errc::base64_non_canonical);
  }
  SECTION("the throwing overload throws wechat::error with the same code") {
    try {
      wechat::base64_decode("ab /cd==");
      FAIL("no exception");
    } catch (const wechat::error& e) {
      CHECK(e.code() == wechat::crypto_errc::base64_space_for_plus);
    }
  }
}

TEST_CASE("AES-128-CBC matches NIST SP 800-38A F.2.1", "[crypto][aes]") {
  const std::string key = unhex("2b7e151628aed2a6abf7158809cf4f3c");
  const std::string iv = unhex("000102030405060708090a0b0c0d0e0f");
  const std::string plain =
      unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
            "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
  const std::string expected =
      unhex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
            "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7");
  const std::string cipher = wechat::aes128_cbc_encrypt(key, iv, plain);
  REQUIRE(cipher.size() == plain.size() + 16);  // + one block of PKCS#7 padding
  CHECK(cipher.substr(0, 64) == expected);
  CHECK(wechat::aes128_cbc_decrypt(key, iv, cipher) == plain);
}

TEST_CASE("AES decrypt enforces PKCS#7 strictly", "[crypto][aes]") {
  const std::string key(16, 'k'), iv(16, 'i');
  // The first ciphertext block of a 16-byte plaintext decrypts to that plaintext with no
  // padding removed: choose its last bytes to exercise the padding check.
  auto first_block = [&](const std::string& block) {
    REQUIRE(block.size() == 16);
    return wechat::aes128_cbc_encrypt(key, iv, block).substr(0, 16);
  };
  auto decrypt = [&](const std::string& block, std::error_code& ec) {
    return wechat::aes128_cbc_decrypt(key, iv, first_block(block), ec);
  };
  std::error_code ec;
  SECTION("valid paddings") {
    CHECK(decrypt(std::string(15, 'A') + "\x01", ec) == std::string(15, 'A'));
    CHECK_FALSE(ec);
    CHECK(decrypt(std::string(13, 'A') + "\x03\x03\x03", ec) == std::string(13, 'A'));
    CHECK_FALSE(ec);
    CHECK(decrypt(std::string(16, '\x10'), ec).empty());
    CHECK_FALSE(ec);
  }
  SECTION("invalid paddings") {
    for (const std::string& block :
         {std::string(15, 'A') + '\0', std::string(15, 'A') + "\x11",
          std::string(13, 'A') + "\x02\x03\x03", std::string(14, 'A') + "\x01\x03",
          std::string(15, '\x10') + "\x0f", std::string(1, 'A') + std::string(15, '\x10')}) {
      CAPTURE(wechat::to_hex(block));
      CHECK(decrypt(block, ec).empty());
      CHECK(ec == wechat::crypto_errc::bad_padding);
    }
  }
  SECTION("bad lengths") {
    CHECK(wechat::aes128_cbc_decrypt(key, iv, "", ec).empty());
    CHECK(ec == wechat::crypto_errc::bad_ciphertext_length);
    wechat::aes128_cbc_decrypt(key, iv, std::string(17, 'x'), ec);
    CHECK(ec == wechat::crypto_errc::bad_ciphertext_length);
    wechat::aes128_cbc_decrypt(std::string(15, 'k'), iv, std::string(16, 'x'), ec);
    CHECK(ec == wechat::crypto_errc::bad_key_length);
    wechat::aes128_cbc_decrypt(key, std::string(24, 'i'), std::string(16, 'x'), ec);
    CHECK(ec == wechat::crypto_errc::bad_iv_length);
    wechat::aes128_cbc_encrypt(std::string(32, 'k'), iv, "x", ec);
    CHECK(ec == wechat::crypto_errc::bad_key_length);
    CHECK_THROWS_AS(wechat::aes128_cbc_decrypt(key, iv, ""), wechat::error);
  }
}

TEST_CASE("SHA-1 and HMAC-SHA256 match their standard vectors", "[crypto][digest]") {
  CHECK(wechat::sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(wechat::sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  // RFC 4231 test case 2
  CHECK(wechat::hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // HMAC of the empty message (what checksession signs), cross-checked with
  // `printf '' | openssl dgst -sha256 -hmac key`
  CHECK(wechat::hmac_sha256_hex("key", "") ==
        "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
}

TEST_CASE("constant_time_equal compares contents and lengths", "[crypto]") {
  CHECK(wechat::constant_time_equal("", ""));
  CHECK(wechat::constant_time_equal("abc", "abc"));
  CHECK_FALSE(wechat::constant_time_equal("abc", "abd"));
  CHECK_FALSE(wechat::constant_time_equal("abc", "abcd"));
  CHECK_FALSE(wechat::constant_time_equal("abc", ""));
}

TEST_CASE("random_bytes gives the requested length and differs between calls", "[crypto]") {
  std::error_code ec;
  const std::string a = wechat::random_bytes(16, ec);
  CHECK_FALSE(ec);
  CHECK(a.size() == 16);
  CHECK(wechat::random_bytes(16) != a);
  CHECK(wechat::random_bytes(0).empty());
}
