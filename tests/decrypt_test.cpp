#include <catch2/catch.hpp>
#include <wechat/decrypt.hpp>

#include "fixtures.hpp"

#include <malloc.h>

#include <string>

using fixtures::sample_appid;
using fixtures::sample_encrypted_data;
using fixtures::sample_iv;
using fixtures::sample_session_key;

namespace {

wechat::verify_options opts(std::string_view appid = sample_appid) {
  wechat::verify_options o;
  o.appid = appid;
  return o;
}

// A realistic payload encrypted under fresh keys.
struct fresh {
  std::string key = fixtures::random_key();
  std::string iv = fixtures::random_key();
  std::string data;
  explicit fresh(const std::string& plaintext) { data = fixtures::encrypt(key, iv, plaintext); }
};

std::string user_json(const std::string& extra = "") {
  return R"({"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,)"
         R"("language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN",)"
         R"("avatarUrl":"https://thirdwx.qlogo.cn/x/132",)" +
         extra + R"("watermark":{"timestamp":1700000000,"appid":"wx4f4bc4dec97d474b"}})";
}

std::error_code user_error(const std::string& key, const wechat::device_data& d,
                           const wechat::verify_options& o = opts()) {
  std::error_code ec;
  const wechat::user_info u = wechat::decrypt_user_info(key, d, o, ec);
  CHECK(u.openid.empty());  // nothing half-filled comes back on failure
  return ec;
}

std::string replace_all(std::string s, char from, char to) {
  for (char& c : s)
    if (c == from) c = to;
  return s;
}

}  // namespace

TEST_CASE("WeChat's own published sample decrypts and verifies", "[decrypt]") {
  std::error_code ec;
  const wechat::user_info u =
      wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv}, opts(), ec);
  REQUIRE_FALSE(ec);
  CHECK(u.openid == "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
  CHECK(u.nickname == "Band");
  CHECK(u.gender == 1);
  CHECK(u.language == "zh_CN");
  CHECK(u.city == "Guangzhou");
  CHECK(u.province == "Guangdong");
  CHECK(u.country == "CN");
  CHECK(u.avatar_url.rfind("http://wx.qlogo.cn/mmopen/vi_32/", 0) == 0);
  REQUIRE(u.unionid.has_value());
  CHECK(*u.unionid == "ocMvos6NjeKLIBqg5Mr9QjxrP1FA");
  CHECK(u.watermark.appid == sample_appid);
  CHECK(u.watermark.timestamp == fixtures::sample_timestamp);

  SECTION("the throwing overload returns the same") {
    const auto t =
        wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv}, opts());
    CHECK(t.openid == u.openid);
    CHECK(t.unionid == u.unionid);
  }
  SECTION("the generic form returns the whole verified JSON") {
    const nlohmann::json j =
        wechat::decrypt_json(sample_session_key, {sample_encrypted_data, sample_iv}, opts());
    CHECK(j.at("openId") == "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
    CHECK(j.at("watermark").at("timestamp") == fixtures::sample_timestamp);
  }
}

TEST_CASE("the watermark age is checked to the second when asked", "[decrypt][watermark]") {
  wechat::verify_options o = opts();
  o.max_age = std::chrono::seconds(300);
  std::error_code ec;
  o.now = fixtures::sample_timestamp + 300;
  wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv}, o, ec);
  CHECK_FALSE(ec);
  o.now = fixtures::sample_timestamp + 301;
  wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv}, o, ec);
  CHECK(ec == wechat::decrypt_errc::watermark_too_old);
  wechat::decrypt_json(sample_session_key, {sample_encrypted_data, sample_iv}, o, ec);
  CHECK(ec == wechat::decrypt_errc::watermark_too_old);
  SECTION("with the system clock, a 2016 payload is far too old") {
    o.now = 0;
    CHECK(user_error(sample_session_key, {sample_encrypted_data, sample_iv}, o) ==
          wechat::decrypt_errc::watermark_too_old);
  }
  SECTION("max_age zero disables the check") {
    o.max_age = std::chrono::seconds(0);
    o.now = 0;
    wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv}, o, ec);
    CHECK_FALSE(ec);
  }
  SECTION("a clock instead of a number: the test's time (a manual clock, the mock's)") {
    wechat::manual_clock clk(fixtures::sample_timestamp + 300);
    o.now = 0;
    o.clock = &clk;
    wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv}, o, ec);
    CHECK_FALSE(ec);
    clk.advance(std::chrono::seconds(1));
    wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv}, o, ec);
    CHECK(ec == wechat::decrypt_errc::watermark_too_old);
    o.now = fixtures::sample_timestamp;  // a number given wins over the clock
    wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv}, o, ec);
    CHECK_FALSE(ec);
  }
}

