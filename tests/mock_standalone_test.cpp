// The standalone mock_wechat as DESIGN.md's contract says: one line on stdout with the
// bound port, clean exit 0 on SIGINT/SIGTERM, --scenario, --unionid-rules, and HTTPS with
// a test CA that a verifying client trusts (and a client without it refuses).
#include "mock_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>

using namespace mocktest;

namespace {

class process {
public:
  /// Runs `args` with `env` ("NAME=value") added to an environment without
  /// MOCK_WECHAT_ADMIN_TOKEN; stderr goes to err() when `capture_err`.
  explicit process(std::vector<std::string> args, std::vector<std::string> env = {},
                   bool capture_err = false) {
    int out[2];
    int err[2] = {-1, -1};
    REQUIRE(::pipe(out) == 0);
    if (capture_err) REQUIRE(::pipe(err) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      if (capture_err) {
        ::dup2(err[1], 2);
        ::close(err[0]);
      }
      ::unsetenv("MOCK_WECHAT_ADMIN_TOKEN");
      for (auto& e : env)
        ::putenv(e.data());
      std::vector<char*> argv;
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
    if (capture_err) {
      ::close(err[1]);
      err_ = err[0];
    }
  }
  ~process() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    if (err_ >= 0) ::close(err_);
  }
  /// Everything printed until the first newline, waiting at most `ms`.
  std::string first_line(int ms = 10000) {
    std::string line;
    char c;
    while (line.empty() || line.back() != '\n') {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, ms) <= 0) break;
      if (::read(out_, &c, 1) != 1) break;
      line.push_back(c);
    }
    return line;
  }
  /// Sends `sig` and waits for the exit status (-1 if it did not exit within `ms`).
  int stop(int sig, int ms = 5000) {
    ::kill(pid_, sig);
    for (int waited = 0; waited < ms; waited += 10) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(10000);
    }
    return -1;
  }
  /// Everything printed after the first line, until the process closed stdout.
  std::string rest() {
    std::string s;
    char buf[256];
    ssize_t n;
    while ((n = ::read(out_, buf, sizeof buf)) > 0)
      s.append(buf, static_cast<std::size_t>(n));
    return s;
  }

  /// What the process wrote to stderr until it closed it or `ms` passed with nothing new.
  std::string err(int ms = 2000) {
    std::string s;
    char buf[256];
    for (;;) {
      pollfd p{err_, POLLIN, 0};
      if (err_ < 0 || ::poll(&p, 1, ms) <= 0) break;
      const ssize_t n = ::read(err_, buf, sizeof buf);
      if (n <= 0) break;
      s.append(buf, static_cast<std::size_t>(n));
    }
    return s;
  }

private:
  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  bool reaped_ = false;
};

int port_of(const std::string& line, const std::string& scheme) {
  std::smatch m;
  const std::regex re("^mock_wechat listening on " + scheme + "://127\\.0\\.0\\.1:([0-9]+)\n$");
  INFO(line);
  REQUIRE(std::regex_match(line, m, re));
  return std::stoi(m[1].str());
}

}  // namespace

TEST_CASE("mock_wechat prints one line with its port and exits 0 on SIGTERM and SIGINT",
          "[mock][standalone]") {
  for (int sig : {SIGTERM, SIGINT}) {
    process p({MOCK_WECHAT_PATH, "--port", "0", "--journal", "10"});
    const int port = port_of(p.first_line(), "http");
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get("/__mock/health");
    REQUIRE(r);
    CHECK(r->body == "{\"status\":\"ok\"}");
    CHECK(p.stop(sig) == 0);
    CHECK(p.rest().empty());  // exactly one line
  }
}

TEST_CASE("mock_wechat --scenario starts ready and --unionid-rules overrides it",
          "[mock][standalone]") {
  const std::string path = "standalone_scenario.json";
  std::ofstream(path) << R"({"unionid_rules":"conditional","apps":[
      {"appid":"wx1000000000000001","secret":"s","type":"miniprogram","open_account":"acct"}]})";
  process p({MOCK_WECHAT_PATH, "--port", "0", "--scenario", path, "--unionid-rules", "bound",
             "--threads", "8"});
  const int port = port_of(p.first_line(), "http");
  httplib::Client c("127.0.0.1", port);
  auto login = c.Post("/__mock/login", R"({"appid":"wx1000000000000001","user":"alice"})",
                      "application/json");
  REQUIRE(login);
  const std::string code = nlohmann::json::parse(login->body)["code"];
  auto s = c.Get(("/sns/jscode2session?appid=wx1000000000000001&secret=s&js_code=" + code).c_str());
  REQUIRE(s);
  CHECK(nlohmann::json::parse(s->body)["unionid"] ==
        mock_wechat::unionid("acct", "alice"));  // bound mode
  CHECK(p.stop(SIGTERM) == 0);
  std::remove(path.c_str());
}

