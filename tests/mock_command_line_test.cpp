// mock_wechat's command line as a user runs it: what the admin-token guard takes for
// loopback (wechat/detail/net.hpp), and messages that never repeat an argument that could
// be a secret (an --admin-token slid into an option's place by a forgotten value).
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

namespace {

struct result {
  int status = -1;
  std::string out;  ///< stdout and stderr
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs mock_wechat with `args`; one that starts serving is killed after 5 s (timeout).
result run(const std::vector<std::string>& args) {
  std::string cmd = "timeout 5 " + quote(MOCK_WECHAT_PATH);
  for (const auto& a : args)
    cmd += " " + quote(a);
  cmd += " 2>&1 < /dev/null";
  result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

}  // namespace

TEST_CASE("mock_wechat wants --admin-token for a host that only looks like loopback",
          "[mock][cli][loopback]") {
  for (const char* host :
       {"127.evil.example", "127.0.0.1.nip.io", "127.1", "0x7f.0.0.1", "localhost.", "10.0.0.1"}) {
    CAPTURE(host);
    const result r = run({"--host", host, "--port", "0"});
    CAPTURE(r.out);
    CHECK(r.status == 2);
    CHECK(first_line(r.out).find("give --admin-token") != std::string::npos);
    CHECK(r.out.find("listening") == std::string::npos);
  }
}

TEST_CASE("mock_wechat's command-line errors never repeat an argument that could be a value",
          "[mock][cli][secrets]") {
  for (const std::string secret : {"s3cr3t-admin-TOKEN", "--s3cr3t-token"}) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"--host", "--admin-token", secret},  // a forgotten --host value
             {"--scenario", "--admin-token", secret, "--port", "0"},
             {"--port", "0", secret, "x"},
             {secret, "--port"},
             {"--port", "0", secret}}) {
      CAPTURE(secret, args);
      const result r = run(args);
      CAPTURE(r.out);
      CHECK(r.status == 2);
      CHECK(r.out.find("s3cr3t") == std::string::npos);
      CHECK(first_line(r.out).find("is not an option (not shown: it may be a secret") !=
            std::string::npos);
    }
  }
  SECTION("an option's own name is still named") {
    const result r = run({"--port", "0", "--admin-token"});
    CHECK(r.status == 2);
    CHECK(first_line(r.out) == "mock_wechat: option --admin-token needs a value");
  }
  SECTION("and the position of what is not one") {
    const result r = run({"--port", "0", "--prot", "8080"});
    CHECK(r.status == 2);
    CHECK(first_line(r.out).rfind("mock_wechat: argument 3 is not an option", 0) == 0);
  }
}