TEST_CASE("fresh payloads round-trip, unicode nick names included", "[decrypt]") {
  SECTION("raw UTF-8 Chinese and emoji") {
    const fresh f(
        R"({"openId":"o1","nickName":"微信用户😀","watermark":{"timestamp":1,"appid":"wx4f4bc4dec97d474b"}})");
    CHECK(wechat::decrypt_user_info(f.key, {f.data, f.iv}, opts()).nickname == "微信用户😀");
  }
  SECTION("\\u escapes, surrogate pairs included, decode to UTF-8") {
    const fresh f(
        R"({"openId":"o1","nickName":"\u5fae\u4fe1\ud83d\ude00 \"q\" \\ \/","watermark":{"timestamp":1,"appid":"wx4f4bc4dec97d474b"}})");
    CHECK(wechat::decrypt_user_info(f.key, {f.data, f.iv}, opts()).nickname == "微信😀 \"q\" \\ /");
  }
  SECTION("escapes in keys are decoded before matching") {
    const fresh f(
        R"({"open\u0049d":"o2","watermark":{"timestamp":1,"appid":"wx4f4bc4dec97d474b"}})");
    CHECK(wechat::decrypt_user_info(f.key, {f.data, f.iv}, opts()).openid == "o2");
  }
}

TEST_CASE("device-side camelCase names and their lowercase variants both decode", "[decrypt]") {
  SECTION("camelCase, as WeChat sends it") {
    const fresh f(user_json(R"("unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA",)"));
    const auto u = wechat::decrypt_user_info(f.key, {f.data, f.iv}, opts());
    CHECK(u.openid == "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
    CHECK(u.nickname == "Band");
    CHECK(u.avatar_url == "https://thirdwx.qlogo.cn/x/132");
    CHECK(u.unionid == std::optional<std::string>("ocMvos6NjeKLIBqg5Mr9QjxrP1FA"));
  }
  SECTION("lowercase variants") {
    const fresh f(
        R"({"openid":"o3","nickname":"n","avatar_url":"a","unionid":"u3","watermark":{"timestamp":1,"appid":"wx4f4bc4dec97d474b"}})");
    const auto u = wechat::decrypt_user_info(f.key, {f.data, f.iv}, opts());
    CHECK(u.openid == "o3");
    CHECK(u.nickname == "n");
    CHECK(u.avatar_url == "a");
    CHECK(u.unionid == std::optional<std::string>("u3"));
  }
  SECTION("no unionId (app not bound) and a null unionId are both absent") {
    const fresh f1(user_json());
    CHECK_FALSE(wechat::decrypt_user_info(f1.key, {f1.data, f1.iv}, opts()).unionid);
    const fresh f2(user_json(R"("unionId":null,)"));
    CHECK_FALSE(wechat::decrypt_user_info(f2.key, {f2.data, f2.iv}, opts()).unionid);
  }
  SECTION("unknown fields, nested or not, are ignored") {
    const fresh f(user_json(R"("is_demote":true,"extra":{"a":[1,2.5e3,{"b":null}],"c":"d"},)"));
    CHECK(wechat::decrypt_user_info(f.key, {f.data, f.iv}, opts()).city == "Guangzhou");
  }
}

TEST_CASE("phone numbers decode with countryCode as a string or a number", "[decrypt][phone]") {
  for (const char* cc : {R"("86")", "86"}) {
    CAPTURE(cc);
    const fresh f(
        std::string(
            R"({"phoneNumber":"+8613800138000","purePhoneNumber":"13800138000","countryCode":)") +
        cc + R"(,"watermark":{"timestamp":1637744274,"appid":"wx4f4bc4dec97d474b"}})");
    std::error_code ec;
    const wechat::phone_info p = wechat::decrypt_phone_number(f.key, {f.data, f.iv}, opts(), ec);
    REQUIRE_FALSE(ec);
    CHECK(p.phone_number == "+8613800138000");
    CHECK(p.pure_phone_number == "13800138000");
    CHECK(p.country_code == "86");
    CHECK(p.watermark.timestamp == 1637744274);
    CHECK(wechat::decrypt_phone_number(f.key, {f.data, f.iv}, opts()).country_code == "86");
  }
  SECTION("a user-info payload is not a phone payload") {
    std::error_code ec;
    wechat::decrypt_phone_number(sample_session_key, {sample_encrypted_data, sample_iv}, opts(),
                                 ec);
    CHECK(ec == wechat::decrypt_errc::unexpected_payload);
    CHECK_THROWS_AS(wechat::decrypt_phone_number(sample_session_key,
                                                 {sample_encrypted_data, sample_iv}, opts()),
                    wechat::error);
  }
}

TEST_CASE("each malformed input is named: session_key", "[decrypt][errors]") {
  const wechat::device_data d{sample_encrypted_data, sample_iv};
  CHECK(user_error("", d) == wechat::decrypt_errc::session_key_malformed);
  CHECK(user_error("tiihtNczf5v6AKRyjwEUhQ=", d) == wechat::decrypt_errc::session_key_malformed);
  CHECK(user_error("tiihtNczf5v6AKRyjwEUhQ!=", d) == wechat::decrypt_errc::session_key_malformed);
  CHECK(user_error("tiihtNczf5v6AKRyjwEUhQ==tiih", d) ==
        wechat::decrypt_errc::session_key_malformed);
  CHECK(user_error(wechat::base64_encode(std::string(17, 'x')), d) ==
        wechat::decrypt_errc::session_key_malformed);
  const std::string plus = fixtures::key_with_plus();
  CHECK(user_error(replace_all(plus, '+', ' '), d) == wechat::decrypt_errc::session_key_has_space);
}

TEST_CASE("each malformed input is named: iv", "[decrypt][errors]") {
  CHECK(user_error(sample_session_key, {sample_encrypted_data, ""}) ==
        wechat::decrypt_errc::iv_malformed);
  CHECK(user_error(sample_session_key, {sample_encrypted_data, "r7BXXKkLb8qrSNn05n0qiA"}) ==
        wechat::decrypt_errc::iv_malformed);
  CHECK(user_error(sample_session_key, {sample_encrypted_data, "r7BXXKkLb8qrSNn05n0q-A=="}) ==
        wechat::decrypt_errc::iv_malformed);
  const std::string plus = fixtures::key_with_plus();
  CHECK(user_error(sample_session_key, {sample_encrypted_data, replace_all(plus, '+', ' ')}) ==
        wechat::decrypt_errc::iv_has_space);
}

TEST_CASE("each malformed input is named: encryptedData", "[decrypt][errors]") {
  CHECK(user_error(sample_session_key, {"not-base64!", sample_iv}) ==
        wechat::decrypt_errc::data_not_base64);
  CHECK(user_error(sample_session_key, {"CiyLU1Aw%2BKjv", sample_iv}) ==
        wechat::decrypt_errc::data_not_base64);
  CHECK(user_error(sample_session_key, {sample_encrypted_data.substr(1), sample_iv}) ==
        wechat::decrypt_errc::data_not_base64);
  CHECK(user_error(sample_session_key, {replace_all(sample_encrypted_data, '+', ' '), sample_iv}) ==
        wechat::decrypt_errc::data_has_space);
  SECTION("decoded length not a whole number of AES blocks") {
    CHECK(user_error(sample_session_key, {"", sample_iv}) == wechat::decrypt_errc::data_bad_length);
    CHECK(user_error(sample_session_key, {wechat::base64_encode(std::string(15, 'x')),
                                          sample_iv}) == wechat::decrypt_errc::data_bad_length);
    // truncated in storage: whole base64 quads lost from the end
    CHECK(user_error(sample_session_key, {sample_encrypted_data.substr(0, 400), sample_iv}) ==
          wechat::decrypt_errc::data_bad_length);
  }
}

TEST_CASE("a session_key from another login fails the padding check", "[decrypt][errors]") {
  // A fixed wrong key, so the outcome is deterministic (a random wrong key passes the
  // padding check about once in 256 tries and is then caught as not_json).
  CHECK(user_error("AAAAAAAAAAAAAAAAAAAAAA==", {sample_encrypted_data, sample_iv}) ==
        wechat::decrypt_errc::bad_padding);
  CHECK(std::error_code(wechat::decrypt_errc::bad_padding).message().find("older wx.login") !=
        std::string::npos);
}

TEST_CASE("a random stale key is always caught, whichever check catches it", "[decrypt][errors]") {
  int padding = 0, other = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::error_code ec =
        user_error(fixtures::random_key(), {sample_encrypted_data, sample_iv});
    REQUIRE(ec);
    (ec == wechat::decrypt_errc::bad_padding ? padding : other)++;
  }
  CHECK(padding > 1900);  // ~1/256 pass the padding check and fail later instead
}

