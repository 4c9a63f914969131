// fleet_tokens: two backend processes of one app sharing access tokens and identities
// through Redis.
//
//   fleet_tokens --redis-port 6379 [--redis-host 127.0.0.1]
//
// The parent starts the embedded mock of the WeChat API, then forks two "servers". Each
// builds its own wechat::client on the shared Redis token store and asks for the access
// token from 8 threads at once; both end up with the same token, fetched from WeChat once
// for the whole fleet (a token fetched per server would invalidate the other's). Each
// server then records the user it saw in the shared identity directory, and the parent
// reads one person's openids across both apps back from Redis. Tokens are shown by a
// fingerprint, never in full.
#include <mock_wechat/mock_wechat.hpp>
#include <wechat/store/redis.hpp>
#include <wechat/wechat.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

int server_process(const std::string& name, const std::string& base,
                   const wechat::redis_options& ro, const std::string& appid,
                   const std::string& secret, const std::string& seen_in, const std::string& openid,
                   const std::string& unionid) {
  auto redis = std::make_shared<wechat::redis_connection>(ro);
  wechat::httplib_transport_options t;
  t.base_url = base;
  wechat::client wx({appid, secret}, wechat::httplib_transport::create(t),
                    std::make_shared<wechat::redis_token_store>(redis));
  std::vector<std::thread> threads;
  threads.reserve(8);
  std::vector<std::string> tokens(8);
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] { tokens[i] = wx.tokens().get(); });
  for (auto& th : threads)
    th.join();
  for (const auto& tok : tokens)
    if (tok != tokens[0]) return 1;
  std::cout << "  " << name << ": token " << wechat::sha1_hex(tokens[0]).substr(0, 10)
            << "... (fingerprint), upstream fetches by this process: " << wx.tokens().fetches()
            << std::endl;
  wechat::identity_directory dir(std::make_shared<wechat::redis_identity_store>(redis));
  std::error_code ec;
  dir.link(seen_in, openid, unionid, ec);
  if (ec) {
    std::cerr << "  " << name << ": directory: " << ec.message() << std::endl;
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  wechat::redis_options ro;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--redis-port")
      ro.port = std::stoi(argv[++i]);
    else if (a == "--redis-host")
      ro.host = argv[++i];
  }
  // A child: fleet_tokens --serve NAME BASE PREFIX SEEN_IN OPENID UNIONID --redis-port P
  // --redis-host H
  if (argc >= 8 && std::string(argv[1]) == "--serve") {
    ro.prefix = argv[4];
    return server_process(argv[2], argv[3], ro, "wx1000000000000001", "mp-secret", argv[5], argv[6],
                          argv[7]);
  }
  ro.prefix = "fleet-example-" + std::to_string(::getpid()) + ":";

  mock_wechat::server mock;
  const std::string mp = "wx1000000000000001", oa = "wx2000000000000002";
  mock.world().add_app({mp, "mp-secret", mock_wechat::app_type::miniprogram, "acct"});
  std::cout << "mock WeChat API on " << mock.base_url() << ", Redis on " << ro.host << ":"
            << ro.port << std::endl;

  // The same person in two apps.
  const std::string uid = mock_wechat::unionid("acct", "li-si");
  struct job {
    const char* name;
    std::string openid;
  } jobs[] = {{"server A", mock_wechat::openid(mp, "li-si")},
              {"server B", mock_wechat::openid(oa, "li-si")}};
  std::vector<pid_t> children;
  for (const auto& j : jobs) {
    // Server A saw the user in the mini program, server B in the official account; both
    // use the mini program's access token. Each is a process of its own (exec'd).
    const std::string seen_in = &j == &jobs[0] ? mp : oa;
    const std::string base = mock.base_url(), port = std::to_string(ro.port);
    std::vector<std::string> args = {argv[0],        "--serve", j.name,         base,
                                     ro.prefix,      seen_in,   j.openid,       uid,
                                     "--redis-port", port,      "--redis-host", ro.host};
    std::vector<char*> cargs;
    cargs.reserve(args.size() + 1);
    for (auto& a : args)
      cargs.push_back(a.data());
    cargs.push_back(nullptr);
    std::cout.flush();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execv(argv[0], cargs.data());
      ::_exit(127);
    }
    children.push_back(pid);
  }
  int failures = 0;
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const auto fetched = mock.journal().count("/cgi-bin/stable_token");
  std::cout << "WeChat saw " << fetched << " token fetch(es) for the whole fleet" << std::endl;

  auto redis = std::make_shared<wechat::redis_connection>(ro);
  wechat::identity_directory dir(std::make_shared<wechat::redis_identity_store>(redis));
  std::error_code ec;
  const auto ids = dir.openids_of(uid, ec);
  if (ec) {
    std::cerr << "directory: " << ec.message() << '\n';
    return 1;
  }
  std::cout << "unionid " << uid << " is:" << std::endl;
  for (const auto& who : ids)
    std::cout << "  " << who.appid << " / " << who.openid << std::endl;
  const bool ok = failures == 0 && fetched == 1 && ids.size() == 2;
  std::cout << (ok ? "fleet ok" : "fleet FAILED") << std::endl;
  return ok ? 0 : 1;
}