TEST_CASE("mock_wechat defaults to today's WeChat, --unionid-rules and --profiles go back",
          "[mock][standalone]") {
  const std::string path = "standalone_profiles.json";
  std::ofstream(path) << R"({"profiles":"real","apps":[
      {"appid":"wx1000000000000001","secret":"s","type":"miniprogram","open_account":"acct"}],
      "users":[{"id":"alice","profile":{"nickName":"Alice"}}]})";
  struct run {
    std::vector<std::string> args;
    bool unionid;
    std::string nickname;
  };
  const std::string scenario[] = {"--scenario", path};
  for (const run& r : std::vector<run>{
           {{}, true, "微信用户"},  // bound (2021-02-23), anonymous (2021-04-28)
           {{"--unionid-rules", "conditional", "--profiles", "real"}, false, "Alice"},
           {{scenario[0], scenario[1]}, true, "Alice"},  // the scenario's era
           {{scenario[0], scenario[1], "--profiles", "anonymous"}, true, "微信用户"}}) {
    std::vector<std::string> args{MOCK_WECHAT_PATH, "--port", "0"};
    args.insert(args.end(), r.args.begin(), r.args.end());
    process p(args);
    const int port = port_of(p.first_line(), "http");
    httplib::Client c("127.0.0.1", port);
    const std::string app = R"({"appid":"wx1000000000000001","user":"alice"})";
    if (r.args.empty() || r.args[0] != "--scenario") {
      REQUIRE(c.Post("/__mock/apps",
                     R"({"appid":"wx1000000000000001","secret":"s","type":"miniprogram","open_account":"acct"})",
                     "application/json"));
      REQUIRE(c.Post("/__mock/users", R"({"user":"alice","profile":{"nickName":"Alice"}})",
                     "application/json"));
    }
    auto login = c.Post("/__mock/login", app, "application/json");
    REQUIRE(login);
    const std::string code = nlohmann::json::parse(login->body)["code"];
    auto s = c.Get(("/sns/jscode2session?appid=wx1000000000000001&secret=s&js_code=" + code).c_str());
    REQUIRE(s);
    const auto session = nlohmann::json::parse(s->body);
    CHECK(session.contains("unionid") == r.unionid);
    auto info = c.Post("/__mock/user_info", app, "application/json");
    REQUIRE(info);
    const auto i = nlohmann::json::parse(info->body);
    wechat::verify_options v;
    v.appid = "wx1000000000000001";
    const auto u = wechat::decrypt_user_info(
        session["session_key"].get<std::string>(),
        {i["encryptedData"].get<std::string>(), i["iv"].get<std::string>()}, v);
    CHECK(u.nickname == r.nickname);
    CHECK(u.unionid.has_value());  // getUserInfo of a bound app carries it in every era
    CHECK(p.stop(SIGTERM) == 0);
  }
  std::remove(path.c_str());
}

TEST_CASE("mock_wechat refuses bad command lines with exit 2", "[mock][standalone]") {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {MOCK_WECHAT_PATH, "--port", "99999"},
           {MOCK_WECHAT_PATH, "--unionid-rules", "sometimes"},
           {MOCK_WECHAT_PATH, "--profiles", "fake"},
           {MOCK_WECHAT_PATH, "--tls-cert", "x.pem"},
           {MOCK_WECHAT_PATH, "--bogus", "1"},
           {MOCK_WECHAT_PATH, "--host", "0.0.0.0", "--port", "0"},  // off loopback without a token
           {MOCK_WECHAT_PATH, "--port", "0", "--scenario", "/nonexistent.json"},
           {MOCK_WECHAT_PATH, "--port", "0", "--limit", "nothing=5"},
           {MOCK_WECHAT_PATH, "--port", "0", "--limit", "codes=0"},
           {MOCK_WECHAT_PATH, "--port", "0", "--max-connections", "0"},
           {MOCK_WECHAT_PATH, "--port", "0", "--latency", "lognormal:50"},
           {MOCK_WECHAT_PATH, "--port", "0", "--latency", "fixed:-1"},
           {MOCK_WECHAT_PATH, "--port", "0", "--seed", "-1"},
           {MOCK_WECHAT_PATH, "--port", "0", "--seed", "x"},
           {MOCK_WECHAT_PATH, "--port", "0", "--engine", "nginx"}}) {
    process p(args);
    const int code = p.stop(0, 5000);  // signal 0: just wait for the exit
    CHECK(code == 2);
    CHECK(p.first_line(100).find("listening") == std::string::npos);
  }
}