TEST_CASE("a wrong iv garbles the first block: padding passes, JSON fails", "[decrypt][errors]") {
  CHECK(user_error(sample_session_key, {sample_encrypted_data, "AAAAAAAAAAAAAAAAAAAAAA=="}) ==
        wechat::decrypt_errc::not_json);
}

TEST_CASE("plaintext that is not JSON, or JSON of the wrong shape, is told apart",
          "[decrypt][errors]") {
  auto err = [](const std::string& plaintext) {
    const fresh f(plaintext);
    return user_error(f.key, {f.data, f.iv});
  };
  const std::string wm = R"("watermark":{"timestamp":1,"appid":"wx4f4bc4dec97d474b"})";
  CHECK(err("hello") == wechat::decrypt_errc::not_json);
  CHECK(err(R"({"openId":"o1",)" + wm) == wechat::decrypt_errc::not_json);  // unterminated
  CHECK(err(R"({"openId":"o1",)" + wm + "} x") ==
        wechat::decrypt_errc::not_json);  // trailing garbage
  CHECK(err("{\"openId\":\"o\xff\"," + wm + "}") ==
        wechat::decrypt_errc::not_json);  // invalid UTF-8
  CHECK(err(R"([1,2,3])") == wechat::decrypt_errc::unexpected_payload);
  CHECK(err("{" + wm + "}") == wechat::decrypt_errc::unexpected_payload);        // no openId
  CHECK(err(R"({"nickName":"x",)" + wm + "}") ==
        wechat::decrypt_errc::profile_without_ids);  // no openId, a profile: getUserProfile's
  CHECK(err(R"({"openId":"o1"})") == wechat::decrypt_errc::unexpected_payload);  // no watermark
  CHECK(err(R"({"openId":"o1","watermark":{"appid":"wx4f4bc4dec97d474b"}})") ==
        wechat::decrypt_errc::unexpected_payload);  // no timestamp
  CHECK(err(R"({"openId":"o1","watermark":{"timestamp":"1","appid":"wx4f4bc4dec97d474b"}})") ==
        wechat::decrypt_errc::unexpected_payload);  // wrong type
  CHECK(err(R"({"openId":1,)" + wm + "}") == wechat::decrypt_errc::unexpected_payload);
  CHECK(err(R"({"openId":"o1","gender":"1",)" + wm + "}") ==
        wechat::decrypt_errc::unexpected_payload);
  CHECK(err(R"({"openId":"o1","watermark":[]})") == wechat::decrypt_errc::unexpected_payload);
  SECTION("the generic form tells them apart too") {
    std::error_code ec;
    const fresh f1("hello");
    wechat::decrypt_json(f1.key, {f1.data, f1.iv}, opts(), ec);
    CHECK(ec == wechat::decrypt_errc::not_json);
    const fresh f2(R"({"openId":"o1"})");
    wechat::decrypt_json(f2.key, {f2.data, f2.iv}, opts(), ec);
    CHECK(ec == wechat::decrypt_errc::unexpected_payload);
  }
}

