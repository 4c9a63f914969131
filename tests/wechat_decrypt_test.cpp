// The wechat-decrypt tool, run as a user runs it: exit codes, the one-line diagnosis, and
// the session_key never printed.
#include <catch2/catch.hpp>
#include <wechat/decrypt.hpp>

#include "fixtures.hpp"

#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

struct result {
  int status = -1;
  std::string out;
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

result run(const std::vector<std::string>& args) {
  std::string cmd = WECHAT_DECRYPT_PATH;
  for (const auto& a : args)
    cmd += " " + quote(a);
  cmd += " 2>&1";
  result r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    r.out.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::vector<std::string> sample_args(const std::string& key = fixtures::sample_session_key,
                                     const std::string& iv = fixtures::sample_iv,
                                     const std::string& data = fixtures::sample_encrypted_data,
                                     const std::string& appid = fixtures::sample_appid) {
  return {"--appid", appid, "--session-key", key, "--iv", iv, "--data", data};
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s)
    n += c == '\n';
  return n;
}

void expect_failure(const result& r, const std::string& name, const std::string& key) {
  CAPTURE(r.out);
  CHECK(r.status == 1);
  CHECK(lines(r.out) == 1);
  CHECK(r.out.rfind("wechat-decrypt: " + name + ": ", 0) == 0);
  CHECK(r.out.find(key.substr(0, 8)) == std::string::npos);
}

}  // namespace

TEST_CASE("wechat-decrypt prints the verified JSON and exits 0", "[tool]") {
  const result r = run(sample_args());
  CHECK(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["openId"] == "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
  CHECK(j["watermark"]["appid"] == fixtures::sample_appid);
  CHECK(r.out.find(fixtures::sample_session_key) == std::string::npos);
}

TEST_CASE("wechat-decrypt names each failure in one line and exits 1", "[tool]") {
  const std::string& key = fixtures::sample_session_key;
  SECTION("stale session_key") {
    expect_failure(run(sample_args("AAAAAAAAAAAAAAAAAAAAAA==")), "bad_padding", key);
  }
  SECTION("truncated session_key") {
    const result r = run(sample_args(key.substr(0, 20)));
    expect_failure(r, "session_key_malformed", key);
    CHECK(r.out.find("-41001") != std::string::npos);
  }
  SECTION("'+' turned into a space in encryptedData") {
    std::string data = fixtures::sample_encrypted_data;
    for (char& c : data)
      if (c == '+') c = ' ';
    expect_failure(run(sample_args(key, fixtures::sample_iv, data)), "data_has_space", key);
  }
  SECTION("encryptedData still URL-encoded") {
    std::string data = fixtures::sample_encrypted_data;
    data.replace(data.find('+'), 1, "%2B");
    const result r = run(sample_args(key, fixtures::sample_iv, data));
    expect_failure(r, "data_not_base64", key);
    CHECK(r.out.find("URL-encoded") != std::string::npos);
  }
  SECTION("iv malformed") {
    expect_failure(run(sample_args(key, "r7BX")), "iv_malformed", key);
  }
  SECTION("wrong iv") {
    expect_failure(run(sample_args(key, "AAAAAAAAAAAAAAAAAAAAAA==")), "not_json", key);
  }
  SECTION("another app's payload: both appids shown") {
    const result r = run(sample_args(key, fixtures::sample_iv, fixtures::sample_encrypted_data,
                                     "wx0000000000000000"));
    expect_failure(r, "appid_mismatch", key);
    CHECK(r.out.find("watermark appid wx4f4bc4dec97d474b, --appid wx0000000000000000") !=
          std::string::npos);
  }
  SECTION("too old for --max-age") {
    auto args = sample_args();
    args.insert(args.end(), {"--max-age", "300"});
    const result r = run(args);
    expect_failure(r, "watermark_too_old", key);
    CHECK(r.out.find("watermark timestamp 1477314187") != std::string::npos);
  }
  SECTION("rawData signature mismatch") {
    auto args = sample_args();
    args.insert(args.end(), {"--raw-data", "{}", "--signature", std::string(40, 'a')});
    expect_failure(run(args), "signature_mismatch", key);
  }
}

TEST_CASE("wechat-decrypt explains bad command lines in one line on stderr, exit 2", "[tool]") {
  auto missing = run({"--appid", "wx"});
  CHECK(missing.status == 2);
  CHECK(missing.out == "wechat-decrypt: missing --session-key (see --help)\n");
  auto unknown = run({"--appid", "wx", "--sesion-key", "x"});
  CHECK(unknown.status == 2);
  CHECK(unknown.out ==
        "wechat-decrypt: argument 3 is not an option (did you mean --session-key?) (not "
        "shown: it may be a secret) (see --help)\n");
  auto half = sample_args();
  half.insert(half.end(), {"--raw-data", "{}"});
  CHECK(run(half).status == 2);
  for (const char* age : {"0", "-5", "soon"}) {
    auto aged = sample_args();
    aged.insert(aged.end(), {"--max-age", age});
    const auto r = run(aged);
    CHECK(r.status == 2);
    CHECK(r.out.find("positive") != std::string::npos);
  }
  SECTION("a forgotten value never echoes the next argument (the session_key)") {
    const std::string& key = fixtures::sample_session_key;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--appid", "wx4f4bc4dec97d474b", "--iv", "--session-key", key, "--data", "x"},
             {"--appid", "wx4f4bc4dec97d474b", key},
             {"--session-key", key, "--iv"},
             {"--max-age", key, "--session-key", key},
             {"--iv", "--session-key", key, "--appid", "wx", "--data", "x"}}) {
      const auto r = run(args);
      CAPTURE(r.out);
      CHECK(r.status == 2);
      CHECK(lines(r.out) == 1);
      CHECK(r.out.find(key.substr(0, 8)) == std::string::npos);
    }
  }
  SECTION("usage errors go to stderr, results to stdout") {
    std::string cmd = std::string(WECHAT_DECRYPT_PATH) + " --appid wx 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[256];
    CHECK(fread(buf, 1, sizeof buf, p) == 0);
    pclose(p);
  }
  auto help = run({"--help"});
  CHECK(help.status == 0);
  CHECK(help.out.rfind("usage: wechat-decrypt", 0) == 0);
}