TEST_CASE("mock_wechat --limit and --max-connections set the world's and the server's limits",
          "[mock][standalone][bounds]") {
  process p({MOCK_WECHAT_PATH, "--port", "0", "--limit", "codes=16", "--limit", "apps=3",
             "--max-connections", "50"});
  const int port = port_of(p.first_line(), "http");
  httplib::Client c("127.0.0.1", port);
  for (int i = 0; i < 3; ++i)
    REQUIRE(
        c.Post("/__mock/apps", "{\"appid\":\"wx" + std::to_string(i) + "\"}", "application/json")
            ->status == 200);
  auto app = c.Post("/__mock/apps", R"({"appid":"wx9"})", "application/json");
  REQUIRE(app);
  CHECK(app->status == 507);
  int status = 200;
  for (int i = 0; i < 200 && status == 200; ++i) {
    auto r = c.Post("/__mock/login", R"({"appid":"wx0","user":"u)" + std::to_string(i) + "\"}",
                    "application/json");
    REQUIRE(r);
    status = r->status;
  }
  CHECK(status == 507);  // 16 codes at most (one per shard)
  CHECK(p.stop(SIGTERM) == 0);
}

TEST_CASE(
    "mock_wechat serves HTTPS with a test CA and a verifying client trusts it only with that CA",
    "[mock][standalone][tls]") {
  const std::string dir = "tls_test_ca_engines";  // one per test: ctest runs them at once
  REQUIRE(std::system(("bash " MAKE_TEST_CA " " + dir + " > /dev/null").c_str()) == 0);
  for (const char* engine : {"event", "httplib"}) {
  INFO(engine);
  process p({MOCK_WECHAT_PATH, "--port", "0", "--tls-cert", dir + "/server.pem", "--tls-key",
             dir + "/server.key", "--engine", engine});
  const int port = port_of(p.first_line(), "https");
  {
    httplib::SSLClient c("127.0.0.1", port);
    c.set_ca_cert_path((dir + "/ca.pem").c_str());
    c.enable_server_certificate_verification(true);
    auto r = c.Get("/__mock/health");
    REQUIRE(r);
    CHECK(r->status == 200);
    auto w = c.Get("/sns/jscode2session");
    REQUIRE(w);
    CHECK(nlohmann::json::parse(w->body)["errcode"] == 41002);
  }
  {
    httplib::SSLClient untrusting("127.0.0.1", port);  // the system's CAs only
    untrusting.enable_server_certificate_verification(true);
    auto r = untrusting.Get("/__mock/health");
    CHECK_FALSE(r);
    CHECK(r.error() == httplib::Error::SSLServerVerification);
  }
  CHECK(p.stop(SIGTERM) == 0);
  }
}