TEST_CASE("getUserProfile data: no ids, named as such, read by decrypt_user_profile",
          "[decrypt][profile]") {
  // A payload as wx.getUserProfile gives it since 2022-11-08: anonymous, no openId/unionId.
  const std::string plain =
      R"({"nickName":"微信用户","gender":0,"language":"","city":"","province":"","country":"",)"
      R"("avatarUrl":"https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132",)"
      R"("is_demote":true,"watermark":{"timestamp":1700000000,"appid":"wx4f4bc4dec97d474b"}})";
  const fresh f(plain);
  const std::string raw = R"({"nickName":"微信用户","gender":0})";
  const std::string sig = wechat::raw_data_signature(raw, f.key);
  // decrypt_user_info says what it is (not a shape error), after verifying it is genuine
  CHECK(user_error(f.key, {f.data, f.iv, raw, sig}) == wechat::decrypt_errc::profile_without_ids);
  CHECK(std::string(std::error_code(wechat::decrypt_errc::profile_without_ids).message())
            .find("decrypt_user_profile") != std::string::npos);
  CHECK(user_error(f.key, {f.data, f.iv, raw, std::string(40, '0')}) ==
        wechat::decrypt_errc::signature_mismatch);  // a forged rawData is still caught first
  const auto p = wechat::decrypt_user_profile(f.key, {f.data, f.iv, raw, sig}, opts());
  CHECK(p.nickname == "微信用户");
  CHECK(p.gender == 0);
  CHECK(p.city.empty());
  CHECK(p.avatar_url.find("thirdwx.qlogo.cn") != std::string::npos);
  CHECK(p.watermark.timestamp == 1700000000);
  std::error_code ec;
  // the watermark still applies: another app's, or too old
  wechat::decrypt_user_profile(f.key, {f.data, f.iv}, opts("wx0000000000000000"), ec);
  CHECK(ec == wechat::decrypt_errc::appid_mismatch);
  wechat::verify_options aged = opts();
  aged.max_age = std::chrono::seconds(60);
  aged.now = 1700000061;
  const auto stale = wechat::decrypt_user_profile(f.key, {f.data, f.iv}, aged, ec);
  CHECK(ec == wechat::decrypt_errc::watermark_too_old);
  CHECK(stale.nickname.empty());  // nothing half-filled on failure
  CHECK_THROWS_AS(wechat::decrypt_user_profile(f.key, {f.data, f.iv}, aged), wechat::error);
  // getUserInfo data is a profile too (its ids are not part of the result)
  const fresh g(user_json());
  CHECK(wechat::decrypt_user_profile(g.key, {g.data, g.iv}, opts()).nickname == "Band");
  // a payload without a watermark is not a profile either
  const fresh h(R"({"nickName":"x"})");
  wechat::decrypt_user_profile(h.key, {h.data, h.iv}, opts(), ec);
  CHECK(ec == wechat::decrypt_errc::unexpected_payload);
  // nor phone-number data sent to the wrong place: a shape error, from both functions
  const fresh ph(R"({"phoneNumber":"13800138000","purePhoneNumber":"13800138000",)"
                 R"("countryCode":"86","watermark":{"timestamp":1700000000,)"
                 R"("appid":"wx4f4bc4dec97d474b"}})");
  wechat::decrypt_user_profile(ph.key, {ph.data, ph.iv}, opts(), ec);
  CHECK(ec == wechat::decrypt_errc::unexpected_payload);
  CHECK(user_error(ph.key, {ph.data, ph.iv}) == wechat::decrypt_errc::unexpected_payload);
}

