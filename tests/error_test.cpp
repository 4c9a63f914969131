#include <catch2/catch.hpp>
#include <wechat/error.hpp>

#include <set>

TEST_CASE("api_errc values are WeChat's errcodes verbatim", "[error]") {
  std::error_code ec = wechat::api_errc::code_been_used;
  CHECK(ec.value() == 40163);
  CHECK(ec == wechat::api_errc::code_been_used);
  CHECK(std::string(ec.category().name()) == "wechat.api");
  CHECK(wechat::make_api_error_code(40163) == wechat::api_errc::code_been_used);
  CHECK_FALSE(wechat::make_api_error_code(0));
  CHECK(wechat::make_api_error_code(-1) == wechat::api_errc::system_busy);
}

TEST_CASE("an errcode the library does not name keeps its value and gets a generic message",
          "[error]") {
  const std::error_code ec = wechat::make_api_error_code(61451);
  CHECK(ec.value() == 61451);
  CHECK(ec.message() == "WeChat errcode 61451");
  CHECK(wechat::error_name(ec) == "api_61451");
}

TEST_CASE("every named enumerator has a stable name and its own message", "[error]") {
  std::set<std::string> names, messages;
  auto add = [&](std::error_code ec) {
    const std::string name = wechat::error_name(ec);
    CAPTURE(ec.category().name(), ec.value(), name);
    CHECK(!name.empty());
    CHECK(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos);
    CHECK(names.insert(std::string(ec.category().name()) + name).second);
    CHECK(messages.insert(ec.message()).second);
  };
  for (int v : {-1,    1007,  40001, 40002, 40003, 40013, 40014, 40029, 40030, 40094,
                40097, 40101, 40125, 40163, 40164, 40226, 41001, 41002, 41003, 41004,
                41008, 41009, 42001, 42002, 43002, 45009, 45011, 47001, 48001, 48006,
                61003, 61005, 61006, 61011, 61023, 76001, 76002, 76003, 76021, 76022,
                87007, 87008, 87009, 89002, 89300})
    add(wechat::make_api_error_code(v));
  for (int v = 1; v <= 9; ++v)
    add(static_cast<wechat::transport_errc>(v));
  for (int v = 1; v <= 4; ++v)
    add(static_cast<wechat::protocol_errc>(v));
  for (int v = 1; v <= 10; ++v)
    add(static_cast<wechat::crypto_errc>(v));
  for (int v = 1; v <= 16; ++v)
    add(static_cast<wechat::decrypt_errc>(v));
  for (int v = 1; v <= 5; ++v)
    add(static_cast<wechat::component_errc>(v));
  CHECK(names.size() == 45 + 9 + 4 + 10 + 16 + 5);
  CHECK(wechat::error_name(wechat::component_errc::no_ticket) == "no_ticket");
  CHECK(wechat::error_name(wechat::api_errc::code_been_used) == "code_been_used");
  CHECK(wechat::error_name(wechat::decrypt_errc::bad_padding) == "bad_padding");
  CHECK(wechat::error_name(std::error_code{}) == "ok");
}

TEST_CASE("categories are distinct so equal values in two domains never compare equal", "[error]") {
  const std::error_code a = wechat::crypto_errc::bad_padding;
  const std::error_code b = std::error_code(a.value(), wechat::decrypt_category());
  CHECK(a.value() == b.value());
  CHECK(a != b);
  CHECK(a != wechat::decrypt_errc::bad_padding);
  CHECK(std::error_code(wechat::transport_errc::timeout) != wechat::protocol_errc::not_json);
}

TEST_CASE("api_error carries errcode, errmsg and rid", "[error]") {
  const wechat::api_error e(40029, "invalid code, rid: 66c69111-4157f271-729ca238",
                            "66c69111-4157f271-729ca238");
  CHECK(e.errcode() == 40029);
  CHECK(e.rid() == "66c69111-4157f271-729ca238");
  CHECK(e.code() == wechat::api_errc::invalid_code);
  CHECK(std::string(e.what()).find("invalid code, rid: 66c69111-4157f271-729ca238") !=
        std::string::npos);
  const wechat::error& base = e;  // catchable as the library's base exception
  CHECK(base.code().value() == 40029);
}

TEST_CASE("throw_if_error throws wechat::error only on failure, with context", "[error]") {
  CHECK_NOTHROW(wechat::throw_if_error(std::error_code{}));
  try {
    wechat::throw_if_error(wechat::decrypt_errc::bad_padding, "decrypt_user_info");
    FAIL("no exception");
  } catch (const wechat::error& e) {
    CHECK(e.code() == wechat::decrypt_errc::bad_padding);
    CHECK(std::string(e.what()).rfind("decrypt_user_info: ", 0) == 0);
  }
}