TEST_CASE("mock_wechat over HTTPS exits 0 on SIGTERM within a second, whatever TLS clients do",
          "[mock][standalone][tls]") {
  const std::string dir = "tls_test_ca_sigterm";
  REQUIRE(std::system(("bash " MAKE_TEST_CA " " + dir + " > /dev/null").c_str()) == 0);
  process p({MOCK_WECHAT_PATH, "--port", "0", "--tls-cert", dir + "/server.pem", "--tls-key",
             dir + "/server.key"});
  const int port = port_of(p.first_line(), "https");
  std::vector<mocktest::raw> clients;
  for (int i = 0; i < 200; ++i) {
    clients.emplace_back(port, true);
    REQUIRE(clients.back().ok());
    if (i % 4 == 1)  // streaming a header line that never ends
      REQUIRE(clients.back().send("GET / HTTP/1.1\r\nX-Long: " + std::string(16 * 1024, 'a')));
    else if (i % 4 == 2)  // half a request
      REQUIRE(clients.back().send("GET /sns/auth HTTP/1.1\r\nHost"));
    else if (i % 4 == 3)  // kept alive after an answer
      REQUIRE(clients.back().send("GET /__mock/health HTTP/1.1\r\n\r\n"));
  }
  std::vector<mocktest::raw> handshaking;  // TCP connected, no ClientHello
  for (int i = 0; i < 20; ++i)
    handshaking.emplace_back(port, false);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(p.stop(SIGTERM, 3000) == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
}

TEST_CASE("mock_wechat --latency delays every WeChat endpoint, never the admin API",
          "[mock][standalone]") {
  for (const char* engine : {"event", "httplib"}) {
    INFO(engine);
    process p({MOCK_WECHAT_PATH, "--port", "0", "--latency", "fixed:300", "--seed", "7",
               "--engine", engine});
    httplib::Client c("127.0.0.1", port_of(p.first_line(), "http"));
    auto t0 = std::chrono::steady_clock::now();
    auto w = c.Get("/sns/jscode2session");
    REQUIRE(w);
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(300));
    auto stats = c.Get("/__mock/stats");
    REQUIRE(stats);
    const auto j = nlohmann::json::parse(stats->body);
    CHECK(j["endpoints"]["/sns/jscode2session"]["count"] == 1);
    CHECK(j["endpoints"]["/sns/jscode2session"]["latency_us"]["max"].get<double>() >= 300000);
    // The admin API is never delayed: its answers are not even in the stats.
    CHECK_FALSE(j["endpoints"].contains("/__mock/stats"));
    CHECK(p.stop(SIGTERM) == 0);
  }
}

// Issue 19, hardening: the admin token was taken from argv only (any local user sees it in
// ps), of any length. --admin-token keeps working as before; a file and the environment
// are added; 16 characters at least off loopback (on loopback, where DESIGN's command line
// takes any token, a shorter one is a warning), never echoed.
TEST_CASE("mock_wechat takes the admin token from --admin-token, a file or the environment, "
          "16 characters at least off loopback, never echoed",
          "[mock][standalone]") {
  const std::string dir = "standalone_admin_token";  // its own folder: ctest runs tests at once
  REQUIRE(std::system(("mkdir -p " + dir).c_str()) == 0);
  const std::string token = "f00dfeedf00dfeed-standalone";
  const std::string file = dir + "/token", short_file = dir + "/short", lines = dir + "/lines";
  std::ofstream(file) << token << "\n";  // as `echo T > F` writes it
  std::ofstream(short_file) << "short-f1le\n";
  std::ofstream(dir + "/empty") << "";
  std::ofstream(lines) << "f00dfeedf00dfeed-first\nsecond-line-secret\n";
  struct way {
    std::vector<std::string> args, env;
  };
  for (const way& w : std::vector<way>{
           {{"--admin-token", token}, {}},
           {{"--admin-token-file", file}, {}},
           {{}, {"MOCK_WECHAT_ADMIN_TOKEN=" + token}},
           {{"--admin-token", token}, {"MOCK_WECHAT_ADMIN_TOKEN=another-token-0123456789"}}}) {
    std::vector<std::string> args{MOCK_WECHAT_PATH, "--port", "0"};
    args.insert(args.end(), w.args.begin(), w.args.end());
    INFO(args.size() << " args, " << w.env.size() << " env");
    process p(args, w.env);
    httplib::Client c("127.0.0.1", port_of(p.first_line(), "http"));
    auto open = c.Get("/__mock/health");
    REQUIRE(open);
    CHECK(open->status == 401);
    auto in = c.Get("/__mock/health", httplib::Headers{{"Authorization", "bearer " + token}});
    REQUIRE(in);
    CHECK(in->status == 200);
    CHECK(p.stop(SIGTERM) == 0);
  }
  struct refused {
    std::vector<std::string> args, env;
    std::string said, secret;
  };
  // On loopback a short token works, with a warning that does not show it.
  {
    process p({MOCK_WECHAT_PATH, "--port", "0", "--admin-token", "short-t0ken"}, {}, true);
    httplib::Client c("127.0.0.1", port_of(p.first_line(), "http"));
    auto in = c.Get("/__mock/health", httplib::Headers{{"Authorization", "Bearer short-t0ken"}});
    REQUIRE(in);
    CHECK(in->status == 200);
    const std::string err = p.err(500);
    CHECK(err.find("warning: the admin token from --admin-token has 11 characters") !=
          std::string::npos);
    CHECK(err.find("short-t0ken") == std::string::npos);
    CHECK(p.stop(SIGTERM) == 0);
  }
  const std::string off = "0.0.0.0";  // off loopback the token is all that guards /__mock
  for (const refused& r : std::vector<refused>{
           {{"--host", off, "--admin-token", "short-t0ken"}, {}, "at least 16", "short-t0ken"},
           {{"--host", off, "--admin-token", ""}, {}, "exposes the admin API", ""},
           {{"--host", off, "--admin-token-file", short_file}, {}, "at least 16", "short-f1le"},
           {{"--host", off}, {"MOCK_WECHAT_ADMIN_TOKEN=short-env-t0k"}, "at least 16",
            "short-env-t0k"},
           {{"--admin-token-file", lines}, {}, "control character", "second-line-secret"},
           {{"--admin-token", token, "--admin-token-file", file}, {}, "not both", token},
           {{"--admin-token-file", dir + "/missing"}, {}, "cannot read", ""},
           // asked for a token and got none: refused, even on loopback (never an open API)
           {{"--admin-token-file", dir + "/empty"}, {}, "is empty", ""},
           {{"--admin-token-file", dir}, {}, "not a regular file", ""},
           // a token pasted where the path belongs is not shown
           {{"--admin-token-file", token}, {}, "cannot read the file", token}}) {
    std::vector<std::string> args{MOCK_WECHAT_PATH, "--port", "0"};
    args.insert(args.end(), r.args.begin(), r.args.end());
    INFO(r.said);
    process p(args, r.env, true);
    CHECK(p.stop(0, 5000) == 2);
    const std::string err = p.err();
    CHECK(err.find(r.said) != std::string::npos);
    if (!r.secret.empty()) CHECK(err.find(r.secret) == std::string::npos);
    CHECK(p.first_line(100).find("listening") == std::string::npos);
  }
  std::system(("rm -rf " + dir).c_str());
}