TEST_CASE("the watermark must name this app", "[decrypt][watermark]") {
  CHECK(user_error(sample_session_key, {sample_encrypted_data, sample_iv},
                   opts("wx0000000000000000")) == wechat::decrypt_errc::appid_mismatch);
  CHECK(user_error(sample_session_key, {sample_encrypted_data, sample_iv}, opts("")) ==
        wechat::decrypt_errc::appid_not_set);
  std::error_code ec;
  wechat::decrypt_json(sample_session_key, {sample_encrypted_data, sample_iv},
                       opts("wx0000000000000000"), ec);
  CHECK(ec == wechat::decrypt_errc::appid_mismatch);
  CHECK_THROWS_AS(
      wechat::decrypt_json(sample_session_key, {sample_encrypted_data, sample_iv}, opts("x")),
      wechat::error);
}

TEST_CASE("the rawData signature is verified when given", "[decrypt][signature]") {
  const std::string raw =
      R"({"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/x/0"})";
  const std::string sig = wechat::raw_data_signature(raw, sample_session_key);
  SECTION("sha1 of rawData + session_key text, as `printf %s ... | sha1sum` computes it") {
    CHECK(wechat::raw_data_signature(R"({"nickName":"Band"})", sample_session_key) ==
          "54b71917aab21b53e850dec1b03f73b0bbeb6abe");
  }
  SECTION("valid, in lowercase or uppercase hex") {
    std::error_code ec;
    wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv, raw, sig},
                              opts(), ec);
    CHECK_FALSE(ec);
    std::string upper = sig;
    for (char& c : upper)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    wechat::verify_signature(raw, upper, sample_session_key, ec);
    CHECK_FALSE(ec);
    CHECK_NOTHROW(wechat::verify_signature(raw, sig, sample_session_key));
  }
  SECTION("rawData altered") {
    CHECK(user_error(sample_session_key, {sample_encrypted_data, sample_iv, raw + " ", sig}) ==
          wechat::decrypt_errc::signature_mismatch);
    CHECK(user_error(sample_session_key, {sample_encrypted_data, sample_iv, "", sig}) ==
          wechat::decrypt_errc::signature_mismatch);
    CHECK_THROWS_AS(wechat::verify_signature(raw + " ", sig, sample_session_key), wechat::error);
  }
  SECTION("signature not 40 hex characters") {
    CHECK(user_error(sample_session_key, {sample_encrypted_data, sample_iv, raw, sig.substr(1)}) ==
          wechat::decrypt_errc::signature_malformed);
    CHECK(user_error(sample_session_key, {sample_encrypted_data, sample_iv, raw, ""}) ==
          wechat::decrypt_errc::signature_malformed);
    CHECK(user_error(sample_session_key,
                     {sample_encrypted_data, sample_iv, raw, std::string(40, 'g')}) ==
          wechat::decrypt_errc::signature_malformed);
  }
  SECTION("the generic form checks it too") {
    std::error_code ec;
    wechat::decrypt_json(sample_session_key, {sample_encrypted_data, sample_iv, raw + "x", sig},
                         opts(), ec);
    CHECK(ec == wechat::decrypt_errc::signature_mismatch);
  }
}