TEST_CASE("the errcode table is the one source: enum, name, message and WeChat's errmsg",
          "[error]") {
  std::set<int> values;
  std::set<std::string> names;
  for (const auto& e : wechat::api_errcs()) {
    const std::error_code ec = e.code;
    CAPTURE(ec.value(), e.name);
    CHECK(values.insert(ec.value()).second);
    CHECK(names.insert(e.name).second);
    CHECK(wechat::find_api_errc(ec.value()) == &e);
    CHECK(wechat::error_name(ec) == e.name);
    CHECK(ec.message() == e.text);
    if (e.code == wechat::api_errc::not_plugin_code)
      CHECK(std::string(e.errmsg).empty());  // as observed: " rid: ..." alone
    else
      CHECK(std::string(e.errmsg).size() > 5);
    CHECK(wechat::make_api_error_code(ec.value()) == e.code);
  }
  CHECK(wechat::api_errcs().size() == 45);
  CHECK(wechat::find_api_errc(61451) == nullptr);
  CHECK(std::string(wechat::find_api_errc(40029)->errmsg) == "invalid code");
}

TEST_CASE("throw_if_error throws api_error for a WeChat errcode, errmsg and rid from the detail",
          "[error]") {
  wechat::error_detail d;
  d.errcode = 40163;
  d.errmsg = "code been used, rid: 6a0b1c2d-11111111-22222222";
  d.rid = "6a0b1c2d-11111111-22222222";
  try {
    wechat::throw_if_error(wechat::api_errc::code_been_used, d, "code2session");
    FAIL("no exception");
  } catch (const wechat::api_error& e) {
    CHECK(e.errcode() == 40163);
    CHECK(e.rid() == d.rid);
    CHECK(std::string(e.what()).rfind("code2session: WeChat errcode 40163: " + d.errmsg, 0) == 0);
  }
  SECTION("without a detail it is still an api_error, with the library's text") {
    try {
      wechat::throw_if_error(wechat::api_errc::invalid_code);
      FAIL("no exception");
    } catch (const wechat::api_error& e) {
      CHECK(e.errcode() == 40029);
      CHECK(std::string(e.what()) ==
            "WeChat errcode 40029: invalid code: unknown, expired (5 minutes), or issued to "
            "another appid");
    }
  }
  SECTION("another domain names the field or HTTP status the detail holds") {
    wechat::error_detail p;
    p.field = "openid";
    try {
      wechat::throw_if_error(wechat::protocol_errc::missing_field, p, "code2session");
      FAIL("no exception");
    } catch (const wechat::api_error&) {
      FAIL("not a WeChat errcode");
    } catch (const wechat::error& e) {
      CHECK(std::string(e.what()).rfind("code2session (field 'openid'): ", 0) == 0);
    }
  }
}

TEST_CASE("throw_if_error ends the text with the detail's cause, and a copy keeps it",
          "[error][cause]") {
  wechat::error_detail d;
  d.cause = "127.0.0.1:8443: connection refused";
  const auto thrown = [](const std::error_code& ec, const wechat::error_detail& detail,
                         const char* context) -> std::string {
    try {
      wechat::throw_if_error(ec, detail, context);
    } catch (const wechat::error& e) {
      CHECK(e.code() == ec);
      const wechat::error copy = e;  // what() is not rebuilt from the code
      CHECK(std::string(copy.what()) == e.what());
      return e.what();
    }
    return "no exception";
  };
  CHECK(thrown(wechat::transport_errc::connect_failed, d, "code2session") ==
        "code2session: could not connect to the WeChat API host (127.0.0.1:8443: connection "
        "refused)");
  CHECK(thrown(wechat::transport_errc::connect_failed, d, nullptr) ==
        "could not connect to the WeChat API host (127.0.0.1:8443: connection refused)");
  d.http_status = 502;
  d.cause = "127.0.0.1:8443: answered HTTP 502";
  CHECK(thrown(wechat::transport_errc::http_status, d, "access token") ==
        "access token (HTTP 502): the server answered with a non-2xx HTTP status (127.0.0.1:8443: "
        "answered HTTP 502)");
  SECTION("no cause: the text is as before") {
    CHECK(thrown(wechat::transport_errc::timeout, {}, "code2session") ==
          "code2session: the request timed out");
  }
}