// Issue 19, hardening: with --host 0.0.0.0 the ready line said 127.0.0.1 and nothing
// more. The line stays the contract's (a URL that connects); stderr says the rest.
TEST_CASE("mock_wechat --host 0.0.0.0: the ready line names a loopback URL and stderr says it "
          "listens on every interface",
          "[mock][standalone]") {
  const std::string token = "f00dfeedf00dfeed-all-interfaces";
  process p({MOCK_WECHAT_PATH, "--host", "0.0.0.0", "--port", "0", "--admin-token", token}, {},
            true);
  const int port = port_of(p.first_line(), "http");
  const std::string err = p.err(500);
  CHECK(err == "mock_wechat: --host 0.0.0.0 listens on every interface: other machines reach it "
               "at this machine's addresses, port " +
                   std::to_string(port) + "\n");
  CHECK(err.find(token) == std::string::npos);
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/__mock/health", httplib::Headers{{"Authorization", "Bearer " + token}});
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(p.stop(SIGTERM) == 0);
  CHECK(p.rest().empty());  // still exactly one line on stdout
  process loopback({MOCK_WECHAT_PATH, "--port", "0"}, {}, true);
  port_of(loopback.first_line(), "http");
  CHECK(loopback.err(300).empty());  // on loopback, the line says it all
  CHECK(loopback.stop(SIGTERM) == 0);
}

TEST_CASE("mock_wechat refuses a scenario file with an unknown field or a duplicate appid, "
          "naming the path, with exit 2",
          "[mock][standalone][scenario]") {
  const std::string path = "standalone_scenario_typo.json";
  for (const auto& [text, said] : std::vector<std::pair<std::string, std::string>>{
           {R"({"apps":[{"appid":"wx1000000000000001","secert":"s"}]})",
            "mock_wechat: scenario.apps[0]: unknown field 'secert'"},
           {R"({"apps":[{"appid":"wx1","secret":"a"},{"appid":"wx1","secret":"b"}]})",
            "mock_wechat: scenario.apps[1]: appid wx1 is declared twice (first at "
            "scenario.apps[0])"}}) {
    std::ofstream(path) << text;
    process p({MOCK_WECHAT_PATH, "--port", "0", "--scenario", path}, {}, true);
    CHECK(p.stop(0, 5000) == 2);
    CHECK(p.err().find(said) == 0);
    CHECK(p.first_line(100).find("listening") == std::string::npos);
  }
  std::remove(path.c_str());
}