TEST_CASE("checksession's signature is hmac_sha256 keyed by the session_key text",
          "[decrypt][signature]") {
  // `printf '' | openssl dgst -sha256 -hmac 'tiihtNczf5v6AKRyjwEUhQ=='`
  CHECK(wechat::session_key_signature(sample_session_key) ==
        "7154f9f8b4b76b92f541cbf0e37d48840fa06e5e42da92a6f80168a1516a4735");
}

TEST_CASE("encrypt_data validates its inputs and round-trips", "[decrypt][encrypt]") {
  std::error_code ec;
  wechat::encrypt_data("short", "{}", sample_iv, ec);
  CHECK(ec == wechat::decrypt_errc::session_key_malformed);
  wechat::encrypt_data(sample_session_key, "{}", "bad", ec);
  CHECK(ec == wechat::decrypt_errc::iv_malformed);
  CHECK_THROWS_AS(wechat::encrypt_data(sample_session_key, "{}", "bad"), wechat::error);
  const std::string enc = wechat::encrypt_data(sample_session_key, "plain text", sample_iv);
  CHECK(wechat::decrypt_unverified(sample_session_key, enc, sample_iv) == "plain text");
  wechat::decrypt_unverified("AAAAAAAAAAAAAAAAAAAAAA==", sample_encrypted_data, sample_iv, ec);
  CHECK(ec == wechat::decrypt_errc::bad_padding);
}