// Every way the command line can go wrong, with a secret in each place a value can be:
// no message repeats any of them. Values that look like options ("--hunter-two") too: a
// user's option-shaped secret slid into an option's place by a forgotten value.
TEST_CASE("wechat-decrypt never prints an argument that could be a value, on any error path",
          "[tool][secrets]") {
  const std::string& key = fixtures::sample_session_key;
  const std::vector<std::string> secrets = {key, "--hunter-two", "-Zq9", "--sesion-key-x7Q"};
  for (const std::string& secret : secrets) {
    CAPTURE(secret);
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--iv", "--session-key", secret, "--appid", "wx", "--data", "x"},  // finding 9
             {"--session-key", "--iv", secret},
             {"--appid", "wx", secret},
             {secret},
             {"--appid", "wx", "--iv", "AAAAAAAAAAAAAAAAAAAAAA==", secret, "--data", "x"},
             {"--session-key", secret},
             {"--session-key", secret, "--appid"},
             {"--session-key", secret, "--appid", "wx", "--iv", "x", "--data", "x", "--raw-data",
              "{}"},
             {"--session-key", secret, "--appid", "wx", "--iv", "x", "--data", "x", "--max-age",
              secret},
             {"--max-age", secret, "--session-key", secret},
             {"--raw-data", secret},
             {"--signature", secret, secret}}) {
      const auto r = run(args);
      CAPTURE(args, r.out);
      CHECK(r.status == 2);
      CHECK(lines(r.out) == 1);
      CHECK(r.out.find(secret) == std::string::npos);
      CHECK(r.out.find(key.substr(0, 8)) == std::string::npos);
    }
  }
  SECTION("the decrypt failures (exit 1) never print the key either") {
    for (const auto& args : std::vector<std::vector<std::string>>{
             sample_args(key, "AAAAAAAAAAAAAAAAAAAAAA=="),
             sample_args(key, fixtures::sample_iv, "not base64!"),
             sample_args(key, fixtures::sample_iv, fixtures::sample_encrypted_data, "wx0"),
             sample_args(key.substr(0, 20))}) {
      const auto r = run(args);
      CAPTURE(r.out);
      CHECK(r.status == 1);
      CHECK(r.out.find(key.substr(0, 8)) == std::string::npos);
    }
  }
}