TEST_CASE("no decrypt message or exception text contains the session_key", "[decrypt][secrets]") {
  const std::string key = fixtures::key_with_plus();
  const std::string bad_keys[] = {key.substr(0, 20), replace_all(key, '+', ' '), key};
  int thrown = 0;
  for (const std::string& k : bad_keys) {
    for (const wechat::device_data& d :
         {wechat::device_data{sample_encrypted_data, sample_iv},
          wechat::device_data{"x", sample_iv},
          wechat::device_data{sample_encrypted_data, sample_iv, "raw", "sig"}}) {
      try {
        wechat::decrypt_user_info(k, d, opts());
      } catch (const wechat::error& e) {
        ++thrown;
        const std::string what = e.what();
        CHECK(what.find(key.substr(0, 8)) == std::string::npos);
        CHECK(what.find(k.substr(0, 8)) == std::string::npos);
      }
    }
  }
  CHECK(thrown == 9);  // every combination is a failure path
}

TEST_CASE("24 base64 characters that decode to 17 or 18 bytes are malformed, not overflowed",
          "[decrypt][errors]") {
  // Found by AddressSanitizer: such a key was decoded straight into a 16-byte buffer.
  const std::string k17 = wechat::base64_encode(std::string(17, 'k'));  // 24 chars, one '='
  const std::string k18 = wechat::base64_encode(std::string(18, 'k'));  // 24 chars, no '='
  REQUIRE(k17.size() == 24);
  REQUIRE(k18.size() == 24);
  for (const std::string& k : {k17, k18}) {
    CHECK(user_error(k, {sample_encrypted_data, sample_iv}) ==
          wechat::decrypt_errc::session_key_malformed);
    CHECK(user_error(sample_session_key, {sample_encrypted_data, k}) ==
          wechat::decrypt_errc::iv_malformed);
    std::error_code ec;
    wechat::encrypt_data(k, "{}", sample_iv, ec);
    CHECK(ec == wechat::decrypt_errc::session_key_malformed);
  }
}

TEST_CASE("a huge payload's buffer is given back at the next ordinary decryption",
          "[decrypt][bounds]") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  SUCCEED("the sanitizers' allocator does not keep glibc's counts: checked in the plain build");
  return;
#endif
  // glibc's count of bytes allocated now: the per-thread buffer is not visible otherwise
  const auto allocated = [] {
    const auto m = mallinfo2();
    return m.uordblks + m.hblkhd;  // the heap, and the chunks mapped on their own
  };
  std::error_code ec;
  wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv}, opts(), ec);
  REQUIRE_FALSE(ec);
  const std::size_t before = allocated();
  const std::string huge(std::size_t{8} << 20, 'A');  // 8 MiB of base64: 6 MiB decoded
  wechat::decrypt_user_info(sample_session_key, {huge, sample_iv}, opts(), ec);
  CHECK(ec);  // not a WeChat payload, but it was decoded into the buffer
  CHECK(allocated() >= before + (std::size_t{6} << 20));
  wechat::decrypt_user_info(sample_session_key, {sample_encrypted_data, sample_iv}, opts(), ec);
  REQUIRE_FALSE(ec);
  CHECK(allocated() < before + (std::size_t{8} << 20) + 65536);  // the 8 MiB input only
}
